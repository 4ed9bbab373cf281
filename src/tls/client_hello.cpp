#include "tls/client_hello.h"

#include <algorithm>
#include <cstdint>

namespace mg::tls {

namespace {

constexpr uint8_t kHandshakeRecord = 0x16;
constexpr uint8_t kClientHelloType = 0x01;
constexpr size_t kRecordHeader = 5;
constexpr size_t kMaxRecordPayload = 16384;  // 2^14: TLSPlaintext.length's bound
constexpr uint16_t kServerNameExtension = 0;
constexpr uint8_t kHostNameType = 0;

ClientHelloParse invalid(std::string what, std::string sentence) {
  ClientHelloParse out;
  out.state = ClientHelloParse::State::Invalid;
  out.error = Error{"tls.client_hello." + std::move(what), std::move(sentence)};
  return out;
}

// A bounds-checked reader over the reassembled handshake message.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool u8(size_t& out) { return take(1, out); }
  bool u16(size_t& out) { return take(2, out); }
  bool u24(size_t& out) { return take(3, out); }
  bool skip(size_t n) {
    if (n > bytes_.size() - pos_) return false;
    pos_ += n;
    return true;
  }
  // The next `n` bytes as a sub-reader's input.
  bool sub(size_t n, std::string_view& out) {
    if (n > bytes_.size() - pos_) return false;
    out = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  bool take(size_t n, size_t& out) {
    if (n > bytes_.size() - pos_) return false;
    out = 0;
    for (size_t i = 0; i < n; ++i) out = (out << 8) | static_cast<uint8_t>(bytes_[pos_ + i]);
    pos_ += n;
    return true;
  }
  std::string_view bytes_;
  size_t pos_ = 0;
};

// RFC 6066 HostName: a DNS name in ASCII, no trailing dot. Labels of letters, digits, '-' and '_'
// (seen in the wild), 1..63 bytes each, 253 in all.
bool is_host_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return label != 0;
}

// The server_name extension's body: one ServerNameList holding at most one host_name.
bool read_server_name(std::string_view body, std::string& sni, ClientHelloParse& refusal) {
  Reader r(body);
  size_t list_length = 0;
  std::string_view list;
  if (!r.u16(list_length) || !r.sub(list_length, list) || !r.done() || list_length == 0) {
    refusal = invalid("bad_server_name", "the server_name extension's list does not fit its length");
    return false;
  }
  Reader names(list);
  bool seen_host = false;
  while (!names.done()) {
    size_t type = 0, length = 0;
    std::string_view name;
    if (!names.u8(type) || !names.u16(length) || !names.sub(length, name)) {
      refusal = invalid("bad_server_name", "a server name does not fit the server_name list");
      return false;
    }
    if (type != kHostNameType) continue;  // no other type is defined; skipped as the RFC allows
    if (seen_host) {
      refusal = invalid("duplicate_server_name", "the server_name extension names two host names");
      return false;
    }
    if (!is_host_name(name)) {
      refusal = invalid("bad_host_name", "the server name is not a DNS host name");
      return false;
    }
    seen_host = true;
    sni.assign(name);
    for (auto& c : sni) c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return true;
}

// The ClientHello body (after the 4-byte handshake header).
ClientHelloParse read_client_hello(std::string_view body) {
  Reader r(body);
  size_t version = 0, session_id = 0, suites = 0, compression = 0;
  if (!r.u16(version) || !r.skip(32) || !r.u8(session_id) || session_id > 32 || !r.skip(session_id)) {
    return invalid("truncated", "the ClientHello ends inside its version, random or session id");
  }
  if ((version >> 8) != 3) return invalid("bad_version", "the ClientHello's version is not TLS (major 3)");
  if (!r.u16(suites) || suites < 2 || suites % 2 != 0 || !r.skip(suites)) {
    return invalid("bad_cipher_suites", "the ClientHello's cipher suites do not fit their length");
  }
  if (!r.u8(compression) || compression < 1 || !r.skip(compression)) {
    return invalid("bad_compression", "the ClientHello's compression methods do not fit their length");
  }
  ClientHelloParse out;
  out.state = ClientHelloParse::State::Complete;
  if (r.done()) return out;  // no extensions (TLS 1.2 allows it): no server name
  size_t extensions_length = 0;
  std::string_view extensions;
  if (!r.u16(extensions_length) || !r.sub(extensions_length, extensions) || !r.done()) {
    return invalid("bad_extensions", "the ClientHello's extensions do not fit its length");
  }
  Reader ext(extensions);
  bool seen_server_name = false;
  while (!ext.done()) {
    size_t type = 0, length = 0;
    std::string_view data;
    if (!ext.u16(type) || !ext.u16(length) || !ext.sub(length, data)) {
      return invalid("bad_extensions", "an extension does not fit the ClientHello's extensions");
    }
    if (type != kServerNameExtension) continue;
    if (seen_server_name)
      return invalid("duplicate_server_name", "the ClientHello has two server_name extensions");
    seen_server_name = true;
    ClientHelloParse refusal;
    if (!read_server_name(data, out.sni, refusal)) return refusal;
  }
  return out;
}

}  // namespace

ClientHelloParse parse_client_hello(std::string_view buffer) {
  // Reassemble the handshake message from consecutive handshake records.
  std::string message;
  size_t pos = 0;
  while (true) {
    // Another record (a header and at least one byte) must still fit within the bound.
    if (pos + kRecordHeader + 1 > kClientHelloMaxBytes)
      return invalid("too_large", "the ClientHello takes more than 16 KiB");
    if (buffer.size() - pos < kRecordHeader) {
      // What is there must still be able to begin a handshake record.
      const std::string_view head = buffer.substr(pos);
      if (!head.empty() && static_cast<uint8_t>(head[0]) != kHandshakeRecord)
        return invalid("not_handshake", "the connection does not start with a TLS handshake record");
      if (head.size() >= 2 && static_cast<uint8_t>(head[1]) != 3)
        return invalid("bad_record_version", "the record's version is not TLS (major 3)");
      return {};
    }
    const auto* h = reinterpret_cast<const uint8_t*>(buffer.data() + pos);
    if (h[0] != kHandshakeRecord)
      return invalid("not_handshake", "the connection does not start with a TLS handshake record");
    if (h[1] != 3) return invalid("bad_record_version", "the record's version is not TLS (major 3)");
    const size_t record = (size_t{h[3]} << 8) | h[4];
    if (record == 0 || record > kMaxRecordPayload)
      return invalid("bad_record_length", "a handshake record is empty or longer than 2^14 bytes");
    if (pos + kRecordHeader + record > kClientHelloMaxBytes)
      return invalid("too_large", "the ClientHello takes more than 16 KiB");
    const size_t here = std::min(record, buffer.size() - pos - kRecordHeader);
    message.append(buffer.substr(pos + kRecordHeader, here));
    // The handshake header is judged as soon as its bytes are here, the record complete or not.
    size_t length = 0;
    if (!message.empty() && static_cast<uint8_t>(message[0]) != kClientHelloType)
      return invalid("not_client_hello", "the first handshake message is not a ClientHello");
    if (message.size() >= 4) {
      const auto* m = reinterpret_cast<const uint8_t*>(message.data());
      length = (size_t{m[1]} << 16) | (size_t{m[2]} << 8) | m[3];
      if (length + 4 + kRecordHeader > kClientHelloMaxBytes)
        return invalid("too_large", "the ClientHello takes more than 16 KiB");
    }
    if (here < record) return {};  // the record is not all here yet
    pos += kRecordHeader + record;
    if (message.size() < 4 || message.size() < length + 4) continue;
    // A record may carry only the ClientHello: no other message follows it in the first flight.
    if (message.size() > length + 4)
      return invalid("trailing_data", "a record carries more than the ClientHello");
    ClientHelloParse out = read_client_hello(std::string_view(message).substr(4, length));
    if (out.state == ClientHelloParse::State::Complete) out.length = pos;
    return out;
  }
}

}  // namespace mg::tls
