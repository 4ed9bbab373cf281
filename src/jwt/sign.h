// jwt/sign.h — JWS compact serialization on the signing side (RFC 7515 §7.1, RFC 7518 §3): the
// control plane mints its bootstrap tokens with it, and tests build their vectors with it. The
// verifying side is jws.h + jwk.h. Pure logic: the key is handed in, nothing is read or logged.
#pragma once

#include <openssl/evp.h>

#include <string>
#include <string_view>

#include "common/result.h"
#include "jwt/jws.h"

namespace mg::jwt {

// Whether `key` can sign (or verify) for `alg`: an RSA key for RS*/PS*, an EC key on the alg's
// curve for ES* (P-256 / P-384 / P-521), an Ed25519 key for EdDSA. Code "jwt.key_mismatch".
Status check_signing_key(Alg alg, EVP_PKEY* key);

// The JOSE signature bytes over `signing_input`: PKCS#1 v1.5 / PSS (salt = hash length) for RSA,
// r||s (each padded to the curve size) for ECDSA, the raw 64 bytes for Ed25519.
Result<std::string> sign_raw(Alg alg, EVP_PKEY* key, std::string_view signing_input);

// base64url(header_json) "." base64url(payload_json) "." base64url(signature). The texts are
// encoded as given (the caller decides what the header says, so tests can build mismatches).
Result<std::string> sign_compact(Alg alg, EVP_PKEY* key, std::string_view header_json,
                                 std::string_view payload_json);

}  // namespace mg::jwt
