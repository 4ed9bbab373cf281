// Keys given to an offline decision (`authz check --jwks NAME=FILE`): a rule verifies tokens with
// the key set given under its jwksUri, or under its issuer when its keys come by OpenID discovery
// (the name a proxy keeps fetched keys under); a name no rule fetches from is refused.
#include "policy/offline_keys.h"

#include <gtest/gtest.h>

#include <memory>

#include "jwt_test_util.h"
#include "policy/decide.h"
#include "test_util.h"

namespace mg::policy::test {
namespace {

using jwt::testing::jwks_of;
using jwt::testing::make_key;
using jwt::testing::sign_token;

constexpr const char* kUri = "https://keys.example.com/jwks.json?set=current";
constexpr const char* kDiscovering = "https://discovering.example.com";

// One rule with a jwksUri, one whose keys come by discovery from its issuer, one with inline keys;
// an ALLOW for alice of either remote issuer.
std::string policies(const std::string& inline_jwks) {
  return std::string(
             "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: jwt\n"
             "  namespace: default\nspec:\n  jwtRules:\n  - issuer: \"issuer-1\"\n    jwksUri: \"") +
         kUri + "\"\n  - issuer: \"" + kDiscovering + "\"\n  - issuer: \"inline\"\n    jwks: '" +
         inline_jwks + "'\n---\n" +
         ap("only-alice",
            "  rules:\n  - from:\n    - source:\n        requestPrincipals: [\"issuer-1/alice\", \"" +
                std::string(kDiscovering) + "/alice\"]");
}

Request with_token(const std::string& token) {
  Req r;
  r.headers = {{"authorization", "Bearer " + token}};
  return r.build();
}

struct Fixture {
  jwt::testing::TestKey key = make_key(jwt::Alg::RS256, "k1");
  jwt::testing::TestKey other = make_key(jwt::Alg::RS256, "k1");  // same kid, other key
  ResourceSet set = must_parse(policies(jwks_of({&other})));

  std::string token(const std::string& iss, const std::string& sub) const {
    return sign_token(key, nlohmann::json::object(), {{"iss", iss}, {"sub", sub}, {"exp", 4102444800}});
  }
  Decision decide_with(const std::vector<GivenKeys>& given, const std::string& token) const {
    auto provider = given_keys_provider(set, given);
    EXPECT_TRUE(provider) << provider.error().message;
    if (!provider) return {};
    Req r;
    auto snap = compile_snapshot(set, destination_workload(r.build()), MeshConfig{});
    EXPECT_TRUE(snap);
    jwt::Authenticator authenticator((*snap)->jwt_rules(), *provider);
    DecideIo io;
    io.authenticator = &authenticator;
    return decide(**snap, with_token(token), 1700000000, io);
  }
};

TEST(OfflineKeys, AJwksUriRuleVerifiesWithTheKeysGivenUnderItsUri) {
  Fixture f;
  const std::vector<GivenKeys> given{{kUri, jwks_of({&f.key}), "keys.json"}};
  EXPECT_EQ(f.decide_with({}, f.token("issuer-1", "alice")).status, 401) << "no keys: fails closed";
  auto d = f.decide_with(given, f.token("issuer-1", "alice"));
  EXPECT_TRUE(d.allow) << describe(d);
  EXPECT_EQ(d.status, 200);
  d = f.decide_with(given, f.token("issuer-1", "bob"));
  EXPECT_EQ(d.status, 403) << describe(d);
  // Keys that did not sign the token do not verify it.
  EXPECT_EQ(f.decide_with({{kUri, jwks_of({&f.other}), "other.json"}}, f.token("issuer-1", "alice")).status,
            401);
}

TEST(OfflineKeys, ADiscoveringRuleVerifiesWithTheKeysGivenUnderItsIssuer) {
  Fixture f;
  EXPECT_EQ(f.decide_with({}, f.token(kDiscovering, "alice")).status, 401);
  const std::vector<GivenKeys> given{{kDiscovering, jwks_of({&f.key}), "keys.json"}};
  auto d = f.decide_with(given, f.token(kDiscovering, "alice"));
  EXPECT_TRUE(d.allow) << describe(d);
  EXPECT_EQ(f.decide_with(given, f.token(kDiscovering, "bob")).status, 403);
  // Given under the issuer of the jwksUri rule instead: that rule keeps its keys by its jwksUri,
  // as a proxy does, so the name is refused rather than silently unused.
  auto wrong = given_keys_provider(f.set, {{"issuer-1", jwks_of({&f.key}), "keys.json"}});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, "policy.bad_keys");
  EXPECT_NE(wrong.error().message.find(std::string("rules need keys for: ") + kDiscovering + ", " + kUri),
            std::string::npos)
      << wrong.error().message;
}

TEST(OfflineKeys, BadGivenKeysAreRefused) {
  Fixture f;
  const std::string good = jwks_of({&f.key});
  for (const std::vector<GivenKeys>& given : std::vector<std::vector<GivenKeys>>{
           {{"https://typo.example.com/jwks.json", good, "k.json"}},
           {{"inline", good, "k.json"}},  // inline keys are not replaced
           {{kUri, good, "a.json"}, {kUri, good, "b.json"}},
           {{kUri, "{\"issuer\": \"https://x\"}", "discovery.json"}},
       }) {
    auto provider = given_keys_provider(f.set, given);
    ASSERT_FALSE(provider) << given.back().name;
    EXPECT_EQ(provider.error().code, "policy.bad_keys");
  }
  auto not_jwks = given_keys_provider(f.set, {{kUri, "not json", "bad.json"}});
  ASSERT_FALSE(not_jwks);
  EXPECT_NE(not_jwks.error().message.find(std::string("--jwks ") + kUri + ": bad.json: "), std::string::npos)
      << not_jwks.error().message;
}

TEST(OfflineKeys, NamesWithoutKeysAreTheRemoteNamesNotGiven) {
  Fixture f;
  Req r;
  auto snap = compile_snapshot(f.set, destination_workload(r.build()), MeshConfig{});
  ASSERT_TRUE(snap);
  auto provider = given_keys_provider(f.set, {{kUri, jwks_of({&f.key}), "k.json"}});
  ASSERT_TRUE(provider);
  EXPECT_EQ(names_without_keys((*snap)->jwt_rules(), **provider), std::vector<std::string>{kDiscovering});
  EXPECT_EQ(names_without_keys((*snap)->jwt_rules(), jwt::JwksProvider{}),
            (std::vector<std::string>{kUri, kDiscovering}));
}

TEST(OfflineKeys, TheFlagSplitsAtItsLastEquals) {
  auto parts = split_key_flag("https://issuer.example/keys?set=current=/tmp/keys.json");
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->first, "https://issuer.example/keys?set=current");
  EXPECT_EQ(parts->second, "/tmp/keys.json");
  for (const char* bad : {"https://issuer.example/keys", "=keys.json", "https://issuer.example="}) {
    EXPECT_FALSE(split_key_flag(bad)) << bad;
  }
}

}  // namespace
}  // namespace mg::policy::test
