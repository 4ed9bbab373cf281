// control/token.h verify_service_account_token: Kubernetes projected service-account tokens from a
// configured issuer, with real RSA/EC keys published as a JWKS.
#include <gtest/gtest.h>

#include "control/token.h"
#include "jwt_test_util.h"

namespace mg::control {
namespace {

using jwt::Alg;
using jwt::testing::jwks_of;
using jwt::testing::make_key;
using jwt::testing::sign_token;

constexpr int64_t kNow = 1700000000;
const char* const kIssuer = "https://kubernetes.default.svc.cluster.local";

class ServiceAccountToken : public ::testing::Test {
 protected:
  jwt::testing::TestKey rsa = make_key(Alg::RS256, "rsa-1");
  jwt::testing::TestKey ec = make_key(Alg::ES256, "ec-1");
  ServiceAccountIssuer issuer = issuer_for({&rsa, &ec});

  static ServiceAccountIssuer issuer_for(std::initializer_list<const jwt::testing::TestKey*> keys) {
    auto jwks = jwt::parse_jwks(jwks_of(keys));
    EXPECT_TRUE(jwks);
    return ServiceAccountIssuer{kIssuer, "meshguard", std::make_shared<const jwt::Jwks>(std::move(*jwks))};
  }
  static nlohmann::json payload(const std::string& sub = "system:serviceaccount:payments:api") {
    return {{"iss", kIssuer},          {"aud", {"meshguard", "other"}}, {"sub", sub},
            {"iat", kNow},             {"nbf", kNow},                   {"exp", kNow + 600},
            {"kubernetes.io", {{"namespace", "payments"}}}};
  }
};

TEST_F(ServiceAccountToken, ValidRsaAndEcTokensNameTheServiceAccount) {
  for (auto* key : {&rsa, &ec}) {
    auto c = verify_service_account_token(sign_token(*key, {}, payload()), issuer, kNow);
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_EQ(c->ns, "payments");
    EXPECT_EQ(c->service_account, "api");
    EXPECT_EQ(c->expires_at, kNow + 600);
  }
}

TEST_F(ServiceAccountToken, EveryWrongPartHasItsCode) {
  auto code = [&](const std::string& token, int64_t now = kNow) {
    auto c = verify_service_account_token(token, issuer, now);
    return c ? std::string("ok") : c.error().code;
  };
  auto other = make_key(Alg::RS256, "rsa-1");  // same kid, another key
  EXPECT_EQ(code(sign_token(other, {}, payload())), "token.bad_signature");
  auto p = payload();
  p["iss"] = "https://evil.example";
  EXPECT_EQ(code(sign_token(rsa, {}, p)), "token.wrong_issuer");
  p = payload();
  p["aud"] = "kubernetes";
  EXPECT_EQ(code(sign_token(rsa, {}, p)), "token.wrong_audience");
  EXPECT_EQ(code(sign_token(rsa, {}, payload()), kNow + 3600), "token.expired");
  EXPECT_EQ(code(sign_token(rsa, {}, payload()), kNow - 3600), "token.not_yet_valid");
  p = payload();
  p.erase("exp");  // legacy, non-expiring secret tokens are not accepted
  EXPECT_EQ(code(sign_token(rsa, {}, p)), "token.malformed");
  for (const char* sub : {"system:serviceaccount:payments", "system:serviceaccount:a:b:c", "payments:api",
                          "system:serviceaccount::api", "system:serviceaccount:Pay/ments:api"}) {
    SCOPED_TRACE(sub);
    EXPECT_EQ(code(sign_token(rsa, {}, payload(sub))), "token.bad_subject");
  }
  EXPECT_EQ(code("not.a.token"), "token.malformed");
  EXPECT_EQ(code(""), "token.malformed");
  // alg none / HS256 never reach a key.
  const std::string none = jwt::testing::b64(R"({"alg":"none"})") + "." + jwt::testing::b64(payload().dump()) + ".";
  EXPECT_NE(code(none), "ok");
}

TEST_F(ServiceAccountToken, KeyConfusionIsRefused) {
  // An ES256 header on a token signed with the RSA key (and the other way round) fails.
  const std::string input = jwt::testing::b64(R"({"alg":"ES256","kid":"ec-1"})") + "." +
                            jwt::testing::b64(payload().dump());
  const std::string forged = input + "." + jwt::testing::b64(jwt::testing::sign_raw(rsa, Alg::RS256, input));
  auto c1 = verify_service_account_token(forged, issuer, kNow);
  ASSERT_FALSE(c1);
  EXPECT_EQ(c1.error().code, "token.bad_signature");
  ServiceAccountIssuer empty{kIssuer, "meshguard", std::make_shared<const jwt::Jwks>()};
  auto c = verify_service_account_token(sign_token(rsa, {}, payload()), empty, kNow);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, "token.bad_key");
}

}  // namespace
}  // namespace mg::control
