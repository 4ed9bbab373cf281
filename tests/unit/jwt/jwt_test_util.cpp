#include "jwt_test_util.h"

#include <openssl/core_names.h>
#include <stdexcept>

#include "jwt/base64url.h"
#include "jwt/sign.h"

namespace mg::jwt::testing {

// Seed 001 (the intact copy of Istio's samples/jwks.json and demo.jwt).
const char* const kIstioJwks =
    R"JSON({ "keys":[ {"e":"AQAB","kid":"DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ","kty":"RSA","n":"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX-P7KfIupjf59vsdo91bSP9C8H07pSAGQO1MV_xFj9VswgsCg4R6otmg5PV2He95lZdHtOcU5DXIg_pbhLdKXbi66GlVeK6ABZOUW3WYtnNHD-91gVuoeJT_DwtGGcp4ignkgXfkiEm4sw-4sfb4qdt5oLbyVpmW6x9cfa7vs2WTfURiCrBoUqgBo_-4WTiULmmHSGZHOjzwa8WtrtOQGsAFjIbno85jp6MnGGGZPYZbDAa_b3y5u-YpW7ypZrvD8BgtKVjgtQgZhLAGezMt0ua3DRrWnKqTZ0BJ_EyxOGuHJrLsn00fnMQ"}]})JSON";
const char* const kIstioDemoToken =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IkRIRmJwb0lVcXJZOHQyenBBMnFYZkNtcjVWTzVaRXI0UnpIVV8tZW52dlEiLCJ0eXAiOiJKV1QifQ.eyJleHAiOjQ2ODU5ODk3MDAsImZvbyI6ImJhciIsImlhdCI6MTUzMjM4OTcwMCwiaXNzIjoidGVzdGluZ0BzZWN1cmUuaXN0aW8uaW8iLCJzdWIiOiJ0ZXN0aW5nQHNlY3VyZS5pc3Rpby5pbyJ9.CfNnxWP2tcnR9q0vxyxweaF3ovQYHYZl82hAUsn21bwQd9zP7c-LS9qd_vpdLG4Tn1A15NxfCjp5f7QNBUo-KC9PJqYpgGbaXhaGx7bEdFWjcwv3nZzvc7M__ZpaCERdwU7igUmJqYGBYQ51vr2njU9ZimyKkfDe3axcyiBZde7G6dabliUosJvvKOPcKIWPccCgefSj_GNfwIip3-SsFdlR7BtbVUcqR-yv-XOxJ3Uc1MI0tz3uMiiZcyPV7sNCU4KRnemRIMHVOfuvHsU60_GhGbiSFzgPTAa9WTltbnarTbxudb_YEOx12JiwYToeX0DCPb43W1tzIBxgm8NxUg";
// Seed 002's copy: one character lost from the signature.
const char* const kIstioDemoTokenBroken =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IkRIRmJwb0lVcXJZOHQyenBBMnFYZkNtcjVWTzVaRXI0UnpIVV8tZW52dlEiLCJ0eXAiOiJKV1QifQ.eyJleHAiOjQ2ODU5ODk3MDAsImZvbyI6ImJhciIsImlhdCI6MTUzMjM4OTcwMCwiaXNzIjoidGVzdGluZ0BzZWN1cmUuaXN0aW8uaW8iLCJzdWIiOiJ0ZXN0aW5nQHNlY3VyZS5pc3Rpby5pbyJ9.CfNnxWP2tcnR9q0vxyxweaF3ovQYHYZl82hAUsn21bwQd9zP7c-LS9qd_vpdLG4Tn1A15NxfCjp5f7QNBUo-KC9PJqYpgGbaXhaGx7bEdFWjcwv3nZzvc7M__ZpaCERdwU7igUmJqYGBYQ51vr2njU9ZimyKkfDe3axcyiBZde7G6dabliUosJvvKOPcKIWPccCgefSj_GNfwIip3-SsFdlR7BtbVUcqR-yv-XOxJ3UcMI0tz3uMiiZcyPV7sNCU4KRnemRIMHVOfuvHsU60_GhGbiSFzgPTAa9WTltbnarTbxudb_YEOx12JiwYToeX0DCPb43W1tzIBxgm8NxUg";

std::string b64(std::string_view s) { return base64url_encode(s); }

namespace {

std::string bn_bytes(EVP_PKEY* key, const char* param, int pad = 0) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &bn) != 1) throw std::runtime_error("get_bn_param");
  crypto::BignumPtr owner(bn);
  std::string out(pad > 0 ? static_cast<size_t>(pad) : static_cast<size_t>(BN_num_bytes(bn)), '\0');
  if (pad > 0) BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), pad);
  else BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

int coord_bytes(Alg alg) { return alg == Alg::ES256 ? 32 : alg == Alg::ES384 ? 48 : 66; }

}  // namespace

TestKey make_key(Alg alg, const std::string& kid, int rsa_bits) {
  TestKey k{alg, nullptr, {}};
  switch (key_kind_for(alg)) {
    case KeyKind::Rsa: {
      k.priv.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits)));
      k.jwk = {{"kty", "RSA"}, {"n", b64(bn_bytes(k.priv.get(), OSSL_PKEY_PARAM_RSA_N))},
               {"e", b64(bn_bytes(k.priv.get(), OSSL_PKEY_PARAM_RSA_E))}};
      break;
    }
    case KeyKind::Ec: {
      const char* curve = alg == Alg::ES256 ? "P-256" : alg == Alg::ES384 ? "P-384" : "P-521";
      k.priv.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
      int n = coord_bytes(alg);
      k.jwk = {{"kty", "EC"}, {"crv", curve}, {"x", b64(bn_bytes(k.priv.get(), OSSL_PKEY_PARAM_EC_PUB_X, n))},
               {"y", b64(bn_bytes(k.priv.get(), OSSL_PKEY_PARAM_EC_PUB_Y, n))}};
      break;
    }
    case KeyKind::Okp: {
      k.priv.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
      std::string raw(32, '\0');
      size_t len = raw.size();
      EVP_PKEY_get_raw_public_key(k.priv.get(), reinterpret_cast<unsigned char*>(raw.data()), &len);
      k.jwk = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", b64(raw)}};
      break;
    }
  }
  if (!k.priv) throw std::runtime_error("keygen failed");
  if (!kid.empty()) k.jwk["kid"] = kid;
  return k;
}

std::string sign_raw(const TestKey& key, Alg alg, std::string_view input) {
  auto sig = jwt::sign_raw(alg, key.priv.get(), input);
  if (!sig) throw std::runtime_error(sig.error().to_string());
  return *sig;
}

std::string sign_token(const TestKey& key, nlohmann::json header, const nlohmann::json& payload) {
  if (!header.contains("alg")) header["alg"] = std::string(alg_name(key.alg));
  if (!header.contains("kid") && key.jwk.contains("kid")) header["kid"] = key.jwk["kid"];
  std::string input = b64(header.dump()) + "." + b64(payload.dump());
  auto alg = parse_alg(header["alg"].is_string() ? header["alg"].get<std::string>() : "");
  return input + "." + b64(sign_raw(key, alg ? *alg : key.alg, input));
}

std::string jwks_of(std::initializer_list<const TestKey*> keys) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto* k : keys) arr.push_back(k->jwk);
  return nlohmann::json{{"keys", arr}}.dump();
}

}  // namespace mg::jwt::testing
