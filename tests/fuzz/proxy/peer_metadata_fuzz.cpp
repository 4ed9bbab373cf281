// Fuzzes the decoding of a peer's x-envoy-peer-metadata (base64 of a google.protobuf.Struct).
// Invariants: no crash or unbounded work; a decoded workload has a name and a namespace and keeps
// to the bounds; re-encoding it decodes to the same workload.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proxy/peer_metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view header(reinterpret_cast<const char*>(data), size);
  auto w = mg::proxy::decode_peer_metadata(header);
  if (!w) return 0;
  if (w->name.empty() || w->ns.empty() || w->labels.size() > 64) std::abort();
  auto again = mg::proxy::decode_peer_metadata(mg::proxy::encode_peer_metadata(*w));
  if (!again || again->name != w->name || again->ns != w->ns || again->labels != w->labels ||
      again->service_account != w->service_account)
    std::abort();
  (void)mg::proxy::peer_labels_for(header, "spiffe://cluster.local/ns/" + w->ns + "/sa/x");
  return 0;
}
