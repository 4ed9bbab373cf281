#include "http/message.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace mg::http {

namespace {
unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

// Eight bytes with every ASCII capital made small (other bytes, non-ASCII included, unchanged).
uint64_t lower8(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  const uint64_t low7 = w & ~kHigh;                       // no carry between bytes below
  const uint64_t from_a = low7 + kOnes * (0x80 - 'A');     // high bit: byte >= 'A'
  const uint64_t past_z = low7 + kOnes * (0x80 - 'Z' - 1);  // high bit: byte > 'Z'
  const uint64_t capital = from_a & ~past_z & ~w & kHigh;
  return w | (capital >> 2);  // 0x80 >> 2 = 0x20, the case bit
}
}  // namespace

namespace detail {
bool iequals_same_size(const char* a, const char* b, size_t n) {
  // Header names: eight bytes at a time, the rest one by one.
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    if (x != y && lower8(x) != lower8(y)) return false;
  }
  for (; i < n; ++i) {
    if (lower(static_cast<unsigned char>(a[i])) != lower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}
}  // namespace detail

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(lower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<std::string_view> Headers::get(std::string_view name) const {
  for (const auto& h : fields_) {
    if (iequals(h.name, name)) return std::string_view(h.value);
  }
  return std::nullopt;
}

std::vector<std::string_view> Headers::get_all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& h : fields_) {
    if (iequals(h.name, name)) out.emplace_back(h.value);
  }
  return out;
}

size_t Headers::count(std::string_view name) const {
  return static_cast<size_t>(
      std::count_if(fields_.begin(), fields_.end(), [&](const Header& h) { return iequals(h.name, name); }));
}

Header* Headers::find(std::string_view name) {
  auto it =
      std::find_if(fields_.begin(), fields_.end(), [&](const Header& h) { return iequals(h.name, name); });
  return it != fields_.end() ? &*it : nullptr;
}

void Headers::add(std::string name, std::string value) {
  fields_.push_back({std::move(name), std::move(value)});
}

void Headers::set(std::string name, std::string value) {
  remove(name);
  add(std::move(name), std::move(value));
}

size_t Headers::remove(std::string_view name) {
  auto it =
      std::remove_if(fields_.begin(), fields_.end(), [&](const Header& h) { return iequals(h.name, name); });
  size_t n = static_cast<size_t>(fields_.end() - it);
  fields_.erase(it, fields_.end());
  return n;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 418:
      return "I'm a teapot";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

namespace {
void append_headers(std::string& out, const Headers& headers) {
  for (const auto& h : headers) {
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  out += "\r\n";
}
}  // namespace

std::string serialize_request_head(const Request& req) {
  std::string out;
  out.reserve(128 + req.target.size() + req.headers.size() * 32);
  out += req.method;
  out += ' ';
  out += req.target;
  out += req.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
  append_headers(out, req.headers);
  return out;
}

std::string serialize_response_head(const Response& resp) {
  std::string out;
  out.reserve(128 + resp.headers.size() * 32);
  out += resp.version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(resp.status);
  out += ' ';
  out += resp.reason.empty() ? std::string(reason_phrase(resp.status)) : resp.reason;
  out += "\r\n";
  append_headers(out, resp.headers);
  return out;
}

std::string make_response(int status, std::string_view content_type, std::string_view body, bool keep_alive,
                          const std::vector<Header>& extra) {
  Response resp;
  resp.status = status;
  if (!content_type.empty()) resp.headers.add("content-type", std::string(content_type));
  resp.headers.add("content-length", std::to_string(body.size()));
  for (const auto& h : extra) resp.headers.add(h.name, h.value);
  if (!keep_alive) resp.headers.add("connection", "close");
  std::string out = serialize_response_head(resp);
  out += body;
  return out;
}

bool is_token_char(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool wants_trailers(const Headers& headers) {
  bool found = false;
  headers.for_each("te", [&](std::string_view v) {
    for_each_list_item(v, [&](std::string_view item) {
      if (iequals(item, "trailers")) found = true;
      return true;
    });
  });
  return found;
}

HopByHop::HopByHop(const Headers& headers) {
  headers.for_each("connection", [&](std::string_view value) {
    for_each_list_item(value, [&](std::string_view item) {
      // Host and the framing fields are the proxy's to decide, never the client's to strip.
      if (!item.empty() && !iequals(item, "host") && !iequals(item, "content-length")) {
        listed_.emplace_back(item);
      }
      return true;
    });
  });
}

bool HopByHop::operator()(std::string_view name) const {
  switch (name.size()) {  // the fixed hop-by-hop names, by length first
    case 2:
      if (iequals(name, "te")) return true;
      break;
    case 7:
      if (iequals(name, "trailer") || iequals(name, "upgrade")) return true;
      break;
    case 10:
      if (iequals(name, "connection") || iequals(name, "keep-alive")) return true;
      break;
    case 16:
      if (iequals(name, "proxy-connection")) return true;
      break;
    case 17:
      if (iequals(name, "transfer-encoding")) return true;
      break;
    case 18:
      if (iequals(name, "proxy-authenticate")) return true;
      break;
    default:
      break;
  }
  for (const auto& l : listed_) {
    if (iequals(name, l)) return true;
  }
  return false;
}

void remove_hop_by_hop(Headers& headers) {
  const HopByHop hop(headers);
  headers.remove_if([&](std::string_view name) { return hop(name); });
}

std::optional<std::string> upgrade_protocol(const Headers& headers) {
  bool listed = false;
  headers.for_each("connection", [&](std::string_view value) {
    for_each_list_item(value, [&](std::string_view item) {
      listed = listed || iequals(item, "upgrade");
      return !listed;
    });
  });
  if (!listed || headers.count("upgrade") != 1) return std::nullopt;
  auto value = headers.get("upgrade");
  if (!value || value->empty()) return std::nullopt;
  return std::string(*value);
}

}  // namespace mg::http
