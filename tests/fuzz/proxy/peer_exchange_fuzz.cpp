// Fuzzes the parsing of a peer proxy's TCP metadata exchange frame (proxy/peer_metadata.h): the
// 8-byte header (magic, length), then the body as an Any of a Struct.
// Invariants: no crash or unbounded work; a length is within the bound; a decoded workload has a
// name and a namespace and keeps to the bounds; its re-encoded frame parses to the same workload.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proxy/peer_metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mg::proxy;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.size() >= kPeerExchangeHeaderSize) {
    auto length = parse_exchange_header(input.substr(0, kPeerExchangeHeaderSize));
    if (length && (*length == 0 || *length > kMaxPeerExchangeBody)) std::abort();
  }
  // The body alone (the header's length may disagree: the parser must not care).
  std::string_view body =
      input.size() >= kPeerExchangeHeaderSize ? input.substr(kPeerExchangeHeaderSize) : input;
  auto w = decode_exchange_body(body);
  if (!w) return 0;
  if (w->name.empty() || w->ns.empty() || w->labels.size() > 64) std::abort();
  const std::string frame = encode_exchange_frame(*w);
  auto length = parse_exchange_header(std::string_view(frame).substr(0, kPeerExchangeHeaderSize));
  if (!length || *length != frame.size() - kPeerExchangeHeaderSize) std::abort();
  auto again = decode_exchange_body(std::string_view(frame).substr(kPeerExchangeHeaderSize));
  if (!again || again->name != w->name || again->ns != w->ns || again->labels != w->labels ||
      again->service_account != w->service_account)
    std::abort();
  (void)peer_labels_for(*w, "spiffe://cluster.local/ns/" + w->ns + "/sa/x");
  return 0;
}
