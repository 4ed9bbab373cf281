// Test-only signing: generates keys with OpenSSL, exports their public JWK, and signs tokens,
// so every algorithm gets positive and negative vectors without fixed key material.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "crypto/openssl.h"
#include "jwt/jws.h"

namespace mg::jwt::testing {

struct TestKey {
  Alg alg;
  crypto::PKeyPtr priv;
  nlohmann::json jwk;  // public part only, with kid when given
};

// A fresh key for `alg` (RSA 2048 for RS*/PS*, the matching curve for ES*, Ed25519 for EdDSA).
TestKey make_key(Alg alg, const std::string& kid = "", int rsa_bits = 2048);

// JOSE signature bytes (r||s for ECDSA) over `input`, for `alg` (may differ from key.alg to
// build confusion attacks).
std::string sign_raw(const TestKey& key, Alg alg, std::string_view input);

// header.payload.signature; `header` gets "alg" (key.alg) and "kid" (the JWK's) unless present.
std::string sign_token(const TestKey& key, nlohmann::json header, const nlohmann::json& payload);

// {"keys":[...]} of the given public JWKs.
std::string jwks_of(std::initializer_list<const TestKey*> keys);

std::string b64(std::string_view s);

// Istio's sample key set and demo token as printed in the seeds (see tests for provenance).
extern const char* const kIstioJwks;
extern const char* const kIstioDemoToken;
extern const char* const kIstioDemoTokenBroken;

}  // namespace mg::jwt::testing
