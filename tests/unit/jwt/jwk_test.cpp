#include "jwt/jwk.h"

#include <gtest/gtest.h>

#include "jwt/base64url.h"
#include "jwt_test_util.h"

namespace mg::jwt {
namespace {

using testing::make_key;
using testing::sign_raw;

// RFC 7515 Appendix A.2 (RS256) and A.3 (ES256): the published public keys and compact
// serializations. Both payloads carry exp 1300819380 (2011), so only the signature is checked.
const char* const kA2Jwk = R"({"kty":"RSA",
  "n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
  "e":"AQAB"})";
const char* const kA2Token =
    "eyJhbGciOiJSUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZ"
    "cAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOk"
    "HWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
const char* const kA3Jwk = R"({"kty":"EC","crv":"P-256",
  "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})";
const char* const kA3Token =
    "eyJhbGciOiJFUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

Jwk jwk_from(const char* text) {
  auto key = parse_jwk(nlohmann::json::parse(text));
  EXPECT_TRUE(key) << key.error().to_string();
  return std::move(*key);
}

JwtStatus verify_compact(const std::string& token, const Jwk& key) {
  Jwt jwt;
  JwtStatus st = parse_jwt(token, jwt);
  if (st != JwtStatus::Ok) return st;
  return verify_signature(jwt.alg, key, jwt.signing_input, jwt.signature);
}

TEST(JwtRfc7515, A2Rs256Verifies) {
  Jwk key = jwk_from(kA2Jwk);
  EXPECT_EQ(verify_compact(kA2Token, key), JwtStatus::Ok);
  Jwt jwt;
  ASSERT_EQ(parse_jwt(kA2Token, jwt), JwtStatus::Ok);
  EXPECT_EQ(jwt.iss, "joe");
  EXPECT_EQ(*jwt.exp, 1300819380);
  EXPECT_EQ(jwt.payload["http://example.com/is_root"], true);
  EXPECT_EQ(check_time(jwt, 1700000000), JwtStatus::Expired);
}

TEST(JwtRfc7515, A2TamperedPayloadFails) {
  std::string t = kA2Token;
  size_t d1 = t.find('.'), d2 = t.rfind('.');
  std::string payload = base64url_encode(R"({"iss":"joe","exp":1300819380,"http://example.com/is_root":false})");
  std::string forged = t.substr(0, d1 + 1) + payload + t.substr(d2);
  EXPECT_EQ(verify_compact(forged, jwk_from(kA2Jwk)), JwtStatus::VerificationFail);
}

TEST(JwtRfc7515, A3Es256Verifies) {
  Jwk key = jwk_from(kA3Jwk);
  EXPECT_EQ(key.curve, Curve::P256);
  EXPECT_EQ(verify_compact(kA3Token, key), JwtStatus::Ok);
}

TEST(JwtRfc7515, A3WithFlippedSignatureBitFails) {
  std::string t = kA3Token;
  t[t.size() - 5] = t[t.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(verify_compact(t, jwk_from(kA3Jwk)), JwtStatus::VerificationFail);
}

TEST(JwtJwk, A3PointOffTheCurveRefused) {
  auto j = nlohmann::json::parse(kA3Jwk);
  j["y"] = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5aw";  // last bit changed: not on P-256
  auto key = parse_jwk(j);
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code, "jwk.ec_not_on_curve");
}

TEST(JwtJwk, EcCoordinateLengthChecked) {
  auto j = nlohmann::json::parse(kA3Jwk);
  j["x"] = base64url_encode(std::string(31, '\x01'));
  EXPECT_EQ(parse_jwk(j).error().code, "jwk.ec_bad_coordinate");
  j = nlohmann::json::parse(kA3Jwk);
  j["crv"] = "P-384";
  EXPECT_EQ(parse_jwk(j).error().code, "jwk.ec_bad_coordinate");
  j["crv"] = "secp256k1";
  EXPECT_EQ(parse_jwk(j).error().code, "jwk.unsupported_curve");
}

TEST(JwtJwk, PrivateMembersRefused) {
  for (const char* member : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
    auto j = nlohmann::json::parse(kA2Jwk);
    j[member] = "AQAB";
    auto key = parse_jwk(j);
    ASSERT_FALSE(key) << member;
    EXPECT_EQ(key.error().code, "jwk.private_material");
  }
}

TEST(JwtJwk, SmallRsaKeysRefused) {
  auto small = testing::make_key(Alg::RS256, "", 1024);
  auto key = parse_jwk(small.jwk);
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code, "jwk.rsa_too_small");
}

TEST(JwtJwk, RsaExponentChecked) {
  auto j = nlohmann::json::parse(kA2Jwk);
  j["e"] = "AQ";  // 1
  EXPECT_EQ(parse_jwk(j).error().code, "jwk.rsa_bad_exponent");
  j["e"] = "Ag";  // 2 (even)
  EXPECT_EQ(parse_jwk(j).error().code, "jwk.rsa_bad_exponent");
  j["e"] = "AQAB=";
  EXPECT_EQ(parse_jwk(j).error().code, "jwk.bad_base64url");
}

TEST(JwtJwk, UseKeyOpsAndAlgRestrictions) {
  auto j = nlohmann::json::parse(kA2Jwk);
  j["use"] = "enc";
  EXPECT_EQ(parse_jwk(j).error().code, "jwk.not_signature_key");
  j["use"] = "sig";
  EXPECT_TRUE(parse_jwk(j));
  j["key_ops"] = {"encrypt"};
  EXPECT_EQ(parse_jwk(j).error().code, "jwk.not_signature_key");
  j["key_ops"] = {"verify"};
  EXPECT_TRUE(parse_jwk(j));
  j["alg"] = "RSA-OAEP";
  EXPECT_EQ(parse_jwk(j).error().code, "jwk.unsupported_alg");
  j["alg"] = "ES256";
  EXPECT_EQ(parse_jwk(j).error().code, "jwk.alg_kty_mismatch");
  j["alg"] = "PS384";
  EXPECT_TRUE(parse_jwk(j));
}

TEST(JwtJwk, OkpOnlyEd25519) {
  auto ed = make_key(Alg::EdDSA);
  EXPECT_TRUE(parse_jwk(ed.jwk));
  auto j = ed.jwk;
  j["crv"] = "Ed448";
  EXPECT_EQ(parse_jwk(j).error().code, "jwk.unsupported_curve");
  j["crv"] = "X25519";
  EXPECT_EQ(parse_jwk(j).error().code, "jwk.unsupported_curve");
  j = ed.jwk;
  j["x"] = base64url_encode(std::string(31, 'a'));
  EXPECT_EQ(parse_jwk(j).error().code, "jwk.okp_bad_length");
}

TEST(JwtJwks, SkipsUnusableKeysButNeedsOne) {
  auto ok = parse_jwks(std::string(R"({"keys":[{"kty":"oct","k":"c2VjcmV0"},)") + kA3Jwk + "]}");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->keys.size(), 1u);
  EXPECT_EQ(ok->skipped.size(), 1u);
  auto none = parse_jwks(R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, "jwks.no_valid_key");
  EXPECT_EQ(parse_jwks(R"({"keys":[]})").error().code, "jwks.no_valid_key");
  EXPECT_EQ(parse_jwks(R"({"keys":{}})").error().code, "jwks.no_keys");
  EXPECT_EQ(parse_jwks(R"([])").error().code, "jwks.bad_json");
  EXPECT_EQ(parse_jwks("{").error().code, "jwks.bad_json");
  EXPECT_EQ(parse_jwks("").error().code, "jwks.bad_json");
}

TEST(JwtJwks, IstioSampleParses) {
  auto set = parse_jwks(testing::kIstioJwks);
  ASSERT_TRUE(set) << set.error().to_string();
  ASSERT_EQ(set->keys.size(), 1u);
  EXPECT_EQ(set->keys[0].kid, "DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ");
  EXPECT_EQ(EVP_PKEY_get_bits(set->keys[0].key.get()), 2048);
}

TEST(JwtKeyMatching, KidAndAlgRulesFollowEnvoy) {
  Jwk k = jwk_from(kA3Jwk);
  EXPECT_TRUE(key_matches(k, Alg::ES256, ""));
  EXPECT_TRUE(key_matches(k, Alg::ES256, "any"));  // key without kid: tried for any token kid
  EXPECT_FALSE(key_matches(k, Alg::ES384, ""));    // curve must fit the alg
  EXPECT_FALSE(key_matches(k, Alg::RS256, ""));    // kty must fit the alg
  EXPECT_FALSE(key_matches(k, Alg::EdDSA, ""));
  k.kid = "a";
  EXPECT_TRUE(key_matches(k, Alg::ES256, "a"));
  EXPECT_FALSE(key_matches(k, Alg::ES256, "b"));
  EXPECT_TRUE(key_matches(k, Alg::ES256, ""));  // token without kid: every key is tried
  Jwk r = jwk_from(kA2Jwk);
  EXPECT_TRUE(key_matches(r, Alg::PS256, ""));
  r.alg = "RS256";
  EXPECT_TRUE(key_matches(r, Alg::RS256, ""));
  EXPECT_FALSE(key_matches(r, Alg::PS256, ""));  // the key's own alg restricts it
}

class JwtEveryAlgorithm : public ::testing::TestWithParam<Alg> {};

TEST_P(JwtEveryAlgorithm, SignsAndVerifiesAndRejectsForgeries) {
  Alg alg = GetParam();
  auto signer = make_key(alg);
  auto other = make_key(alg);
  auto key = parse_jwk(signer.jwk);
  ASSERT_TRUE(key) << key.error().to_string();
  std::string input = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0";
  std::string sig = sign_raw(signer, alg, input);
  EXPECT_EQ(verify_signature(alg, *key, input, sig), JwtStatus::Ok);
  EXPECT_NE(verify_signature(alg, *key, input + "x", sig), JwtStatus::Ok);
  EXPECT_NE(verify_signature(alg, *key, input, sign_raw(other, alg, input)), JwtStatus::Ok);
  std::string flipped = sig;
  flipped[flipped.size() / 2] ^= 0x01;
  EXPECT_NE(verify_signature(alg, *key, input, flipped), JwtStatus::Ok);
  EXPECT_EQ(verify_signature(alg, *key, input, sig.substr(1)), JwtStatus::SignatureWrongLength);
  EXPECT_NE(verify_signature(alg, *key, input, ""), JwtStatus::Ok);
}

INSTANTIATE_TEST_SUITE_P(JwtJwk, JwtEveryAlgorithm,
                         ::testing::Values(Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256, Alg::PS384, Alg::PS512,
                                           Alg::ES256, Alg::ES384, Alg::ES512, Alg::EdDSA),
                         [](const auto& info) { return std::string(alg_name(info.param)); });

TEST(JwtSignatures, RsaPkcs1AndPssAreNotInterchangeable) {
  auto k = make_key(Alg::RS256);
  auto key = parse_jwk(k.jwk);
  std::string input = "a.b";
  EXPECT_EQ(verify_signature(Alg::PS256, *key, input, sign_raw(k, Alg::RS256, input)), JwtStatus::VerificationFail);
  EXPECT_EQ(verify_signature(Alg::RS256, *key, input, sign_raw(k, Alg::PS256, input)), JwtStatus::VerificationFail);
  EXPECT_EQ(verify_signature(Alg::RS384, *key, input, sign_raw(k, Alg::RS256, input)), JwtStatus::VerificationFail);
}

TEST(JwtSignatures, EcdsaZeroAndOutOfRangeScalarsRefused) {
  Jwk key = jwk_from(kA3Jwk);
  Jwt jwt;
  ASSERT_EQ(parse_jwt(kA3Token, jwt), JwtStatus::Ok);
  // r = s = 0: the classic "psychic signature" (CVE-2022-21449) must never verify.
  EXPECT_EQ(verify_signature(Alg::ES256, key, jwt.signing_input, std::string(64, '\0')), JwtStatus::VerificationFail);
  std::string r_zero = std::string(32, '\0') + jwt.signature.substr(32);
  EXPECT_EQ(verify_signature(Alg::ES256, key, jwt.signing_input, r_zero), JwtStatus::VerificationFail);
  // r = n (the P-256 group order) and s = n: out of range.
  const std::string hex = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";
  auto n = std::make_unique<std::string>();
  for (size_t i = 0; i < hex.size(); i += 2) n->push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  ASSERT_EQ(n->size(), 32u);
  EXPECT_EQ(verify_signature(Alg::ES256, key, jwt.signing_input, *n + jwt.signature.substr(32)), JwtStatus::VerificationFail);
  EXPECT_EQ(verify_signature(Alg::ES256, key, jwt.signing_input, jwt.signature.substr(0, 32) + *n), JwtStatus::VerificationFail);
  std::string ff(64, '\xff');
  EXPECT_EQ(verify_signature(Alg::ES256, key, jwt.signing_input, ff), JwtStatus::VerificationFail);
  // DER instead of r||s is a wrong-length signature.
  EXPECT_EQ(verify_signature(Alg::ES256, key, jwt.signing_input, std::string(70, '\x30')), JwtStatus::SignatureWrongLength);
}

}  // namespace
}  // namespace mg::jwt
