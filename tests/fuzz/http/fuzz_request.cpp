// Fuzzes the proxy's request path: a byte stream split at an input-chosen point is scanned,
// heads are parsed and bodies decoded, request after request (pipelining), exactly as the
// proxy's connection loop does. Invariants: no crash, consumed bytes never exceed the input,
// a parsed request re-serializes to a head that parses to the same method/path/framing, and
// the proxy's hop-by-hop removal and upgrade detection keep their promises.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/body.h"
#include "http/parser.h"

using namespace mg::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t split = data[0];
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  Limits limits;
  limits.max_head_bytes = 2048;
  limits.max_headers = 20;

  std::string buffer;
  size_t fed = 0;
  auto feed_more = [&](size_t n) {
    n = std::min(n, input.size() - fed);
    buffer.append(input.substr(fed, n));
    fed += n;
    return n > 0;
  };
  feed_more(split + 1);

  for (int messages = 0; messages < 16; ++messages) {
    HeadScanner scanner;
    HeadScan scan;
    while (true) {
      scan = scanner.scan(buffer, limits.max_head_bytes);
      if (scan.state != HeadScan::State::Incomplete) break;
      if (!feed_more(split + 1)) return 0;
    }
    if (scan.state != HeadScan::State::Complete) return 0;
    if (scan.length > buffer.size()) std::abort();
    auto req = parse_request_head(std::string_view(buffer).substr(0, scan.length), limits);
    buffer.erase(0, scan.length);
    if (!req) {
      if (req.error().status < 400 || req.error().status > 505) std::abort();
      return 0;
    }
    if (req->path.empty()) std::abort();
    std::string again = serialize_request_head(*req);
    auto reparsed = parse_request_head(again, limits);
    if (!reparsed || reparsed->method != req->method || reparsed->path != req->path ||
        reparsed->framing != req->framing || reparsed->content_length != req->content_length) {
      std::abort();
    }
    // The proxy's header edits: hop-by-hop removal leaves no hop-by-hop field and keeps Host;
    // an upgrade protocol, when one is found, is the single Upgrade field's value.
    Headers edited = req->headers;
    if (auto upgrade = upgrade_protocol(edited);
        upgrade && edited.get("upgrade") != std::string_view(*upgrade)) {
      std::abort();
    }
    remove_hop_by_hop(edited);
    for (const char* name : {"connection", "keep-alive", "proxy-connection", "te", "trailer",
                             "transfer-encoding", "upgrade", "proxy-authenticate"}) {
      if (edited.contains(name)) std::abort();
    }
    if (req->headers.contains("host") && !edited.contains("host")) std::abort();
    BodyDecoder body(req->framing, req->content_length);
    std::string payload;
    while (!body.done()) {
      auto n = body.feed(buffer, payload);
      if (!n) return 0;
      if (*n > buffer.size()) std::abort();
      buffer.erase(0, *n);
      if (!body.done() && !feed_more(split + 1)) return 0;
    }
    if (req->framing == BodyFraming::ContentLength && payload.size() != req->content_length) std::abort();
  }
  return 0;
}
