// Live endpoints shared by replicas on etcd (control/live_endpoints.h, control/registry.h): the
// published value read back (and refused when it could lie about an identity), and the merge of
// this replica's registrations with the other replicas' that endpoints are computed from.
#include <gtest/gtest.h>

#include "control/live_endpoints.h"
#include "control/registry.h"
#include "policy/parse.h"

namespace mg::control {
namespace {

constexpr const char* kService = R"(apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: details, namespace: shop}
spec:
  selector: {app: details}
  ports: [{name: http, port: 9080, targetPort: 8080}]
)";

Registration reg(std::string name, std::string address, bool connected = true, std::string sa = "details") {
  Registration r;
  r.name = std::move(name);
  r.ns = "shop";
  r.service_account = sa;
  r.spiffe_id = "spiffe://cluster.local/ns/shop/sa/" + sa;
  r.labels = {{"app", "details"}};
  r.address = std::move(address);
  r.inbound = {{15006, 8080, "http"}};
  r.connected = connected;
  return r;
}

policy::ResourceSet parse(const std::string& yaml) {
  auto set = policy::parse_resources(yaml, "store");
  EXPECT_TRUE(set) << set.error().message;
  return set ? std::move(*set) : policy::ResourceSet{};
}

// The addresses merged for workload `name` (one at most), "" when it is left out.
std::string address_of(const std::vector<Registration>& merged, const std::string& name) {
  for (const auto& r : merged) {
    if (r.name == name) return r.address + (r.connected ? "" : " (grace)");
  }
  return "";
}

TEST(LiveEntry, RoundTrip) {
  const auto r = reg("details-1", "10.0.0.1", false);
  const LiveKey key{"cp-a:1#aa", "shop", "details-1"};
  auto back = decode_live_entry(key, encode_live_entry(r));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, r);  // every field, the SPIFFE ID and health included
}

TEST(LiveEntry, RefusesWhatCouldLieOrIsMalformed) {
  const LiveKey key{"cp-a:1#aa", "shop", "details-1"};
  const std::string good = encode_live_entry(reg("details-1", "10.0.0.1"));
  ASSERT_TRUE(decode_live_entry(key, good));
  const auto refused = [&](const std::string& value, const std::string& why) {
    auto got = decode_live_entry(key, value);
    ASSERT_FALSE(got) << why << ": " << value;
    EXPECT_EQ(got.error().code, "registry.bad_live_entry") << why;
  };
  // The key names another workload than the value.
  auto other = reg("details-2", "10.0.0.1");
  refused(encode_live_entry(other), "the value names another workload than its key");
  // The SPIFFE ID must be the record's namespace and service account: an entry cannot pair one
  // workload's name with another identity.
  auto lying = reg("details-1", "10.0.0.1");
  lying.spiffe_id = "spiffe://cluster.local/ns/shop/sa/admin";
  refused(encode_live_entry(lying), "SPIFFE ID of another service account");
  lying.spiffe_id = "spiffe://cluster.local/ns/bank/sa/details";
  refused(encode_live_entry(lying), "SPIFFE ID of another namespace");
  lying.spiffe_id = "spiffe://cluster.local/control-plane";
  refused(encode_live_entry(lying), "not a workload ID");
  lying.spiffe_id = "";
  refused(encode_live_entry(lying), "no SPIFFE ID");
  auto bad_address = reg("details-1", "not-an-ip");
  refused(encode_live_entry(bad_address), "an address that is no IP");
  for (const char* junk : {"", "null", "[]", "{", "{\"name\": \"details-1\"}", "\x01\x02garbage"})
    refused(junk, "junk");
  std::string no_health = good;
  no_health.replace(no_health.find("\"healthy\":true"), 14, "\"healthy\":\"yes\"");
  refused(no_health, "healthy not a boolean");
}

TEST(MergeRegistrations, WithoutPeersTheOwnAreUnchanged) {
  const std::vector<LocalRegistration> own = {{reg("b", "10.0.0.2"), false},
                                              {reg("a", "10.0.0.1", false), true}};
  const auto merged = merge_registrations(own, {});
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0], own[1].registration);  // in key order
  EXPECT_EQ(merged[1], own[0].registration);
}

TEST(MergeRegistrations, OnePerWorkloadByFreshness) {
  const std::vector<LocalRegistration> own = {
      {reg("connected-here", "10.0.0.1"), false},
      {reg("moved-away", "10.0.0.2", /*connected=*/false), false},
      {reg("left-here", "10.0.0.3", false), false},
      {reg("restored", "10.0.0.4"), true},
      {reg("only-here", "10.0.0.5"), false},
  };
  const std::vector<PeerRegistration> peers = {
      {"cp-b", reg("connected-here", "10.9.0.1")},    // loses: connected here
      {"cp-b", reg("moved-away", "10.9.0.2")},        // wins: connected there, gone from here
      {"cp-b", reg("left-here", "10.9.0.3", false)},  // loses: both in grace, this one's first
      {"cp-b", reg("restored", "10.9.0.4", false)},   // wins: a report beats a restored record
      {"cp-c", reg("only-there", "10.9.0.6")},
  };
  const auto merged = merge_registrations(own, peers);
  EXPECT_EQ(merged.size(), 6u);
  EXPECT_EQ(address_of(merged, "connected-here"), "10.0.0.1");
  EXPECT_EQ(address_of(merged, "moved-away"), "10.9.0.2");
  EXPECT_EQ(address_of(merged, "left-here"), "10.0.0.3 (grace)");
  EXPECT_EQ(address_of(merged, "restored"), "10.9.0.4 (grace)");
  EXPECT_EQ(address_of(merged, "only-here"), "10.0.0.5");
  EXPECT_EQ(address_of(merged, "only-there"), "10.9.0.6");
}

TEST(MergeRegistrations, PeersOfOneRankAgreeOnTheSmallestReplica) {
  // Whatever order the watch delivered them in, every replica picks the same one.
  const PeerRegistration b{"cp-b", reg("w", "10.0.0.2")}, c{"cp-c", reg("w", "10.0.0.3")};
  const PeerRegistration a_grace{"cp-a", reg("w", "10.0.0.1", false)};
  EXPECT_EQ(address_of(merge_registrations({}, {b, c, a_grace}), "w"), "10.0.0.2");
  EXPECT_EQ(address_of(merge_registrations({}, {c, a_grace, b}), "w"), "10.0.0.2");
  EXPECT_EQ(address_of(merge_registrations({}, {a_grace}), "w"), "10.0.0.1 (grace)");
}

TEST(Registry, EndpointsMergeThePeersAndTheOwnIdentityWins) {
  const auto set = parse(kService);
  Registry registry(std::chrono::seconds(10));
  registry.join("shop/here", reg("here", "10.0.0.1"));
  // Another replica reports a proxy of the same name under another service account: this
  // replica's proxy, connected here with its certificate, keeps the endpoint and its identity.
  registry.set_peers({{"cp-b", reg("here", "10.9.9.9", true, "admin")}, {"cp-b", reg("there", "10.0.0.2")}});
  auto eps = registry.recompute(set);
  ASSERT_EQ(eps->at(0).endpoints.size(), 2u);
  EXPECT_EQ(eps->at(0).endpoints[0].workload, "here");
  EXPECT_EQ(eps->at(0).endpoints[0].address, "10.0.0.1");
  EXPECT_EQ(eps->at(0).endpoints[0].service_account, "details");
  EXPECT_EQ(eps->at(0).endpoints[1].workload, "there");
  EXPECT_EQ(eps->at(0).endpoints[1].address, "10.0.0.2");
  // A registered Workload binding the name to a service account leaves out a peer's entry of
  // another one, as it does a local registration.
  const auto bound = parse(std::string(kService) +
                           "---\napiVersion: meshguard.io/v1alpha1\nkind: Workload\n"
                           "metadata: {name: there, namespace: shop}\nspec: {serviceAccount: other}\n");
  eps = registry.recompute(bound);
  ASSERT_EQ(eps->at(0).endpoints.size(), 1u);
  EXPECT_EQ(eps->at(0).endpoints[0].workload, "here");
  // The peer's entry gone (its replica's lease expired): only this replica's.
  registry.set_peers({});
  eps = registry.recompute(set);
  ASSERT_EQ(eps->at(0).endpoints.size(), 1u);
}

TEST(Registry, LiveIsWhatConnectedHereAndItsVersionMoves) {
  Registry registry(std::chrono::seconds(10));
  const auto t0 = Registry::Clock::now();
  Registry before(std::chrono::seconds(10));
  before.join("shop/old", reg("old", "10.0.0.9"));
  const auto saved = before.take_unsaved(t0, 1'700'000'000);
  registry.restore(saved.save, t0, 1'700'000'000);
  EXPECT_TRUE(registry.live().registrations.empty());  // restored: not this replica's to report
  const uint64_t v0 = registry.live_version();
  registry.join("shop/a", reg("a", "10.0.0.1"));
  const uint64_t v1 = registry.live_version();
  EXPECT_NE(v1, v0);
  auto live = registry.live();
  ASSERT_EQ(live.registrations.size(), 1u);
  EXPECT_EQ(live.registrations.at("shop/a").spiffe_id, "spiffe://cluster.local/ns/shop/sa/details");
  EXPECT_TRUE(live.registrations.at("shop/a").connected);
  registry.leave("shop/a", t0);
  EXPECT_NE(registry.live_version(), v1);
  EXPECT_FALSE(registry.live().registrations.at("shop/a").connected);  // published unhealthy in its grace
  const uint64_t v2 = registry.live_version();
  EXPECT_TRUE(registry.expire(t0 + std::chrono::seconds(10)));
  EXPECT_NE(registry.live_version(), v2);
  EXPECT_TRUE(registry.live().registrations.empty());
  // The restored one rejoins here: now it is this replica's.
  registry.join("shop/old", reg("old", "10.0.0.9"));
  EXPECT_EQ(registry.live().registrations.count("shop/old"), 1u);
}

// A workload's name belongs to the identity connected with it at any replica (Distributor::hello
// refuses another identity's Hello for it): the registry answers which other identity holds it.
TEST(Registry, KnowsWhichOtherIdentityAnotherReplicaHasConnectedUnderAName) {
  Registry registry(std::chrono::seconds(10));
  const std::string details = "spiffe://cluster.local/ns/shop/sa/details";
  EXPECT_FALSE(registry.connected_at_peer_as_other("shop/details-1", details));
  registry.set_peers({{"cp-b:1#bb", reg("details-1", "10.0.0.2")},
                      {"cp-c:1#cc", reg("details-2", "10.0.0.3", /*connected=*/false, "other")}});
  // The same identity (a proxy moving between replicas) is not another one.
  EXPECT_FALSE(registry.connected_at_peer_as_other("shop/details-1", details));
  EXPECT_EQ(
      registry.connected_at_peer_as_other("shop/details-1", "spiffe://cluster.local/ns/shop/sa/intruder"),
      details);
  // Within its grace period at the other replica, the name is free (as for a stream ended here).
  EXPECT_FALSE(registry.connected_at_peer_as_other("shop/details-2", details));
  // Two replicas claiming one name for two identities: either is another than the third.
  registry.set_peers({{"cp-b:1#bb", reg("details-1", "10.0.0.2")},
                      {"cp-c:1#cc", reg("details-1", "10.0.0.3", true, "other")}});
  EXPECT_EQ(registry.connected_at_peer_as_other("shop/details-1", details),
            "spiffe://cluster.local/ns/shop/sa/other");
  // Peers replaced: what they no longer report is forgotten.
  registry.set_peers({});
  EXPECT_FALSE(
      registry.connected_at_peer_as_other("shop/details-1", "spiffe://cluster.local/ns/shop/sa/intruder"));
}

}  // namespace
}  // namespace mg::control
