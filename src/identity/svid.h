// identity/svid.h — X.509-SVID verification (SPIFFE X.509-SVID spec, as Istio/meshguard use it).
//
// API:
//   verify_svid(chain, bundle, now) -> Result<SpiffeId, SvidError>
//       chain: leaf first, then any intermediates (as presented by a peer or read from cert-chain.pem);
//       bundle: the roots trusted for the expected trust domain; now: unix seconds (the clock is the
//       caller's, so tests and offline tools can verify "as of" any time).
//       Checks, in this order (the first failure is reported):
//         leaf: exactly one URI SAN, a valid SPIFFE ID; basicConstraints not CA; key usage present,
//         critical, with digitalSignature, without keyCertSign and cRLSign; notBefore <= now <= notAfter;
//         the ID's trust domain is the bundle's; then the whole chain verifies to a bundle root at `now`
//         (OpenSSL X509_STORE with X509_VERIFY_PARAM_set_time).
//   spiffe_id_of(cert) -> Result<SpiffeId, SvidError>   only the URI SAN rule (exactly one, valid).
//
// SvidError has a typed kind (switch on it) and a message; code() is a stable string for logs
// ("svid.no_uri_san", ...). to_error() converts to mg::Error for code paths that use Result<T>.
#pragma once

#include <ctime>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "crypto/openssl.h"
#include "identity/spiffe_id.h"
#include "identity/trust_bundle.h"

namespace mg::identity {

enum class SvidErrorKind {
  EmptyChain,           // svid.empty_chain
  Malformed,            // svid.malformed            certificate or extension does not decode
  NoUriSan,             // svid.no_uri_san
  MultipleUriSans,      // svid.multiple_uri_sans
  BadSpiffeId,          // svid.bad_spiffe_id         URI SAN is not a valid SPIFFE ID
  LeafIsCa,             // svid.leaf_is_ca
  NoKeyUsage,           // svid.no_key_usage
  KeyUsageNotCritical,  // svid.key_usage_not_critical
  NoDigitalSignature,   // svid.no_digital_signature
  HasCertSign,          // svid.has_cert_sign
  HasCrlSign,           // svid.has_crl_sign
  NotYetValid,          // svid.not_yet_valid         (leaf or any chain certificate)
  Expired,              // svid.expired               (leaf or any chain certificate)
  WrongTrustDomain,     // svid.wrong_trust_domain
  ChainInvalid,         // svid.chain_invalid         does not chain to a bundle root, bad signature, ...
};

std::string_view svid_error_code(SvidErrorKind kind);

struct SvidError {
  SvidErrorKind kind;
  std::string message;

  std::string_view code() const { return svid_error_code(kind); }
  std::string to_string() const { return std::string(code()) + ": " + message; }
  Error to_error() const { return Error{std::string(code()), message}; }
};

Result<SpiffeId, SvidError> spiffe_id_of(X509* cert);

Result<SpiffeId, SvidError> verify_svid(std::span<X509* const> chain, const TrustBundle& bundle, std::time_t now);
Result<SpiffeId, SvidError> verify_svid(const std::vector<crypto::X509Ptr>& chain, const TrustBundle& bundle,
                                        std::time_t now);

}  // namespace mg::identity
