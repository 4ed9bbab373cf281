// Fuzzes PEM certificate-chain and CSR loading and what the CA and verifier do with the result:
// an attacker controls both a peer's certificate chain and a CSR sent to the control plane.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ca/authority.h"
#include "identity/svid.h"

namespace {
constexpr std::time_t kNow = 1'800'000'000;

const mg::ca::Authority& authority() {
  static auto* ca = [] {
    auto created = mg::ca::Authority::create_self_signed("cluster.local", mg::crypto::KeyType::EcP256, kNow);
    if (!created) std::abort();
    return new mg::ca::Authority(std::move(*created));
  }();
  return *ca;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto& ca = authority();

  auto chain = mg::crypto::parse_cert_chain_pem(input);
  if (chain) {
    (void)mg::identity::spiffe_id_of(chain->front().get());
    (void)mg::identity::verify_svid(*chain, ca.bundle(), kNow);
    auto bundle = mg::identity::TrustBundle::from_pem("cluster.local", input);
    if (bundle) (void)mg::identity::verify_svid(*chain, *bundle, kNow);
  }

  auto csr = mg::crypto::parse_csr_pem(input);
  if (csr) {
    auto id = mg::identity::SpiffeId::parse("spiffe://cluster.local/ns/fuzz/sa/fuzz");
    auto svid = ca.sign_csr(csr->get(), *id, std::chrono::hours(1), kNow);
    // Anything the CA signs must pass the verifier it ships with.
    if (svid) {
      auto issued = mg::crypto::parse_cert_chain_pem(svid->chain_pem);
      if (!issued || !mg::identity::verify_svid(*issued, ca.bundle(), kNow)) std::abort();
    }
  }
  return 0;
}
