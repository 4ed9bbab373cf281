// The service registry's pure logic (control/endpoints.h) and state (control/registry.h):
// services × registered proxies → ServiceEndpoints, the pushed documents, egress narrowing, and
// the grace period after a proxy's stream ends.
#include <gtest/gtest.h>

#include <algorithm>

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

// Several meshes (docs/MESHES.md): a Service selects only the registrations of its own mesh, and
// a registration's mesh survives its stored record.
TEST(Endpoints, AServiceSelectsOnlyItsMeshsWorkloads) {
  const auto set = parse(R"(apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: details, namespace: shop}
spec:
  selector: {app: details}
  ports: [{port: 9080, targetPort: 8080}]
---
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: details-b, namespace: shop, labels: {meshguard.io/mesh: mesh-b}}
spec:
  selector: {app: details}
  ports: [{port: 9080, targetPort: 8080}]
)");
  auto in_b = reg("details-in-b", "details", "10.0.0.2", {{15006, 8080, "http"}});
  in_b.mesh = "mesh-b";
  const auto eps = compute_endpoints(set, {reg("details-default", "details", "10.0.0.1", {{15006, 8080, "http"}}), in_b});
  ASSERT_EQ(eps.size(), 2u);
  ASSERT_EQ(eps[0].endpoints.size(), 1u);
  EXPECT_EQ(eps[0].endpoints[0].workload, "details-default");
  ASSERT_EQ(eps[1].endpoints.size(), 1u);
  EXPECT_EQ(eps[1].endpoints[0].workload, "details-in-b");
  auto back = parse_registration_record(registration_record(in_b));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->mesh, "mesh-b");
  // A default-mesh record is written as before several meshes (no "mesh" field).
  EXPECT_EQ(registration_record(reg("x", "x", "10.0.0.3", {})).find("mesh"), std::string::npos);
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


TEST(Registry, RecordRoundTripAndRefusals) {
  auto r = reg("details-v1", "details", "10.0.0.1", {{15006, 8080, "http"}, {15007, 9090, ""}});
  r.labels["version"] = "v1 \"quoted\": yes";  // labels are free text
  auto back = parse_registration_record(registration_record(r));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, r);
  r.address.clear();  // none reported and no peer address: kept empty
  back = parse_registration_record(registration_record(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, r);
  for (const char* bad : {
           "", "[]", "{not json",
           R"({"name":"a","namespace":"shop","serviceAccount":"sa","inbound":[]} trailing)",
           R"({"namespace":"shop","serviceAccount":"sa","inbound":[]})",              // no name
           R"({"name":"A b","namespace":"shop","serviceAccount":"sa","inbound":[]})",  // not a DNS name
           R"({"name":"a\nkind: Mesh","namespace":"shop","serviceAccount":"sa","inbound":[]})",
           R"({"name":"a","namespace":"sh/op","serviceAccount":"sa","inbound":[]})",
           R"({"name":"a","namespace":"shop","serviceAccount":"sa","address":"host.example","inbound":[]})",
           R"({"name":"a","namespace":"shop","serviceAccount":"sa","inbound":[{"port":0,"appPort":1}]})",
           R"({"name":"a","namespace":"shop","serviceAccount":"sa","inbound":[{"port":70000,"appPort":1}]})",
           R"({"name":"a","namespace":"shop","serviceAccount":"sa","inbound":[{"port":-1,"appPort":1}]})",
           R"({"name":"a","namespace":"shop","serviceAccount":"sa","inbound":[{"port":"1","appPort":1}]})",
           R"({"name":"a","namespace":"shop","serviceAccount":"sa","labels":{"k":1},"inbound":[]})",
           R"({"name":"a","namespace":"shop","serviceAccount":"sa"})",  // no inbound
       }) {
    EXPECT_FALSE(parse_registration_record(bad)) << bad;
  }
}

// What a restarted control plane does with the registrations its store kept.
TEST(Registry, RestoreIsLiveUntilTheGraceUnlessTheProxyReconnects) {
  const auto set = parse(kServices);
  const auto grace = std::chrono::seconds(10);
  const auto t0 = Registry::Clock::now();
  const int64_t u0 = 1'700'000'000;
  // The last run: v1 and v2 connected, v3 left 4 s ago, v4 left 30 s ago; one record unreadable.
  std::vector<StoredRegistration> stored;
  {
    Registry before(grace);
    before.join("shop/details-v1", reg("details-v1", "details", "10.0.0.1", {{15006, 8080, "http"}}));
    before.join("shop/details-v2", reg("details-v2", "details", "10.0.0.2", {{15006, 8080, "http"}}));
    before.join("shop/details-v3", reg("details-v3", "details", "10.0.0.3", {{15006, 8080, "http"}}));
    before.join("shop/details-v4", reg("details-v4", "details", "10.0.0.4", {{15006, 8080, "http"}}));
    before.leave("shop/details-v3", t0 - std::chrono::seconds(4));
    before.leave("shop/details-v4", t0 - std::chrono::seconds(30));
    auto unsaved = before.take_unsaved(t0, u0);
    EXPECT_TRUE(unsaved.remove.empty());
    ASSERT_EQ(unsaved.save.size(), 4u);
    EXPECT_TRUE(unsaved.save[0].connected && unsaved.save[0].healthy);
    EXPECT_FALSE(unsaved.save[2].connected || unsaved.save[2].healthy);
    EXPECT_EQ(unsaved.save[2].last_seen_unix, u0 - 4);
    EXPECT_EQ(unsaved.save[3].last_seen_unix, u0 - 30);
    EXPECT_FALSE(before.has_unsaved());
    EXPECT_TRUE(before.take_unsaved(t0, u0).save.empty());
    stored = unsaved.save;
    stored.push_back({"shop/broken", "{", true, true, u0});
    auto mismatched = stored[0];
    mismatched.key = "shop/other";  // a record under another proxy's key
    stored.push_back(mismatched);
  }

  // Restarted 2 s later.
  const auto t1 = t0 + std::chrono::seconds(2);
  const int64_t u1 = u0 + 2;
  Registry registry(grace);
  auto restored = registry.restore(stored, t1, u1);
  EXPECT_EQ(restored.restored, 3u);
  EXPECT_EQ(restored.expired, 1u);
  ASSERT_EQ(restored.errors.size(), 2u);
  EXPECT_NE(restored.errors[0].find("shop/broken"), std::string::npos);
  auto eps = registry.recompute(set);
  ASSERT_EQ(eps->at(0).endpoints.size(), 3u);
  EXPECT_TRUE(eps->at(0).endpoints[0].healthy);   // v1: connected when the last run ended
  EXPECT_TRUE(eps->at(0).endpoints[1].healthy);   // v2
  EXPECT_FALSE(eps->at(0).endpoints[2].healthy);  // v3: still in the grace it had
  EXPECT_EQ(eps->at(0).endpoints[2].workload, "details-v3");
  // v3 leaves when its grace ends (4 + 2 s of it gone), the others at the restart + grace.
  ASSERT_TRUE(registry.next_expiry());
  EXPECT_EQ(*registry.next_expiry(), t1 + std::chrono::seconds(4));

  // Written back: the restored as last seen at the restart; the expired and the bad removed.
  auto unsaved = registry.take_unsaved(t1, u1);
  std::sort(unsaved.remove.begin(), unsaved.remove.end());
  EXPECT_EQ(unsaved.remove, (std::vector<std::string>{"shop/broken", "shop/details-v4", "shop/other"}));
  ASSERT_EQ(unsaved.save.size(), 3u);
  EXPECT_EQ(unsaved.save[0].key, "shop/details-v1");
  EXPECT_FALSE(unsaved.save[0].connected);
  EXPECT_TRUE(unsaved.save[0].healthy);
  EXPECT_EQ(unsaved.save[0].last_seen_unix, u1);
  EXPECT_EQ(unsaved.save[2].last_seen_unix, u0 - 4);

  // v2 reconnects: live for good. v1 does not: it leaves at the grace's end, as a stream's end does.
  registry.join("shop/details-v2", reg("details-v2", "details", "10.0.0.2", {{15006, 8080, "http"}}));
  EXPECT_FALSE(registry.expire(t1 + std::chrono::seconds(3)));
  EXPECT_TRUE(registry.expire(t1 + std::chrono::seconds(4)));  // v3
  EXPECT_EQ(registry.recompute(set)->at(0).endpoints.size(), 2u);
  EXPECT_TRUE(registry.expire(t1 + grace));  // v1
  eps = registry.recompute(set);
  ASSERT_EQ(eps->at(0).endpoints.size(), 1u);
  EXPECT_EQ(eps->at(0).endpoints[0].workload, "details-v2");
  EXPECT_FALSE(registry.next_expiry());

  // A second restart 6 s after the first, before v1 reconnected: what was saved gives v1 only the
  // rest of the first restart's grace — restarting cannot keep a gone proxy listed.
  Registry again(grace);
  restored = again.restore(unsaved.save, t1 + std::chrono::seconds(6), u1 + 6);
  EXPECT_EQ(restored.restored, 2u);  // v1 (healthy, 4 s left) and v2's old record
  ASSERT_TRUE(again.next_expiry());
  EXPECT_EQ(*again.next_expiry(), t1 + std::chrono::seconds(10));
  EXPECT_TRUE(again.recompute(set)->at(0).endpoints[0].healthy);
  // A clock set back by an hour cannot stretch a grace beyond one period.
  Registry skewed(grace);
  skewed.restore({unsaved.save[2]}, t1, u0 - 3600);
  ASSERT_TRUE(skewed.next_expiry());
  EXPECT_EQ(*skewed.next_expiry(), t1 + grace);
}


// What `get endpoints -w` is sent: each recompute's document changes, numbered by the generation.
TEST(Registry, ChangesAreNumberedByTheGeneration) {
  auto set = parse(kServices);
  Registry registry(std::chrono::seconds(10));
  std::vector<Registry::Change> changes;
  registry.recompute(set, 1, 0, &changes);
  ASSERT_EQ(changes.size(), 3u);  // every Service's (empty) endpoints appear
  EXPECT_EQ(changes[0].change, "created");
  EXPECT_EQ(registry.generation(), 3);
  changes.clear();
  registry.recompute(set, 1, 0, &changes);
  EXPECT_TRUE(changes.empty());
  EXPECT_EQ(registry.generation(), 3);
  registry.join("shop/details-v1", reg("details-v1", "details", "10.0.0.1", {{15006, 8080, "http"}}));
  registry.recompute(set, 1, 0, &changes);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].ns, "shop");
  EXPECT_EQ(changes[0].name, "details");
  EXPECT_EQ(changes[0].change, "configured");
  EXPECT_EQ(changes[0].generation, 4);
  changes.clear();
  set = parse(std::string(kServices).substr(0, std::string(kServices).find("---")));  // details only
  registry.recompute(set, 2, 0, &changes);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].change, "deleted");
  EXPECT_EQ(changes[1].change, "deleted");
  EXPECT_EQ(changes[1].generation, 6);
  EXPECT_EQ(registry.generation(), 6);
}

}  // namespace
}  // namespace mg::control
