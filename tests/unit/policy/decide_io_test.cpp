// decide() with a caller's authenticator and DecideIo: jwksUri keys from a JwksProvider (tokens
// fail closed until the keys are there; a rotated key set takes over), the offline form's clear
// reason for jwksUri, and the normalized path handed back (what the proxy forwards).
#include <gtest/gtest.h>

#include <memory>

#include "jwt_test_util.h"
#include "test_util.h"

namespace mg::policy::test {
namespace {

using jwt::testing::jwks_of;
using jwt::testing::make_key;
using jwt::testing::sign_token;

constexpr const char* kUri = "https://keys.example.com/jwks.json";

std::string policies() {
  return std::string(
             "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: jwt\n"
             "  namespace: default\nspec:\n  jwtRules:\n  - issuer: \"issuer-1\"\n    jwksUri: \"") +
         kUri + "\"\n---\n" +
         ap("require-jwt",
            "  rules:\n  - from:\n    - source:\n        requestPrincipals: [\"issuer-1/*\"]\n"
            "    to:\n    - operation:\n        paths: [\"/details/*\"]");
}

std::shared_ptr<const AuthzSnapshot> snapshot_of(const std::string& yaml) {
  auto set = must_parse(yaml);
  Req r;
  auto snap = compile_snapshot(set, destination_workload(r.build()), MeshConfig{});
  EXPECT_TRUE(snap);
  return snap ? *snap : nullptr;
}

Request with_token(const std::string& token, const std::string& path = "/details/1") {
  Req r;
  r.path = path;
  r.headers = {{"authorization", "Bearer " + token}};
  return r.build();
}

const nlohmann::json kClaims = {{"iss", "issuer-1"}, {"sub", "alice"}, {"exp", 4102444800}};

TEST(DecideIo, JwksUriKeysComeFromTheCallersProvider) {
  auto snap = snapshot_of(policies());
  ASSERT_TRUE(snap);
  auto k1 = make_key(jwt::Alg::RS256, "k1");
  auto k2 = make_key(jwt::Alg::RS256, "k2");
  const std::string t1 = sign_token(k1, nlohmann::json::object(), kClaims);
  const std::string t2 = sign_token(k2, nlohmann::json::object(), kClaims);

  auto provider = std::make_shared<jwt::JwksProvider>();
  jwt::Authenticator authenticator(snap->jwt_rules(), provider);
  DecideIo io;
  io.authenticator = &authenticator;

  // No keys yet: fail closed with 401.
  auto d = decide(*snap, with_token(t1), 1700000000, io);
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(d.status, 401);
  EXPECT_EQ(d.reason, ReasonCode::RequestAuthnFailed);
  EXPECT_TRUE(io.auth.rejected());

  ASSERT_TRUE(provider->set_jwks_json(kUri, jwks_of({&k1})));
  d = decide(*snap, with_token(t1), 1700000000, io);
  EXPECT_TRUE(d.allow) << describe(d);
  ASSERT_EQ(io.auth.status, jwt::JwtStatus::Ok);
  ASSERT_EQ(io.auth.tokens.size(), 1u);
  EXPECT_EQ(io.auth.tokens[0].token->auth.principal, "issuer-1/alice");
  EXPECT_EQ(decide(*snap, with_token(t2), 1700000000, io).status, 401) << "k2 is not published yet";

  // Rotation: the new key set replaces the old one, also for tokens verified (and cached) before.
  ASSERT_TRUE(provider->set_jwks_json(kUri, jwks_of({&k2})));
  EXPECT_TRUE(decide(*snap, with_token(t2), 1700000000, io).allow);
  EXPECT_EQ(decide(*snap, with_token(t1), 1700000000, io).status, 401);

  // No token: passes request authentication, then the require-principal ALLOW does not match.
  Req anonymous;
  d = decide(*snap, anonymous.build(), 1700000000, io);
  EXPECT_EQ(d.status, 403);
  EXPECT_EQ(io.auth.status, jwt::JwtStatus::Missing);
}

TEST(DecideIo, OfflineJwksUriFailsClosedWithAClearReason) {
  auto snap = snapshot_of(policies());
  ASSERT_TRUE(snap);
  auto k1 = make_key(jwt::Alg::RS256, "k1");
  const auto d = decide(*snap, with_token(sign_token(k1, nlohmann::json::object(), kClaims)), 1700000000);
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(d.status, 401);
  EXPECT_NE(describe(d).find("jwksUri"), std::string::npos) << describe(d);
}

TEST(DecideIo, HandsBackTheNormalizedPathItAuthorized) {
  const std::string yaml =
      ap("allow-details", "  rules:\n  - to:\n    - operation:\n        paths: [\"/details/*\"]");
  auto snap = snapshot_of(yaml);
  ASSERT_TRUE(snap);
  DecideIo io;
  Req r;
  r.path = "/admin/../details/%37?q=/admin";
  auto d = decide(*snap, r.build(), 0, io);
  EXPECT_TRUE(d.allow) << describe(d);
  EXPECT_EQ(io.normalized_path, "/details/7") << "BASE: dot segments and unreserved escapes, no query";

  r.path = "/details/../admin";
  d = decide(*snap, r.build(), 0, io);
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(io.normalized_path, "/admin");

  r.path = "/details/%00";
  d = decide(*snap, r.build(), 0, io);
  EXPECT_EQ(d.status, 400);
  EXPECT_EQ(io.normalized_path, "") << "nothing was authorized";

  Req tcp;
  tcp.http = false;
  d = decide(*snap, tcp.build(), 0, io);
  EXPECT_EQ(io.normalized_path, "");

  // The mesh setting decides the form handed back.
  MeshConfig merge;
  merge.path_normalization = PathNormalization::MergeSlashes;
  auto set = must_parse(yaml);
  auto merged = compile_snapshot(set, destination_workload(r.build()), merge);
  ASSERT_TRUE(merged);
  r.path = "/admin/..//details/7";
  EXPECT_TRUE(decide(**merged, r.build(), 0, io).allow);
  EXPECT_EQ(io.normalized_path, "/details/7");
}

}  // namespace
}  // namespace mg::policy::test
