// ca/authority.h — meshguard's certificate authority: a self-signed root or an operator's plugged-in
// CA (Istio "cacerts" layout), CSR signing into X.509-SVIDs, and root rotation.
//
// Files (Istio's cacerts shape) in a CA directory:
//   root-cert.pem   the trust bundle: every root trusted for the trust domain, newest first
//                   (after `rotate`, the new root and the old root(s) until they expire)
//   ca-cert.pem     the signing certificate (self-signed mode: the root itself)
//   ca-key.pem      its private key, mode 0600; refused at load time if group/others can read it
//   cert-chain.pem  ca-cert first, then intermediates (plug-in: up to and usually including the root;
//                   self-signed mode: just the CA certificate). Every issued leaf is served as
//                   leaf + cert-chain.pem.
//   trust-domain    one line: the trust domain (written by meshguard; when absent, the trust domain
//                   is read from a spiffe://<td> URI SAN on ca-cert.pem)
//
// API:
//   Authority::create_self_signed(td, key_type, now)       a new root (ECDSA P-256 by default)
//   Authority::from_pem(td, CaPem, now)                    validate operator material (plug-in):
//       ca-key matches ca-cert, ca-cert is a CA, cert-chain starts with ca-cert, ca-cert chains to
//       a root in root-cert.pem at `now`, keys are strong enough (RSA >= 2048, EC P-256/P-384).
//   Authority::load_dir(dir, now) / load_plug_in_dir(dir, td, now)   read + check 0600 + validate
//   authority.save_dir(dir)                                 write the files (each atomically; key 0600)
//   authority.sign_csr(csr, id, ttl, now) -> IssuedSvid     the CA decides `id` (the identity the
//       caller is authorized for); the CSR contributes only its public key, and its signature must
//       verify. Leaf: exactly one URI SAN (critical; empty subject), CA:FALSE, KU critical
//       digitalSignature (+keyEncipherment for RSA keys), EKU serverAuth+clientAuth, random
//       positive 128-bit serial, SKI/AKI, notBefore = now - 5 min, notAfter = now + min(ttl,
//       max_ttl), never past the CA chain's own notAfter.
//   authority.rotate(now) -> Authority                       new root (same key type); the bundle
//       holds new + unexpired old roots; new leaves chain to the new root. Self-signed CAs only.
//
// Threads: an Authority is immutable after construction (except set_max_ttl); sign_csr may be
// called from several threads at once.
// Error codes: ca.* (CA material and policy), csr.* (the request), spiffe.* (an invalid ID).
// Private key bytes never appear in an error message.
#pragma once

#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "crypto/openssl.h"
#include "identity/spiffe_id.h"
#include "identity/trust_bundle.h"

namespace mg::ca {

inline constexpr const char* kRootCertFile = "root-cert.pem";
inline constexpr const char* kCaCertFile = "ca-cert.pem";
inline constexpr const char* kCaKeyFile = "ca-key.pem";
inline constexpr const char* kCertChainFile = "cert-chain.pem";
inline constexpr const char* kTrustDomainFile = "trust-domain";

inline constexpr std::chrono::seconds kDefaultLeafTtl = std::chrono::hours(24);
inline constexpr std::chrono::seconds kDefaultMaxLeafTtl = std::chrono::hours(24 * 90);
inline constexpr std::chrono::seconds kDefaultRootValidity = std::chrono::hours(24 * 365 * 10);
inline constexpr std::chrono::seconds kClockSkewBackdate = std::chrono::minutes(5);

// The four cacerts files as PEM text.
struct CaPem {
  std::string root_cert;
  std::string ca_cert;
  std::string ca_key;
  std::string cert_chain;
};

// An issued certificate as bytes. (No X509 object on purpose: OpenSSL 3.0 decodes public keys
// through its slow decoder framework, ~5x the cost of the signature; whoever needs an X509 —
// a TLS context, a test — parses cert_pem/cert_der, which yields a complete object.)
struct IssuedSvid {
  std::string cert_der;   // the leaf, DER
  std::string cert_pem;   // the leaf, PEM
  std::string chain_pem;  // leaf first, then the CA's cert-chain.pem
};

class Authority {
 public:
  static Result<Authority> create_self_signed(std::string_view trust_domain, crypto::KeyType key_type,
                                              std::time_t now,
                                              std::chrono::seconds validity = kDefaultRootValidity);
  static Result<Authority> from_pem(std::string_view trust_domain, const CaPem& pem, std::time_t now);
  static Result<Authority> load_dir(const std::string& dir, std::time_t now);
  static Result<Authority> load_plug_in_dir(const std::string& cacerts_dir, std::string_view trust_domain,
                                            std::time_t now);

  Authority(Authority&&) noexcept;
  Authority& operator=(Authority&&) noexcept;
  ~Authority();

  CaPem to_pem() const;
  Status save_dir(const std::string& dir) const;

  // `dns_names`: extra DNS SANs (the control plane's serving certificate, so gRPC clients can
  // check a host name); workload SVIDs never get any.
  Result<IssuedSvid> sign_csr(X509_REQ* csr, const identity::SpiffeId& id, std::chrono::seconds ttl,
                              std::time_t now, const std::vector<std::string>& dns_names = {}) const;
  Result<IssuedSvid> sign_csr_pem(std::string_view csr_pem, std::string_view spiffe_id, std::chrono::seconds ttl,
                                  std::time_t now) const;

  Result<Authority> rotate(std::time_t now, std::chrono::seconds validity = kDefaultRootValidity) const;

  const std::string& trust_domain() const;
  const identity::TrustBundle& bundle() const;
  X509* ca_cert() const;
  std::time_t ca_not_after() const;  // the earliest notAfter in the CA chain: no leaf outlives it
  bool is_self_signed() const;
  void set_max_ttl(std::chrono::seconds max_ttl);

  struct State;

 private:
  explicit Authority(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

// Key-strength policy shared by CSR keys and CA keys: RSA 2048..8192 bits, EC P-256 or P-384.
Status check_key_strength(EVP_PKEY* key, std::string_view code_prefix);

// "90s", "30m", "1h", "2h30m", "7d" -> seconds (positive); error "duration.invalid" otherwise.
Result<std::chrono::seconds> parse_duration(std::string_view text);

}  // namespace mg::ca
