#include "http2/grpc.h"

namespace mg::http2 {

bool is_grpc_request(const http::Request& req) {
  auto ct = req.headers.get("content-type");
  if (!ct) return false;
  constexpr std::string_view kGrpc = "application/grpc";
  if (ct->size() < kGrpc.size() || !http::iequals(ct->substr(0, kGrpc.size()), kGrpc)) return false;
  if (ct->size() == kGrpc.size()) return true;
  char next = (*ct)[kGrpc.size()];
  return next == '+' || next == ';';
}

int grpc_status_for_http(int http_status) {
  switch (http_status) {
    case 200:
      return 0;  // OK
    case 400:
      return 13;  // INTERNAL
    case 401:
      return 16;  // UNAUTHENTICATED
    case 403:
      return 7;  // PERMISSION_DENIED
    case 404:
      return 12;  // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;  // UNAVAILABLE
    default:
      return 2;  // UNKNOWN
  }
}

std::string grpc_percent_encode(std::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (unsigned char c : message) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::optional<uint64_t> parse_grpc_timeout_ms(std::string_view value) {
  if (value.size() < 2 || value.size() > 9) return std::nullopt;
  uint64_t n = 0;
  for (char c : value.substr(0, value.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  auto up = [&](uint64_t per_ms) { return (n + per_ms - 1) / per_ms; };
  switch (value.back()) {
    case 'H': return n * 3'600'000;
    case 'M': return n * 60'000;
    case 'S': return n * 1'000;
    case 'm': return n;
    case 'u': return up(1'000);
    case 'n': return up(1'000'000);
    default: return std::nullopt;
  }
}

http::Response grpc_deny_response(int http_status, std::string_view why) {
  http::Response resp;
  resp.status = 200;
  resp.reason = "OK";
  resp.headers.add("content-type", "application/grpc");
  resp.headers.add("grpc-status", std::to_string(grpc_status_for_http(http_status)));
  resp.headers.add("grpc-message", grpc_percent_encode(why));
  return resp;
}

}  // namespace mg::http2
