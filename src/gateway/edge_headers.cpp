#include "gateway/edge_headers.h"

namespace mg::gateway {

std::string uuid_v4(const std::array<uint8_t, 16>& random) {
  std::array<uint8_t, 16> b = random;
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 0x0f];
  }
  return out;
}

void set_edge_headers(http::Headers& headers, std::string_view peer_ip, bool https,
                      const std::function<std::string()>& make_request_id) {
  // X-Forwarded-For: what the client (or the proxies before it) said, then the peer as seen
  // here, in one field (several fields are one comma-separated list: RFC 9110 §5.3).
  std::string xff;
  headers.for_each("x-forwarded-for", [&](std::string_view value) {
    if (value.empty()) return;
    if (!xff.empty()) xff += ", ";
    xff += value;
  });
  if (!peer_ip.empty()) {
    if (!xff.empty()) xff += ", ";
    xff += peer_ip;
  }
  headers.remove("x-forwarded-for");
  if (!xff.empty()) headers.add("x-forwarded-for", std::move(xff));
  headers.set("x-forwarded-proto", https ? "https" : "http");
  headers.remove("x-forwarded-client-cert");
  if (auto id = headers.get("x-request-id"); id && !id->empty()) return;
  if (std::string made = make_request_id(); !made.empty()) headers.set("x-request-id", std::move(made));
}

}  // namespace mg::gateway
