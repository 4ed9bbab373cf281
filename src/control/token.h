// control/token.h — bootstrap tokens: the short-lived JWT a proxy presents on its first CSR,
// binding it to one namespace + service account. Signed ES256 with the control plane's P-256
// key; verified with the same JWS code that verifies RequestAuthentication tokens (src/jwt), so
// there is one JOSE implementation. Pure logic: keys and the clock are handed in.
//
// Claims: iss = the control plane's issuer, aud "meshguard-bootstrap", sub "ns/<ns>/sa/<sa>",
// iat, nbf (= iat), exp, jti, and "mesh" for a mesh other than the default. Verification error codes (stable,
// for logs and tests):
//   token.malformed       not a well-formed JWS / JWT, or a required claim missing or mistyped
//   token.bad_algorithm   alg is not ES256 (none, HS256, RS256 ... are all refused)
//   token.bad_key         the verification key is not an EC P-256 key
//   token.bad_signature   the signature does not verify with the key
//   token.wrong_issuer    iss is not ours
//   token.wrong_audience  aud does not contain "meshguard-bootstrap"
//   token.expired         now > exp + 60 s
//   token.not_yet_valid   now + 60 s < nbf (or iat)
//   token.bad_subject     sub is not ns/<ns>/sa/<sa> with names valid in a SPIFFE ID
// Minting errors: token.bad_claims (empty/invalid names, times), token.sign_failed.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "jwt/jwk.h"

namespace mg::control {

inline constexpr std::string_view kBootstrapAudience = "meshguard-bootstrap";

struct BootstrapClaims {
  std::string ns, service_account, id;
  int64_t issued_at = 0, expires_at = 0;
  std::string mesh = {};  // claim "mesh": the mesh the workload joins (docs/MESHES.md); empty = default
};

// ES256 with the control plane's P-256 key; iss = issuer, aud "meshguard-bootstrap", sub
// "ns/<ns>/sa/<sa>", iat, nbf, exp, jti = id (random if empty).
Result<std::string> mint_bootstrap_token(EVP_PKEY* key, std::string_view issuer, const BootstrapClaims& c);

// Verifies signature (with the existing src/jwt verification code, alg must be ES256), iss, aud,
// exp/nbf with 60 s skew, sub shape; returns the claims.
Result<BootstrapClaims> verify_bootstrap_token(std::string_view token, EVP_PKEY* public_key,
                                               std::string_view issuer, int64_t now);

// Kubernetes service-account tokens (optional second way to bootstrap): a projected token from a
// configured issuer, verified with that issuer's JWKS (RS256/ES256/... — every asymmetric JOSE
// alg the JWT code accepts), iss exact, aud containing `audience`, exp/nbf with 60 s skew, and
// sub "system:serviceaccount:<ns>:<sa>". Same error codes as bootstrap tokens.
struct ServiceAccountIssuer {
  std::string issuer;
  std::string audience = "meshguard";
  std::shared_ptr<const jwt::Jwks> keys;
};
Result<BootstrapClaims> verify_service_account_token(std::string_view token, const ServiceAccountIssuer& issuer,
                                                     int64_t now);

}  // namespace mg::control
