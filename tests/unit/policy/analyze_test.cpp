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
