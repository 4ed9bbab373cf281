// identity/trust_bundle.h — the root certificates trusted for one trust domain.
//
// API:
//   TrustBundle::from_pem("cluster.local", pem) -> Result<TrustBundle>   (one or more roots)
//   bundle.add_root(cert)                        -> Status (must be a CA certificate; duplicates ignored)
//   bundle.to_pem()                              roots in order, PEM
//   bundle.trust_domain(), bundle.roots()
//   bundle.make_store()                          a fresh X509_STORE holding the roots (for verifiers)
//
// A bundle is a value: copying it shares the (immutable, reference-counted) certificates.
// During a CA root rotation a bundle holds the new and the old root(s) at the same time.
// Error codes: bundle.empty, bundle.not_ca, pem.* (from crypto), spiffe.* (bad trust domain).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "crypto/openssl.h"

namespace mg::identity {

class TrustBundle {
 public:
  static Result<TrustBundle> from_pem(std::string_view trust_domain, std::string_view pem);
  // An empty bundle (trusts nothing until a root is added).
  static Result<TrustBundle> empty(std::string_view trust_domain);

  TrustBundle(const TrustBundle& other);
  TrustBundle& operator=(const TrustBundle& other);
  TrustBundle(TrustBundle&&) noexcept = default;
  TrustBundle& operator=(TrustBundle&&) noexcept = default;

  Status add_root(X509* root);  // takes its own reference

  const std::string& trust_domain() const { return trust_domain_; }
  const std::vector<crypto::X509Ptr>& roots() const { return roots_; }
  std::string to_pem() const;
  Result<crypto::X509StorePtr> make_store() const;

 private:
  explicit TrustBundle(std::string trust_domain) : trust_domain_(std::move(trust_domain)) {}
  std::string trust_domain_;
  std::vector<crypto::X509Ptr> roots_;
};

// The bundles of federated trust domains (SPIFFE federation, docs/MESHES.md): each trust domain
// with its own roots, so a peer of trust domain B is verified with B's roots only. Text form (the
// proxy's federated-bundles.pem): for each trust domain a line "# trust domain: <td>" followed by
// its roots in PEM; "" is no federation. Errors: bundle.federated (a malformed text), spiffe.*.
std::string federated_bundles_to_text(const std::vector<TrustBundle>& bundles);
Result<std::vector<TrustBundle>> parse_federated_bundles(std::string_view text);
// The bundle of `trust_domain`: `own` when it is own's, else the federated one, else null.
const TrustBundle* bundle_for(std::string_view trust_domain, const TrustBundle& own,
                              const std::vector<TrustBundle>& federated);

}  // namespace mg::identity
