// The service registry's pure logic (control/endpoints.h) and state (control/registry.h):
// services × registered proxies → ServiceEndpoints, the pushed documents, egress narrowing, and
// the grace period after a proxy's stream ends.
#include <gtest/gtest.h>

#include "control/endpoints.h"
#include "control/registry.h"
#include "control/snapshot.h"
#include "policy/parse.h"

namespace mg::control {
namespace {

constexpr const char* kServices = R"(apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: details, namespace: shop}
spec:
  selector: {app: details}
  ports:
  - {name: http, port: 9080, targetPort: 8080}
  - {name: grpc, port: 9090}
---
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: ratings, namespace: shop}
spec:
  selector: {app: ratings}
  ports: [{port: 80}]
---
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: billing, namespace: money}
spec:
  selector: {app: details}
  ports: [{port: 80}]
)";

Registration reg(std::string name, std::string app, std::string address,
                 std::vector<Registration::InboundPort> inbound, std::string ns = "shop") {
  Registration r;
  r.name = std::move(name);
  r.ns = std::move(ns);
  r.service_account = "details";
  r.labels = {{"app", std::move(app)}};
  r.address = std::move(address);
  r.inbound = std::move(inbound);
  return r;
}

policy::ResourceSet parse(const std::string& yaml) {
  auto set = policy::parse_resources(yaml, "store");
  EXPECT_TRUE(set) << set.error().message;
  return set ? std::move(*set) : policy::ResourceSet{};
}

TEST(Endpoints, SelectorTargetPortsAndOrder) {
  const auto set = parse(kServices);
  const auto eps = compute_endpoints(
      set, {reg("details-v2", "details", "10.0.0.2", {{15006, 8080, "http"}}),
            reg("details-v1", "details", "10.0.0.1", {{15006, 8080, "http"}, {15007, 9090, "grpc"}}),
            reg("details-x", "details", "10.0.0.3", {{15006, 7777, "http"}}),  // serves no port of it
            reg("other", "reviews", "10.0.0.4", {{15006, 8080, "http"}}),
            reg("details-ns", "details", "10.0.0.5", {{15006, 8080, "http"}}, "other")});
  ASSERT_EQ(eps.size(), 3u);
  EXPECT_EQ(eps[0].meta.full_name(), "shop/details");
  ASSERT_EQ(eps[0].endpoints.size(), 2u);
  EXPECT_EQ(eps[0].endpoints[0].workload, "details-v1");  // sorted by workload
  EXPECT_EQ(eps[0].endpoints[0].address, "10.0.0.1");
  EXPECT_EQ(eps[0].endpoints[0].ports, (std::map<uint32_t, uint32_t>{{9080, 15006}, {9090, 15007}}));
  EXPECT_EQ(eps[0].endpoints[0].service_account, "details");
  EXPECT_TRUE(eps[0].endpoints[0].healthy);
  EXPECT_EQ(eps[0].endpoints[1].ports, (std::map<uint32_t, uint32_t>{{9080, 15006}}));
  EXPECT_TRUE(eps[1].endpoints.empty());  // ratings: nothing registered
  EXPECT_TRUE(eps[2].endpoints.empty());  // money/billing: the same labels, another namespace
  // The document parses back to the same endpoints (what every proxy parses).
  auto again = policy::parse_resources(eps[0].meta.document, "pushed");
  ASSERT_TRUE(again) << again.error().message << "\n" << eps[0].meta.document;
  ASSERT_EQ(again->service_endpoints.size(), 1u);
  EXPECT_EQ(again->service_endpoints[0].endpoints[0].ports, eps[0].endpoints[0].ports);
  EXPECT_EQ(again->service_endpoints[0].endpoints[1].address, "10.0.0.2");
  auto empty = policy::parse_resources(eps[1].meta.document, "pushed");
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_TRUE(empty->service_endpoints.at(0).endpoints.empty());
}

TEST(Endpoints, RegisteredWorkloadWinsLabelsAndAddress) {
  const auto set = parse(std::string(kServices) + R"(---
apiVersion: meshguard.io/v1alpha1
kind: Workload
metadata: {name: w1, namespace: shop}
spec: {serviceAccount: details, labels: {app: details}, address: "fd00::7"}
---
apiVersion: meshguard.io/v1alpha1
kind: Workload
metadata: {name: w2, namespace: shop}
spec: {serviceAccount: someone-else, labels: {app: details}}
)");
  auto r1 = reg("w1", "not-details", "10.0.0.1", {{15006, 8080, "http"}});
  auto r2 = reg("w2", "details", "10.0.0.2", {{15006, 8080, "http"}});
  auto r3 = reg("w3", "details", "", {{15006, 8080, "http"}});  // no address known: left out
  r1.connected = false;                                          // in its grace period
  const auto eps = compute_endpoints(set, {r1, r2, r3});
  ASSERT_EQ(eps[0].endpoints.size(), 1u);
  EXPECT_EQ(eps[0].endpoints[0].workload, "w1");
  EXPECT_EQ(eps[0].endpoints[0].address, "fd00::7");
  EXPECT_FALSE(eps[0].endpoints[0].healthy);
  auto again = policy::parse_resources(eps[0].meta.document, "pushed");
  ASSERT_TRUE(again) << again.error().message << "\n" << eps[0].meta.document;
  EXPECT_EQ(again->service_endpoints[0].endpoints[0].address, "fd00::7");
  EXPECT_FALSE(again->service_endpoints[0].endpoints[0].healthy);
}

TEST(Endpoints, PeerIp) {
  EXPECT_EQ(peer_ip("ipv4:127.0.0.1:5000"), "127.0.0.1");
  EXPECT_EQ(peer_ip("ipv6:[::1]:5000"), "::1");
  EXPECT_EQ(peer_ip("ipv6:[fe80::1%25eth0]:5000"), "");
  EXPECT_EQ(peer_ip("unix:/tmp/x"), "");
}

TEST(Endpoints, EgressNarrowsWhatIsPushed) {
  const auto set = parse(kServices);
  const policy::Service& details = set.services[0];
  const policy::Service& billing = set.services[2];
  using Egress = std::optional<std::vector<std::string>>;
  EXPECT_TRUE(may_call(std::nullopt, "shop", billing));
  EXPECT_FALSE(may_call(Egress{std::vector<std::string>{}}, "shop", details));
  EXPECT_TRUE(may_call(Egress{{"./*"}}, "shop", details));
  EXPECT_FALSE(may_call(Egress{{"./*"}}, "shop", billing));
  EXPECT_TRUE(may_call(Egress{{"money/*"}}, "shop", billing));
  EXPECT_TRUE(may_call(Egress{{"*/billing"}}, "shop", billing));
  EXPECT_TRUE(may_call(Egress{{"shop/details"}}, "other", details));
  EXPECT_FALSE(may_call(Egress{{"shop/ratings"}}, "shop", details));
}

TEST(Endpoints, SnapshotCarriesCallableServicesWithEndpoints) {
  const auto set = parse(std::string(kServices) + R"(---
apiVersion: meshguard.io/v1alpha1
kind: Workload
metadata: {name: client, namespace: shop}
spec: {serviceAccount: client, labels: {app: client}, egress: ["./details"]}
)");
  const auto eps = compute_endpoints(set, {reg("details-v1", "details", "10.0.0.1", {{15006, 8080, "http"}})});
  const MeshSettings mesh = mesh_settings(set, "cluster.local");
  const WorkloadView client{"client", "shop", "client", {{"app", "client"}}, true};
  const WorkloadView free{"free", "shop", "free", {{"app", "free"}}, false};
  auto narrowed = policy::parse_resources(snapshot_for(set, client, mesh, "", &eps).policies_yaml, "pushed");
  ASSERT_TRUE(narrowed) << narrowed.error().message;
  ASSERT_EQ(narrowed->services.size(), 1u);
  EXPECT_EQ(narrowed->services[0].meta.name, "details");
  ASSERT_EQ(narrowed->service_endpoints.size(), 1u);
  EXPECT_EQ(narrowed->service_endpoints[0].endpoints.at(0).address, "10.0.0.1");
  const auto all = snapshot_for(set, free, mesh, "", &eps);
  auto everything = policy::parse_resources(all.policies_yaml, "pushed");
  ASSERT_TRUE(everything) << everything.error().message;
  EXPECT_EQ(everything->services.size(), 3u);
  EXPECT_EQ(everything->service_endpoints.size(), 3u);
  // An endpoint change changes the version of every proxy that sees the service, only of those.
  const auto moved =
      compute_endpoints(set, {reg("details-v1", "details", "10.0.0.9", {{15006, 8080, "http"}})});
  EXPECT_NE(snapshot_for(set, free, mesh, "", &moved).version, all.version);
  const auto ratings_only = parse(std::string(kServices) + R"(---
apiVersion: meshguard.io/v1alpha1
kind: Workload
metadata: {name: client, namespace: shop}
spec: {serviceAccount: client, labels: {app: client}, egress: ["shop/ratings"]}
)");
  EXPECT_EQ(snapshot_for(ratings_only, client, mesh, "", &eps).version,
            snapshot_for(ratings_only, client, mesh, "", &moved).version);
  // No endpoints computed yet: the service goes out with an empty list.
  auto bare = policy::parse_resources(snapshot_for(set, free, mesh, "").policies_yaml, "pushed");
  ASSERT_TRUE(bare);
  ASSERT_EQ(bare->service_endpoints.size(), 3u);
  EXPECT_TRUE(bare->service_endpoints[0].endpoints.empty());
}

TEST(Endpoints, EgressIsValidated) {
  auto bad = policy::parse_resources(
      "apiVersion: meshguard.io/v1alpha1\nkind: Workload\nmetadata: {name: c}\nspec:\n  egress: [\"details\"]\n",
      "w.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("w.yaml:5: egress entry \"details\" must be NAMESPACE/NAME"), std::string::npos)
      << bad.error().message;
}

TEST(Registry, GracePeriodThenLeaves) {
  const auto set = parse(kServices);
  Registry registry(std::chrono::seconds(10));
  const auto t0 = Registry::Clock::now();
  registry.join("shop/details-v1", reg("details-v1", "details", "10.0.0.1", {{15006, 8080, "http"}}));
  EXPECT_TRUE(registry.endpoints()->empty());  // nothing computed yet
  auto eps = registry.recompute(set);
  ASSERT_EQ(eps->at(0).endpoints.size(), 1u);
  EXPECT_TRUE(eps->at(0).endpoints[0].healthy);
  EXPECT_FALSE(registry.next_expiry());
  registry.leave("shop/details-v1", t0);
  ASSERT_TRUE(registry.next_expiry());
  EXPECT_EQ(*registry.next_expiry(), t0 + std::chrono::seconds(10));
  eps = registry.recompute(set);
  ASSERT_EQ(eps->at(0).endpoints.size(), 1u);
  EXPECT_FALSE(eps->at(0).endpoints[0].healthy);  // listed, draining
  EXPECT_FALSE(registry.expire(t0 + std::chrono::seconds(9)));
  // Back within the grace period: healthy again, nothing expires.
  registry.join("shop/details-v1", reg("details-v1", "details", "10.0.0.1", {{15006, 8080, "http"}}));
  EXPECT_FALSE(registry.next_expiry());
  EXPECT_TRUE(registry.recompute(set)->at(0).endpoints.at(0).healthy);
  registry.leave("shop/details-v1", t0);
  EXPECT_TRUE(registry.expire(t0 + std::chrono::seconds(10)));
  EXPECT_FALSE(registry.next_expiry());
  EXPECT_TRUE(registry.recompute(set)->at(0).endpoints.empty());
  EXPECT_EQ(registry.endpoints()->size(), 3u);
}

}  // namespace
}  // namespace mg::control
