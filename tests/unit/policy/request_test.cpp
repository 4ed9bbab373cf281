#include <gtest/gtest.h>

#include "policy/request.h"
#include "policy/request_authn.h"

namespace mg::policy {
namespace {

TEST(RequestJson, ContractExample) {
  auto r = parse_request_json(R"({
    "destination": {"namespace": "default", "labels": {"app": "details"},
                    "serviceAccount": "bookinfo-details", "ip": "10.0.0.2", "port": 9080},
    "source": {"principal": "spiffe://cluster.local/ns/default/sa/sleep", "ip": "10.0.0.1"},
    "request": {"method": "GET", "path": "/details/1", "host": "details:9080",
                "headers": {"Authorization": "Bearer eyJ..."}},
    "time": 1700000000})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->source_principal, "cluster.local/ns/default/sa/sleep");  // spiffe:// stripped
  EXPECT_EQ(principal_namespace(r->source_principal), "default");
  EXPECT_EQ(r->destination_port, 9080u);
  ASSERT_TRUE(r->http);
  ASSERT_NE(r->http->header("AUTHORIZATION"), nullptr);
  EXPECT_EQ(*r->time, 1700000000);
}

TEST(RequestJson, TcpAndPlaintext) {
  auto r = parse_request_json(R"({"destination": {"namespace": "db", "port": 5432}})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->http);
  EXPECT_TRUE(r->source_principal.empty());
}

TEST(RequestJson, Rejections) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "not valid JSON"},
      {"[]", "must be an object"},
      {R"({"destination": {"namespace": "a", "port": 1}, "extra": 1})", "unknown field \"extra\""},
      {R"({"destination": {"namespace": "a", "port": 1, "name": "x"}})", "unknown field \"name\""},
      {R"({"destination": {"port": 1}})", "destination.namespace"},
      {R"({"destination": {"namespace": "a"}})", "destination.port"},
      {R"({"destination": {"namespace": "a", "port": 70000}})", "destination.port"},
      {R"({"destination": {"namespace": "a", "port": "80"}})", "destination.port"},
      {R"({"destination": {"namespace": "a", "port": 1}, "source": {"principal": 5}})", "source.principal"},
      {R"({"destination": {"namespace": "a", "port": 1}, "source": {"principal": ""}})", "source.principal"},
      {R"({"destination": {"namespace": "a", "port": 1}, "source": {"ip": "x"}})", "source.ip"},
      {R"({"destination": {"namespace": "a", "port": 1}, "request": {"path": "/"}})", "request.method"},
      {R"({"destination": {"namespace": "a", "port": 1}, "request": {"method": "GET"}})", "request.path"},
      {R"({"destination": {"namespace": "a", "port": 1}, "request": {"method": "GET", "path": "/", "headers": {"a": 1}}})",
       "request.headers.a"},
      {R"({"destination": {"namespace": "a", "port": 1}, "time": "now"})", "time"},
  };
  for (const auto& [json, expect] : cases) {
    SCOPED_TRACE(json);
    auto r = parse_request_json(json);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find(expect), std::string::npos) << r.error().message;
  }
}

TEST(RequestAuthn, TokenLocationsAndFailClosed) {
  jwt::JwtRule defaults;
  defaults.issuer = "iss";
  jwt::JwtRule custom = defaults;
  custom.from_headers = {{"x-jwt", "Token "}};
  custom.from_params = {"tok"};
  custom.from_cookies = {"session"};
  struct Case {
    const char* name;
    jwt::JwtRule rule;
    HttpRequest req;
    bool token;
  };
  const std::vector<Case> cases = {
      {"default bearer header", defaults, {"GET", "/", "h", {{"authorization", "Bearer abc"}}}, true},
      {"default bearer is case-insensitive on the scheme", defaults, {"GET", "/", "h", {{"Authorization", "bearer abc"}}}, true},
      {"basic auth is not a token", defaults, {"GET", "/", "h", {{"authorization", "Basic abc"}}}, false},
      {"default access_token param", defaults, {"GET", "/a?x=1&access_token=abc", "h", {}}, true},
      {"empty access_token", defaults, {"GET", "/a?access_token=", "h", {}}, false},
      {"no token", defaults, {"GET", "/", "h", {}}, false},
      {"custom header", custom, {"GET", "/", "h", {{"x-jwt", "Token abc"}}}, true},
      {"custom rule ignores default header", custom, {"GET", "/", "h", {{"authorization", "Bearer abc"}}}, false},
      {"custom param", custom, {"GET", "/?tok=abc", "h", {}}, true},
      {"custom cookie", custom, {"GET", "/", "h", {{"cookie", "a=1; session=abc"}}}, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(!find_token(c.rule, c.req).empty(), c.token);
    auto auth = authenticate_request({c.rule}, c.req, 0);
    if (c.token) {
      EXPECT_EQ(auth.outcome, jwt::RequestAuth::Outcome::Rejected);
      EXPECT_EQ(auth.status, 401);
    } else {
      EXPECT_EQ(auth.outcome, jwt::RequestAuth::Outcome::NoToken);
    }
  }
  // No rules: tokens are ignored.
  EXPECT_EQ(authenticate_request({}, cases[0].req, 0).outcome, jwt::RequestAuth::Outcome::NoToken);
}

}  // namespace
}  // namespace mg::policy
