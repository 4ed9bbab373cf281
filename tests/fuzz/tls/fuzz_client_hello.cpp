// Fuzzes the ClientHello reader a client proxy (TLS by SNI) and an egress gateway (TLS
// passthrough) run on bytes an app sent. Invariants: no crash; Incomplete only below the bound;
// a complete ClientHello's length is within the input and the bound, the same bytes cut at its
// end parse to the same name, every shorter prefix is Incomplete (the caller never routes on part
// of a ClientHello, nor waits for bytes a valid one cannot need); a name is a lower-case DNS name;
// a refusal always says why.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tls/client_hello.h"

using namespace mg::tls;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  ClientHelloParse p = parse_client_hello(input);
  if (p.state == ClientHelloParse::State::Invalid) {
    if (p.error.code.rfind("tls.client_hello.", 0) != 0 || p.error.message.empty()) std::abort();
    return 0;
  }
  if (p.state == ClientHelloParse::State::Incomplete) {
    if (size >= kClientHelloMaxBytes) std::abort();
    return 0;
  }
  if (p.length == 0 || p.length > size || p.length > kClientHelloMaxBytes) std::abort();
  if (p.sni.size() > 253) std::abort();
  for (char c : p.sni) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) std::abort();
  }
  ClientHelloParse exact = parse_client_hello(input.substr(0, p.length));
  if (exact.state != ClientHelloParse::State::Complete || exact.sni != p.sni || exact.length != p.length)
    std::abort();
  for (size_t n = 0; n < p.length; ++n) {
    if (parse_client_hello(input.substr(0, n)).state != ClientHelloParse::State::Incomplete) std::abort();
  }
  return 0;
}
