// extauthz/check.h: Envoy's HTTP ext_authz protocol as Istio configures it — the check request
// built from the client's request, the provider's response read into a CheckResult, Istio's
// header patterns, failOpen / statusOnError, the forwarded request's mutations.
#include "extauthz/check.h"

#include <gtest/gtest.h>

#include "http/parser.h"

namespace mg::extauthz {
namespace {

policy::ExtensionProvider provider() {
  policy::ExtensionProvider p;
  p.name = "ext";
  p.service = "127.0.0.1";
  p.port = 9000;
  p.path_prefix = "/check";
  p.include_request_headers_in_check = {"x-user", "x-team-*", "*-tenant"};
  p.include_additional_headers_in_check = {{"x-from-mesh", "meshguard"}, {"x-user", "overridden"}};
  p.headers_to_upstream_on_allow = {"x-auth-*"};
  p.headers_to_downstream_on_deny = {"x-reason"};
  return p;
}

http::Request parse_request(const std::string& head) {
  auto r = http::parse_request_head(head, http::Limits{});
  EXPECT_TRUE(r) << (r ? "" : r.error().reason);
  return r ? *r : http::Request{};
}

http::Response parse_response(const std::string& head) {
  auto r = http::parse_response_head(head, http::Limits{}, "GET");
  EXPECT_TRUE(r) << (r ? "" : r.error().reason);
  return r ? *r : http::Response{};
}

TEST(HeaderPatterns, ExactPrefixSuffixCaseInsensitive) {
  EXPECT_TRUE(header_pattern_matches("x-user", "X-User"));
  EXPECT_FALSE(header_pattern_matches("x-user", "x-users"));
  EXPECT_TRUE(header_pattern_matches("x-team-*", "x-team-a"));
  EXPECT_TRUE(header_pattern_matches("x-team-*", "X-TEAM-"));
  EXPECT_FALSE(header_pattern_matches("x-team-*", "x-tea"));
  EXPECT_TRUE(header_pattern_matches("*-tenant", "X-Acme-Tenant"));
  EXPECT_FALSE(header_pattern_matches("*-tenant", "x-tenant-id"));
  EXPECT_FALSE(any_pattern_matches({}, "x"));
}

TEST(HttpCheck, RequestCarriesOnlyTheAllowedHeaders) {
  const auto original = parse_request(
      "POST /api/items?id=7 HTTP/1.1\r\nHost: shop:8000\r\nAuthorization: Bearer t\r\nX-User: alice\r\n"
      "X-Team-Blue: yes\r\nacme-tenant: a\r\nCookie: secret\r\nContent-Length: 5\r\n"
      "Transfer-Encoding-Ish: no\r\n\r\n");
  const http::Request check = build_http_check(provider(), original);
  EXPECT_EQ(check.method, "POST");
  EXPECT_EQ(check.target, "/check/api/items?id=7");
  const std::string head = http::serialize_request_head(check);
  EXPECT_EQ(head.rfind("POST /check/api/items?id=7 HTTP/1.1\r\n", 0), 0u) << head;
  EXPECT_EQ(check.headers.get("host"), "shop:8000");
  EXPECT_EQ(check.headers.get("authorization"), "Bearer t");
  EXPECT_EQ(check.headers.get("x-team-blue"), "yes");
  EXPECT_EQ(check.headers.get("acme-tenant"), "a");
  // includeAdditionalHeadersInCheck sets its value, replacing the copied one.
  EXPECT_EQ(check.headers.get_all("x-user"), std::vector<std::string_view>{"overridden"});
  EXPECT_EQ(check.headers.get("x-from-mesh"), "meshguard");
  EXPECT_FALSE(check.headers.contains("cookie"));
  EXPECT_FALSE(check.headers.contains("transfer-encoding-ish"));
  // No body is sent: Content-Length 0, whatever the client's was.
  EXPECT_EQ(check.headers.get_all("content-length"), std::vector<std::string_view>{"0"});
  EXPECT_EQ(check.framing, http::BodyFraming::None);
  // The serialized head parses back (the provider gets a valid HTTP/1.1 request).
  auto back = http::parse_request_head(head, http::Limits{});
  ASSERT_TRUE(back) << head;
  EXPECT_EQ(back->path, "/check/api/items");
  EXPECT_EQ(back->query, "id=7");
}

TEST(HttpCheck, BufferedBodyIsTheChecksBody) {
  const auto original = parse_request("POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  CheckBody body{true, "hello", true};
  const http::Request check = build_http_check(provider(), original, &body);
  EXPECT_EQ(check.headers.get_all("content-length"), std::vector<std::string_view>{"5"});
  EXPECT_EQ(check.headers.get("x-envoy-auth-partial-body"), "true");
  EXPECT_FALSE(check.headers.contains("transfer-encoding"));
  EXPECT_EQ(check.framing, http::BodyFraming::ContentLength);
  CheckBody none;  // includeRequestBodyInCheck does not apply
  EXPECT_FALSE(build_http_check(provider(), original, &none).headers.contains("x-envoy-auth-partial-body"));
}

TEST(HttpCheck, NoPathPrefixKeepsThePath) {
  auto p = provider();
  p.path_prefix.clear();
  const http::Request check = build_http_check(p, parse_request("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(check.target, "/");
  EXPECT_FALSE(check.headers.contains("authorization"));
}

TEST(HttpCheck, OkAllowsAndCopiesOnlyHeadersToUpstreamOnAllow) {
  const auto resp = parse_response(
      "HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Auth-Role: a\r\nX-Auth-Role: b\r\nX-Other: no\r\n"
      "Content-Length: 2\r\n\r\n");
  CheckResult r = interpret_http_check(provider(), resp, "ok");
  ASSERT_EQ(r.kind, CheckResult::Kind::Allow);
  ASSERT_EQ(r.upstream_set.size(), 2u);
  EXPECT_EQ(r.upstream_set[0].name, "X-Auth-User");
  EXPECT_EQ(r.upstream_set[1].value, "a");
  ASSERT_EQ(r.upstream_append.size(), 1u);  // a repeated field stays repeated
  EXPECT_EQ(r.upstream_append[0].value, "b");

  http::Headers forwarded;
  forwarded.add("X-Auth-User", "mallory");  // a client's copy is replaced
  forwarded.add("X-Keep", "1");
  apply_upstream_mutations(r, forwarded);
  EXPECT_EQ(forwarded.get_all("x-auth-user"), std::vector<std::string_view>{"alice"});
  EXPECT_EQ(forwarded.get_all("x-auth-role"), (std::vector<std::string_view>{"a", "b"}));
  EXPECT_FALSE(forwarded.contains("x-other"));
  EXPECT_TRUE(forwarded.contains("x-keep"));

  auto none = provider();
  none.headers_to_upstream_on_allow.clear();
  EXPECT_TRUE(interpret_http_check(none, resp, "").upstream_set.empty());  // forwarded unchanged
}

TEST(HttpCheck, OtherStatusDeniesWithTheProvidersAnswer) {
  const auto resp = parse_response(
      "HTTP/1.1 401 Unauthorized\r\nX-Reason: expired\r\nWWW-Authenticate: Bearer\r\nLocation: /login\r\n"
      "X-Secret: internal\r\nHost: authz\r\nConnection: keep-alive\r\nContent-Length: 6\r\n\r\n");
  CheckResult r = interpret_http_check(provider(), resp, "nope!\n");
  ASSERT_EQ(r.kind, CheckResult::Kind::Deny);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, "nope!\n");
  std::vector<std::string> names;
  for (const auto& h : r.downstream_headers) names.push_back(h.name);
  EXPECT_EQ(names, (std::vector<std::string>{"X-Reason", "WWW-Authenticate", "Location"}));

  auto all = provider();
  all.headers_to_downstream_on_deny.clear();  // none named: every header but Host (and framing)
  names.clear();
  for (const auto& h : interpret_http_check(all, resp, "").downstream_headers) names.push_back(h.name);
  EXPECT_EQ(names, (std::vector<std::string>{"X-Reason", "WWW-Authenticate", "Location", "X-Secret"}));

  EXPECT_EQ(
      interpret_http_check(provider(), parse_response("HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"), "")
          .kind,
      CheckResult::Kind::Deny);
}

TEST(HttpCheck, ServerErrorIsAnError) {
  CheckResult r = interpret_http_check(
      provider(), parse_response("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"), "");
  EXPECT_EQ(r.kind, CheckResult::Kind::Error);
  EXPECT_NE(r.error.find("503"), std::string::npos);
}

TEST(OnError, FailOpenOrStatusOnError) {
  auto p = provider();
  EXPECT_FALSE(on_error(p).allow);
  EXPECT_EQ(on_error(p).status, 403);  // Istio's default
  p.status_on_error = 503;
  EXPECT_EQ(on_error(p).status, 503);
  p.fail_open = true;
  EXPECT_TRUE(on_error(p).allow);
}

TEST(Mutations, OrderRemoveSetAppendAddIfAbsentOverwriteIfPresent) {
  CheckResult r;
  r.kind = CheckResult::Kind::Allow;
  r.upstream_remove = {"x-gone"};
  r.upstream_set = {{"x-set", "new"}};
  r.upstream_append = {{"x-multi", "2"}};
  r.upstream_add_if_absent = {{"x-present", "ignored"}, {"x-absent", "added"}};
  r.upstream_set_if_present = {{"x-multi", "only"}, {"x-nowhere", "ignored"}};
  http::Headers h;
  h.add("x-gone", "1");
  h.add("x-set", "old");
  h.add("x-multi", "1");
  h.add("x-present", "kept");
  apply_upstream_mutations(r, h);
  EXPECT_FALSE(h.contains("x-gone"));
  EXPECT_EQ(h.get("x-set"), "new");
  EXPECT_EQ(h.get_all("x-multi"), std::vector<std::string_view>{"only"});
  EXPECT_EQ(h.get("x-present"), "kept");
  EXPECT_EQ(h.get("x-absent"), "added");
  EXPECT_FALSE(h.contains("x-nowhere"));
}

}  // namespace
}  // namespace mg::extauthz
