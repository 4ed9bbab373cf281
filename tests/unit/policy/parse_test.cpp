#include <gtest/gtest.h>

#include "policy/parse.h"

namespace mg::policy {
namespace {

const char* kFull = R"(apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: httpbin
  namespace: foo
  annotations:
    istio.io/dry-run: "true"
spec:
  selector:
    matchLabels:
      app: httpbin
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep"]
        notPrincipals: ["*evil"]
        requestPrincipals: ["iss/sub"]
        notRequestPrincipals: ["bad/*"]
        namespaces: ["test"]
        notNamespaces: ["kube-*"]
        ipBlocks: ["10.0.0.1", "10.0.0.0/8", "2001:db8::/32"]
        notIpBlocks: ["10.9.0.0/16"]
        remoteIpBlocks: ["203.0.113.0/24"]
        notRemoteIpBlocks: ["::1"]
    to:
    - operation:
        hosts: ["*.example.com"]
        notHosts: ["admin.example.com"]
        ports: ["8080"]
        notPorts: ["9090"]
        methods: ["GET"]
        notMethods: ["DELETE"]
        paths: ["/info*"]
        notPaths: ["*/secret"]
    when:
    - key: request.auth.claims[iss]
      values: ["https://accounts.google.com"]
    - key: request.headers[x-id]
      notValues: ["0"]
    - key: destination.port
      values: ["8080"]
    - key: source.ip
      values: ["10.0.0.0/8"]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: w
spec:
  selector:
    matchLabels:
      app: x
  portLevelMtls:
    8080:
      mode: DISABLE
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt
  namespace: foo
spec:
  jwtRules:
  - issuer: "testing@secure.istio.io"
    jwksUri: "https://raw.githubusercontent.com/istio/istio/release-1.20/security/tools/jwt/samples/jwks.json"
    audiences: ["a", "b"]
    fromHeaders:
    - name: x-jwt
      prefix: "Token "
    fromParams: ["token"]
    fromCookies: ["session"]
    outputPayloadToHeader: x-payload
    forwardOriginalToken: true
    outputClaimToHeaders:
    - header: x-sub
      claim: sub
    timeout: 2s
---
apiVersion: meshguard.io/v1alpha1
kind: Workload
metadata:
  name: details-1
  namespace: default
spec:
  serviceAccount: bookinfo-details
  labels: {app: details}
  address: 10.0.0.2
  ports: [9080]
)";

TEST(Parse, FullResources) {
  auto set = parse_resources(kFull, "full.yaml");
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_EQ(set->authorization_policies.size(), 1u);
  const auto& p = set->authorization_policies[0];
  EXPECT_EQ(p.meta.full_name(), "foo/httpbin");
  EXPECT_TRUE(p.meta.dry_run);
  EXPECT_EQ(p.meta.line, 1);
  EXPECT_EQ(p.selector.match_labels.at("app"), "httpbin");
  ASSERT_EQ(p.rules.size(), 1u);
  EXPECT_EQ(p.rules[0].from[0].ip_blocks.size(), 3u);
  EXPECT_EQ(p.rules[0].to[0].not_paths[0], "*/secret");
  EXPECT_EQ(p.rules[0].when.size(), 4u);
  ASSERT_EQ(set->peer_authentications.size(), 2u);
  EXPECT_EQ(set->peer_authentications[0].mode, MtlsMode::Strict);
  EXPECT_EQ(set->peer_authentications[1].meta.ns, "default");  // namespace defaults to "default"
  EXPECT_EQ(set->peer_authentications[1].port_level.at(8080), MtlsMode::Disable);
  ASSERT_EQ(set->request_authentications.size(), 1u);
  const auto& j = set->request_authentications[0].jwt_rules.at(0);
  EXPECT_EQ(j.issuer, "testing@secure.istio.io");
  EXPECT_EQ(j.from_headers.at(0).prefix, "Token ");
  EXPECT_EQ(j.from_params.at(0), "token");
  EXPECT_TRUE(j.forward_original_token);
  EXPECT_EQ(j.timeout_ms, 2000);
  EXPECT_EQ(j.output_claim_to_headers.at(0).claim, "sub");
  ASSERT_EQ(set->workloads.size(), 1u);
  EXPECT_EQ(set->workloads[0].ports.at(0), 9080u);
}

struct Bad {
  const char* name;
  std::string yaml;
  std::string expect;  // substring of the error, including "file:line"
};

std::string ap_spec(const std::string& spec) {
  return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\nspec:\n" + spec;
}

TEST(Parse, Rejections) {
  const std::vector<Bad> cases = {
      {"unknown spec field", ap_spec("  actions: DENY\n"), "bad.yaml:6: unknown field \"actions\""},
      {"unknown source field", ap_spec("  rules:\n  - from:\n    - source:\n        principal: [\"a\"]\n"),
       "bad.yaml:9: unknown field \"principal\""},
      {"bad action", ap_spec("  action: deny\n"), "bad.yaml:6: action must be"},
      {"star in the middle", ap_spec("  rules:\n  - to:\n    - operation:\n        paths: [\"/a*b\"]\n"),
       "bad.yaml:9:"},
      {"two stars", ap_spec("  rules:\n  - to:\n    - operation:\n        paths: [\"*a*\"]\n"),
       "only allowed once"},
      {"path template", ap_spec("  rules:\n  - to:\n    - operation:\n        paths: [\"/a/{*}\"]\n"),
       "path templates"},
      {"bad CIDR", ap_spec("  rules:\n  - from:\n    - source:\n        ipBlocks: [\"10.0.0.0/33\"]\n"),
       "bad prefix length"},
      {"bad IP", ap_spec("  rules:\n  - from:\n    - source:\n        ipBlocks: [\"10.0.0.256\"]\n"),
       "not an IP"},
      {"bad port", ap_spec("  rules:\n  - to:\n    - operation:\n        ports: [\"70000\"]\n"),
       "not a port"},
      {"port not a number", ap_spec("  rules:\n  - to:\n    - operation:\n        ports: [\"http\"]\n"),
       "not a port"},
      {"unknown when key",
       ap_spec("  rules:\n  - when:\n    - key: request.header[x]\n      values: [\"a\"]\n"),
       "bad.yaml:8: unknown when key"},
      {"experimental key",
       ap_spec("  rules:\n  - when:\n    - key: experimental.envoy.filters.a[b]\n      values: [\"a\"]\n"),
       "not supported"},
      {"when without values", ap_spec("  rules:\n  - when:\n    - key: source.ip\n"), "values or notValues"},
      {"when bad ip", ap_spec("  rules:\n  - when:\n    - key: source.ip\n      values: [\"x\"]\n"),
       "not an IP"},
      {"when bad port", ap_spec("  rules:\n  - when:\n    - key: destination.port\n      values: [\"-1\"]\n"),
       "not a port"},
      {"empty header key",
       ap_spec("  rules:\n  - when:\n    - key: request.headers[]\n      values: [\"a\"]\n"), "malformed"},
      {"empty source", ap_spec("  rules:\n  - from:\n    - source: {}\n"), "from.source must not be empty"},
      {"empty operation", ap_spec("  rules:\n  - to:\n    - operation: {}\n"),
       "to.operation must not be empty"},
      {"CUSTOM without provider", ap_spec("  action: CUSTOM\n"), "requires provider"},
      {"provider without CUSTOM", ap_spec("  provider:\n    name: x\n"), "only allowed with action CUSTOM"},
      {"targetRef", ap_spec("  targetRef:\n    kind: Gateway\n    name: x\n"), "not supported"},
      {"bad apiVersion",
       "apiVersion: security.istio.io/v2\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n",
       "apiVersion must be"},
      {"unknown kind", "apiVersion: security.istio.io/v1\nkind: Policy\nmetadata:\n  name: p\n",
       "unknown kind \"Policy\""},
      {"missing name",
       "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  namespace: x\n",
       "metadata.name is required"},
      {"missing metadata", "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nspec: {}\n",
       "metadata is required"},
      {"bad dry-run value",
       "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  annotations:\n  "
       "  istio.io/dry-run: \"yes\"\n",
       "dry-run"},
      {"duplicate field", ap_spec("  action: DENY\n  action: ALLOW\n"), "duplicate field"},
      {"bad mtls mode",
       "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: p\nspec:\n  mtls:\n   "
       " mode: strict\n",
       "bad.yaml:7: mtls.mode must be"},
      {"portLevelMtls without selector",
       "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: p\nspec:\n  "
       "portLevelMtls:\n    80:\n      mode: STRICT\n",
       "requires a workload selector"},
      {"portLevelMtls port 0",
       "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: p\nspec:\n  "
       "selector:\n    matchLabels: {a: b}\n  portLevelMtls:\n    0:\n      mode: STRICT\n",
       "not a port"},
      {"jwt without issuer",
       "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: r\nspec:\n  "
       "jwtRules:\n  - jwksUri: https://x/jwks\n",
       "issuer is required"},
      {"jwt discovery from a non-URL issuer",
       "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: r\nspec:\n  "
       "jwtRules:\n  - issuer: a\n",
       "issuer must be an http(s) URL"},
      {"jwt bad jwksUri",
       "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: r\nspec:\n  "
       "jwtRules:\n  - issuer: a\n    jwksUri: ftp://x\n",
       "http(s) URL"},
      {"jwt bad jwks",
       "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: r\nspec:\n  "
       "jwtRules:\n  - issuer: a\n    jwks: '{\"nokeys\": 1}'\n",
       "JWKS JSON"},
      {"jwt fromHeaders without name",
       "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: r\nspec:\n  "
       "jwtRules:\n  - issuer: a\n    jwksUri: https://x\n    fromHeaders:\n    - prefix: x\n",
       "fromHeaders.name is required"},
      {"jwt bad timeout",
       "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: r\nspec:\n  "
       "jwtRules:\n  - issuer: a\n    jwksUri: https://x\n    timeout: soon\n",
       "duration"},
      {"malformed YAML has a line",
       "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: [unclosed\n",
       "bad.yaml:"},
      {"not a mapping", "- a\n- b\n", "must be a mapping"},
      {"principals not a list", ap_spec("  rules:\n  - from:\n    - source:\n        principals: \"a\"\n"),
       "must be a list"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = parse_resources(c.yaml, "bad.yaml");
    ASSERT_FALSE(r) << "accepted";
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.rfind("bad.yaml:", 0), 0u) << r.error().message;
  }
}

TEST(Parse, OneBadDocumentRejectsTheSet) {
  const std::string good = ap_spec("  action: DENY\n");
  auto r = parse_resources(good + "---\n" + ap_spec("  action: NOPE\n"), "set.yaml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("set.yaml:13:"), std::string::npos) << r.error().message;
  EXPECT_TRUE(parse_resources(good + "---\n" + good));
}

// Istio's jwt-route / authn examples: a rule with only an issuer gets its keys by OpenID discovery.
TEST(Parse, IssuerOnlyJwtRuleIsAccepted) {
  auto r = parse_resources(
      "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: r\nspec:\n  "
      "jwtRules:\n"
      "  - issuer: https://accounts.example.com\n");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->request_authentications.size(), 1u);
  const auto& rule = r->request_authentications[0].jwt_rules.at(0);
  EXPECT_TRUE(jwt::discovers_keys(rule));
  EXPECT_EQ(jwt::remote_keys_name(rule), "https://accounts.example.com");
}

TEST(Parse, AcceptsBothVersionsEmptyDocsAndKubernetesMetadata) {
  const std::string yaml =
      "---\napiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\nmetadata:\n  name: a\n  uid: x\n"
      "  resourceVersion: \"1\"\n  creationTimestamp: \"2024-01-01T00:00:00Z\"\n  labels: {x: y}\nspec: {}\nstatus: {}\n---\n---\n"
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: b\n";
  auto r = parse_resources(yaml);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->authorization_policies.size(), 2u);
  EXPECT_TRUE(r->authorization_policies[1].rules.empty());
}

TEST(Parse, AliasExpansionIsBounded) {
  // Aliases nest: 60 x 60 x 60 sources would be 216,000 items from a small text.
  std::string yaml = "x: &v [";
  for (int i = 0; i < 60; ++i) yaml += std::string(i ? "," : "") + "\"a\"";
  yaml += "]\n";
  (void)yaml;
  std::string doc =
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\nspec:\n  rules:\n"
      "  - &r\n    from:\n";
  for (int i = 0; i < 60; ++i) doc += "    - source: &s" + std::to_string(i) + "\n        principals: [a, b, c, d, e, f, g, h, i, j]\n";
  for (int i = 0; i < 3000; ++i) doc += "  - *r\n";
  auto r = parse_resources(doc);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("too large"), std::string::npos) << r.error().message;
}

TEST(Parse, ConditionKeys) {
  EXPECT_TRUE(parse_condition_key("request.auth.claims[a][b][c]"));
  EXPECT_EQ(parse_condition_key("request.auth.claims[a][b]")->args.size(), 2u);
  EXPECT_FALSE(parse_condition_key("request.headers[a][b]"));
  EXPECT_FALSE(parse_condition_key("request.auth.claims[a"));
  EXPECT_FALSE(parse_condition_key("request.auth.claims[a]x"));
  EXPECT_FALSE(parse_condition_key("source.principals"));
  EXPECT_TRUE(parse_condition_key("connection.sni"));
}

}  // namespace
}  // namespace mg::policy

namespace mg::policy {
namespace {

TEST(Parse, MalformedStreamsEndWithAnError) {
  // yaml-cpp 0.7's LoadAll loops forever on some of these (jbeder/yaml-cpp#1319).
  for (const std::string text : {",", ",\xd8", "[:", "{:", "a: [\n", "- !+(.,.)", "---\n,\n---\n"}) {
    SCOPED_TRACE(text);
    auto r = parse_resources(text, "x.yaml");
    EXPECT_FALSE(r);
  }
}

TEST(Parse, DocumentMarkersAndLines) {
  const std::string text =
      "# comment\n--- {apiVersion: security.istio.io/v1, kind: AuthorizationPolicy, metadata: {name: a}}\n...\n"
      "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: b\nspec:\n  action: NOPE\n";
  auto r = parse_resources(text, "m.yaml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("m.yaml:10:"), std::string::npos) << r.error().message;
  auto ok = parse_resources(text.substr(0, text.find("spec:")), "m.yaml");
  ASSERT_TRUE(ok) << ok.error().message;
  ASSERT_EQ(ok->authorization_policies.size(), 2u);
  EXPECT_EQ(ok->authorization_policies[0].meta.line, 2);
  EXPECT_EQ(ok->authorization_policies[1].meta.line, 5);
}

}  // namespace
}  // namespace mg::policy
