#include <gtest/gtest.h>

#include "policy/parse.h"
#include "policy/select.h"

namespace mg::policy {
namespace {

std::string doc(const std::string& kind, const std::string& name, const std::string& ns, const std::string& spec) {
  return "apiVersion: security.istio.io/v1\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n  namespace: " + ns +
         "\nspec:\n" + spec + "\n---\n";
}

TEST(Select, AuthorizationPolicyScope) {
  const std::string sel_details = "  selector:\n    matchLabels:\n      app: details";
  auto set = parse_resources(doc("AuthorizationPolicy", "mesh", "istio-system", "  {}") +
                             doc("AuthorizationPolicy", "root-selector", "istio-system", sel_details) +
                             doc("AuthorizationPolicy", "ns", "default", "  {}") +
                             doc("AuthorizationPolicy", "other-ns", "other", "  {}") +
                             doc("AuthorizationPolicy", "sel", "default", sel_details) +
                             doc("AuthorizationPolicy", "sel-miss", "default", "  selector:\n    matchLabels:\n      app: reviews") +
                             doc("AuthorizationPolicy", "sel-other-ns", "other", sel_details));
  ASSERT_TRUE(set) << set.error().message;
  MeshConfig mesh;
  WorkloadRef w{"default", {{"app", "details"}, {"version", "v1"}}, "sa"};
  std::vector<std::string> names;
  for (const auto* p : applicable_authorization_policies(*set, w, mesh)) names.push_back(p->meta.name);
  EXPECT_EQ(names, (std::vector<std::string>{"mesh", "root-selector", "ns", "sel"}));

  // Another root namespace: istio-system is then an ordinary namespace.
  mesh.root_namespace = "mesh-root";
  names.clear();
  for (const auto* p : applicable_authorization_policies(*set, w, mesh)) names.push_back(p->meta.name);
  EXPECT_EQ(names, (std::vector<std::string>{"ns", "sel"}));
}

struct MtlsCase {
  const char* name;
  std::string yaml;
  uint32_t port;
  MtlsMode mode;
  std::string by;
};

TEST(Select, PeerAuthenticationPrecedence) {
  const std::string sel = "  selector:\n    matchLabels:\n      app: details\n";
  const auto mesh_strict = doc("PeerAuthentication", "mesh", "istio-system", "  mtls:\n    mode: STRICT");
  const auto mesh_unset = doc("PeerAuthentication", "mesh", "istio-system", "  mtls: {}");
  const auto ns_permissive = doc("PeerAuthentication", "ns", "default", "  mtls:\n    mode: PERMISSIVE");
  const auto ns_unset = doc("PeerAuthentication", "ns", "default", "  mtls:\n    mode: UNSET");
  const auto wl_disable = doc("PeerAuthentication", "wl", "default", sel + "  mtls:\n    mode: DISABLE");
  const auto wl_unset_ports = doc("PeerAuthentication", "wl", "default",
                                  sel + "  portLevelMtls:\n    8080:\n      mode: STRICT\n    8081:\n      mode: UNSET");
  const auto wl_other_ns = doc("PeerAuthentication", "wl", "other", sel + "  mtls:\n    mode: DISABLE");
  const auto root_selector = doc("PeerAuthentication", "rootsel", "istio-system", sel + "  mtls:\n    mode: DISABLE");
  const std::vector<MtlsCase> cases = {
      {"nothing: PERMISSIVE", "", 80, MtlsMode::Permissive, ""},
      {"mesh STRICT", mesh_strict, 80, MtlsMode::Strict, "istio-system/mesh"},
      {"mesh UNSET: PERMISSIVE", mesh_unset, 80, MtlsMode::Permissive, ""},
      {"namespace beats mesh", mesh_strict + ns_permissive, 80, MtlsMode::Permissive, "default/ns"},
      {"namespace UNSET inherits mesh", mesh_strict + ns_unset, 80, MtlsMode::Strict, "istio-system/mesh"},
      {"workload beats namespace", mesh_strict + ns_permissive + wl_disable, 80, MtlsMode::Disable, "default/wl"},
      {"workload UNSET inherits; port level STRICT", ns_permissive + wl_unset_ports, 8080, MtlsMode::Strict, "default/wl"},
      {"port-level UNSET inherits", mesh_strict + ns_permissive + wl_unset_ports, 8081, MtlsMode::Permissive, "default/ns"},
      {"other port inherits", mesh_strict + wl_unset_ports, 9090, MtlsMode::Strict, "istio-system/mesh"},
      {"workload policy in another namespace does not apply", mesh_strict + wl_other_ns, 80, MtlsMode::Strict,
       "istio-system/mesh"},
      {"root-namespace selector policy applies only to root-namespace workloads", mesh_strict + root_selector, 80,
       MtlsMode::Strict, "istio-system/mesh"},
      {"first loaded wins at one level", ns_permissive + doc("PeerAuthentication", "ns2", "default", "  mtls:\n    mode: STRICT"),
       80, MtlsMode::Permissive, "default/ns"},
  };
  const WorkloadRef w{"default", {{"app", "details"}}, "sa"};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto set = parse_resources(c.yaml);
    ASSERT_TRUE(set) << set.error().message;
    const auto res = resolve_peer_authentication(*set, w, MeshConfig{});
    EXPECT_EQ(res.for_port(c.port).mode, c.mode);
    EXPECT_EQ(res.for_port(c.port).decided_by, c.by);
  }
}

TEST(Select, MeshConfigFromTheMeshDocument) {
  MeshConfig defaults;
  defaults.trust_domain = "example.org";
  auto none = parse_resources("");
  ASSERT_TRUE(none);
  EXPECT_EQ(mesh_config_of(*none, defaults).trust_domain, "example.org");
  EXPECT_EQ(mesh_config_of(*none, defaults).root_namespace, "istio-system");

  auto set = parse_resources(
      "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata: {name: default}\nspec:\n"
      "  trustDomain: corp.example\n  rootNamespace: mesh-root\n  pathNormalization: MERGE_SLASHES\n");
  ASSERT_TRUE(set) << set.error().message;
  const auto mesh = mesh_config_of(*set, defaults);
  EXPECT_EQ(mesh.trust_domain, "corp.example");
  EXPECT_EQ(mesh.root_namespace, "mesh-root");
  EXPECT_EQ(mesh.path_normalization, PathNormalization::MergeSlashes);

  // The root namespace it names is the one that makes a policy mesh-wide.
  auto with_policy = parse_resources(
      "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata: {name: default}\nspec:\n  rootNamespace: mesh-root\n"
      "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-all, namespace: mesh-root}\n"
      "spec:\n  action: DENY\n  rules: [{}]\n");
  ASSERT_TRUE(with_policy) << with_policy.error().message;
  const WorkloadRef w{"default", {{"app", "details"}}, "sa"};
  EXPECT_EQ(applicable_authorization_policies(*with_policy, w, mesh_config_of(*with_policy)).size(), 1u);
  EXPECT_EQ(applicable_authorization_policies(*with_policy, w, MeshConfig{}).size(), 0u);
}

}  // namespace
}  // namespace mg::policy
