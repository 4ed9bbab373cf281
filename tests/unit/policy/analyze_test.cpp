#include <gtest/gtest.h>

#include <algorithm>

#include "policy/analyze.h"
#include "policy/parse.h"

namespace mg::policy {
namespace {

std::vector<std::string> codes(const std::string& yaml) {
  auto set = parse_resources(yaml);
  EXPECT_TRUE(set) << (set ? "" : set.error().message);
  std::vector<std::string> out;
  if (set) {
    for (const auto& f : analyze(*set, MeshConfig{})) out.push_back(f.code);
  }
  return out;
}

const std::string kRa =
    "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: jwt\n  namespace: default\n"
    "spec:\n  jwtRules:\n  - issuer: a\n    jwksUri: https://x/jwks\n---\n";
const std::string kRequire =
    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: require\n  namespace: default\n"
    "spec:\n  rules:\n  - from:\n    - source:\n        requestPrincipals: [\"*\"]\n---\n";

TEST(Analyze, Codes) {
  EXPECT_EQ(codes(kRa), std::vector<std::string>{"MG0001"});
  EXPECT_TRUE(codes(kRa + kRequire).empty());
  const std::string workload =
      "apiVersion: meshguard.io/v1alpha1\nkind: Workload\nmetadata:\n  name: d\n  namespace: default\n"
      "spec:\n  labels: {app: details}\n---\n";
  const std::string sel_reviews =
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: r\n  namespace: default\n"
      "spec:\n  selector:\n    matchLabels: {app: reviews}\n  rules:\n  - {}\n---\n";
  const std::string sel_details =
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: r\n  namespace: default\n"
      "spec:\n  selector:\n    matchLabels: {app: details}\n  rules:\n  - {}\n---\n";
  EXPECT_EQ(codes(workload + sel_reviews), std::vector<std::string>{"MG0002"});
  EXPECT_TRUE(codes(workload + sel_details).empty());
  EXPECT_TRUE(codes(sel_reviews).empty());  // no Workload registered: MG0002 is not checked
  EXPECT_EQ(codes("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: n\nspec: {}\n"),
            std::vector<std::string>{"MG0003"});
  const std::string allow_admin =
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: a\n  namespace: default\n"
      "spec:\n  rules:\n  - to:\n    - operation:\n        paths: [\"/admin/x\"]\n---\n";
  const std::string deny_admin =
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: d\n  namespace: istio-system\n"
      "spec:\n  action: DENY\n  rules:\n  - to:\n    - operation:\n        paths: [\"/admin/*\"]\n---\n";
  const std::string deny_admin_from =
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: d\n  namespace: default\n"
      "spec:\n  action: DENY\n  rules:\n  - from:\n    - source:\n        namespaces: [x]\n    to:\n    - operation:\n        paths: [\"/admin/*\"]\n---\n";
  EXPECT_EQ(codes(allow_admin + deny_admin), std::vector<std::string>{"MG0004"});
  EXPECT_TRUE(codes(allow_admin + deny_admin_from).empty());
  const std::string pa1 = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: a\n  namespace: x\nspec: {}\n---\n";
  const std::string pa2 = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: b\n  namespace: x\nspec: {}\n---\n";
  EXPECT_EQ(codes(pa1 + pa2), std::vector<std::string>{"MG0005"});
  EXPECT_EQ(codes("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: s\nspec:\n  rules:\n"
                  "  - from:\n    - source:\n        principals: [\"spiffe://cluster.local/ns/a/sa/b\"]\n"),
            std::vector<std::string>{"MG0006"});
}

}  // namespace
}  // namespace mg::policy

namespace mg::policy {
namespace {

TEST(Analyze, RequestPrincipalWithoutRequestAuthentication) {
  EXPECT_EQ(codes(kRequire), std::vector<std::string>{"MG0009"});
  EXPECT_TRUE(codes(kRa + kRequire).empty());
  // An RA for other workloads does not help.
  const std::string ra_reviews =
      "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: jwt\n  namespace: default\n"
      "spec:\n  selector: {matchLabels: {app: reviews}}\n  jwtRules:\n  - issuer: a\n    jwksUri: https://x/jwks\n---\n";
  const std::string require_details =
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: require\n  namespace: default\n"
      "spec:\n  selector: {matchLabels: {app: details}}\n  rules:\n  - when:\n    - key: request.auth.claims[iss]\n"
      "      values: [a]\n---\n";
  auto c = codes(ra_reviews + require_details);
  EXPECT_NE(std::find(c.begin(), c.end(), "MG0009"), c.end());
}

TEST(Analyze, ConflictingWorkloadPeerAuthentications) {
  auto pa = [](const std::string& name, const std::string& labels, const std::string& mode) {
    return "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: " + name +
           ", namespace: default}\nspec:\n  selector: {matchLabels: {" + labels + "}}\n  mtls: {mode: " + mode +
           "}\n---\n";
  };
  EXPECT_EQ(codes(pa("a", "app: details", "STRICT") + pa("b", "app: details", "DISABLE")),
            std::vector<std::string>{"MG0010"});
  EXPECT_EQ(codes(pa("a", "app: details", "STRICT") + pa("b", "version: v1", "PERMISSIVE")),
            std::vector<std::string>{"MG0010"});  // a workload may carry both labels
  EXPECT_TRUE(codes(pa("a", "app: details", "STRICT") + pa("b", "app: reviews", "DISABLE")).empty());
  EXPECT_TRUE(codes(pa("a", "app: details", "STRICT") + pa("b", "app: details", "STRICT")).empty());
}

TEST(Analyze, V1beta1IsDeprecated) {
  const std::string beta =
      "apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: p, namespace: default}\n"
      "spec: {mtls: {mode: STRICT}}\n";
  auto set = parse_resources(beta, "beta.yaml");
  ASSERT_TRUE(set);
  auto findings = analyze(*set, MeshConfig{});
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].code, "MG0011");
  EXPECT_EQ(findings[0].severity, "info");
  EXPECT_EQ(findings[0].location, "beta.yaml:1");
}

TEST(Analyze, Services) {
  const std::string workload =
      "apiVersion: meshguard.io/v1alpha1\nkind: Workload\nmetadata: {name: details-v1}\n"
      "spec: {serviceAccount: details, labels: {app: details}, ports: [9080]}\n---\n";
  const std::string undeclared =
      "apiVersion: meshguard.io/v1alpha1\nkind: Workload\nmetadata: {name: details-v2}\n"
      "spec: {serviceAccount: details, labels: {app: details}}\n---\n";
  auto service = [](const std::string& selector, const std::string& target) {
    return "apiVersion: meshguard.io/v1alpha1\nkind: Service\nmetadata: {name: details}\nspec:\n  selector: {" +
           selector + "}\n  ports: [{name: http, port: 80, targetPort: " + target + "}]\n---\n";
  };
  const std::string endpoints =
      "apiVersion: meshguard.io/v1alpha1\nkind: ServiceEndpoints\nmetadata: {name: ratings}\nspec:\n  endpoints: []\n";
  EXPECT_TRUE(codes(workload + service("app: details", "9080")).empty());
  EXPECT_TRUE(codes(service("app: details", "9080")).empty());  // no Workloads registered: unknowable
  EXPECT_EQ(codes(workload + service("app: reviews", "9080")), std::vector<std::string>{"MG0012"});
  EXPECT_EQ(codes(workload + service("app: details", "9081")), std::vector<std::string>{"MG0013"});
  EXPECT_TRUE(codes(undeclared + service("app: details", "9081")).empty());  // ports not declared
  EXPECT_EQ(codes(endpoints), std::vector<std::string>{"MG0014"});
  auto set = parse_resources(workload + service("app: details", "9081"), "svc.yaml");
  ASSERT_TRUE(set);
  auto findings = analyze(*set, MeshConfig{});
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].location, "svc.yaml:6");
  EXPECT_EQ(findings[0].resource, "default/details");
  EXPECT_NE(findings[0].message.find("targets port 9081, which Workload default/details-v1 does not serve (its ports: 9080)"),
            std::string::npos)
      << findings[0].message;
}

TEST(Analyze, HttpOnlyFieldsOnATcpPort) {
  const std::string workload =
      "apiVersion: meshguard.io/v1alpha1\nkind: Workload\nmetadata: {name: db-v1}\n"
      "spec: {serviceAccount: db, labels: {app: db}, ports: [5432, 8080]}\n---\n";
  const std::string service =
      "apiVersion: meshguard.io/v1alpha1\nkind: Service\nmetadata: {name: db}\nspec:\n  selector: {app: db}\n"
      "  ports: [{name: sql, port: 5432, protocol: tcp}, {name: http-admin, port: 8080}]\n---\n";
  auto policy = [](const std::string& action, const std::string& rules) {
    return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec:\n"
           "  selector: {matchLabels: {app: db}}\n  action: " + action + "\n  rules: " + rules + "\n---\n";
  };
  const std::string methods = "[{to: [{operation: {methods: [GET]}}]}]";
  EXPECT_EQ(codes(workload + service + policy("ALLOW", methods)), std::vector<std::string>{"MG0015"});
  EXPECT_EQ(codes(workload + service + policy("DENY", "[{when: [{key: 'request.headers[x-a]', values: [b]}]}]")),
            std::vector<std::string>{"MG0015"});
  EXPECT_EQ(codes(workload + service + policy("ALLOW", "[{from: [{source: {requestPrincipals: ['*']}}]}]")),
            (std::vector<std::string>{"MG0009", "MG0015"}));
  // Port-scoped to the HTTP port, or TCP-only fields: nothing to say.
  EXPECT_TRUE(codes(workload + service + policy("ALLOW", "[{to: [{operation: {ports: ['8080'], paths: [/x]}}]}]")).empty());
  EXPECT_TRUE(codes(workload + service + policy("ALLOW", "[{to: [{operation: {notPorts: ['5432'], paths: [/x]}}]}]")).empty());
  EXPECT_TRUE(codes(workload + service + policy("ALLOW", "[{from: [{source: {namespaces: [default]}}], to: [{operation: {ports: ['5432']}}]}]")).empty());
  // No Service port is tcp, or the policy selects another workload: nothing either.
  std::string http_only = service;
  http_only.replace(http_only.find(", protocol: tcp"), 15, "");
  http_only.replace(http_only.find("name: sql"), 9, "name: http");
  EXPECT_TRUE(codes(workload + http_only + policy("ALLOW", methods)).empty());
  std::string other = policy("ALLOW", methods);
  other.replace(other.find("app: db}"), 8, "app: web}");
  EXPECT_EQ(codes(workload + service + other), std::vector<std::string>{"MG0002"});

  auto set = parse_resources(workload + service + policy("ALLOW", methods), "p.yaml");
  ASSERT_TRUE(set);
  auto findings = analyze(*set, MeshConfig{});
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].resource, "default/p");
  EXPECT_EQ(findings[0].location, "p.yaml:13");
  EXPECT_EQ(findings[0].message,
            "rule 0 uses HTTP-only fields (methods) but Service default/db port sql (targetPort 5432) of Workload "
            "default/db-v1 is tcp: the rule never matches its connections (an ALLOW policy then does not allow them)");
}

TEST(Analyze, ServiceEndpointsAreNotAppliable) {
  auto set = parse_resources(
      "apiVersion: meshguard.io/v1alpha1\nkind: ServiceEndpoints\nmetadata: {name: ratings}\nspec: {endpoints: []}\n",
      "e.yaml");
  ASSERT_TRUE(set);
  auto st = check_appliable(*set);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message.rfind("e.yaml:1: ServiceEndpoints default/ratings cannot be applied", 0), 0u)
      << st.error().message;
  set->service_endpoints.clear();
  EXPECT_TRUE(check_appliable(*set));
}

}  // namespace
}  // namespace mg::policy
