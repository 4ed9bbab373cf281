// Fuzzes what the proxy reads from upstreams (the app, or another proxy): response heads for
// each request method, then the body in the framing the head implies, fed in input-chosen
// pieces. Invariants: no crash; consumed bytes never exceed what was fed; a Content-Length body
// decodes to exactly that many bytes; bodiless statuses are never given a body.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/body.h"
#include "http/parser.h"

using namespace mg::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const char* const kMethods[] = {"GET", "HEAD", "POST", "OPTIONS"};
  std::string_view method = kMethods[data[0] % 4];
  size_t step = static_cast<size_t>(data[1]) + 1;
  std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);
  Limits limits;
  limits.max_head_bytes = 2048;
  limits.max_headers = 20;

  HeadScanner scanner;
  auto scan = scanner.scan(input, limits.max_head_bytes);
  if (scan.state != HeadScan::State::Complete) return 0;
  if (scan.length > input.size()) std::abort();
  auto resp = parse_response_head(input.substr(0, scan.length), limits, method);
  if (!resp) {
    if (resp.error().status != 502) std::abort();
    return 0;
  }
  if (resp->status < 100 || resp->status > 999) std::abort();
  bool bodiless = resp->status < 200 || resp->status == 204 || resp->status == 304 || method == "HEAD";
  if (bodiless && resp->framing != BodyFraming::None) std::abort();
  if (resp->framing == BodyFraming::UntilClose && resp->keep_alive) std::abort();

  std::string_view rest = input.substr(scan.length);
  BodyDecoder body(resp->framing, resp->content_length);
  std::string payload;
  size_t pos = 0;
  while (!body.done() && pos < rest.size()) {
    auto piece = rest.substr(pos, step);
    auto n = body.feed(piece, payload);
    if (!n) return 0;
    if (*n > piece.size()) std::abort();
    pos += *n;
    if (*n < piece.size() && !body.done()) std::abort();  // stops early only at the end of the body
  }
  if (!body.done()) body.accept_eof();
  if (body.done() && resp->framing == BodyFraming::ContentLength && payload.size() != resp->content_length) std::abort();
  return 0;
}
