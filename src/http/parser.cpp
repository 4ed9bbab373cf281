#include "http/parser.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

namespace mg::http {

namespace {

Unexpected<ParseError> bad(int status, std::string reason) {
  return fail(ParseError{status, std::move(reason)});
}

bool is_vchar_or_obs(unsigned char c) { return (c >= 0x21 && c <= 0x7e) || c >= 0x80; }

// RFC 9110's tchar (is_token_char's set) as a table built at compile time: a header name is
// checked a byte at a time without a call per byte. The parser tests hold it to is_token_char for
// every byte value.
constexpr std::array<bool, 256> kTokenChar = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) {
    t[static_cast<size_t>(c)] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  }
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

bool token(std::string_view s) {
  for (unsigned char c : s) {
    if (!kTokenChar[c]) return false;
  }
  return true;
}

// A field value's bytes are HTAB, SP, VCHAR or obs-text (RFC 9110 §5.5): eight bytes at a time,
// a word passing when no byte is below 0x20 nor 0x7f (bytes ≥ 0x80 are obs-text); a word that
// does not pass (an HTAB, or a bad byte) is looked at byte by byte. Values are what a head is
// mostly made of (a peer's metadata header alone is hundreds of bytes).
bool field_value_ok(std::string_view v) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  auto has_zero = [](uint64_t w) { return (w - kOnes) & ~w & kHigh; };
  auto byte_ok = [](unsigned char c) { return c == '\t' || c == ' ' || is_vchar_or_obs(c); };
  size_t i = 0;
  for (; i + 8 <= v.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, v.data() + i, 8);
    if ((((w - kOnes * 0x20) & ~w & kHigh) | has_zero(w ^ (kOnes * 0x7f))) == 0) continue;
    for (size_t j = i; j < i + 8; ++j) {
      if (!byte_ok(static_cast<unsigned char>(v[j]))) return false;
    }
  }
  for (; i < v.size(); ++i) {
    if (!byte_ok(static_cast<unsigned char>(v[i]))) return false;
  }
  return true;
}

// Splits the head into lines (without CRLF). The scanner already refused bare LF; bare CR is
// refused here. The final empty line is not returned.
Result<std::vector<std::string_view>, ParseError> split_lines(std::string_view head) {
  std::vector<std::string_view> lines;
  lines.reserve(16);
  size_t pos = 0;
  while (pos < head.size()) {
    // The line ends at its first CR, which must be a CRLF's; an LF before it is a bare LF.
    const void* cr_at = std::memchr(head.data() + pos, '\r', head.size() - pos);
    if (cr_at == nullptr) return bad(400, "unterminated line");
    const size_t cr = static_cast<size_t>(static_cast<const char*>(cr_at) - head.data());
    if (cr + 1 >= head.size() || head[cr + 1] != '\n') {
      return bad(400, head.find("\r\n", cr + 1) == std::string_view::npos ? "unterminated line"
                                                                          : "bare CR or LF in head");
    }
    auto line = head.substr(pos, cr - pos);
    if (line.find('\n') != std::string_view::npos) return bad(400, "bare CR or LF in head");
    pos = cr + 2;
    if (line.empty()) break;  // end of head
    lines.push_back(line);
  }
  if (pos != head.size()) return bad(400, "bytes after the end of the head");
  return lines;
}

Result<Headers, ParseError> parse_fields(const std::vector<std::string_view>& lines, const Limits& limits) {
  Headers headers;
  if (lines.size() - 1 > limits.max_headers) return bad(431, "too many header fields");
  headers.reserve(lines.size() - 1 + 4);  // room for the few the proxy adds
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.front() == ' ' || line.front() == '\t') return bad(400, "obsolete line folding");
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return bad(400, "malformed header field");
    std::string_view name = line.substr(0, colon);
    if (!token(name)) return bad(400, "invalid character in header name");
    std::string_view value = trim_ows(line.substr(colon + 1));
    if (!field_value_ok(value)) return bad(400, "invalid character in header value");
    headers.add(std::string(name), std::string(value));
  }
  return headers;
}

// Content-Length: every value (across fields and comma lists) must be the same decimal number.
Result<std::optional<uint64_t>, ParseError> content_length_of(const Headers& headers) {
  std::optional<uint64_t> length;
  std::optional<ParseError> error;
  headers.for_each("content-length", [&](std::string_view value) {
    if (error) return;
    for_each_list_item(value, [&](std::string_view item) {
      if (item.empty() || item.size() > 18) {
        error = ParseError{400, "invalid Content-Length"};
        return false;
      }
      uint64_t n = 0;
      for (char c : item) {
        if (c < '0' || c > '9') {
          error = ParseError{400, "invalid Content-Length"};
          return false;
        }
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (length && *length != n) {
        error = ParseError{400, "conflicting Content-Length values"};
        return false;
      }
      length = n;
      return true;
    });
  });
  if (error) return fail(std::move(*error));
  return length;
}

// Transfer-Encoding: only exactly "chunked" is accepted (anything else is not implemented).
Result<bool, ParseError> chunked_of(const Headers& headers) {
  size_t codings = 0;
  bool any_empty = false, all_chunked = true;
  headers.for_each("transfer-encoding", [&](std::string_view value) {
    for_each_list_item(value, [&](std::string_view item) {
      ++codings;
      any_empty = any_empty || item.empty();
      all_chunked = all_chunked && iequals(item, "chunked");
      return true;
    });
  });
  if (codings == 0) return false;
  if (any_empty) return bad(400, "empty transfer coding");
  if (codings != 1) {
    return bad(all_chunked ? 400 : 501,
               all_chunked ? "chunked applied more than once" : "unsupported transfer coding");
  }
  if (!all_chunked) return bad(501, "unsupported transfer coding");
  return true;
}

void connection_options(const Headers& headers, bool& close, bool& keep_alive) {
  close = false;
  keep_alive = false;
  headers.for_each("connection", [&](std::string_view value) {
    for_each_list_item(value, [&](std::string_view item) {
      if (iequals(item, "close")) close = true;
      if (iequals(item, "keep-alive")) keep_alive = true;
      return true;
    });
  });
}

// "HTTP/1.1" → 1, "HTTP/1.0" → 0; other well-formed versions → 505; garbage → 400.
Result<int, ParseError> parse_version(std::string_view v) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.' || v[5] < '0' || v[5] > '9' || v[7] < '0' ||
      v[7] > '9') {
    return bad(400, "malformed HTTP version");
  }
  if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) return bad(505, "unsupported HTTP version");
  return v[7] - '0';
}

}  // namespace

bool valid_host(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  for (unsigned char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    switch (c) {
      case '-':
      case '.':
      case '_':
      case '~':
      case ':':
      case '[':
      case ']':
      case '%':
      case '!':
      case '$':
      case '&':
      case '\'':
      case '(':
      case ')':
      case '*':
      case '+':
      case ',':
      case ';':
      case '=':
        ok = true;
        break;
      default:
        break;
    }
    if (!ok) return false;
  }
  return true;
}

HeadScan HeadScanner::scan(std::string_view buffer, size_t max_head_bytes) {
  size_t limit = std::min(buffer.size(), max_head_bytes);
  // From one LF to the next (memchr): only they end lines.
  for (size_t i = scanned_; i < limit; ++i) {
    const void* lf = std::memchr(buffer.data() + i, '\n', limit - i);
    if (lf == nullptr) break;
    i = static_cast<size_t>(static_cast<const char*>(lf) - buffer.data());
    if (i == 0 || buffer[i - 1] != '\r') return {HeadScan::State::Malformed, 0};
    if (i >= 3 && buffer[i - 2] == '\n' && buffer[i - 3] == '\r') {
      scanned_ = i + 1;
      return {HeadScan::State::Complete, i + 1};
    }
  }
  scanned_ = limit;
  if (buffer.size() >= max_head_bytes) return {HeadScan::State::TooLarge, 0};
  return {HeadScan::State::Incomplete, 0};
}

Result<Request, ParseError> parse_request_head(std::string_view head, const Limits& limits) {
  if (head.size() > limits.max_head_bytes) return bad(431, "request head too large");
  auto lines = split_lines(head);
  if (!lines) return fail(lines.error());
  if (lines->empty()) return bad(400, "empty request");

  Request req;
  std::string_view line = (*lines)[0];
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return bad(400, "malformed request line");
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return bad(400, "malformed request line");
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (method.empty() || method.size() > 32) return bad(400, "malformed method");
  if (!token(method)) return bad(400, "malformed method");
  if (target.empty()) return bad(400, "empty request target");
  for (unsigned char c : target) {
    if (c < 0x21 || c > 0x7e) return bad(400, "invalid character in request target");
  }
  if (target.find('#') != std::string_view::npos) return bad(400, "fragment in request target");
  auto minor = parse_version(version);
  if (!minor) return fail(minor.error());
  if (method == "CONNECT") return bad(405, "CONNECT is not supported");

  req.method = std::string(method);
  req.target = std::string(target);
  req.version_minor = *minor;

  std::string_view path_and_query;
  std::optional<std::string_view> authority;
  if (target == "*") {
    if (method != "OPTIONS") return bad(400, "asterisk-form is only valid for OPTIONS");
    path_and_query = target;
  } else if (target.front() == '/') {
    path_and_query = target;
  } else {
    size_t scheme_end = target.find("://");
    std::string_view scheme = scheme_end == std::string_view::npos ? "" : target.substr(0, scheme_end);
    if (!iequals(scheme, "http") && !iequals(scheme, "https")) return bad(400, "malformed request target");
    std::string_view rest = target.substr(scheme_end + 3);
    size_t end = rest.find_first_of("/?");
    authority = rest.substr(0, end);
    if (authority->find('@') != std::string_view::npos || !valid_host(*authority)) {
      return bad(400, "malformed authority");
    }
    path_and_query = end == std::string_view::npos ? std::string_view("/") : rest.substr(end);
  }
  size_t q = path_and_query.find('?');
  std::string_view path = path_and_query.substr(0, q);
  // An absolute-form target like "http://h?x" has an empty path: it means "/".
  req.path.assign(path.empty() ? std::string_view("/") : path);
  if (q != std::string_view::npos) req.query.assign(path_and_query.substr(q + 1));

  auto headers = parse_fields(*lines, limits);
  if (!headers) return fail(headers.error());
  req.headers = std::move(*headers);

  size_t hosts = req.headers.count("host");
  if (hosts > 1) return bad(400, "multiple Host fields");
  if (hosts == 0 && req.version_minor == 1) return bad(400, "missing Host field");
  if (hosts == 1) {
    auto host = *req.headers.get("host");
    if (!valid_host(host)) return bad(400, "malformed Host field");
    req.host = std::string(host);
  }
  if (authority) {
    // RFC 9112 §3.2.2: the target's authority replaces any Host field, and the request goes on in
    // origin-form (as Envoy does), so the policy and the app see one and the same host.
    req.host = std::string(*authority);
    req.headers.set("host", req.host);
    req.target = q == std::string_view::npos ? req.path : req.path + "?" + req.query;
  }

  auto length = content_length_of(req.headers);
  if (!length) return fail(length.error());
  auto chunked = chunked_of(req.headers);
  if (!chunked) return fail(chunked.error());
  if (*chunked && length->has_value()) return bad(400, "both Content-Length and Transfer-Encoding");
  if (*chunked && req.version_minor == 0) return bad(400, "Transfer-Encoding in an HTTP/1.0 request");
  if (*chunked) {
    req.framing = BodyFraming::Chunked;
  } else if (length->has_value() && **length > 0) {
    req.framing = BodyFraming::ContentLength;
    req.content_length = **length;
  }

  bool close = false, keep_alive = false;
  connection_options(req.headers, close, keep_alive);
  req.keep_alive = req.version_minor == 1 ? !close : (keep_alive && !close);
  if (auto expect = req.headers.get("expect")) {
    if (!iequals(*expect, "100-continue")) return bad(417, "unsupported Expect");
    req.expect_continue = req.version_minor == 1;
  }
  return req;
}

Result<Response, ParseError> parse_response_head(std::string_view head, const Limits& limits,
                                                 std::string_view request_method) {
  if (head.size() > limits.max_head_bytes) return bad(502, "response head too large");
  auto lines = split_lines(head);
  if (!lines) return bad(502, lines.error().reason);
  if (lines->empty()) return bad(502, "empty response");
  std::string_view line = (*lines)[0];
  if (line.size() < 12 || line[8] != ' ' || (line.size() > 12 && line[12] != ' ')) {
    return bad(502, "malformed status line");
  }
  auto minor = parse_version(line.substr(0, 8));
  if (!minor) return bad(502, "unsupported upstream HTTP version");
  Response resp;
  resp.version_minor = *minor;
  resp.status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return bad(502, "malformed status code");
    resp.status = resp.status * 10 + (line[i] - '0');
  }
  if (resp.status < 100) return bad(502, "malformed status code");
  if (line.size() > 13) resp.reason = std::string(line.substr(13));
  for (unsigned char c : resp.reason) {
    if (!(c == '\t' || c == ' ' || is_vchar_or_obs(c))) return bad(502, "invalid reason phrase");
  }
  auto headers = parse_fields(*lines, limits);
  if (!headers) return bad(502, headers.error().reason);
  resp.headers = std::move(*headers);

  auto length = content_length_of(resp.headers);
  if (!length) return bad(502, length.error().reason);
  auto chunked = chunked_of(resp.headers);
  if (!chunked) return bad(502, chunked.error().reason);
  if (*chunked && length->has_value()) return bad(502, "both Content-Length and Transfer-Encoding");

  bool close = false, keep_alive = false;
  connection_options(resp.headers, close, keep_alive);
  resp.keep_alive = resp.version_minor == 1 ? !close : (keep_alive && !close);

  bool bodiless = (resp.status >= 100 && resp.status < 200) || resp.status == 204 || resp.status == 304 ||
                  request_method == "HEAD";
  if (bodiless) {
    resp.framing = BodyFraming::None;
  } else if (*chunked) {
    resp.framing = BodyFraming::Chunked;
  } else if (length->has_value()) {
    resp.framing = **length > 0 ? BodyFraming::ContentLength : BodyFraming::None;
    resp.content_length = **length;
  } else {
    resp.framing = BodyFraming::UntilClose;
    resp.keep_alive = false;
  }
  return resp;
}

}  // namespace mg::http
