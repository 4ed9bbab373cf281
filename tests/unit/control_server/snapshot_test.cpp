// control::snapshot_for (pure): what one proxy is pushed. Issue 12 item 9: a Mesh document is
// always pushed — the stored one, else one written from the defaults with the CA's trust domain —
// so the agent and the proxy read their mesh settings from one text (policy::mesh_config_of).
#include <gtest/gtest.h>

#include "control/snapshot.h"
#include "policy/parse.h"

namespace mg::control {
namespace {

constexpr const char* kPolicy = R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-sleep, namespace: shop}
spec:
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/sleep/sa/sleep"]
)";

const WorkloadView kCart{"cart", "shop", "cart", {{"app", "cart"}}, false};

TEST(Snapshot, WithNoStoredMeshTheCasTrustDomainIsPushedAsAMeshDocument) {
  auto set = policy::parse_resources(kPolicy, "store");
  ASSERT_TRUE(set) << set.error().message;
  const MeshSettings mesh = mesh_settings(*set, "example.org");
  const ProxySnapshot snap = snapshot_for(*set, kCart, mesh, "");
  auto pushed = policy::parse_resources(snap.policies_yaml, "pushed");
  ASSERT_TRUE(pushed) << pushed.error().message << "\n" << snap.policies_yaml;
  ASSERT_EQ(pushed->meshes.size(), 1u) << snap.policies_yaml;
  EXPECT_EQ(snap.documents, 2);
  const policy::MeshConfig read = policy::mesh_config_of(*pushed);  // what the agent and the proxy do
  EXPECT_EQ(read.trust_domain, "example.org");
  EXPECT_EQ(read.root_namespace, mesh.config.root_namespace);
  EXPECT_EQ(read.path_normalization, mesh.config.path_normalization);
}

TEST(Snapshot, TheStoredMeshIsPushedAsWritten) {
  const std::string stored =
      "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: default\nspec:\n  trustDomain: "
      "new-td\n"
      "  trustDomainAliases: [old-td]\n";
  auto set = policy::parse_resources(stored + "---\n" + kPolicy, "store");
  ASSERT_TRUE(set) << set.error().message;
  const ProxySnapshot snap = snapshot_for(*set, kCart, mesh_settings(*set, "new-td"), "");
  EXPECT_EQ(snap.policies_yaml.find(stored), 4u) << snap.policies_yaml;  // after "---\n"
  auto pushed = policy::parse_resources(snap.policies_yaml, "pushed");
  ASSERT_TRUE(pushed);
  EXPECT_EQ(policy::mesh_config_of(*pushed).trust_domain_aliases, std::vector<std::string>{"old-td"});
}

}  // namespace
}  // namespace mg::control
