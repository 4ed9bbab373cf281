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

TEST(Snapshot, AGatewayGetsItsGatewaysTheirVirtualServicesAndEveryServiceEntry) {
  constexpr const char* kRouting = R"(apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: edge}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: shop}
spec: {hosts: [shop.example.com], gateways: [edge/public], http: [{route: [{destination: {host: web.shop}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: out, namespace: edge}
spec: {hosts: [api.ext.com], gateways: [egress], http: [{route: [{destination: {host: api.ext.com}}]}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: edge}
spec: {hosts: [api.ext.com]}
)";
  auto set = policy::parse_resources(kRouting, "store");
  ASSERT_TRUE(set) << set.error().message;
  const WorkloadView gw{"ingress", "edge", "ingress", {{"istio", "ingressgateway"}}, false};
  auto pushed = policy::parse_resources(snapshot_for(*set, gw, mesh_settings(*set, "cluster.local"), "").policies_yaml);
  ASSERT_TRUE(pushed) << pushed.error().message;
  ASSERT_EQ(pushed->gateways.size(), 1u);
  EXPECT_EQ(pushed->gateways[0].meta.full_name(), "edge/public");
  ASSERT_EQ(pushed->virtual_services.size(), 1u);
  EXPECT_EQ(pushed->virtual_services[0].meta.full_name(), "shop/shop");
  EXPECT_EQ(pushed->service_entries.size(), 1u);
  // A workload no Gateway selects gets only the ServiceEntries.
  auto plain = policy::parse_resources(snapshot_for(*set, kCart, mesh_settings(*set, "cluster.local"), "").policies_yaml);
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_TRUE(plain->gateways.empty());
  EXPECT_TRUE(plain->virtual_services.empty());
  EXPECT_EQ(plain->service_entries.size(), 1u);
}

// The distributor renders one snapshot per selection key and shares it: workloads with one key
// must get the same snapshot, and anything that changes a snapshot must change the key.
TEST(SelectionKey, ReplicasOfOneNamespaceAndLabelsShareOneSnapshot) {
  constexpr const char* kScoped = R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: cart-only, namespace: shop}
spec:
  selector: {matchLabels: {app: cart}}
  rules: [{from: [{source: {namespaces: [shop]}}]}]
---
apiVersion: meshguard.io/v1alpha1
kind: Workload
metadata: {name: cart-pinned, namespace: shop}
spec:
  serviceAccount: cart
  labels: {app: cart}
  egress: [shop/none]
)";
  auto set = policy::parse_resources(std::string(kPolicy) + "---\n" + kScoped, "store");
  ASSERT_TRUE(set) << set.error().message;
  const MeshSettings mesh = mesh_settings(*set, "cluster.local");
  auto render = [&](const WorkloadView& w) { return snapshot_for(*set, w, mesh, "bundle").policies_yaml; };

  const WorkloadView replica_a{"cart-1", "shop", "cart", {{"app", "cart"}}, false};
  const WorkloadView other_account{"cart-2", "shop", "cart-v2", {{"app", "cart"}}, false};
  EXPECT_EQ(selection_key(*set, replica_a), selection_key(*set, other_account));  // not a selector
  EXPECT_EQ(render(replica_a), render(other_account));

  const WorkloadView other_labels{"cart-3", "shop", "cart", {{"app", "web"}}, false};
  const WorkloadView other_namespace{"cart-1", "web", "cart", {{"app", "cart"}}, false};
  EXPECT_NE(selection_key(*set, replica_a), selection_key(*set, other_labels));
  EXPECT_NE(render(replica_a), render(other_labels));
  EXPECT_NE(selection_key(*set, replica_a), selection_key(*set, other_namespace));

  // A registered Workload brings its own document and egress list: its name is part of the key.
  const WorkloadView pinned{"cart-pinned", "shop", "cart", {{"app", "cart"}}, true};
  EXPECT_NE(selection_key(*set, replica_a), selection_key(*set, pinned));
  EXPECT_NE(render(replica_a), render(pinned));
}

}  // namespace
}  // namespace mg::control
