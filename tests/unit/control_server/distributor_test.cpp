// tests/unit/control_server/distributor_test — the distributor behind the watch streams: what each workload is
// pushed, ACK / NACK and the synced revision, replaced streams, a Hello's registration against
// the workload's service account.
#include "control_server_fixture.h"

namespace mg::control::server_test {
namespace {

TEST_F(ControlServer, WatchPushesOnlyWhatAppliesToTheWorkload) {
  pb::ApplyResponse r0;
  ASSERT_TRUE(apply(policy("mesh-wide", "istio-system") + "---\n" + policy("cart-only", "shop", "cart") +
                        "---\n" + policy("web-only", "shop", "web") + "---\n" + policy("other-ns", "other"),
                    &r0)
                  .ok());

  WatchClient cart(channel(issue("shop", "cart-sa")));
  ASSERT_TRUE(cart.hello("cart", {{"app", "cart"}}));
  auto s1 = cart.at_least(r0.revision());
  ASSERT_TRUE(s1);
  EXPECT_TRUE(contains(s1->policies_yaml(), "name: mesh-wide"));
  EXPECT_TRUE(contains(s1->policies_yaml(), "name: cart-only"));
  EXPECT_FALSE(contains(s1->policies_yaml(), "name: web-only"));
  EXPECT_FALSE(contains(s1->policies_yaml(), "name: other-ns"));
  EXPECT_EQ(s1->labels().at("app"), "cart");
  EXPECT_EQ(s1->trust_bundle_pem(), bundle_);
  EXPECT_EQ(s1->mesh().trust_domain(), "cluster.local");
  ASSERT_TRUE(cart.ack(s1->version()));

  WatchClient other(channel(issue("other", "api-sa")));
  ASSERT_TRUE(other.hello("api"));
  auto o1 = other.at_least(r0.revision());
  ASSERT_TRUE(o1);
  EXPECT_TRUE(contains(o1->policies_yaml(), "name: other-ns"));
  EXPECT_FALSE(contains(o1->policies_yaml(), "name: cart-only"));
  ASSERT_TRUE(other.ack(o1->version()));

  // A change that does not apply to cart: `other` gets it. Its arrival proves the distributor has
  // been through every stream for that change, so cart's next snapshot tells whether it was pushed.
  pb::ApplyResponse r1;
  ASSERT_TRUE(apply(policy("other-new", "other") + "---\n" + policy("web-new", "shop", "web"), &r1).ok());
  auto o2 = other.next();
  ASSERT_TRUE(o2);
  EXPECT_TRUE(contains(o2->policies_yaml(), "name: other-new"));
  EXPECT_EQ(o2->revision(), r1.revision());
  ASSERT_TRUE(other.ack(o2->version()));

  pb::ApplyResponse r2;
  ASSERT_TRUE(apply(policy("cart-new", "shop", "cart"), &r2).ok());
  ASSERT_GT(r2.revision(), r1.revision());
  auto s2 = cart.next();
  ASSERT_TRUE(s2);
  EXPECT_EQ(s2->revision(), r2.revision())
      << "cart was pushed a snapshot for a change that does not apply to it";
  EXPECT_TRUE(contains(s2->policies_yaml(), "name: cart-new"));
  EXPECT_FALSE(contains(s2->policies_yaml(), "name: web-new"));
  EXPECT_FALSE(contains(s2->policies_yaml(), "name: other-new"));
  EXPECT_NE(s2->version(), s1->version());
  ASSERT_TRUE(cart.ack(s2->version()));

  // Both ACKs land in the workload list.
  bool acked = false;
  for (int i = 0; i < 500 && !acked; ++i) {
    const auto list = list_workloads();
    for (const auto& w : list.workloads())
      if (w.name() == "cart" && w.acked_version() == s2->version()) acked = true;
    if (!acked) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(acked);
}

// The store revision is the one version: a change that selects a proxy leaves it behind until it
// ACKs (apply --wait waits for that); one that does not select it moves it along unpushed.
TEST_F(ControlServer, SyncedRevisionFollowsAcksAndChangesThatDoNotSelectTheProxy) {
  WatchClient cart(channel(issue("shop", "cart-sa")));
  WatchClient web(channel(issue("shop", "web-sa")));
  ASSERT_TRUE(cart.hello("cart", {{"app", "cart"}}));
  ASSERT_TRUE(web.hello("web", {{"app", "web"}}));
  auto c1 = cart.next();
  auto w1 = web.next();
  ASSERT_TRUE(c1 && w1);
  ASSERT_TRUE(cart.ack(c1->version()));
  ASSERT_TRUE(web.ack(w1->version()));

  pb::ApplyResponse applied;
  ASSERT_TRUE(apply(policy("cart-only", "shop", "cart"), &applied).ok());
  const int64_t rev = applied.revision();
  auto c2 = cart.at_least(rev);
  ASSERT_TRUE(c2);
  EXPECT_EQ(c2->revision(), rev);
  auto status_of = [&](const std::string& name) {
    const auto list = list_workloads();
    for (const auto& w : list.workloads())
      if (w.name() == name) return w;
    return pb::WorkloadStatus{};
  };
  // Pushed, not ACKed: cart is behind; web (not selected) is in sync at `rev` without a push.
  std::this_thread::sleep_for(100ms);
  EXPECT_LT(status_of("cart").synced_revision(), rev);
  EXPECT_EQ(status_of("cart").config_revision(), rev);
  bool web_synced = false;
  for (int i = 0; i < 500 && !web_synced; ++i) {
    auto w = status_of("web");
    web_synced = w.synced_revision() >= rev;
    if (!web_synced) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(web_synced);
  EXPECT_LT(status_of("web").acked_revision(), rev);  // its snapshot predates the change
  EXPECT_EQ(list_workloads().revision(), rev);

  ASSERT_TRUE(cart.ack(c2->version()));
  bool cart_synced = false;
  for (int i = 0; i < 500 && !cart_synced; ++i) {
    auto w = status_of("cart");
    cart_synced = w.synced_revision() >= rev && w.acked_revision() == rev;
    if (!cart_synced) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(cart_synced);
}

TEST_F(ControlServer, NackIsRecorded) {
  WatchClient w(channel(issue("shop", "cart-sa")));
  ASSERT_TRUE(w.hello("cart", {{"app", "cart"}}));
  auto s = w.next();
  ASSERT_TRUE(s);
  ASSERT_TRUE(w.ack(s->version(), false, "policies/snapshot.yaml:3: bad rule"));
  std::optional<pb::WorkloadStatus> seen;
  for (int i = 0; i < 500 && !seen; ++i) {
    const auto list = list_workloads();
    for (const auto& ws : list.workloads())
      if (ws.name() == "cart" && !ws.nack_error().empty()) seen = ws;
    if (!seen) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->nack_error(), "policies/snapshot.yaml:3: bad rule");
  EXPECT_EQ(seen->namespace_(), "shop");
  EXPECT_EQ(seen->service_account(), "cart-sa");
  EXPECT_EQ(seen->config_version(), s->version());
  EXPECT_NE(seen->acked_version(), s->version());  // a NACK is not an ACK
  EXPECT_TRUE(seen->connected());
}

// A proxy that reconnects opens its new stream before the old one has ended; the old stream's
// end must not mark the workload disconnected while the new stream is up.
TEST_F(ControlServer, ReplacedStreamEndingLeavesTheWorkloadConnected) {
  auto svid = issue("shop", "cart-sa");
  WatchClient old_stream(channel(svid));
  ASSERT_TRUE(old_stream.hello("cart", {{"app", "cart"}}));
  auto first = old_stream.next();
  ASSERT_TRUE(first);
  WatchClient new_stream(channel(svid));
  ASSERT_TRUE(new_stream.hello("cart", {{"app", "cart"}}));
  auto again = new_stream.next();
  ASSERT_TRUE(again);
  ASSERT_TRUE(new_stream.ack(again->version()));
  // The old stream is ended by the server ("replaced by a newer stream").
  EXPECT_FALSE(old_stream.next());
  EXPECT_EQ(old_stream.finish().error_code(), grpc::StatusCode::ABORTED);
  std::optional<pb::WorkloadStatus> seen;
  for (int i = 0; i < 500 && !seen; ++i) {
    const auto list = list_workloads();
    for (const auto& ws : list.workloads())
      if (ws.name() == "cart" && ws.acked_version() == again->version()) seen = ws;
    if (!seen) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(seen);
  EXPECT_TRUE(seen->connected());
  // One stream counted, the replaced one gone from the count (kept incrementally).
  const auto connected_gauge = [&](const std::string& want) {
    std::string metrics;
    for (int i = 0; i < 500; ++i) {
      metrics = http_get(cp_->metrics_address(), "/metrics");
      if (contains(metrics, want)) return true;
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "no line " << want << " in\n" << metrics;
    return false;
  };
  EXPECT_TRUE(connected_gauge("meshguard_mesh_proxies_connected{mesh=\"default\"} 1\n"));
  EXPECT_TRUE(connected_gauge("pilot_xds 1\n"));
  // Once the only stream ends, the workload shows disconnected (bounded poll).
  new_stream.ctx.TryCancel();
  new_stream.finish();
  bool disconnected = false;
  for (int i = 0; i < 500 && !disconnected; ++i) {
    const auto list = list_workloads();
    for (const auto& ws : list.workloads())
      if (ws.name() == "cart" && !ws.connected()) disconnected = true;
    if (!disconnected) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(disconnected);
  EXPECT_TRUE(connected_gauge("meshguard_mesh_proxies_connected{mesh=\"default\"} 0\n"));
  EXPECT_TRUE(connected_gauge("pilot_xds 0\n"));
}

TEST_F(ControlServer, HelloAsAWorkloadRegisteredForAnotherServiceAccountIsDenied) {
  ASSERT_TRUE(apply(workload("cart", "shop", "cart-sa", "cart")).ok());
  ASSERT_TRUE(wait_registered("shop", "cart"));
  WatchClient w(channel(issue("shop", "intruder-sa")));
  ASSERT_TRUE(w.hello("cart", {{"app", "cart"}}));
  EXPECT_FALSE(w.next());
  EXPECT_EQ(w.finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // The registered service account is accepted, with the registered labels (not the proxy's).
  WatchClient ok(channel(issue("shop", "cart-sa")));
  ASSERT_TRUE(ok.hello("cart", {{"app", "payments"}}));
  auto s = ok.at_least(get_all().revision());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->labels().at("app"), "cart");
}

// A stream that said Hello as an unregistered workload loses it when a Workload registration
// binds that name to another service account: it is ended, never pushed that workload's config.
// An unregistered workload's name belongs to the identity connected with it: another service
// account of the namespace cannot take the name over (and so cannot abort the owner's stream).
TEST_F(ControlServer, ConnectedWorkloadNameIsNotTakenOverByAnotherServiceAccount) {
  WatchClient owner(channel(issue("shop", "web-sa")));
  ASSERT_TRUE(owner.hello("web", {{"app", "web"}}));
  auto first = owner.next();
  ASSERT_TRUE(first);
  ASSERT_TRUE(owner.ack(first->version()));

  WatchClient squatter(channel(issue("shop", "other-sa")));
  ASSERT_TRUE(squatter.hello("web", {{"app", "web"}}));
  EXPECT_FALSE(squatter.next());
  EXPECT_EQ(squatter.finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // The owner's stream is alive: a matching change still reaches it.
  pb::ApplyResponse r;
  ASSERT_TRUE(apply(policy("web-only", "shop", "web"), &r).ok());
  auto pushed = owner.at_least(r.revision());
  ASSERT_TRUE(pushed);
}

TEST_F(ControlServer, RegistrationForAnotherServiceAccountEndsAnOpenStream) {
  WatchClient intruder(channel(issue("shop", "intruder-sa")));
  ASSERT_TRUE(intruder.hello("cart", {{"app", "other"}}));
  auto first = intruder.next();
  ASSERT_TRUE(first);
  ASSERT_TRUE(intruder.ack(first->version()));

  pb::ApplyResponse r;
  ASSERT_TRUE(
      apply(workload("cart", "shop", "cart-sa", "cart") + "---\n" + policy("cart-only", "shop", "cart"), &r)
          .ok());
  auto pushed = intruder.next();
  EXPECT_FALSE(pushed) << "a proxy running as shop/intruder-sa was pushed workload shop/cart's configuration "
                          "(labels app="
                       << (pushed ? pushed->labels().at("app") : "")
                       << ") after cart was registered for cart-sa";
  if (!pushed) {
    EXPECT_EQ(intruder.finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
}

}  // namespace
}  // namespace mg::control::server_test
