#include "jwt/claims.h"

#include <gtest/gtest.h>

namespace mg::jwt {
namespace {

const nlohmann::json kPayload = nlohmann::json::parse(R"({
  "iss":"i","sub":"s","scope":"read write  admin","permission":"p1 p2","groups":["dev","ops"],
  "nested":{"team":{"name":"blue","id":7},"list":["x","y"]},"flag":true,"n":42,
  "evil":"a\r\nx-injected: 1","arr_obj":[{"a":1}]})");

std::vector<std::string> path(std::initializer_list<const char*> p) { return {p.begin(), p.end()}; }

TEST(JwtClaims, ScopeAndPermissionAreSplitAtTopLevel) {
  auto c = normalize_claims(kPayload);
  EXPECT_EQ(c["scope"], nlohmann::json({"read", "write", "admin"}));
  EXPECT_EQ(c["permission"], nlohmann::json({"p1", "p2"}));
  EXPECT_EQ(c["groups"], kPayload["groups"]);
  EXPECT_TRUE(claim_has_value(c, path({"scope"}), "write"));
  EXPECT_FALSE(claim_has_value(c, path({"scope"}), "read write"));
  // Already a list: left alone.
  auto already = normalize_claims(nlohmann::json::parse(R"({"scope":["a b"]})"));
  EXPECT_EQ(already["scope"], nlohmann::json({"a b"}));
}

TEST(JwtClaims, NestedAndListLookups) {
  auto c = normalize_claims(kPayload);
  EXPECT_TRUE(claim_has_value(c, path({"nested", "team", "name"}), "blue"));
  EXPECT_TRUE(claim_has_value(c, path({"nested", "team", "id"}), "7"));
  EXPECT_TRUE(claim_has_value(c, path({"nested", "list"}), "y"));
  EXPECT_TRUE(claim_has_value(c, path({"groups"}), "ops"));
  EXPECT_FALSE(claim_has_value(c, path({"groups"}), "admin"));
  EXPECT_FALSE(claim_has_value(c, path({"nested", "team"}), "blue"));  // object is not a value
  EXPECT_FALSE(claim_has_value(c, path({"nested", "missing"}), ""));
  EXPECT_FALSE(claim_has_value(c, path({"groups", "dev"}), "dev"));  // cannot walk into a list
  EXPECT_TRUE(claim_has_value(c, path({"flag"}), "true"));
  EXPECT_EQ(claim_strings(c, path({"nested", "list"})), (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(claim_strings(c, path({})).empty());
  EXPECT_EQ(find_claim(c, path({})), nullptr);
}

TEST(JwtClaims, HeaderValues) {
  EXPECT_EQ(*claim_header_value(kPayload, "sub"), "s");
  EXPECT_EQ(*claim_header_value(kPayload, "nested.team.name"), "blue");
  EXPECT_EQ(*claim_header_value(kPayload, "n"), "42");
  EXPECT_EQ(*claim_header_value(kPayload, "groups"), "dev,ops");
  EXPECT_FALSE(claim_header_value(kPayload, "nested.team"));
  EXPECT_FALSE(claim_header_value(kPayload, "absent"));
  EXPECT_FALSE(claim_header_value(kPayload, "arr_obj"));
  // CR/LF would let a token author add headers: never emitted.
  EXPECT_FALSE(claim_header_value(kPayload, "evil"));
}

TEST(JwtClaims, SplitClaimPath) {
  EXPECT_EQ(split_claim_path("a.b.c"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(split_claim_path("a"), (std::vector<std::string>{"a"}));
}

}  // namespace
}  // namespace mg::jwt
