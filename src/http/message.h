// http/message.h — the request/response model shared by the proxy, the sample app and (later)
// the policy engine. Headers keep their order and original spelling; lookups are
// case-insensitive, as HTTP field names are.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mg::http {

namespace detail {
bool iequals_same_size(const char* a, const char* b, size_t n);
}  // namespace detail
// ASCII case-insensitive equality (header names). The size test is inline: most names a lookup
// meets differ in it.
inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && detail::iequals_same_size(a.data(), b.data(), a.size());
}
std::string to_lower(std::string_view s);

// `s` without leading and trailing spaces and tabs (RFC 9110's OWS).
inline std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f(item) for each trimmed item of a comma-separated field value (empty items included,
// so callers can reject them); f returns false to stop early, and then so does this.
template <class F>
bool for_each_list_item(std::string_view value, F&& f) {
  size_t pos = 0;
  while (true) {
    size_t comma = value.find(',', pos);
    if (comma == std::string_view::npos) return f(trim_ows(value.substr(pos)));
    if (!f(trim_ows(value.substr(pos, comma - pos)))) return false;
    pos = comma + 1;
  }
}

struct Header {
  std::string name;
  std::string value;
};

class Headers {
 public:
  using const_iterator = std::vector<Header>::const_iterator;

  // First value of `name`, if any.
  std::optional<std::string_view> get(std::string_view name) const;
  // Every value of `name`, in order.
  std::vector<std::string_view> get_all(std::string_view name) const;
  size_t count(std::string_view name) const;
  bool contains(std::string_view name) const { return count(name) > 0; }
  // The first field named `name`, to change or move from in place; nullptr when there is none.
  Header* find(std::string_view name);

  // Calls f(value) for every value of `name`, in order; get_all without the vector.
  template <class F>
  void for_each(std::string_view name, F&& f) const {
    for (const auto& h : fields_) {
      if (iequals(h.name, name)) f(std::string_view(h.value));
    }
  }

  void add(std::string name, std::string value);
  void reserve(size_t n) { fields_.reserve(n); }
  // Removes every `name` then adds one: the proxy's "sanitize and set".
  void set(std::string name, std::string value);
  size_t remove(std::string_view name);
  // Removes every field whose name `pred` accepts; one pass however many names it stands for.
  template <class Pred>
  size_t remove_if(Pred&& pred) {
    size_t before = fields_.size();
    std::erase_if(fields_, [&](const Header& h) { return pred(std::string_view(h.name)); });
    return before - fields_.size();
  }

  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  const_iterator begin() const { return fields_.begin(); }
  const_iterator end() const { return fields_.end(); }
  const std::vector<Header>& fields() const { return fields_; }

 private:
  std::vector<Header> fields_;
};

// How the message body is delimited (RFC 9112 §6.3).
enum class BodyFraming {
  None,           // no body
  ContentLength,  // exactly `content_length` bytes
  Chunked,        // Transfer-Encoding: chunked
  UntilClose,     // responses only: the body ends when the server closes
};

struct Request {
  std::string method;
  std::string target;     // origin-form as received, or "*"; an absolute-form target is parsed
                          // into origin-form, its authority replacing Host (RFC 9112 §3.2.2)
  std::string path;       // target without the query; never empty, starts with '/' (or is "*")
  std::string query;      // after '?', without it; empty when absent
  std::string host;       // Host header (the authority of an absolute-form target)
  int version_minor = 1;  // HTTP/1.<minor>: 0 or 1
  Headers headers;
  BodyFraming framing = BodyFraming::None;
  uint64_t content_length = 0;
  bool keep_alive = true;  // false when the client asked to close (or HTTP/1.0 without keep-alive)
  bool expect_continue = false;
};

struct Response {
  int status = 200;
  std::string reason;
  int version_minor = 1;
  Headers headers;
  BodyFraming framing = BodyFraming::None;
  uint64_t content_length = 0;
  bool keep_alive = true;
};

// Standard reason phrase ("Not Found"); "Unknown" for codes it does not know.
std::string_view reason_phrase(int status);

// Serialized heads (request line / status line, headers, blank line). Framing headers are
// written from the model's fields as they are: callers set Content-Length/Transfer-Encoding.
std::string serialize_request_head(const Request& req);
std::string serialize_response_head(const Response& resp);

// A complete small response (Content-Length set), e.g. a local 403 or the sample app's JSON.
std::string make_response(int status, std::string_view content_type, std::string_view body, bool keep_alive,
                          const std::vector<Header>& extra = {});

// RFC 9110 token characters (method, header names).
bool is_token_char(unsigned char c);

// Hop-by-hop fields a proxy must not forward (RFC 9110 §7.6.1), plus those listed in Connection.
void remove_hop_by_hop(Headers& headers);

// The same rule as a test of one name, for code that relays fields without editing them.
class HopByHop {
 public:
  explicit HopByHop(const Headers& headers);
  bool operator()(std::string_view name) const;

 private:
  std::vector<std::string> listed_;  // named by Connection (copies: usually none)
};

// "TE: trailers" is among the fields (gRPC sends it; an HTTP/2 next hop gets it again, the one
// TE value HTTP/2 allows).
bool wants_trailers(const Headers& headers);

// The protocol asked for by a protocol upgrade (RFC 9110 §7.8): the single Upgrade field's value
// when Connection lists "upgrade" (WebSocket: "websocket"); nullopt otherwise. Upgrade and
// Connection are hop-by-hop, so a proxy that relays an upgrade states them again itself.
std::optional<std::string> upgrade_protocol(const Headers& headers);

}  // namespace mg::http
