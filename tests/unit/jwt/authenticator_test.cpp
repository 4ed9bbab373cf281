#include "jwt/authenticator.h"

#include <gtest/gtest.h>

#include <openssl/hmac.h>

#include <atomic>
#include <map>
#include <thread>

#include "jwt/base64url.h"
#include "jwt_test_util.h"

namespace mg::jwt {
namespace {

using testing::b64;
using testing::jwks_of;
using testing::make_key;
using testing::sign_token;
using testing::TestKey;
using Outcome = RequestAuth::Outcome;

constexpr int64_t kNow = 1700000000;
const std::string kIstioIssuer = "testing@secure.istio.io";

// One key per algorithm, generated once for the whole suite (RSA keygen is slow under ASan).
const TestKey& key_for(Alg alg) {
  static std::map<Alg, TestKey>* keys = [] {
    auto* m = new std::map<Alg, TestKey>();
    m->emplace(Alg::RS256, make_key(Alg::RS256, "rsa-1"));
    m->emplace(Alg::ES256, make_key(Alg::ES256, "ec-1"));
    m->emplace(Alg::ES384, make_key(Alg::ES384, "ec-384"));
    m->emplace(Alg::ES512, make_key(Alg::ES512, "ec-521"));
    m->emplace(Alg::EdDSA, make_key(Alg::EdDSA, "ed-1"));
    return m;
  }();
  return keys->at(alg);
}

JwtRule rule_for(const std::string& issuer, const std::string& jwks) {
  JwtRule r;
  r.issuer = issuer;
  r.jwks = jwks;
  return r;
}

nlohmann::json claims(const std::string& iss = "https://issuer.example", nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json c = {{"iss", iss}, {"sub", "alice"}, {"exp", kNow + 3600}, {"iat", kNow - 10}};
  for (auto& [k, v] : extra.items()) c[k] = v;
  return c;
}

HeaderList bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

TEST(JwtIstioDemo, SampleTokenVerifiesWithSampleJwks) {
  Authenticator auth({rule_for(kIstioIssuer, testing::kIstioJwks)});
  EXPECT_TRUE(auth.config_errors().empty());
  auto r = auth.authenticate(bearer(testing::kIstioDemoToken), "/details/1", kNow);
  ASSERT_EQ(r.outcome, Outcome::Authenticated) << r.reason;
  EXPECT_EQ(r.principal, "testing@secure.istio.io/testing@secure.istio.io");
  EXPECT_EQ(r.issuer, kIstioIssuer);
  EXPECT_EQ(r.subject, kIstioIssuer);
  EXPECT_EQ(r.claims["foo"], "bar");
  EXPECT_EQ(r.claims["exp"], 4685989700);
}

TEST(JwtIstioDemo, BrokenCopyFromSeed002Is401) {
  Authenticator auth({rule_for(kIstioIssuer, testing::kIstioJwks)});
  auto r = auth.authenticate(bearer(testing::kIstioDemoTokenBroken), "/", kNow);
  EXPECT_EQ(r.outcome, Outcome::Rejected);
  EXPECT_EQ(r.status, 401);
  EXPECT_FALSE(r.reason.empty());
  EXPECT_TRUE(r.principal.empty());
}

TEST(JwtIstioDemo, BadTokenIs401AndNoTokenPasses) {
  Authenticator auth({rule_for(kIstioIssuer, testing::kIstioJwks)});
  auto bad = auth.authenticate(bearer("badtoken"), "/", kNow);
  EXPECT_EQ(bad.outcome, Outcome::Rejected);
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(bad.reason, "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections");
  auto none = auth.authenticate({{"accept", "*/*"}}, "/", kNow);
  EXPECT_EQ(none.outcome, Outcome::NoToken);
  EXPECT_TRUE(none.principal.empty());
  // A different auth scheme is not a JWT at the default location.
  EXPECT_EQ(auth.authenticate({{"Authorization", "Basic dXNlcjpwYXNz"}}, "/", kNow).outcome, Outcome::NoToken);
}

TEST(JwtIstioDemo, ExpiredAtItsExpAndNotBefore) {
  Authenticator auth({rule_for(kIstioIssuer, testing::kIstioJwks)});
  EXPECT_EQ(auth.authenticate(bearer(testing::kIstioDemoToken), "/", 4685989700 + 60).outcome, Outcome::Authenticated);
  auto late = auth.authenticate(bearer(testing::kIstioDemoToken), "/", 4685989700 + 61);
  EXPECT_EQ(late.outcome, Outcome::Rejected);
  EXPECT_EQ(late.reason, "Jwt is expired");
}

class JwtAllAlgorithms : public ::testing::TestWithParam<Alg> {};

TEST_P(JwtAllAlgorithms, ValidTokenAuthenticatesAndForgeriesFail) {
  Alg alg = GetParam();
  TestKey key = make_key(alg, "k");
  TestKey other = make_key(alg, "k");
  Authenticator auth({rule_for("https://issuer.example", jwks_of({&key}))});
  std::string good = sign_token(key, {}, claims());
  auto r = auth.authenticate(bearer(good), "/", kNow);
  ASSERT_EQ(r.outcome, Outcome::Authenticated) << alg_name(alg) << ": " << r.reason;
  EXPECT_EQ(r.principal, "https://issuer.example/alice");

  // Same kid, another key: "a token signed by another key with the same kid".
  auto forged = auth.authenticate(bearer(sign_token(other, {}, claims())), "/", kNow);
  EXPECT_EQ(forged.outcome, Outcome::Rejected);
  EXPECT_EQ(forged.reason, "Jwt verification fails");

  // Payload swapped under a valid signature.
  std::string tampered = good;
  size_t d1 = tampered.find('.'), d2 = tampered.rfind('.');
  tampered = tampered.substr(0, d1 + 1) + b64(claims("https://issuer.example", {{"sub", "root"}}).dump()) + tampered.substr(d2);
  EXPECT_EQ(auth.authenticate(bearer(tampered), "/", kNow).outcome, Outcome::Rejected);
}

INSTANTIATE_TEST_SUITE_P(JwtAuthenticator, JwtAllAlgorithms,
                         ::testing::Values(Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256, Alg::PS384, Alg::PS512,
                                           Alg::ES256, Alg::ES384, Alg::ES512, Alg::EdDSA),
                         [](const auto& info) { return std::string(alg_name(info.param)); });

class JwtAttacks : public ::testing::Test {
 protected:
  JwtAttacks() : auth_({rule_for(iss_, jwks_of({&key_for(Alg::RS256)}))}) {}
  RequestAuth check(const std::string& token) { return auth_.authenticate(bearer(token), "/", kNow); }
  std::string iss_ = "https://issuer.example";
  Authenticator auth_;
};

TEST_F(JwtAttacks, AlgNoneRefused) {
  std::string t = b64(R"({"alg":"none","kid":"rsa-1"})") + "." + b64(claims().dump()) + ".";
  auto r = check(t);
  EXPECT_EQ(r.outcome, Outcome::Rejected);
  EXPECT_EQ(r.status, 401);
  r = check(b64(R"({"alg":"none"})") + "." + b64(claims().dump()) + "." + b64("x"));
  EXPECT_EQ(r.reason, "Jwt header [alg] is not supported");
}

TEST_F(JwtAttacks, RsToHsKeyConfusionRefused) {
  // HS256 "signed" with the RSA public key's bytes as the HMAC secret.
  const auto& rsa = key_for(Alg::RS256);
  std::string input = b64(R"({"alg":"HS256","kid":"rsa-1"})") + "." + b64(claims().dump());
  std::string secret = rsa.jwk["n"].get<std::string>();
  unsigned char mac[64];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), mac, &mac_len);
  auto r = check(input + "." + b64(std::string(reinterpret_cast<char*>(mac), mac_len)));
  EXPECT_EQ(r.outcome, Outcome::Rejected);
  EXPECT_EQ(r.reason, "Jwt header [alg] is not supported");
}

TEST_F(JwtAttacks, EmbeddedKeyHeadersIgnored) {
  // Signed by the attacker's key, which the header offers as jwk / jku / x5u / x5c.
  TestKey attacker = make_key(Alg::RS256);
  nlohmann::json header = {{"kid", "rsa-1"},
                           {"jwk", attacker.jwk},
                           {"jku", "https://attacker.example/jwks.json"},
                           {"x5u", "https://attacker.example/cert.pem"},
                           {"x5c", {"MIIB"}}};
  auto r = check(sign_token(attacker, header, claims()));
  EXPECT_EQ(r.outcome, Outcome::Rejected);
  EXPECT_EQ(r.reason, "Jwt verification fails");
  // The same headers on a token signed by the configured key do not get in the way.
  EXPECT_EQ(check(sign_token(key_for(Alg::RS256), header, claims())).outcome, Outcome::Authenticated);
}

TEST_F(JwtAttacks, UnknownKidIsNoMatchingKey) {
  auto r = check(sign_token(key_for(Alg::RS256), {{"kid", "rotated-away"}}, claims()));
  EXPECT_EQ(r.outcome, Outcome::Rejected);
  EXPECT_EQ(r.reason, "Jwks doesn't have key to match kid or alg from Jwt");
}

TEST_F(JwtAttacks, Es256AgainstRsaSetIsNoMatchingKey) {
  auto r = check(sign_token(key_for(Alg::ES256), {{"kid", "rsa-1"}}, claims()));
  EXPECT_EQ(r.outcome, Outcome::Rejected);
  EXPECT_EQ(r.reason, "Jwks doesn't have key to match kid or alg from Jwt");
}

TEST_F(JwtAttacks, NegativeOrHugeTimesRefused) {
  const auto& k = key_for(Alg::RS256);
  for (nlohmann::json bad : {nlohmann::json(-1), nlohmann::json(253402300800LL), nlohmann::json(1e308),
                             nlohmann::json("4685989700"), nlohmann::json(18446744073709551615ULL)}) {
    auto r = check(sign_token(k, {}, claims(iss_, {{"exp", bad}})));
    EXPECT_EQ(r.outcome, Outcome::Rejected) << bad;
    EXPECT_EQ(r.status, 401);
    r = check(sign_token(k, {}, claims(iss_, {{"nbf", bad}})));
    EXPECT_EQ(r.outcome, Outcome::Rejected) << bad;
  }
  EXPECT_EQ(check(sign_token(k, {}, claims(iss_, {{"exp", kNow - 61}}))).reason, "Jwt is expired");
  EXPECT_EQ(check(sign_token(k, {}, claims(iss_, {{"exp", kNow - 60}}))).outcome, Outcome::Authenticated);
  EXPECT_EQ(check(sign_token(k, {}, claims(iss_, {{"nbf", kNow + 61}}))).reason, "Jwt not yet valid");
  EXPECT_EQ(check(sign_token(k, {}, claims(iss_, {{"nbf", kNow + 60}}))).outcome, Outcome::Authenticated);
}

TEST_F(JwtAttacks, ZeroEcdsaSignatureRefused) {
  Authenticator ec({rule_for(iss_, jwks_of({&key_for(Alg::ES256)}))});
  std::string t = b64(R"({"alg":"ES256","kid":"ec-1"})") + "." + b64(claims().dump()) + "." + b64(std::string(64, '\0'));
  auto r = ec.authenticate(bearer(t), "/", kNow);
  EXPECT_EQ(r.outcome, Outcome::Rejected);
  EXPECT_EQ(r.reason, "Jwt verification fails");
}

TEST_F(JwtAttacks, OversizedTokenIsAClear401) {
  std::string t = sign_token(key_for(Alg::RS256), {}, claims(iss_, {{"pad", std::string(40000, 'a')}}));
  auto r = check(t);
  EXPECT_EQ(r.outcome, Outcome::Rejected);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.reason, "Jwt is too large");
  EXPECT_EQ(check(std::string(1 << 20, 'A')).reason, "Jwt is too large");
}

TEST_F(JwtAttacks, UnknownIssuerAndMissingIssuer) {
  auto r = check(sign_token(key_for(Alg::RS256), {}, claims("https://other.example")));
  EXPECT_EQ(r.reason, "Jwt issuer is not configured");
  auto no_iss = claims();
  no_iss.erase("iss");
  EXPECT_EQ(check(sign_token(key_for(Alg::RS256), {}, no_iss)).reason, "Jwt issuer is not configured");
}

TEST(JwtAudiences, MismatchIs403AsEnvoy) {
  const auto& k = key_for(Alg::ES256);
  JwtRule rule = rule_for("https://issuer.example", jwks_of({&k}));
  rule.audiences = {"bookinfo", "details"};
  Authenticator auth({rule});
  EXPECT_EQ(auth.authenticate(bearer(sign_token(k, {}, claims("https://issuer.example", {{"aud", "details"}}))), "/", kNow).outcome,
            Outcome::Authenticated);
  EXPECT_EQ(auth.authenticate(bearer(sign_token(k, {}, claims("https://issuer.example", {{"aud", {"x", "bookinfo"}}}))), "/", kNow)
                .audiences,
            (std::vector<std::string>{"x", "bookinfo"}));
  auto r = auth.authenticate(bearer(sign_token(k, {}, claims("https://issuer.example", {{"aud", "other"}}))), "/", kNow);
  EXPECT_EQ(r.outcome, Outcome::Rejected);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.reason, "Audiences in Jwt are not allowed");
  EXPECT_EQ(auth.authenticate(bearer(sign_token(k, {}, claims())), "/", kNow).status, 403);  // no aud at all
}

TEST(JwtRules, SeveralPoliciesMergeAndEachIssuerUsesItsOwnKeys) {
  const auto& rsa = key_for(Alg::RS256);
  const auto& ec = key_for(Alg::ES256);
  Authenticator auth({rule_for("https://a.example", jwks_of({&rsa})), rule_for("https://b.example", jwks_of({&ec}))});
  EXPECT_EQ(auth.authenticate(bearer(sign_token(rsa, {}, claims("https://a.example"))), "/", kNow).principal, "https://a.example/alice");
  EXPECT_EQ(auth.authenticate(bearer(sign_token(ec, {}, claims("https://b.example"))), "/", kNow).principal, "https://b.example/alice");
  // Issuer a's token signed with issuer b's key: a's set has no EC key.
  auto cross = auth.authenticate(bearer(sign_token(ec, {}, claims("https://a.example"))), "/", kNow);
  EXPECT_EQ(cross.reason, "Jwks doesn't have key to match kid or alg from Jwt");
}

TEST(JwtRules, SameIssuerInTwoPoliciesTriesBothKeySets) {
  const auto& rsa = key_for(Alg::RS256);
  const auto& ed = key_for(Alg::EdDSA);
  Authenticator auth({rule_for("https://a.example", jwks_of({&rsa})), rule_for("https://a.example", jwks_of({&ed}))});
  EXPECT_EQ(auth.authenticate(bearer(sign_token(ed, {}, claims("https://a.example"))), "/", kNow).outcome, Outcome::Authenticated);
}

TEST(JwtExtraction, CustomHeaderPrefixParamsAndCookies) {
  const auto& k = key_for(Alg::ES256);
  JwtRule rule = rule_for("https://issuer.example", jwks_of({&k}));
  rule.from_headers = {{"x-jwt-assertion", ""}, {"X-Token", "JWT "}};
  rule.from_params = {"token"};
  rule.from_cookies = {"session"};
  Authenticator auth({rule});
  std::string t = sign_token(k, {}, claims());
  EXPECT_EQ(auth.authenticate({{"X-JWT-Assertion", t}}, "/", kNow).outcome, Outcome::Authenticated);
  EXPECT_EQ(auth.authenticate({{"x-token", "jwt " + t}}, "/", kNow).outcome, Outcome::Authenticated);
  EXPECT_EQ(auth.authenticate({{"x-token", t}}, "/", kNow).outcome, Outcome::NoToken);  // prefix missing
  EXPECT_EQ(auth.authenticate({}, "/p?a=1&token=" + t + "&b=2", kNow).outcome, Outcome::Authenticated);
  EXPECT_EQ(auth.authenticate({{"Cookie", "a=b; session=" + t + "; c=d"}}, "/", kNow).outcome, Outcome::Authenticated);
  // Configured locations replace the defaults.
  EXPECT_EQ(auth.authenticate(bearer(t), "/", kNow).outcome, Outcome::NoToken);
  EXPECT_EQ(auth.authenticate({}, "/?access_token=" + t, kNow).outcome, Outcome::NoToken);
  EXPECT_EQ(auth.authenticate({}, "/?token=garbage", kNow).status, 401);
  EXPECT_EQ(auth.authenticate({{"cookie", "session=garbage"}}, "/", kNow).status, 401);
}

TEST(JwtExtraction, DefaultQueryParameter) {
  const auto& k = key_for(Alg::ES256);
  Authenticator auth({rule_for("https://issuer.example", jwks_of({&k}))});
  std::string t = sign_token(k, {}, claims());
  EXPECT_EQ(auth.authenticate({}, "/x?access_token=" + t, kNow).outcome, Outcome::Authenticated);
  EXPECT_EQ(auth.authenticate({}, "/x?other=" + t, kNow).outcome, Outcome::NoToken);
}

TEST(JwtExtraction, EveryPresentTokenMustBeValid) {
  const auto& k = key_for(Alg::ES256);
  Authenticator auth({rule_for("https://issuer.example", jwks_of({&k}))});
  std::string good = sign_token(k, {}, claims());
  std::string good2 = sign_token(k, {}, claims("https://issuer.example", {{"sub", "bob"}}));
  auto mixed = auth.authenticate(bearer(good), "/?access_token=garbage", kNow);
  EXPECT_EQ(mixed.outcome, Outcome::Rejected);
  EXPECT_EQ(mixed.status, 401);
  EXPECT_EQ(auth.authenticate({{"authorization", "Bearer garbage"}, {"authorization", "Bearer " + good}}, "/", kNow).status, 401);
  auto both = auth.authenticate(bearer(good), "/?access_token=" + good2, kNow);
  ASSERT_EQ(both.outcome, Outcome::Authenticated);
  EXPECT_EQ(both.principal, "https://issuer.example/alice");  // the first location wins
}

TEST(JwtExtraction, IssuerMustOwnTheLocation) {
  const auto& k = key_for(Alg::ES256);
  JwtRule a = rule_for("https://a.example", jwks_of({&k}));
  a.from_headers = {{"x-a-token", ""}};
  JwtRule b = rule_for("https://b.example", jwks_of({&k}));
  b.from_headers = {{"x-b-token", ""}};
  Authenticator auth({a, b});
  std::string token_b = sign_token(k, {}, claims("https://b.example"));
  EXPECT_EQ(auth.authenticate({{"x-b-token", token_b}}, "/", kNow).outcome, Outcome::Authenticated);
  auto r = auth.authenticate({{"x-a-token", token_b}}, "/", kNow);
  EXPECT_EQ(r.reason, "Jwt issuer is not configured");
  // Even once token_b sits in the cache, the location check still applies.
  EXPECT_EQ(auth.authenticate({{"x-a-token", token_b}}, "/", kNow).reason, "Jwt issuer is not configured");
}

TEST(JwtCache, RepeatedTokenIsNotReverified) {
  const auto& k = key_for(Alg::RS256);
  Authenticator auth({rule_for("https://issuer.example", jwks_of({&k}))});
  std::string t = sign_token(k, {}, claims());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(auth.authenticate(bearer(t), "/", kNow + i).outcome, Outcome::Authenticated);
  EXPECT_EQ(auth.signature_verifications(), 1u);
  EXPECT_EQ(auth.cache_size(), 1u);
  std::string t2 = sign_token(k, {}, claims("https://issuer.example", {{"sub", "bob"}}));
  EXPECT_EQ(auth.authenticate(bearer(t2), "/", kNow).principal, "https://issuer.example/bob");
  EXPECT_EQ(auth.signature_verifications(), 2u);
  // A cached token still expires.
  auto late = auth.authenticate(bearer(t), "/", kNow + 3600 + 61);
  EXPECT_EQ(late.reason, "Jwt is expired");
  // Failures are not cached as successes.
  std::string forged = t.substr(0, t.rfind('.') + 1) + b64(std::string(256, 'x'));
  EXPECT_EQ(auth.authenticate(bearer(forged), "/", kNow).outcome, Outcome::Rejected);
  EXPECT_EQ(auth.authenticate(bearer(forged), "/", kNow).outcome, Outcome::Rejected);
}

TEST(JwtCache, BoundedSize) {
  const auto& k = key_for(Alg::EdDSA);
  Authenticator auth({rule_for("https://issuer.example", jwks_of({&k}))}, nullptr, Authenticator::Options{32});
  for (int i = 0; i < 200; ++i) {
    std::string t = sign_token(k, {}, claims("https://issuer.example", {{"sub", "u" + std::to_string(i)}}));
    ASSERT_EQ(auth.authenticate(bearer(t), "/", kNow).outcome, Outcome::Authenticated);
  }
  EXPECT_LE(auth.cache_size(), 32u);
}

TEST(JwtCache, ThreadSafeUnderConcurrentUse) {
  const auto& k = key_for(Alg::ES256);
  Authenticator auth({rule_for("https://issuer.example", jwks_of({&k}))}, nullptr, Authenticator::Options{64});
  std::vector<std::string> tokens;
  for (int i = 0; i < 8; ++i) tokens.push_back(sign_token(k, {}, claims("https://issuer.example", {{"sub", "u" + std::to_string(i)}})));
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 400; ++i) {
        const auto& tok = tokens[static_cast<size_t>(i + t) % tokens.size()];
        auto r = auth.authenticate_shared(bearer(tok), "/", kNow);
        if (r.status == JwtStatus::Ok) ok.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 1600);
  // Each distinct token is verified at most once per racing thread.
  EXPECT_LE(auth.signature_verifications(), 8u * 4u);
}

TEST(JwtRemoteKeys, FailClosedUntilKeysArriveThenVerify) {
  const auto& k = key_for(Alg::ES256);
  auto provider = std::make_shared<JwksProvider>();
  JwtRule rule;
  rule.issuer = "https://issuer.example";
  rule.jwks_uri = "https://issuer.example/jwks";
  Authenticator auth({rule}, provider);
  std::string t = sign_token(k, {}, claims());
  auto r = auth.authenticate(bearer(t), "/", kNow);
  EXPECT_EQ(r.outcome, Outcome::Rejected);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.reason, "Jwks remote fetch is failed");
  EXPECT_EQ(auth.authenticate({}, "/", kNow).outcome, Outcome::NoToken);

  ASSERT_TRUE(provider->set_jwks_json(rule.jwks_uri, jwks_of({&k})));
  EXPECT_EQ(auth.authenticate(bearer(t), "/", kNow).outcome, Outcome::Authenticated);
  EXPECT_EQ(auth.authenticate(bearer(t), "/", kNow).outcome, Outcome::Authenticated);
  EXPECT_EQ(auth.signature_verifications(), 1u);
  // Same document again: nothing changes, the cache stays warm.
  ASSERT_TRUE(provider->set_jwks_json(rule.jwks_uri, jwks_of({&k})));
  EXPECT_EQ(auth.authenticate(bearer(t), "/", kNow).outcome, Outcome::Authenticated);
  EXPECT_EQ(auth.signature_verifications(), 1u);
  // Rotation to another key: the cached verification is dropped and the token now fails.
  const auto& ed = key_for(Alg::EdDSA);
  ASSERT_TRUE(provider->set_jwks_json(rule.jwks_uri, jwks_of({&ed})));
  EXPECT_EQ(auth.authenticate(bearer(t), "/", kNow).reason, "Jwks doesn't have key to match kid or alg from Jwt");
  // A bad document keeps the previous keys.
  EXPECT_FALSE(provider->set_jwks_json(rule.jwks_uri, "{\"keys\":[]}"));
  EXPECT_NE(provider->get(rule.jwks_uri), nullptr);
}

TEST(JwtConfig, BadInlineJwksFailsClosed) {
  Authenticator auth({rule_for("https://issuer.example", "{not json")});
  ASSERT_EQ(auth.config_errors().size(), 1u);
  auto r = auth.authenticate(bearer(sign_token(key_for(Alg::ES256), {}, claims())), "/", kNow);
  EXPECT_EQ(r.outcome, Outcome::Rejected);
  EXPECT_EQ(r.status, 401);
  EXPECT_FALSE(validate_rule(rule_for("https://issuer.example", "{not json")));
  EXPECT_FALSE(validate_rule(rule_for("", testing::kIstioJwks)));
  EXPECT_TRUE(validate_rule(rule_for(kIstioIssuer, testing::kIstioJwks)));
  JwtRule uri;
  uri.issuer = "x";
  uri.jwks_uri = "file:///etc/passwd";
  EXPECT_FALSE(validate_rule(uri));
}

TEST(JwtConfig, NoRulesMeansNoToken) {
  Authenticator auth({});
  EXPECT_EQ(auth.authenticate(bearer("anything"), "/", kNow).outcome, Outcome::NoToken);
}

TEST(JwtMutations, PayloadAndClaimHeadersAndTokenRemoval) {
  const auto& k = key_for(Alg::ES256);
  JwtRule rule = rule_for("https://issuer.example", jwks_of({&k}));
  rule.output_payload_to_header = "X-Jwt-Payload";
  rule.output_claim_to_headers = {{"x-sub", "sub"}, {"x-team", "org.team"}, {"x-evil", "evil"}, {"x-none", "absent"}};
  Authenticator auth({rule});
  std::string t = sign_token(k, {}, claims("https://issuer.example", {{"org", {{"team", "blue"}}}, {"evil", "a\r\nb: c"}}));
  auto r = auth.authenticate_shared(bearer(t), "/", kNow);
  ASSERT_EQ(r.status, JwtStatus::Ok);
  auto m = auth.header_mutations(r);
  std::string payload_segment = t.substr(t.find('.') + 1, t.rfind('.') - t.find('.') - 1);
  EXPECT_EQ(m.set_headers, (std::vector<std::pair<std::string, std::string>>{
                               {"x-jwt-payload", payload_segment}, {"x-sub", "alice"}, {"x-team", "blue"}}));
  EXPECT_EQ(m.remove_headers, std::vector<std::string>{"authorization"});
  EXPECT_TRUE(m.remove_params.empty());

  auto from_param = auth.authenticate_shared({}, "/?access_token=" + t, kNow);
  EXPECT_EQ(auth.header_mutations(from_param).remove_params, std::vector<std::string>{"access_token"});

  rule.forward_original_token = true;
  Authenticator keep({rule});
  EXPECT_TRUE(keep.header_mutations(keep.authenticate_shared(bearer(t), "/", kNow)).remove_headers.empty());
  // Nothing to do for rejected or token-less requests.
  EXPECT_TRUE(auth.header_mutations(auth.authenticate_shared(bearer("x.y.z"), "/", kNow)).set_headers.empty());
}

TEST(JwtClaims, ScopeIsSplitInRequestAuthClaims) {
  const auto& k = key_for(Alg::ES256);
  Authenticator auth({rule_for("https://issuer.example", jwks_of({&k}))});
  auto r = auth.authenticate(bearer(sign_token(k, {}, claims("https://issuer.example", {{"scope", "read write"}, {"azp", "web"}}))),
                             "/", kNow);
  ASSERT_EQ(r.outcome, Outcome::Authenticated);
  EXPECT_EQ(r.claims["scope"], nlohmann::json({"read", "write"}));
  EXPECT_EQ(r.presenter, "web");
}

}  // namespace
}  // namespace mg::jwt
