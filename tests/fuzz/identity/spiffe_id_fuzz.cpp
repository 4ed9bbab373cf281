// Fuzzes SPIFFE ID parsing and the Istio principal form: never crash, and every accepted ID must
// round-trip through its own string and satisfy the invariants the rest of meshguard relies on.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "identity/spiffe_id.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto id = mg::identity::SpiffeId::parse(input);
  if (id) {
    if (id->str() != input || id->str().size() > mg::identity::kMaxSpiffeIdBytes) std::abort();
    if (id->trust_domain().empty() || id->trust_domain().size() > mg::identity::kMaxTrustDomainBytes) std::abort();
    auto again = mg::identity::SpiffeId::parse(id->str());
    if (!again || !(*again == *id)) std::abort();
    if (id->istio_namespace().has_value() != id->istio_service_account().has_value()) std::abort();
    if (id->istio_namespace()) {
      auto p = mg::identity::SpiffeId::from_istio_principal(id->principal());
      if (!p || !(*p == *id)) std::abort();
    }
  } else if (id.error().code.rfind("spiffe.", 0) != 0) {
    std::abort();
  }
  auto principal = mg::identity::SpiffeId::from_istio_principal(input);
  if (principal && principal->principal() != input) std::abort();
  (void)mg::identity::validate_trust_domain(input);
  return 0;
}
