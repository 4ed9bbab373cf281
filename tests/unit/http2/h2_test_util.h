// Helpers for the http2 tests: pumping bytes between two sessions in memory, raw frames (for a
// peer that misbehaves in ways a well-behaved client session never would), and reading frames
// back out of a session's output.
#pragma once

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <string>
#include <utility>
#include <vector>

#include "http2/client.h"
#include "http2/preface.h"
#include "http2/server.h"

namespace mg::http2::test {

// Moves bytes both ways until neither side has anything to write (bounded rounds); every event
// either side yields goes to its handler, which may answer at once.
template <class OnServer, class OnClient>
void pump(ClientSession& client, ServerSession& server, OnServer&& on_server, OnClient&& on_client,
          int max_rounds = 1000) {
  for (int round = 0; round < max_rounds; ++round) {
    std::string c2s, s2c;
    client.take_output(c2s);
    if (!c2s.empty()) (void)server.receive(c2s);
    while (auto ev = server.next_event()) on_server(*ev);
    server.take_output(s2c);
    if (!s2c.empty()) (void)client.receive(s2c);
    while (auto ev = client.next_event()) on_client(*ev);
    if (c2s.empty() && s2c.empty()) return;
  }
  ADD_FAILURE() << "pump did not settle";
}

inline std::string frame(uint8_t type, uint8_t flags, int32_t stream, std::string_view payload) {
  std::string f;
  size_t len = payload.size();
  f.push_back(static_cast<char>((len >> 16) & 0xff));
  f.push_back(static_cast<char>((len >> 8) & 0xff));
  f.push_back(static_cast<char>(len & 0xff));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  for (int shift : {24, 16, 8, 0}) f.push_back(static_cast<char>((stream >> shift) & 0xff));
  f.append(payload);
  return f;
}

inline std::string u32(uint32_t v) {
  std::string s;
  for (int shift : {24, 16, 8, 0}) s.push_back(static_cast<char>((v >> shift) & 0xff));
  return s;
}

inline std::string settings_entry(uint16_t id, uint32_t value) {
  std::string s;
  s.push_back(static_cast<char>(id >> 8));
  s.push_back(static_cast<char>(id & 0xff));
  return s + u32(value);
}

// The client's connection preface and an empty SETTINGS.
inline std::string client_start() { return std::string(kClientPreface) + frame(NGHTTP2_SETTINGS, 0, 0, ""); }

// An HPACK encoder with its own dynamic table, as a raw peer keeps one per connection.
class Encoder {
 public:
  explicit Encoder(size_t table = 4096) { nghttp2_hd_deflate_new(&d_, table); }
  ~Encoder() { nghttp2_hd_deflate_del(d_); }
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  std::string encode(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [n, v] : fields) {
      nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                    NGHTTP2_NV_FLAG_NONE});
    }
    std::string out(nghttp2_hd_deflate_bound(d_, nv.data(), nv.size()), '\0');
    ssize_t n =
        nghttp2_hd_deflate_hd(d_, reinterpret_cast<uint8_t*>(out.data()), out.size(), nv.data(), nv.size());
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  }

 private:
  nghttp2_hd_deflater* d_ = nullptr;
};

inline std::vector<std::pair<std::string, std::string>> get_fields(const std::string& path = "/") {
  return {{":method", "GET"}, {":scheme", "http"}, {":authority", "app.test"}, {":path", path}};
}

struct Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  int32_t stream = 0;
  std::string payload;
  uint32_t code() const {  // RST_STREAM's error code, GOAWAY's
    size_t at = type == NGHTTP2_GOAWAY ? 4 : 0;
    if (payload.size() < at + 4) return 0;
    uint32_t v = 0;
    for (size_t i = at; i < at + 4; ++i) v = (v << 8) | static_cast<uint8_t>(payload[i]);
    return v;
  }
};

inline std::vector<Frame> frames_of(std::string_view bytes) {
  std::vector<Frame> out;
  while (bytes.size() >= 9) {
    auto b = [&](size_t i) { return static_cast<uint8_t>(bytes[i]); };
    size_t len = (size_t{b(0)} << 16) | (size_t{b(1)} << 8) | b(2);
    if (bytes.size() < 9 + len) break;
    Frame f;
    f.type = b(3);
    f.flags = b(4);
    f.stream = static_cast<int32_t>(((uint32_t{b(5)} & 0x7f) << 24) | (uint32_t{b(6)} << 16) |
                                    (uint32_t{b(7)} << 8) | b(8));
    f.payload = std::string(bytes.substr(9, len));
    out.push_back(std::move(f));
    bytes.remove_prefix(9 + len);
  }
  return out;
}

inline size_t count_frames(const std::vector<Frame>& frames, uint8_t type, uint32_t code) {
  size_t n = 0;
  for (const auto& f : frames) n += f.type == type && f.code() == code;
  return n;
}

inline std::unique_ptr<ServerSession> make_server(const Limits& limits = {}) {
  auto s = ServerSession::create(limits);
  EXPECT_TRUE(s) << (s ? "" : s.error().to_string());
  return std::move(*s);
}

inline std::unique_ptr<ClientSession> make_client(const Limits& limits = {}) {
  auto c = ClientSession::create(limits);
  EXPECT_TRUE(c) << (c ? "" : c.error().to_string());
  return std::move(*c);
}

inline http::Request get_request(const std::string& target = "/", const std::string& host = "app.test") {
  http::Request req;
  req.method = "GET";
  req.target = target;
  req.host = host;
  req.headers.add("host", host);
  return req;
}

}  // namespace mg::http2::test
