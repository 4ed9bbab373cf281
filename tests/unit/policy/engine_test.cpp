// Table-driven tests for every semantic rule of the authorization engine (issue 3, "Semantics").
#include <gtest/gtest.h>

#include "test_util.h"

namespace mg::policy::test {
namespace {

struct Case {
  const char* name;
  std::string yaml;
  Req req;
  bool allow;
  int status;
  std::string policy;  // "" = none
  int rule;            // -1 = none
};

void run_cases(const std::vector<Case>& cases, const jwt::RequestAuth* auth = nullptr, MeshConfig mesh = {}) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto o = run(c.yaml, c.req, auth, mesh);
    EXPECT_EQ(o.allow, c.allow) << o.text;
    EXPECT_EQ(o.status, c.status) << o.text;
    EXPECT_EQ(o.policy, c.policy) << o.text;
    EXPECT_EQ(o.rule, c.rule) << o.text;
  }
}

Req with(std::function<void(Req&)> f) {
  Req r;
  f(r);
  return r;
}

const Req kDefault{};
const Req kPlaintext = with([](Req& r) { r.principal.clear(); });
const Req kTcp = with([](Req& r) { r.http = false; });

TEST(EngineOrder, CustomDenyAllowAudit) {
  const auto deny_admin = ap("deny-admin", "  action: DENY\n  rules:\n  - to:\n    - operation:\n        paths: [\"/admin\"]");
  const auto allow_get = ap("allow-get", "  rules:\n  - to:\n    - operation:\n        methods: [\"GET\"]");
  const auto custom = ap("ext", "  action: CUSTOM\n  provider:\n    name: opa\n  rules:\n  - to:\n    - operation:\n        paths: [\"/ext*\"]");
  const Req admin = with([](Req& r) { r.path = "/admin"; });
  const Req post = with([](Req& r) { r.method = "POST"; });
  const Req ext = with([](Req& r) { r.path = "/ext/x"; });
  run_cases({
      {"no policy at all: allow", "", kDefault, true, 200, "", -1},
      {"DENY matches", deny_admin, admin, false, 403, "default/deny-admin", 0},
      {"DENY does not match, no ALLOW policy: allow", deny_admin, kDefault, true, 200, "", -1},
      {"DENY wins over a matching ALLOW", deny_admin + allow_get, admin, false, 403, "default/deny-admin", 0},
      {"ALLOW matches", allow_get, kDefault, true, 200, "default/allow-get", 0},
      {"ALLOW policy applies, nothing matches: deny", allow_get, post, false, 403, "", -1},
      {"CUSTOM matches: fail closed (no provider available)", custom + allow_get, ext, false, 403, "default/ext", 0},
      {"CUSTOM does not match: evaluation continues", custom, kDefault, true, 200, "", -1},
      {"CUSTOM comes before DENY", custom + ap("deny-all", "  action: DENY\n  rules:\n  - {}"), ext, false, 403,
       "default/ext", 0},
  });
  auto o = run(custom, ext);
  EXPECT_EQ(o.reason, ReasonCode::DeniedCustomUnavailable);
  EXPECT_NE(o.text.find("provider \"opa\" is not defined"), std::string::npos) << o.text;
}

TEST(EngineOrder, AuditNeverDecides) {
  const auto audit = ap("audit-get", "  action: AUDIT\n  rules:\n  - to:\n    - operation:\n        methods: [\"GET\"]");
  auto o = run(audit, kDefault);
  EXPECT_TRUE(o.allow);
  EXPECT_TRUE(o.audit);
  EXPECT_EQ(o.reason, ReasonCode::AllowedNoAuthorizationPolicy);  // AUDIT is not an ALLOW policy
  o = run(audit, with([](Req& r) { r.method = "PUT"; }));
  EXPECT_TRUE(o.allow);
  EXPECT_FALSE(o.audit);
  o = run(audit + ap("deny-all", "  action: DENY\n  rules:\n  - {}"), kDefault);
  EXPECT_FALSE(o.allow);
  EXPECT_TRUE(o.audit);
}

TEST(EngineRules, EmptyRules) {
  run_cases({
      {"ALLOW with no rules allows nothing", ap("nothing", "  {}"), kDefault, false, 403, "", -1},
      {"ALLOW with rules: [] allows nothing", ap("nothing", "  rules: []"), kDefault, false, 403, "", -1},
      {"ALLOW with rules: [{}] allows everything", ap("all", "  rules:\n  - {}"), kDefault, true, 200, "default/all", 0},
      {"DENY with no rules denies nothing", ap("d", "  action: DENY"), kDefault, true, 200, "", -1},
      {"DENY with rules: [{}] denies everything", ap("d", "  action: DENY\n  rules:\n  - {}"), kDefault, false, 403,
       "default/d", 0},
  });
}

TEST(EngineRules, AndOrStructure) {
  const auto two_rules = ap("p",
                            "  rules:\n"
                            "  - to:\n    - operation:\n        paths: [\"/a\"]\n"
                            "  - to:\n    - operation:\n        paths: [\"/b\"]");
  const auto from_and_to = ap("p",
                              "  rules:\n  - from:\n    - source:\n        namespaces: [\"default\"]\n"
                              "    to:\n    - operation:\n        paths: [\"/a\"]");
  const auto two_sources = ap("p",
                              "  rules:\n  - from:\n    - source:\n        namespaces: [\"other\"]\n"
                              "    - source:\n        principals: [\"cluster.local/ns/default/sa/sleep\"]");
  const auto fields_and = ap("p",
                             "  rules:\n  - to:\n    - operation:\n        methods: [\"GET\"]\n        paths: [\"/a\"]");
  const auto values_or = ap("p", "  rules:\n  - to:\n    - operation:\n        paths: [\"/x\", \"/a\"]");
  const auto not_values = ap("p", "  rules:\n  - to:\n    - operation:\n        paths: [\"/a*\"]\n        notPaths: [\"/a/secret\"]");
  const auto when_and = ap("p",
                           "  rules:\n  - to:\n    - operation:\n        paths: [\"/a\"]\n"
                           "    when:\n    - key: request.headers[x-a]\n      values: [\"1\"]\n"
                           "    - key: request.headers[x-b]\n      values: [\"2\"]");
  auto at = [](const char* path) { return with([path](Req& r) { r.path = path; }); };
  auto hdr = [](std::vector<std::pair<std::string, std::string>> h) { return with([h](Req& r) { r.path = "/a"; r.headers = h; }); };
  run_cases({
      {"rules OR: second rule", two_rules, at("/b"), true, 200, "default/p", 1},
      {"rules OR: neither", two_rules, at("/c"), false, 403, "", -1},
      {"from AND to: both", from_and_to, at("/a"), true, 200, "default/p", 0},
      {"from AND to: to fails", from_and_to, at("/b"), false, 403, "", -1},
      {"from AND to: from fails", from_and_to, with([](Req& r) { r.path = "/a"; r.principal = "cluster.local/ns/x/sa/y"; }),
       false, 403, "", -1},
      {"from entries OR", two_sources, kDefault, true, 200, "default/p", 0},
      {"fields inside an operation AND: method fails", fields_and, with([](Req& r) { r.path = "/a"; r.method = "POST"; }),
       false, 403, "", -1},
      {"fields inside an operation AND: both", fields_and, at("/a"), true, 200, "default/p", 0},
      {"values OR", values_or, at("/a"), true, 200, "default/p", 0},
      {"notPaths ANDed with paths: excluded", not_values, at("/a/secret"), false, 403, "", -1},
      {"notPaths ANDed with paths: kept", not_values, at("/a/public"), true, 200, "default/p", 0},
      {"when conditions AND: both", when_and, hdr({{"x-a", "1"}, {"x-b", "2"}}), true, 200, "default/p", 0},
      {"when conditions AND: one missing", when_and, hdr({{"x-a", "1"}}), false, 403, "", -1},
  });
}

TEST(EngineStrings, PatternsAndCase) {
  auto paths = [](const char* v) { return ap("p", std::string("  rules:\n  - to:\n    - operation:\n        paths: [\"") + v + "\"]"); };
  auto hosts = [](const char* v) { return ap("p", std::string("  rules:\n  - to:\n    - operation:\n        hosts: [\"") + v + "\"]"); };
  auto methods = [](const char* v) { return ap("p", std::string("  rules:\n  - to:\n    - operation:\n        methods: [\"") + v + "\"]"); };
  auto principals = [](const char* v) {
    return ap("p", std::string("  rules:\n  - from:\n    - source:\n        principals: [\"") + v + "\"]");
  };
  auto at = [](const char* path) { return with([path](Req& r) { r.path = path; }); };
  auto host = [](const char* h) { return with([h](Req& r) { r.host = h; }); };
  run_cases({
      {"exact path", paths("/details/1"), kDefault, true, 200, "default/p", 0},
      {"exact path is not a prefix", paths("/details"), kDefault, false, 403, "", -1},
      {"prefix path", paths("/details/*"), kDefault, true, 200, "default/p", 0},
      {"prefix path no match", paths("/reviews/*"), kDefault, false, 403, "", -1},
      {"suffix path", paths("*/1"), kDefault, true, 200, "default/p", 0},
      {"suffix path no match", paths("*/2"), kDefault, false, 403, "", -1},
      {"presence path", paths("*"), kDefault, true, 200, "default/p", 0},
      {"paths are case-sensitive", paths("/Details/1"), kDefault, false, 403, "", -1},
      {"query is removed before matching", paths("/details/1"), at("/details/1?x=/admin"), true, 200, "default/p", 0},
      {"fragment is removed before matching", paths("/details/1"), at("/details/1#frag"), true, 200, "default/p", 0},
      {"hosts are case-insensitive", hosts("DETAILS:9080"), kDefault, true, 200, "default/p", 0},
      {"host suffix case-insensitive", hosts("*.EXAMPLE.com"), host("api.example.COM"), true, 200, "default/p", 0},
      {"exact host a.com does not match a.com:80", hosts("a.com"), host("a.com:80"), false, 403, "", -1},
      {"exact host a.com matches a.com", hosts("a.com"), host("a.com"), true, 200, "default/p", 0},
      {"host presence needs a host", hosts("*"), host(""), false, 403, "", -1},
      {"methods are case-sensitive", methods("get"), kDefault, false, 403, "", -1},
      {"method exact", methods("GET"), kDefault, true, 200, "default/p", 0},
      {"principals are case-sensitive", principals("cluster.local/ns/default/sa/Sleep"), kDefault, false, 403, "", -1},
      {"principal prefix", principals("cluster.local/ns/default/*"), kDefault, true, 200, "default/p", 0},
      {"principal suffix", principals("*/sa/sleep"), kDefault, true, 200, "default/p", 0},
  });
}

TEST(EnginePrincipals, PeerIdentity) {
  const auto any_peer = ap("p", "  rules:\n  - from:\n    - source:\n        principals: [\"*\"]");
  const auto ns = ap("p", "  rules:\n  - from:\n    - source:\n        namespaces: [\"default\"]");
  const auto not_principal = ap("p", "  rules:\n  - from:\n    - source:\n        notPrincipals: [\"cluster.local/ns/evil/sa/x\"]");
  const auto not_ns = ap("p", "  rules:\n  - from:\n    - source:\n        notNamespaces: [\"evil\"]");
  const auto ns_prefix = ap("p", "  rules:\n  - from:\n    - source:\n        namespaces: [\"def*\"]");
  run_cases({
      {"principals [*] with an mTLS peer", any_peer, kDefault, true, 200, "default/p", 0},
      {"principals [*] never matches plaintext", any_peer, kPlaintext, false, 403, "", -1},
      {"namespaces from the principal", ns, kDefault, true, 200, "default/p", 0},
      {"namespaces never match plaintext", ns, kPlaintext, false, 403, "", -1},
      {"namespace mismatch", ns, with([](Req& r) { r.principal = "cluster.local/ns/other/sa/sleep"; }), false, 403, "", -1},
      {"namespace prefix", ns_prefix, kDefault, true, 200, "default/p", 0},
      {"notPrincipals matches plaintext", not_principal, kPlaintext, true, 200, "default/p", 0},
      {"notPrincipals excludes the named peer", not_principal, with([](Req& r) { r.principal = "cluster.local/ns/evil/sa/x"; }),
       false, 403, "", -1},
      {"notNamespaces matches plaintext", not_ns, kPlaintext, true, 200, "default/p", 0},
      {"notNamespaces excludes", not_ns, with([](Req& r) { r.principal = "cluster.local/ns/evil/sa/x"; }), false, 403, "", -1},
  });
}

TEST(EnginePrincipals, TrustDomainAlias) {
  const auto p = ap("p", "  rules:\n  - from:\n    - source:\n        principals: [\"cluster.local/ns/default/sa/sleep\"]");
  MeshConfig td;
  td.trust_domain = "example.org";
  const Req local = with([](Req& r) { r.principal = "example.org/ns/default/sa/sleep"; });
  const Req foreign = with([](Req& r) { r.principal = "other.org/ns/default/sa/sleep"; });
  run_cases({{"cluster.local in a policy means the local trust domain", p, local, true, 200, "default/p", 0},
             {"a foreign trust domain does not match", p, foreign, false, 403, "", -1}},
            nullptr, td);
  run_cases({{"with the default trust domain, example.org is foreign", p, local, false, 403, "", -1}});
}

// Istio's trust domain migration (authz-td-migration): with trustDomain new-td and alias old-td,
// a principal written with either trust domain, or with "cluster.local", names the identity in
// both; "cluster.local" itself is only a name for them, never a trust domain matched literally.
TEST(EnginePrincipals, TrustDomainAliasesBothWays) {
  auto allow = [](const char* principal) {
    return ap("p",
              std::string("  rules:\n  - from:\n    - source:\n        principals: [\"") + principal + "\"]");
  };
  auto from = [](const char* td) {
    return with([td](Req& r) { r.principal = std::string(td) + "/ns/sleep-allow/sa/sleep"; });
  };
  MeshConfig mesh;
  mesh.trust_domain = "new-td";
  mesh.trust_domain_aliases = {"old-td"};
  const auto old_written = allow("old-td/ns/sleep-allow/sa/sleep");
  const auto new_written = allow("new-td/ns/sleep-allow/sa/sleep");
  const auto local_written = allow("cluster.local/ns/sleep-allow/sa/sleep");
  const auto pattern = allow("*-td/ns/sleep-allow/sa/sleep");
  run_cases(
      {{"alias in the policy, current identity", old_written, from("new-td"), true, 200, "default/p", 0},
       {"alias in the policy, alias identity", old_written, from("old-td"), true, 200, "default/p", 0},
       {"current in the policy, alias identity (the reverse)", new_written, from("old-td"), true, 200,
        "default/p", 0},
       {"a third trust domain is foreign", old_written, from("other-td"), false, 403, "", -1},
       {"cluster.local names the current trust domain", local_written, from("new-td"), true, 200, "default/p",
        0},
       {"cluster.local names the aliases", local_written, from("old-td"), true, 200, "default/p", 0},
       {"cluster.local is not itself a trust domain here", local_written, from("cluster.local"), false, 403,
        "", -1},
       {"a *suffix trust domain stays a pattern", pattern, from("other-td"), true, 200, "default/p", 0},
       {"other namespace", old_written, with([](Req& r) { r.principal = "new-td/ns/default/sa/sleep"; }),
        false, 403, "", -1}},
      nullptr, mesh);
  // notPrincipals and source.principal conditions follow the same rule.
  const auto deny_not = ap("p",
                           "  action: DENY\n  rules:\n  - from:\n    - source:\n        notPrincipals: "
                           "[\"old-td/ns/sleep-allow/sa/sleep\"]");
  const auto when = ap("p",
                       "  rules:\n  - when:\n    - key: source.principal\n      values: "
                       "[\"old-td/ns/sleep-allow/sa/sleep\"]");
  run_cases(
      {{"notPrincipals: the current identity is not denied", deny_not, from("new-td"), true, 200, "", -1},
       {"notPrincipals: others are", deny_not, from("other-td"), false, 403, "default/p", 0},
       {"source.principal condition", when, from("new-td"), true, 200, "default/p", 0}},
      nullptr, mesh);
  // Without the alias, old-td is just another trust domain.
  mesh.trust_domain_aliases.clear();
  run_cases({{"no alias configured", old_written, from("new-td"), false, 403, "", -1}}, nullptr, mesh);
}

TEST(EnginePrincipals, PrincipalsForTrustDomains) {
  const std::vector<std::string> aliases{"old-td", "older-td"};
  auto expand = [&](std::vector<std::string> in) {
    return principals_for_trust_domains(in, "new-td", aliases);
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(expand({"cluster.local/ns/a/sa/b"}),
            (V{"new-td/ns/a/sa/b", "old-td/ns/a/sa/b", "older-td/ns/a/sa/b"}));
  EXPECT_EQ(expand({"old-td/ns/a/sa/*"}), (V{"new-td/ns/a/sa/*", "old-td/ns/a/sa/*", "older-td/ns/a/sa/*"}));
  EXPECT_EQ(expand({"*-td/ns/a/sa/b"}), (V{"*-td/ns/a/sa/b"}));
  EXPECT_EQ(expand({"*old-td/ns/a/sa/b"}),
            (V{"new-td/ns/a/sa/b", "*old-td/ns/a/sa/b", "older-td/ns/a/sa/b"}));
  EXPECT_EQ(expand({"*/ns/a/sa/b", "other/ns/a/sa/b", "cluster.local/ns/a/*", "*", "ns/a/sa/b"}),
            (V{"*/ns/a/sa/b", "other/ns/a/sa/b", "cluster.local/ns/a/*", "*", "ns/a/sa/b"}));
  EXPECT_EQ(principals_for_trust_domains({"cluster.local/ns/a/sa/b"}, "cluster.local", {}),
            (V{"cluster.local/ns/a/sa/b"}));
  EXPECT_EQ(principals_for_trust_domains({"cluster.local/ns/a/sa/b"}, "example.org", {}),
            (V{"example.org/ns/a/sa/b"}));
}

TEST(EnginePrincipals, RequestPrincipals) {
  const auto exact = ap("p", "  rules:\n  - from:\n    - source:\n        requestPrincipals: [\"https://issuer.example/a/user\"]");
  const auto any = ap("p", "  rules:\n  - from:\n    - source:\n        requestPrincipals: [\"*\"]");
  const auto not_any = ap("p", "  action: DENY\n  rules:\n  - from:\n    - source:\n        notRequestPrincipals: [\"*\"]");
  const auto prefix = ap("p", "  rules:\n  - from:\n    - source:\n        requestPrincipals: [\"https://issuer.example/*\"]");
  const auto user = authenticated("https://issuer.example/a", "user");
  const auto slash_sub = authenticated("https://issuer.example", "a/user");  // same "iss/sub" string
  const jwt::RequestAuth none;
  run_cases({{"exact iss/sub split on the last /", exact, kDefault, true, 200, "default/p", 0},
             {"requestPrincipals [*] with a token", any, kDefault, true, 200, "default/p", 0},
             {"prefix on the whole iss/sub", prefix, kDefault, true, 200, "default/p", 0},
             {"notRequestPrincipals [*] passes a token", not_any, kDefault, true, 200, "", -1}},
            &user);
  run_cases({{"split on the LAST /: sub containing / does not match", exact, kDefault, false, 403, "", -1}}, &slash_sub);
  run_cases({{"requestPrincipals [*] needs a valid token", any, kDefault, false, 403, "", -1},
             {"notRequestPrincipals [*] denies no token", not_any, kDefault, false, 403, "default/p", 0}},
            &none);
}

// A request without a token that an ALLOW rule would admit with one lacks a credential, not a
// permission (gRPC callers are told UNAUTHENTICATED for it); never when no token would help.
TEST(EnginePrincipals, LacksCredentialOnlyWhereATokenWouldAllow) {
  const auto rp_on_path = ap("p",
                             "  rules:\n  - from:\n    - source:\n        requestPrincipals: [\"*\"]\n"
                             "    to:\n    - operation:\n        paths: [\"/details/*\"]");
  const auto claim =
      ap("p", "  rules:\n  - when:\n    - key: request.auth.claims[group]\n      values: [\"admin\"]");
  const auto peer_only =
      ap("p", "  rules:\n  - from:\n    - source:\n        principals: [\"cluster.local/ns/x/sa/y\"]");
  const auto deny_all = ap("d", "  action: DENY\n  rules:\n  - {}") + rp_on_path;
  const jwt::RequestAuth none;
  struct Expect {
    const char* name;
    std::string yaml;
    Req req;
    bool lacks;
  };
  for (const auto& c :
       std::vector<Expect>{{"requestPrincipals on a matching path", rp_on_path, kDefault, true},
                           {"requestPrincipals, but another path: no token would help", rp_on_path,
                            with([](Req& r) { r.path = "/admin"; }), false},
                           {"a request.auth.claims condition", claim, kDefault, true},
                           {"only peer principals: no token would help", peer_only, kDefault, false},
                           {"denied by a DENY policy: not for want of a token", deny_all, kDefault, false}}) {
    SCOPED_TRACE(c.name);
    auto o = run(c.yaml, c.req, &none);
    EXPECT_FALSE(o.allow) << o.text;
    EXPECT_EQ(o.status, 403) << o.text;
    EXPECT_EQ(o.lacks_credential, c.lacks) << o.text;
  }
  // With a token that does not satisfy the rule, the request lacks a permission.
  const auto someone = authenticated("https://issuer.example", "someone");
  auto o = run(claim, kDefault, &someone);
  EXPECT_FALSE(o.allow);
  EXPECT_FALSE(o.lacks_credential);
}

TEST(EnginePaths, NormalizationBeforeMatching) {
  const auto deny_admin = ap("deny-admin", "  action: DENY\n  rules:\n  - to:\n    - operation:\n        paths: [\"/admin\"]");
  auto at = [](const char* path) { return with([path](Req& r) { r.path = path; }); };
  run_cases({
      {"BASE: dot segments", deny_admin, at("/public/../admin"), false, 403, "default/deny-admin", 0},
      {"BASE: %2e%2e decoded then removed", deny_admin, at("/public/%2e%2e/admin"), false, 403, "default/deny-admin", 0},
      {"BASE: backslash", deny_admin, at("\\admin"), false, 400, "", -1},  // must start with '/'
      {"BASE: backslash inside", deny_admin, at("/x\\..\\admin"), false, 403, "default/deny-admin", 0},
      {"BASE: unreserved %61 decoded", deny_admin, at("/%61dmin"), false, 403, "default/deny-admin", 0},
      {"BASE: double slash kept", deny_admin, at("//admin"), true, 200, "", -1},
      {"BASE: %2F not decoded", deny_admin, at("/%2Fadmin"), true, 200, "", -1},
      {"%00 is always 400", deny_admin, at("/admin%00"), false, 400, "", -1},
      {"bad escape is 400", deny_admin, at("/admin%zz"), false, 400, "", -1},
  });
  MeshConfig merge;
  merge.path_normalization = PathNormalization::MergeSlashes;
  run_cases({{"MERGE_SLASHES: //admin", deny_admin, at("//admin"), false, 403, "default/deny-admin", 0}}, nullptr, merge);
  MeshConfig decode;
  decode.path_normalization = PathNormalization::DecodeAndMergeSlashes;
  run_cases({{"DECODE_AND_MERGE_SLASHES: /%2Fadmin", deny_admin, at("/%2Fadmin"), false, 403, "default/deny-admin", 0},
             {"DECODE_AND_MERGE_SLASHES: %5C", deny_admin, at("/x%5C..%5Cadmin"), false, 403, "default/deny-admin", 0}},
            nullptr, decode);
  MeshConfig none;
  none.path_normalization = PathNormalization::None;
  run_cases({{"NONE: dot segments are not resolved", deny_admin, at("/public/../admin"), true, 200, "", -1},
             {"NONE: %00 still 400", deny_admin, at("/a%00"), false, 400, "", -1}},
            nullptr, none);
}

TEST(EngineTcp, HttpOnlyFields) {
  const auto allow_paths = ap("allow-paths", "  rules:\n  - to:\n    - operation:\n        paths: [\"/a\"]");
  const auto allow_ports = ap("allow-ports", "  rules:\n  - to:\n    - operation:\n        ports: [\"9080\"]");
  const auto allow_principal_and_method = ap("allow-pm",
                                             "  rules:\n  - from:\n    - source:\n        principals: [\"*\"]\n"
                                             "    to:\n    - operation:\n        methods: [\"GET\"]");
  const auto deny_paths = ap("deny-paths", "  action: DENY\n  rules:\n  - to:\n    - operation:\n        paths: [\"/admin\"]");
  const auto deny_paths_other_port = ap("deny-paths-port",
                                        "  action: DENY\n  rules:\n  - to:\n    - operation:\n        paths: [\"/admin\"]\n"
                                        "        ports: [\"1234\"]");
  const auto deny_header = ap("deny-header",
                              "  action: DENY\n  rules:\n  - when:\n    - key: request.headers[x-evil]\n      values: [\"1\"]");
  const auto deny_request_principal = ap("deny-rp", "  action: DENY\n  rules:\n  - from:\n    - source:\n        requestPrincipals: [\"*\"]");
  run_cases({
      {"ALLOW with paths matches nothing on TCP", allow_paths, kTcp, false, 0, "", -1},
      {"ALLOW with ports only works on TCP", allow_ports, kTcp, true, 200, "default/allow-ports", 0},
      {"ALLOW with any HTTP field (methods) matches nothing on TCP", allow_principal_and_method, kTcp, false, 0, "", -1},
      {"DENY with paths: dropped on TCP, denies the connection", deny_paths, kTcp, false, 0, "default/deny-paths", 0},
      {"DENY with paths on HTTP: only /admin", deny_paths, kDefault, true, 200, "", -1},
      {"DENY keeps its TCP fields (port differs)", deny_paths_other_port, kTcp, true, 200, "", -1},
      {"DENY with an HTTP when key: dropped on TCP", deny_header, kTcp, false, 0, "default/deny-header", 0},
      {"DENY with requestPrincipals: dropped on TCP", deny_request_principal, kTcp, false, 0, "default/deny-rp", 0},
      {"no policy: TCP allowed", "", kTcp, true, 200, "", -1},
  });
}

TEST(EngineWhen, EveryKey) {
  auto when = [](const char* key, const char* values, const char* field = "values") {
    return ap("p", std::string("  rules:\n  - when:\n    - key: ") + key + "\n      " + field + ": " + values);
  };
  const Req headers = with([](Req& r) { r.headers = {{"X-Token", "abc123"}, {"x-forwarded-for", "192.0.2.7, 10.0.0.1"}}; });
  run_cases({
      {"header exact, name case-insensitive", when("request.headers[x-token]", "[\"abc123\"]"), headers, true,
       200, "default/p", 0},
      {"header prefix", when("request.headers[X-TOKEN]", "[\"abc*\"]"), headers, true, 200, "default/p", 0},
      {"header suffix", when("request.headers[x-token]", "[\"*123\"]"), headers, true, 200, "default/p", 0},
      {"header presence", when("request.headers[x-token]", "[\"*\"]"), headers, true, 200, "default/p", 0},
      {"header absent: values never match", when("request.headers[x-none]", "[\"*\"]"), headers, false, 403,
       "", -1},
      {"header absent: notValues match", when("request.headers[x-none]", "[\"x\"]", "notValues"), headers,
       true, 200, "default/p", 0},
      {"header value is case-sensitive", when("request.headers[x-token]", "[\"ABC123\"]"), headers, false,
       403, "", -1},
      {"source.ip CIDR", when("source.ip", "[\"10.0.0.0/24\"]"), kDefault, true, 200, "default/p", 0},
      {"source.ip outside", when("source.ip", "[\"10.1.0.0/16\"]"), kDefault, false, 403, "", -1},
      {"remote.ip ignores X-Forwarded-For (no trusted proxy)", when("remote.ip", "[\"192.0.2.7\"]"), headers,
       false, 403, "", -1},
      {"remote.ip is the peer's address", when("remote.ip", "[\"10.0.0.1\"]"), headers, true, 200,
       "default/p", 0},
      {"remote.ip falls back to source.ip", when("remote.ip", "[\"10.0.0.1\"]"), kDefault, true, 200,
       "default/p", 0},
      {"source.namespace", when("source.namespace", "[\"default\"]"), kDefault, true, 200, "default/p", 0},
      {"source.namespace plaintext", when("source.namespace", "[\"default\"]"), kPlaintext, false, 403, "",
       -1},
      {"source.principal", when("source.principal", "[\"cluster.local/ns/default/sa/sleep\"]"), kDefault,
       true, 200, "default/p", 0},
      {"destination.ip", when("destination.ip", "[\"10.0.0.2\"]"), kDefault, true, 200, "default/p", 0},
      {"destination.port", when("destination.port", "[\"9080\"]"), kDefault, true, 200, "default/p", 0},
      {"destination.port other", when("destination.port", "[\"80\"]"), kDefault, false, 403, "", -1},
      {"connection.sni", when("connection.sni", "[\"*.svc\"]"), with([](Req& r) { r.sni = "details.svc"; }),
       true, 200, "default/p", 0},
      {"connection.sni absent", when("connection.sni", "[\"*\"]"), kDefault, false, 403, "", -1},
  });
  const Req v6 = with([](Req& r) { r.source_ip = "2001:db8::5"; });
  run_cases({{"ipv6 CIDR", when("source.ip", "[\"2001:db8::/32\"]"), v6, true, 200, "default/p", 0},
             {"ipv4 CIDR does not match v6", when("source.ip", "[\"0.0.0.0/0\"]"), v6, false, 403, "", -1}});
}

TEST(EngineWhen, AuthKeys) {
  auto when = [](const char* key, const char* values) {
    return ap("p", std::string("  rules:\n  - when:\n    - key: ") + key + "\n      values: " + values);
  };
  const auto auth = authenticated("https://accounts.example", "alice",
                                  {{"aud", {"web", "api"}},
                                   {"azp", "frontend"},
                                   {"groups", {"dev", "ops"}},
                                   {"realm", {{"roles", {"admin"}}, {"tier", "gold"}}},
                                   {"n", 5}});
  run_cases({
                {"request.auth.principal", when("request.auth.principal", "[\"https://accounts.example/alice\"]"), kDefault, true, 200, "default/p", 0},
                {"request.auth.audiences any", when("request.auth.audiences", "[\"api\"]"), kDefault, true, 200, "default/p", 0},
                {"request.auth.audiences none", when("request.auth.audiences", "[\"x\"]"), kDefault, false, 403, "", -1},
                {"request.auth.presenter", when("request.auth.presenter", "[\"frontend\"]"), kDefault, true, 200, "default/p", 0},
                {"claims[iss]", when("request.auth.claims[iss]", "[\"https://accounts.example\"]"), kDefault, true, 200, "default/p", 0},
                {"list claim matches any element", when("request.auth.claims[groups]", "[\"ops\"]"), kDefault, true, 200, "default/p", 0},
                {"list claim no element", when("request.auth.claims[groups]", "[\"qa\"]"), kDefault, false, 403, "", -1},
                {"nested claim", when("request.auth.claims[realm][tier]", "[\"gold\"]"), kDefault, true, 200, "default/p", 0},
                {"nested list claim", when("request.auth.claims[realm][roles]", "[\"admin\"]"), kDefault, true, 200, "default/p", 0},
                {"missing nested claim", when("request.auth.claims[realm][nope]", "[\"*\"]"), kDefault, false, 403, "", -1},
                {"non-string claim never matches", when("request.auth.claims[n]", "[\"5\"]"), kDefault, false, 403, "", -1},
            },
            &auth);
  const jwt::RequestAuth none;
  run_cases({{"auth keys without a token", when("request.auth.claims[iss]", "[\"*\"]"), kDefault, false, 403, "", -1}}, &none);
}

TEST(EngineSources, IpBlocks) {
  auto src = [](const char* field, const char* values) {
    return ap("p", std::string("  rules:\n  - from:\n    - source:\n        ") + field + ": " + values);
  };
  const Req xff = with([](Req& r) { r.headers = {{"x-forwarded-for", "203.0.113.9"}}; });
  run_cases({
      {"ipBlocks single IP", src("ipBlocks", "[\"10.0.0.1\"]"), kDefault, true, 200, "default/p", 0},
      {"ipBlocks CIDR", src("ipBlocks", "[\"10.0.0.0/8\"]"), kDefault, true, 200, "default/p", 0},
      {"ipBlocks miss", src("ipBlocks", "[\"10.0.0.9\"]"), kDefault, false, 403, "", -1},
      {"notIpBlocks", src("notIpBlocks", "[\"10.0.0.0/8\"]"), kDefault, false, 403, "", -1},
      {"remoteIpBlocks: XFF not trusted by default", src("remoteIpBlocks", "[\"203.0.113.0/24\"]"), xff,
       false, 403, "", -1},
      {"remoteIpBlocks: the peer by default", src("remoteIpBlocks", "[\"10.0.0.1\"]"), xff, true, 200,
       "default/p", 0},
      {"ipBlocks ignore XFF", src("ipBlocks", "[\"203.0.113.0/24\"]"), xff, false, 403, "", -1},
      {"notRemoteIpBlocks", src("notRemoteIpBlocks", "[\"10.0.0.1\"]"), xff, false, 403, "", -1},
  });
}

TEST(EngineNormalization, MethodNotInUpperCaseIsRefused) {
  // Issue 12: `get /x` went past a DENY on GET to an app that treats it as GET. Istio refuses a
  // method that is not in upper case with 400 before any policy is looked at.
  const auto deny_get =
      ap("deny-get", "  action: DENY\n  rules:\n  - to:\n    - operation:\n        methods: [\"GET\"]");
  for (const char* method : {"get", "Get", "gET", "m-search"}) {
    SCOPED_TRACE(method);
    const auto o = run(deny_get, with([&](Req& r) { r.method = method; }));
    EXPECT_FALSE(o.allow);
    EXPECT_EQ(o.status, 400);
    EXPECT_EQ(o.reason, ReasonCode::MalformedRequest);
    EXPECT_NE(o.text.find("method not in upper case"), std::string::npos) << o.text;
  }
  EXPECT_EQ(run(deny_get, kDefault).status, 403);
  EXPECT_TRUE(run(deny_get, with([](Req& r) { r.method = "M-SEARCH"; })).allow);  // an extension method
  EXPECT_EQ(run("", with([](Req& r) { r.method = "post"; })).status, 400);        // with no policy at all too
}

TEST(EngineNormalization, RepeatedHeadersAreJoinedWithCommas) {
  // Istio joins repeated headers with "," for request.headers[...] conditions; the first field
  // alone let `X-Role: user` + `X-Role: admin` past a DENY on "*admin".
  const auto deny_admin = ap("deny-admin",
                             "  action: DENY\n  rules:\n  - when:\n    - key: request.headers[x-role]\n"
                             "      values: [\"*admin\"]");
  const Req twice = with([](Req& r) {
    r.headers = {{"X-Role", "user"}, {"other", "x"}, {"x-ROLE", "admin"}};
  });
  EXPECT_EQ(run(deny_admin, twice).status, 403);
  const auto exact_joined = ap("p",
                               "  rules:\n  - when:\n    - key: request.headers[X-Role]\n"
                               "      values: [\"user,admin\"]");
  EXPECT_TRUE(run(exact_joined, twice).allow);
  const Req thrice = with([](Req& r) { r.headers = {{"x-role", "a"}, {"x-role", ""}, {"x-role", "c"}}; });
  const auto three =
      ap("p", "  rules:\n  - when:\n    - key: request.headers[x-role]\n      values: [\"a,,c\"]");
  EXPECT_TRUE(run(three, thrice).allow);
  const Req once = with([](Req& r) { r.headers = {{"x-role", "user"}}; });
  EXPECT_TRUE(run(deny_admin, once).allow);
}

TEST(EngineSources, RemoteIpBehindTrustedProxies) {
  // Issue 12: `X-Forwarded-For: 10.9.9.9, 127.0.0.1` satisfied an ALLOW for 10.9.9.9/32 (the
  // first entry was taken). Only the mesh's numTrustedProxies makes XFF count, from the right.
  const auto allow = ap("p", "  rules:\n  - from:\n    - source:\n        remoteIpBlocks: [\"10.9.9.9/32\"]");
  const Req forged = with([](Req& r) { r.headers = {{"X-Forwarded-For", "10.9.9.9, 127.0.0.1"}}; });
  EXPECT_FALSE(run(allow, forged).allow);
  MeshConfig one, two;
  one.num_trusted_proxies = 1;
  two.num_trusted_proxies = 2;
  EXPECT_FALSE(run(allow, forged, nullptr, one).allow);  // 127.0.0.1: what the trusted proxy saw
  EXPECT_TRUE(run(allow, forged, nullptr, two).allow);
  const auto when_remote = ap("p", "  rules:\n  - when:\n    - key: remote.ip\n      values: [\"10.9.9.9\"]");
  EXPECT_FALSE(run(when_remote, forged).allow);
  EXPECT_TRUE(run(when_remote, forged, nullptr, two).allow);
}

TEST(EngineOperation, Ports) {
  const auto ports = ap("p", "  rules:\n  - to:\n    - operation:\n        ports: [\"9080\"]");
  const auto not_ports = ap("p", "  rules:\n  - to:\n    - operation:\n        notPorts: [\"9080\"]");
  run_cases({{"ports compare to destination.port", ports, kDefault, true, 200, "default/p", 0},
             {"ports other", ports, with([](Req& r) { r.port = 8080; }), false, 403, "", -1},
             {"notPorts", not_ports, kDefault, false, 403, "", -1}});
}

TEST(EngineDryRun, ShadowPoliciesNeverDecide) {
  const std::string dry = "  annotations:\n    istio.io/dry-run: \"true\"\n";
  const auto deny_all = ap("shadow-deny", "  action: DENY\n  rules:\n  - {}", "default", dry);
  const auto allow_none = ap("shadow-allow", "  {}", "default", dry);
  auto o = run(deny_all, kDefault);
  EXPECT_TRUE(o.allow);
  EXPECT_EQ(o.reason, ReasonCode::AllowedNoAuthorizationPolicy);  // a dry-run ALLOW does not count either
  ASSERT_EQ(o.dry_run.size(), 1u);
  EXPECT_EQ(o.dry_run[0].policy, "default/shadow-deny");
  EXPECT_TRUE(o.dry_run[0].matched);
  EXPECT_EQ(o.dry_run[0].rule, 0);
  o = run(allow_none, kDefault);
  EXPECT_TRUE(o.allow);
  ASSERT_EQ(o.dry_run.size(), 1u);
  EXPECT_FALSE(o.dry_run[0].matched);
  o = run(ap("real-deny", "  action: DENY\n  rules:\n  - {}") + deny_all, kDefault);
  EXPECT_FALSE(o.allow);
  EXPECT_EQ(o.policy, "default/real-deny");
  EXPECT_EQ(o.dry_run.size(), 1u);
}

TEST(EnginePeerAuthn, StrictPermissiveDisablePortLevel) {
  const std::string mesh_strict =
      "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: default\n  namespace: istio-system\n"
      "spec:\n  mtls:\n    mode: STRICT\n---\n";
  const std::string ns_permissive =
      "apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata:\n  name: ns\n  namespace: default\n"
      "spec:\n  mtls:\n    mode: PERMISSIVE\n---\n";
  const std::string workload_port =
      "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: details\n  namespace: default\n"
      "spec:\n  selector:\n    matchLabels:\n      app: details\n  mtls:\n    mode: UNSET\n  portLevelMtls:\n"
      "    9080:\n      mode: DISABLE\n---\n";
  const std::string workload_disable =
      "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: off\n  namespace: default\n"
      "spec:\n  selector:\n    matchLabels:\n      app: details\n  mtls:\n    mode: DISABLE\n---\n";
  const auto allow_sleep = ap("allow-sleep", "  rules:\n  - from:\n    - source:\n        principals: [\"cluster.local/ns/default/sa/sleep\"]");
  run_cases({
      {"STRICT refuses plaintext (status 0)", mesh_strict, kPlaintext, false, 0, "istio-system/default", -1},
      {"STRICT accepts mTLS", mesh_strict, kDefault, true, 200, "", -1},
      {"namespace PERMISSIVE overrides mesh STRICT", mesh_strict + ns_permissive, kPlaintext, true, 200, "", -1},
      {"no PeerAuthentication: PERMISSIVE", "", kPlaintext, true, 200, "", -1},
      {"port-level DISABLE on 9080 overrides mesh STRICT", mesh_strict + workload_port, kPlaintext, true, 200, "", -1},
      {"port-level does not touch other ports", mesh_strict + workload_port, with([](Req& r) { r.principal.clear(); r.port = 8080; }),
       false, 0, "istio-system/default", -1},
      {"DISABLE: the peer identity is not used for authorization", workload_disable + allow_sleep, kDefault, false, 403, "", -1},
      {"PERMISSIVE keeps the identity", ns_permissive + allow_sleep, kDefault, true, 200, "default/allow-sleep", 0},
  });
  auto o = run(mesh_strict, kPlaintext);
  EXPECT_EQ(o.reason, ReasonCode::DeniedPlaintextOnStrict);
  EXPECT_NE(o.text.find("istio-system/default"), std::string::npos);
}

TEST(EngineRequestAuthn, TokensAndRequireJwt) {
  const std::string ra =
      "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: jwt\n  namespace: default\n"
      "spec:\n  jwtRules:\n  - issuer: testing@secure.istio.io\n    jwksUri: https://example.com/jwks.json\n---\n";
  const auto require = ap("require-jwt",
                          "  rules:\n  - from:\n    - source:\n        requestPrincipals: "
                          "[\"testing@secure.istio.io/testing@secure.istio.io\"]");
  const Req bearer = with([](Req& r) { r.headers = {{"Authorization", "Bearer abc.def.ghi"}}; });
  run_cases({
      {"no token: passes authn, require-jwt denies 403", ra + require, kDefault, false, 403, "", -1},
      {"a token that cannot be validated: 401 (fail closed)", ra + require, bearer, false, 401, "default/jwt", -1},
      {"no RequestAuthentication: tokens are ignored", require, bearer, false, 403, "", -1},
      {"no RequestAuthentication and no ALLOW: token ignored, allowed", "", bearer, true, 200, "", -1},
  });
}

TEST(EngineIndex, PathBucketsKeepPolicyOrder) {
  // Exact-path rules (indexed) and prefix rules (unindexed) interleaved: the reported rule must
  // be the first in (policy, rule) order whichever list it comes from.
  std::string yaml;
  yaml += ap("a", "  rules:\n  - to:\n    - operation:\n        paths: [\"/x\"]\n  - to:\n    - operation:\n        paths: [\"/y*\"]");
  yaml += ap("b", "  rules:\n  - to:\n    - operation:\n        paths: [\"/y1\"]\n  - to:\n    - operation:\n        paths: [\"/x\"]");
  auto at = [](const char* path) { return with([path](Req& r) { r.path = path; }); };
  run_cases({{"indexed first", yaml, at("/x"), true, 200, "default/a", 0},
             {"unindexed before a later indexed match", yaml, at("/y1"), true, 200, "default/a", 1},
             {"no bucket, no prefix", yaml, at("/z"), false, 403, "", -1}});
}

TEST(EngineIndex, PrefixBucketsAndManyLengths) {
  // 40 policies with prefix paths of 40 different lengths (more than are indexed) and exact
  // paths; whatever the index does, the answer must equal a plain scan in order.
  std::string yaml;
  for (int i = 0; i < 40; ++i) {
    const std::string prefix = "/p" + std::string(static_cast<size_t>(i), 'x');
    yaml += ap("pre-" + std::to_string(i),
               "  rules:\n  - to:\n    - operation:\n        paths: [\"/never\", \"" + prefix + "*\"]");
  }
  yaml += ap("exact", "  rules:\n  - to:\n    - operation:\n        paths: [\"/pxxxxx\"]");
  yaml += ap("suffix", "  rules:\n  - to:\n    - operation:\n        paths: [\"*.css\"]");
  auto at = [](std::string path) { return with([path](Req& r) { r.path = path; }); };
  run_cases({{"shortest prefix first in order", yaml, at("/pxxxxx"), true, 200, "default/pre-0", 0},
             {"long prefix only", yaml, at("/q"), false, 403, "", -1},
             {"exact bucket miss, prefix hit", yaml, at("/pxx/y"), true, 200, "default/pre-0", 0},
             {"suffix rule (unindexed)", yaml, at("/a.css"), true, 200, "default/suffix", 0}});
  // Only policies whose prefix is longer than the path's match region are skipped correctly.
  std::string longer;
  longer += ap("long", "  rules:\n  - to:\n    - operation:\n        paths: [\"/api/v1/*\"]");
  longer += ap("short", "  rules:\n  - to:\n    - operation:\n        paths: [\"/api/*\"]");
  run_cases({{"longer prefix listed first wins", longer, at("/api/v1/x"), true, 200, "default/long", 0},
             {"shorter prefix", longer, at("/api/v2"), true, 200, "default/short", 0},
             {"path shorter than every prefix", longer, at("/a"), false, 403, "", -1}});
}

// describe(): the sentence of every reason, with and without a rule and a detail, as logs and
// `authz check` have always printed it.
TEST(Describe, EverySentence) {
  ExtensionProvider provider;
  provider.name = "ext";
  provider.kind = ExtensionProvider::Kind::EnvoyExtAuthzGrpc;
  provider.service = "authz.foo.svc";
  provider.port = 9000;
  auto sentence = [](ReasonCode reason, std::string_view policy, int rule, std::string detail,
                     const ExtensionProvider* p = nullptr) {
    Decision d;
    d.reason = reason;
    d.policy = policy;
    d.rule = rule;
    d.detail = std::move(detail);
    d.provider = p;
    std::string appended = "x";
    describe_into(d, appended);
    EXPECT_EQ(appended, "x" + describe(d));
    return describe(d);
  };
  using R = ReasonCode;
  EXPECT_EQ(sentence(R::AllowedNoAuthorizationPolicy, "", -1, ""),
            "allowed: no ALLOW policy applies to the workload and no DENY policy matched");
  EXPECT_EQ(sentence(R::AllowedByPolicy, "ns/p", 0, ""), "allowed by ALLOW policy ns/p rule 0");
  EXPECT_EQ(sentence(R::AllowedByPolicy, "ns/p", -1, ""), "allowed by ALLOW policy ns/p");
  EXPECT_EQ(sentence(R::DeniedByPolicy, "ns/d", 12, ""), "denied by DENY policy ns/d rule 12");
  EXPECT_EQ(sentence(R::DeniedNoAllowMatch, "", -1, ""),
            "denied: ALLOW policies apply to the workload but none matched");
  EXPECT_EQ(sentence(R::DeniedCustomUnavailable, "ns/c", 1, ""),
            "denied: CUSTOM policy ns/c rule 1 matched but its provider is not available (fail closed)");
  EXPECT_EQ(sentence(R::DeniedCustomUnavailable, "ns/c", -1, "a TCP connection"),
            "denied: CUSTOM policy ns/c matched but a TCP connection (fail closed)");
  EXPECT_EQ(sentence(R::CustomProviderCheck, "ns/c", 2, "", &provider),
            "CUSTOM policy ns/c rule 2 matched: extension provider \"ext\" (envoyExtAuthzGrpc authz.foo.svc:9000) "
            "decides; DENY and ALLOW policies follow only if it allows");
  EXPECT_EQ(sentence(R::CustomProviderCheck, "ns/c", -1, ""),
            "CUSTOM policy ns/c matched: extension provider \"?\" (?) decides; DENY and ALLOW policies follow "
            "only if it allows");
  EXPECT_EQ(sentence(R::DeniedPlaintextOnStrict, "ns/pa", -1, ""),
            "connection refused: plaintext to a port where mTLS is STRICT (PeerAuthentication ns/pa)");
  EXPECT_EQ(sentence(R::DeniedPlaintextOnStrict, "ns/pa", -1, "(port 80)"),
            "connection refused: plaintext to a port where mTLS is STRICT (PeerAuthentication ns/pa) (port 80)");
  EXPECT_EQ(sentence(R::MalformedRequest, "", -1, "bad path"), "malformed request: bad path");
  EXPECT_EQ(sentence(R::RequestAuthnFailed, "ns/ra", -1, "Jwt is expired"),
            "request authentication failed: Jwt is expired");
  EXPECT_EQ(sentence(R::DeniedByOpaPolicy, "ns/o", -1, "false"), "denied by OPAPolicy ns/o: false");
  EXPECT_EQ(sentence(R::DeniedOpaPolicyError, "ns/o", -1, "budget"),
            "denied: OPAPolicy ns/o failed to evaluate (onError: Deny): budget");
  EXPECT_EQ(sentence(R::AllowedByOpaPolicy, "ns/o", -1, ""),
            "allowed by OPAPolicy ns/o (no ALLOW policy applies to the workload and no DENY policy matched)");
  EXPECT_EQ(sentence(R::DeniedForeignNotNamed, "", -1, "other.td"),
            "denied: the peer is of federated trust domain other.td and no ALLOW rule names its principal with "
            "that trust domain");
}

}  // namespace
}  // namespace mg::policy::test
