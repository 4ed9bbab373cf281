// jwt/sign.h: tokens signed by the library verify with the library's own verifier (jwk.h), for
// every algorithm; a key that does not fit the algorithm is refused before any signing.
#include <gtest/gtest.h>

#include "jwt/base64url.h"
#include "jwt/jwk.h"
#include "jwt/sign.h"
#include "jwt_test_util.h"

namespace mg::jwt {
namespace {

TEST(Sign, CompactTokensVerifyForEveryAlgorithm) {
  for (Alg alg : {Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256, Alg::PS384, Alg::PS512, Alg::ES256,
                  Alg::ES384, Alg::ES512, Alg::EdDSA}) {
    SCOPED_TRACE(std::string(alg_name(alg)));
    auto key = testing::make_key(alg);
    const std::string header = "{\"alg\":\"" + std::string(alg_name(alg)) + "\"}";
    auto token = sign_compact(alg, key.priv.get(), header, R"({"iss":"me","exp":4102444800})");
    ASSERT_TRUE(token) << token.error().to_string();
    Jwt jwt;
    ASSERT_EQ(parse_jwt(*token, jwt), JwtStatus::Ok);
    EXPECT_EQ(jwt.alg, alg);
    EXPECT_EQ(jwt.iss, "me");
    auto jwk = parse_jwk(key.jwk);
    ASSERT_TRUE(jwk) << jwk.error().message;
    EXPECT_EQ(verify_signature(alg, *jwk, jwt.signing_input, jwt.signature), JwtStatus::Ok);
    // One flipped payload byte breaks it.
    std::string tampered = std::string(jwt.signing_input) + "x";
    EXPECT_EQ(verify_signature(alg, *jwk, tampered, jwt.signature), JwtStatus::VerificationFail);
  }
}

TEST(Sign, EcdsaSignaturesAreFixedWidthRS) {
  auto key = testing::make_key(Alg::ES256);
  for (int i = 0; i < 32; ++i) {  // r or s with leading zero bytes must still be padded to 32
    auto sig = sign_raw(Alg::ES256, key.priv.get(), "input " + std::to_string(i));
    ASSERT_TRUE(sig);
    EXPECT_EQ(sig->size(), 64u);
  }
  auto p521 = testing::make_key(Alg::ES512);
  auto sig = sign_raw(Alg::ES512, p521.priv.get(), "x");
  ASSERT_TRUE(sig);
  EXPECT_EQ(sig->size(), 132u);
}

TEST(Sign, KeyMustFitTheAlgorithm) {
  auto ec256 = testing::make_key(Alg::ES256);
  auto ec384 = testing::make_key(Alg::ES384);
  auto rsa = testing::make_key(Alg::RS256);
  auto ed = testing::make_key(Alg::EdDSA);
  EXPECT_TRUE(check_signing_key(Alg::ES256, ec256.priv.get()));
  EXPECT_TRUE(check_signing_key(Alg::PS384, rsa.priv.get()));
  const std::vector<std::pair<Alg, EVP_PKEY*>> bad = {
      {Alg::ES256, ec384.priv.get()}, {Alg::ES384, ec256.priv.get()}, {Alg::ES256, rsa.priv.get()},
      {Alg::RS256, ec256.priv.get()}, {Alg::EdDSA, ec256.priv.get()}, {Alg::ES256, ed.priv.get()},
      {Alg::RS256, nullptr}};
  for (const auto& [alg, key] : bad) {
    SCOPED_TRACE(std::string(alg_name(alg)));
    auto r = sign_compact(alg, key, "{}", "{}");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "jwt.key_mismatch");
  }
}

TEST(Sign, HeaderAndPayloadAreEncodedAsGiven) {
  auto key = testing::make_key(Alg::ES256);
  auto token = sign_compact(Alg::ES256, key.priv.get(), R"({"alg":"ES256","typ":"JWT"})", R"({"a":1})");
  ASSERT_TRUE(token);
  const auto first = token->find('.');
  const auto second = token->find('.', first + 1);
  EXPECT_EQ(base64url_decode(token->substr(0, first)), R"({"alg":"ES256","typ":"JWT"})");
  EXPECT_EQ(base64url_decode(token->substr(first + 1, second - first - 1)), R"({"a":1})");
}

}  // namespace
}  // namespace mg::jwt
