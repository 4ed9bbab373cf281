// Fuzzes the PROXY protocol v1/v2 header parser a gateway runs on every accepted connection
// before anything else. Invariants: no crash; a complete header's length is within the input
// and the spec's bounds; the same bytes cut at the header's end parse to the same header, and
// every shorter prefix is Incomplete (the caller never consumes part of a header or waits for
// bytes a valid header cannot need); a proxied v1 header rewritten from its fields parses back
// to the same endpoints; a refusal always says why.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/proxy_protocol.h"

using namespace mg::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  ProxyHeaderParse p = parse_proxy_header(input);
  if (p.state == ProxyHeaderParse::State::Invalid) {
    if (p.error.code.rfind("proxy_protocol.", 0) != 0 || p.error.message.empty()) std::abort();
    return 0;
  }
  if (p.state == ProxyHeaderParse::State::Incomplete) {
    if (size >= kProxyHeaderMaxBytes) std::abort();  // a bounded header is decided by then
    return 0;
  }
  const ProxyHeader& h = p.header;
  if (h.length == 0 || h.length > size) std::abort();
  if (h.version == 1 ? h.length > kProxyV1MaxBytes : h.length > kProxyV2MaxBytes) std::abort();
  if (h.proxied && h.source_address.empty()) std::abort();

  ProxyHeaderParse exact = parse_proxy_header(input.substr(0, h.length));
  if (exact.state != ProxyHeaderParse::State::Complete || exact.header.length != h.length ||
      exact.header.source_address != h.source_address || exact.header.source_port != h.source_port) {
    std::abort();
  }
  for (size_t n = 0; n < h.length; ++n) {
    if (parse_proxy_header(input.substr(0, n)).state != ProxyHeaderParse::State::Incomplete) std::abort();
  }
  if (h.version == 1 && h.proxied) {
    std::string line = std::string("PROXY ") + (h.ipv6 ? "TCP6 " : "TCP4 ") + h.source_address + " " +
                       h.destination_address + " " + std::to_string(h.source_port) + " " +
                       std::to_string(h.destination_port) + "\r\n";
    ProxyHeaderParse again = parse_proxy_header(line);
    if (again.state != ProxyHeaderParse::State::Complete || again.header.source_endpoint() != h.source_endpoint() ||
        again.header.destination_address != h.destination_address) {
      std::abort();
    }
  }
  return 0;
}
