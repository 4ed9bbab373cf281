// control/token.h: bootstrap tokens minted with a real P-256 key and verified by the shared JWS
// code; every way a token can be wrong maps to its own stable code.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "control/token.h"
#include "crypto/openssl.h"
#include "jwt/base64url.h"
#include "jwt/sign.h"

namespace mg::control {
namespace {

constexpr int64_t kNow = 1700000000;
const char* const kIssuer = "meshguard-control.example";

crypto::PKeyPtr key_of(crypto::KeyType type) {
  auto k = crypto::generate_key(type);
  if (!k) throw std::runtime_error(k.error().to_string());
  return std::move(*k);
}

BootstrapClaims claims(std::string id = "") {
  return {"payments", "api-server", std::move(id), kNow, kNow + 3600};
}

class BootstrapToken : public ::testing::Test {
 protected:
  crypto::PKeyPtr key = key_of(crypto::KeyType::EcP256);

  std::string mint(const BootstrapClaims& c) {
    auto t = mint_bootstrap_token(key.get(), kIssuer, c);
    if (!t) ADD_FAILURE() << t.error().to_string();
    return t ? *t : std::string();
  }
  // A token with the same key but a hand-written header / payload.
  std::string forge(const nlohmann::json& header, const nlohmann::json& payload) {
    auto t = jwt::sign_compact(jwt::Alg::ES256, key.get(), header.dump(), payload.dump());
    if (!t) ADD_FAILURE() << t.error().to_string();
    return t ? *t : std::string();
  }
  nlohmann::json payload() const {
    return {{"iss", kIssuer},
            {"aud", "meshguard-bootstrap"},
            {"sub", "ns/payments/sa/api-server"},
            {"iat", kNow},
            {"nbf", kNow},
            {"exp", kNow + 3600},
            {"jti", "id-1"}};
  }
  std::string code_of(const std::string& token, int64_t now = kNow + 10) {
    auto r = verify_bootstrap_token(token, key.get(), kIssuer, now);
    return r ? "ok" : r.error().code;
  }
};

TEST_F(BootstrapToken, ValidTokenRoundTrips) {
  const std::string token = mint(claims("token-42"));
  auto r = verify_bootstrap_token(token, key.get(), kIssuer, kNow + 10);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->ns, "payments");
  EXPECT_EQ(r->service_account, "api-server");
  EXPECT_EQ(r->id, "token-42");
  EXPECT_EQ(r->issued_at, kNow);
  EXPECT_EQ(r->expires_at, kNow + 3600);

  // The claims on the wire are the documented ones.
  const auto dot = token.find('.');
  auto header = nlohmann::json::parse(*jwt::base64url_decode(token.substr(0, dot)));
  EXPECT_EQ(header["alg"], "ES256");
  const auto dot2 = token.find('.', dot + 1);
  auto body = nlohmann::json::parse(*jwt::base64url_decode(token.substr(dot + 1, dot2 - dot - 1)));
  EXPECT_EQ(body["iss"], kIssuer);
  EXPECT_EQ(body["aud"], "meshguard-bootstrap");
  EXPECT_EQ(body["sub"], "ns/payments/sa/api-server");
  EXPECT_EQ(body["nbf"], kNow);
  EXPECT_EQ(body["jti"], "token-42");

  // A public-key-only copy verifies too (the proxy side never needs the private key).
  auto pub = crypto::parse_private_key_pem(crypto::private_key_to_pem(key.get()));
  ASSERT_TRUE(pub);
  EXPECT_TRUE(verify_bootstrap_token(token, pub->get(), kIssuer, kNow));
}

TEST_F(BootstrapToken, NamesThatLookLikeTheSeparators) {
  for (const auto& [ns, sa] : std::vector<std::pair<std::string, std::string>>{
           {"sa", "sa"}, {"ns", "ns"}, {"sa", "x"}, {"x", "sa"}, {"ns.sa", "sa-ns"}}) {
    SCOPED_TRACE(ns + "/" + sa);
    auto r = verify_bootstrap_token(mint({ns, sa, "", kNow, kNow + 60}), key.get(), kIssuer, kNow);
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->ns, ns);
    EXPECT_EQ(r->service_account, sa);
  }
}

TEST_F(BootstrapToken, RandomIdWhenNoneGiven) {
  auto a = verify_bootstrap_token(mint(claims()), key.get(), kIssuer, kNow);
  auto b = verify_bootstrap_token(mint(claims()), key.get(), kIssuer, kNow);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->id.size(), 32u);
  EXPECT_NE(a->id, b->id);
}

TEST_F(BootstrapToken, TimeWindowWithSkew) {
  const std::string token = mint(claims());
  EXPECT_EQ(code_of(token, kNow + 3600 + 60), "ok");  // skew
  EXPECT_EQ(code_of(token, kNow + 3600 + 61), "token.expired");
  EXPECT_EQ(code_of(token, kNow - 60), "ok");
  EXPECT_EQ(code_of(token, kNow - 61), "token.not_yet_valid");
  auto future_iat = payload();
  future_iat["nbf"] = kNow - 100;
  future_iat["iat"] = kNow + 1000;
  EXPECT_EQ(code_of(forge({{"alg", "ES256"}}, future_iat), kNow), "token.not_yet_valid");
}

TEST_F(BootstrapToken, TamperedPayloadOrSignature) {
  const std::string token = mint(claims());
  const auto dot = token.find('.'), dot2 = token.find('.', dot + 1);
  // Same signature, payload for another namespace.
  auto other = payload();
  other["sub"] = "ns/kube-system/sa/admin";
  const std::string swapped =
      token.substr(0, dot + 1) + jwt::base64url_encode(other.dump()) + token.substr(dot2);
  EXPECT_EQ(code_of(swapped), "token.bad_signature");
  // One signature character changed (kept canonical base64url by staying in 'A'..'P' range).
  std::string flipped = token;
  flipped[dot2 + 5] = flipped[dot2 + 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(code_of(flipped), "token.bad_signature");
  // Truncated signature: its last byte (2 base64url characters) cut, so it still decodes.
  ASSERT_EQ(token.size() - dot2 - 1, 86u);
  EXPECT_EQ(code_of(token.substr(0, token.size() - 2)), "token.bad_signature");
  // A signature that is not base64url at all.
  EXPECT_EQ(code_of(token.substr(0, dot2 + 1) + "!!!!"), "token.malformed");
}

TEST_F(BootstrapToken, OtherKeysAreRefused) {
  const std::string token = mint(claims());
  auto other = key_of(crypto::KeyType::EcP256);
  auto r = verify_bootstrap_token(token, other.get(), kIssuer, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "token.bad_signature");
  auto rsa = key_of(crypto::KeyType::Rsa2048);
  auto bad_key = verify_bootstrap_token(token, rsa.get(), kIssuer, kNow);
  ASSERT_FALSE(bad_key);
  EXPECT_EQ(bad_key.error().code, "token.bad_key");
  EXPECT_FALSE(mint_bootstrap_token(rsa.get(), kIssuer, claims()));
  EXPECT_EQ(mint_bootstrap_token(nullptr, kIssuer, claims()).error().code, "token.bad_key");
}

TEST_F(BootstrapToken, OnlyEs256) {
  const std::string body = jwt::base64url_encode(payload().dump());
  // alg none, with and without a signature segment.
  EXPECT_EQ(code_of(jwt::base64url_encode(R"({"alg":"none"})") + "." + body + "."), "token.bad_algorithm");
  EXPECT_EQ(
      code_of(jwt::base64url_encode(R"({"alg":"none"})") + "." + body + "." + jwt::base64url_encode("x")),
      "token.bad_algorithm");
  // HS256 keyed with anything the attacker might guess (here: the public key's PEM).
  EXPECT_EQ(code_of(jwt::base64url_encode(R"({"alg":"HS256"})") + "." + body + "." +
                    jwt::base64url_encode(std::string(32, 'k'))),
            "token.bad_algorithm");
  // A real RS256 token: a supported JOSE algorithm, but not ours.
  auto rsa = key_of(crypto::KeyType::Rsa2048);
  auto rs = jwt::sign_compact(jwt::Alg::RS256, rsa.get(), R"({"alg":"RS256"})", payload().dump());
  ASSERT_TRUE(rs);
  EXPECT_EQ(code_of(*rs), "token.bad_algorithm");
  // ES384 header over an ES256 signature.
  EXPECT_EQ(code_of(forge({{"alg", "ES384"}}, payload())), "token.bad_algorithm");
}

TEST_F(BootstrapToken, WrongClaims) {
  auto with = [&](const char* name, nlohmann::json value) {
    auto p = payload();
    if (value.is_null())
      p.erase(name);
    else
      p[name] = value;
    return code_of(forge({{"alg", "ES256"}}, p));
  };
  EXPECT_EQ(with("iss", "someone-else"), "token.wrong_issuer");
  EXPECT_EQ(with("iss", nullptr), "token.wrong_issuer");
  EXPECT_EQ(with("aud", "istio-ca"), "token.wrong_audience");
  EXPECT_EQ(with("aud", nlohmann::json::array({"a", "b"})), "token.wrong_audience");
  EXPECT_EQ(with("aud", nlohmann::json::array({"a", "meshguard-bootstrap"})), "ok");
  EXPECT_EQ(with("aud", nullptr), "token.wrong_audience");
  EXPECT_EQ(with("exp", nullptr), "token.malformed");
  EXPECT_EQ(with("nbf", nullptr), "token.malformed");
  EXPECT_EQ(with("iat", nullptr), "token.malformed");
  EXPECT_EQ(with("exp", "tomorrow"), "token.malformed");
  EXPECT_EQ(with("jti", nullptr), "token.malformed");
  EXPECT_EQ(with("jti", ""), "token.malformed");
  EXPECT_EQ(with("jti", 7), "token.malformed");
  for (const char* sub : {"payments/api-server", "ns/payments/sa/", "ns//sa/x", "ns/a/sa/b/c", "ns/a/b/sa/c",
                          "sa/x/ns/y", "ns/a b/sa/c", "ns/../sa/c", "", "ns/a/sa/b%2F"}) {
    SCOPED_TRACE(sub);
    EXPECT_EQ(with("sub", sub), "token.bad_subject");
  }
  EXPECT_EQ(with("sub", nullptr), "token.bad_subject");
  EXPECT_EQ(with("sub", 5), "token.malformed");
}

TEST_F(BootstrapToken, Garbage) {
  for (const std::string& t :
       std::vector<std::string>{"", "x", "a.b", "a.b.c", "...", "eyJ.eyJ.", "e30.e30.e30",
                                std::string(20000, 'a'), std::string("\0\0\0", 3)}) {
    EXPECT_EQ(code_of(t), "token.malformed") << t.substr(0, 20);
  }
  auto r = verify_bootstrap_token(mint(claims()), nullptr, kIssuer, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "token.bad_key");
}

TEST_F(BootstrapToken, MintRefusesBadClaims) {
  for (const auto& c : std::vector<BootstrapClaims>{
           {"", "sa", "", kNow, kNow + 1},
           {"ns", "", "", kNow, kNow + 1},
           {"n/s", "sa", "", kNow, kNow + 1},
           {"ns", "s a", "", kNow, kNow + 1},
           {"ns", "sa", "", kNow, kNow},
           {"ns", "sa", "", 0, kNow},
           {"ns", "sa", std::string(300, 'i'), kNow, kNow + 1},
       }) {
    auto r = mint_bootstrap_token(key.get(), kIssuer, c);
    ASSERT_FALSE(r) << c.ns << "/" << c.service_account;
    EXPECT_EQ(r.error().code, "token.bad_claims");
  }
  EXPECT_EQ(mint_bootstrap_token(key.get(), "", claims()).error().code, "token.bad_claims");
}

}  // namespace
}  // namespace mg::control

namespace mg::control {
namespace {

// Several meshes (docs/MESHES.md): the token says which mesh the workload joins; none = default.
TEST(BootstrapTokenMesh, MeshClaimRoundTripsAndIsOptional) {
  auto key = crypto::generate_key(crypto::KeyType::EcP256);
  ASSERT_TRUE(key);
  const int64_t now = 1'800'000'000;
  BootstrapClaims c{"shop", "web", "id-1", now, now + 600};
  auto plain = mint_bootstrap_token(key->get(), "iss", c);
  ASSERT_TRUE(plain);
  auto read = verify_bootstrap_token(*plain, key->get(), "iss", now + 1);
  ASSERT_TRUE(read) << read.error().to_string();
  EXPECT_EQ(read->mesh, "");
  c.mesh = "mesh-b";
  auto with_mesh = mint_bootstrap_token(key->get(), "iss", c);
  ASSERT_TRUE(with_mesh);
  read = verify_bootstrap_token(*with_mesh, key->get(), "iss", now + 1);
  ASSERT_TRUE(read) << read.error().to_string();
  EXPECT_EQ(read->mesh, "mesh-b");
}

}  // namespace
}  // namespace mg::control
