// jwt/jwk.h — JWK / JWKS (RFC 7517, RFC 7518 §6) → OpenSSL public keys, and JWS signature
// verification (RFC 7518 §3) with them. Only public signature keys are ever accepted: private
// members, symmetric ("oct") keys and keys meant for encryption are refused.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "crypto/openssl.h"
#include "jwt/jws.h"

namespace mg::jwt {

// RSA keys shorter than this are refused (RFC 7518 §3.3 requires ≥ 2048); longer than the max
// are refused too, so a JWKS cannot make every verification arbitrarily slow.
inline constexpr int kMinRsaBits = 2048;
inline constexpr int kMaxRsaBits = 16384;
inline constexpr size_t kMaxJwksBytes = 1 << 20;
inline constexpr size_t kMaxJwksKeys = 256;

enum class Curve { None, P256, P384, P521, Ed25519 };

struct Jwk {
  KeyKind kind = KeyKind::Rsa;
  Curve curve = Curve::None;
  std::string kid;  // empty: the key has no kid
  std::string alg;  // empty: the key does not restrict its algorithm
  crypto::PKeyPtr key;
};

struct Jwks {
  std::vector<Jwk> keys;
  std::vector<std::string> skipped;  // "key #i: why" for each entry that was not usable
};

// One JWK object. Fails with a clear reason for anything that is not a usable public
// signature key.
Result<Jwk> parse_jwk(const nlohmann::json& obj);

// A JWK Set ({"keys": [...]}). Unusable entries are skipped (and listed in `skipped`), as
// real issuers publish encryption keys beside signing keys; a set with no usable key fails.
Result<Jwks> parse_jwks(std::string_view json_text);

// Whether `key` may be tried for a token signed with `alg` and carrying `token_kid` (empty:
// none). kty and curve must fit the alg; the key's own alg, if any, must equal it. kid as
// Envoy's jwt_authn: when both the token and the key have a kid they must be equal; a key
// without kid is tried for any token.
bool key_matches(const Jwk& key, Alg alg, std::string_view token_kid);

// Verifies `signature` over `signing_input` with one key. Returns Ok, VerificationFail, or
// SignatureWrongLength (ECDSA/EdDSA signatures of the wrong size, before any crypto).
// ECDSA signatures are JOSE r||s (RFC 7518 §3.4); r or s equal to 0 or ≥ the group order are
// refused before OpenSSL sees them.
JwtStatus verify_signature(Alg alg, const Jwk& key, std::string_view signing_input, std::string_view signature);

}  // namespace mg::jwt
