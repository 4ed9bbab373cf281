#include "http/proxy_protocol.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace mg::http {

namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr unsigned char kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                            0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr size_t kV2FixedBytes = 16;

ProxyHeaderParse incomplete() { return {}; }

ProxyHeaderParse invalid(std::string code, std::string message) {
  ProxyHeaderParse p;
  p.state = ProxyHeaderParse::State::Invalid;
  p.error = Error{"proxy_protocol." + std::move(code), std::move(message)};
  return p;
}

ProxyHeaderParse complete(ProxyHeader h) {
  ProxyHeaderParse p;
  p.state = ProxyHeaderParse::State::Complete;
  p.header = std::move(h);
  return p;
}

// The canonical text of an address given in binary (v2) form.
std::string address_text(int family, const unsigned char* bytes) {
  char out[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(family, bytes, out, sizeof out) == nullptr) return {};
  return out;
}

// A v1 address: exactly the family's textual form (inet_pton refuses leading zeros, hex and
// shortened IPv4); kept in canonical form.
bool v1_address(std::string_view text, bool ipv6, std::string& out) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  unsigned char bin[16];
  int family = ipv6 ? AF_INET6 : AF_INET;
  if (inet_pton(family, buf, bin) != 1) return false;
  out = address_text(family, bin);
  return !out.empty();
}

// A v1 port: 0..65535 in decimal, no sign, no leading zero (the spec's grammar).
bool v1_port(std::string_view text, uint16_t& out) {
  if (text.empty() || text.size() > 5) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  uint32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  out = static_cast<uint16_t>(v);
  return true;
}

ProxyHeaderParse parse_v1(std::string_view buffer) {
  // Find the CRLF within the bound; every byte before it must be printable ASCII.
  size_t limit = std::min(buffer.size(), kProxyV1MaxBytes);
  size_t end = std::string_view::npos;
  for (size_t i = 0; i < limit; ++i) {
    unsigned char c = static_cast<unsigned char>(buffer[i]);
    if (c == '\r') {
      if (i + 2 > kProxyV1MaxBytes) break;
      if (i + 1 >= buffer.size()) return incomplete();
      if (buffer[i + 1] != '\n') return invalid("v1_bad_line_end", "a CR not followed by LF in the PROXY line");
      end = i;
      break;
    }
    if (c < 0x20 || c > 0x7e) return invalid("v1_bad_character", "a control or non-ASCII byte in the PROXY line");
  }
  if (end == std::string_view::npos) {
    if (buffer.size() < kProxyV1MaxBytes && limit == buffer.size()) return incomplete();
    return invalid("v1_too_long", "no CRLF within the PROXY v1 line's 107 bytes");
  }

  std::string_view line = buffer.substr(kV1Prefix.size(), end - kV1Prefix.size());
  ProxyHeader h;
  h.version = 1;
  h.length = end + 2;
  // UNKNOWN: the sender could not tell (or chose not to); whatever follows up to the CRLF is
  // ignored, as the spec says, and the connection keeps its own address.
  if (line == "UNKNOWN" || line.starts_with("UNKNOWN ")) return complete(std::move(h));

  // Exactly a protocol and four fields, single spaces (an empty field fails its own check).
  std::string_view fields[5];
  size_t count = 0;
  size_t pos = 0;
  while (true) {
    size_t space = line.find(' ', pos);
    if (count == 5) return invalid("v1_bad_fields", "a PROXY v1 line has a protocol and four fields");
    fields[count++] = line.substr(pos, space == std::string_view::npos ? std::string_view::npos : space - pos);
    if (space == std::string_view::npos) break;
    pos = space + 1;
  }
  if (count != 5) return invalid("v1_bad_fields", "a PROXY v1 line has a protocol and four fields");
  if (fields[0] == "TCP6") {
    h.ipv6 = true;
  } else if (fields[0] != "TCP4") {
    return invalid("v1_bad_protocol", "the PROXY v1 protocol is TCP4, TCP6 or UNKNOWN");
  }
  if (!v1_address(fields[1], h.ipv6, h.source_address) || !v1_address(fields[2], h.ipv6, h.destination_address)) {
    return invalid("v1_bad_address", std::string("an address that is not ") + (h.ipv6 ? "IPv6" : "IPv4") +
                                         " in the PROXY v1 line");
  }
  if (!v1_port(fields[3], h.source_port) || !v1_port(fields[4], h.destination_port)) {
    return invalid("v1_bad_port", "a port that is not 0..65535 in the PROXY v1 line");
  }
  h.proxied = true;
  return complete(std::move(h));
}

uint16_t be16(const unsigned char* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

ProxyHeaderParse parse_v2(std::string_view buffer) {
  if (buffer.size() < kV2FixedBytes) return incomplete();
  const auto* b = reinterpret_cast<const unsigned char*>(buffer.data());
  const unsigned version = b[12] >> 4;
  const unsigned command = b[12] & 0x0F;
  if (version != 2) return invalid("v2_bad_version", "the PROXY v2 version nibble is not 2");
  if (command > 1) return invalid("v2_bad_command", "the PROXY v2 command is neither LOCAL nor PROXY");
  const size_t body = be16(b + 14);
  if (kV2FixedBytes + body > kProxyV2MaxBytes) {
    return invalid("v2_too_long", "a PROXY v2 header longer than " + std::to_string(kProxyV2MaxBytes) + " bytes");
  }
  if (buffer.size() < kV2FixedBytes + body) return incomplete();

  ProxyHeader h;
  h.version = 2;
  h.length = kV2FixedBytes + body;
  // LOCAL: the balancer speaking for itself (health checks); the address block is ignored.
  if (command == 0) return complete(std::move(h));

  const unsigned char family = b[13];
  const unsigned char* a = b + kV2FixedBytes;
  size_t address_bytes = 0;
  switch (family) {
    case 0x00:  // AF_UNSPEC: keep the connection's own endpoints
      return complete(std::move(h));
    case 0x11:  // TCP over IPv4
      address_bytes = 12;
      if (body < address_bytes) return invalid("v2_short_address", "a PROXY v2 TCP4 block shorter than 12 bytes");
      h.source_address = address_text(AF_INET, a);
      h.destination_address = address_text(AF_INET, a + 4);
      h.source_port = be16(a + 8);
      h.destination_port = be16(a + 10);
      break;
    case 0x21:  // TCP over IPv6
      address_bytes = 36;
      if (body < address_bytes) return invalid("v2_short_address", "a PROXY v2 TCP6 block shorter than 36 bytes");
      h.ipv6 = true;
      h.source_address = address_text(AF_INET6, a);
      h.destination_address = address_text(AF_INET6, a + 16);
      h.source_port = be16(a + 32);
      h.destination_port = be16(a + 34);
      break;
    default:
      // UDP and UNIX sockets (or anything else) cannot stand for a TCP client: refused rather
      // than read as "keep the balancer's address".
      return invalid("v2_unsupported_family", "PROXY v2 address family/protocol other than TCP4, TCP6 or UNSPEC");
  }
  // TLVs follow the addresses; they carry nothing we use, but their framing must hold.
  size_t pos = address_bytes;
  while (pos < body) {
    if (body - pos < 3) return invalid("v2_bad_tlv", "a truncated TLV in the PROXY v2 header");
    size_t len = be16(a + pos + 1);
    if (len > body - pos - 3) return invalid("v2_bad_tlv", "a TLV overruns the PROXY v2 header");
    pos += 3 + len;
  }
  h.proxied = true;
  return complete(std::move(h));
}

}  // namespace

std::string ProxyHeader::source_endpoint() const {
  std::string port = std::to_string(source_port);
  return ipv6 ? "[" + source_address + "]:" + port : source_address + ":" + port;
}

ProxyHeaderParse parse_proxy_header(std::string_view buffer) {
  if (buffer.empty()) return incomplete();
  const size_t v1n = std::min(buffer.size(), kV1Prefix.size());
  if (buffer.substr(0, v1n) == kV1Prefix.substr(0, v1n)) {
    return buffer.size() < kV1Prefix.size() ? incomplete() : parse_v1(buffer);
  }
  const size_t v2n = std::min(buffer.size(), sizeof kV2Signature);
  if (std::memcmp(buffer.data(), kV2Signature, v2n) == 0) {
    return buffer.size() < sizeof kV2Signature ? incomplete() : parse_v2(buffer);
  }
  return invalid("missing", "the connection does not begin with a PROXY protocol v1 or v2 header");
}

}  // namespace mg::http
