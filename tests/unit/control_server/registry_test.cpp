// tests/unit/control_server/registry_test — the service registry through the watch streams: a Hello's
// endpoint pushed to the other proxies.
#include "control_server_fixture.h"

namespace mg::control::server_test {
namespace {

// The service registry through the real API: a proxy's Hello registers it, the other proxies are
// pushed its endpoint, `Get` of ServiceEndpoints shows it, an operator cannot apply one, and a
// Hello with a malformed address or port ends the stream.
TEST_F(ControlServer, HelloRegistersAnEndpointThatIsPushedToOtherProxies) {
  const std::string service =
      "apiVersion: meshguard.io/v1alpha1\nkind: Service\nmetadata: {name: cart, namespace: shop}\n"
      "spec:\n  selector: {app: cart}\n  ports: [{name: http, port: 80, targetPort: 8080}]\n";
  pb::ApplyResponse r;
  ASSERT_TRUE(apply(service, &r).ok());
  WatchClient web(channel(issue("shop", "web-sa")));
  ASSERT_TRUE(web.hello("web", {{"app", "web"}}));
  auto w1 = web.at_least(r.revision());
  ASSERT_TRUE(w1);
  EXPECT_TRUE(contains(w1->policies_yaml(), "kind: Service\n")) << w1->policies_yaml();
  EXPECT_TRUE(contains(w1->policies_yaml(), "endpoints: []")) << w1->policies_yaml();
  ASSERT_TRUE(web.ack(w1->version()));

  WatchClient cart(channel(issue("shop", "cart-sa")));
  ASSERT_TRUE(cart.hello("cart-1", {{"app", "cart"}}, "10.1.2.3", {{15006, 8080}}));
  auto c1 = cart.next();
  ASSERT_TRUE(c1);
  ASSERT_TRUE(cart.ack(c1->version()));
  auto w2 = web.next();  // the registration is a change of web's view
  ASSERT_TRUE(w2);
  EXPECT_TRUE(contains(w2->policies_yaml(), "address: \"10.1.2.3\"")) << w2->policies_yaml();
  EXPECT_TRUE(contains(w2->policies_yaml(), "{port: 80, endpointPort: 15006}")) << w2->policies_yaml();
  EXPECT_TRUE(contains(w2->policies_yaml(), "serviceAccount: cart-sa")) << w2->policies_yaml();
  ASSERT_TRUE(web.ack(w2->version()));

  auto stub = admin_stub(admin_);
  grpc::ClientContext ctx;
  set_deadline(ctx);
  pb::GetRequest req;
  req.set_kind("ServiceEndpoints");
  pb::GetResponse got;
  ASSERT_TRUE(stub->Get(&ctx, req, &got).ok());
  ASSERT_EQ(got.resources_size(), 1);
  EXPECT_EQ(got.resources(0).key().name(), "cart");
  EXPECT_TRUE(contains(got.resources(0).yaml(), "workload: cart-1"));
  const auto stored = get_all();
  for (const auto& r2 : stored.resources()) EXPECT_NE(r2.key().kind(), "ServiceEndpoints");  // not stored

  const auto refused = apply(
      "apiVersion: meshguard.io/v1alpha1\nkind: ServiceEndpoints\nmetadata: {name: cart, namespace: shop}\n"
      "spec: {endpoints: []}\n");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(contains(refused.error_message(), "cannot be applied")) << refused.error_message();

  for (auto [address, port] : {std::pair<std::string, uint32_t>{"cart.shop", 15006}, {"10.0.0.1", 70000}}) {
    WatchClient bad(channel(issue("shop", "cart-sa")));
    ASSERT_TRUE(bad.hello("cart-2", {{"app", "cart"}}, address, {{port, 8080}}));
    EXPECT_FALSE(bad.next()) << address << " " << port;
    EXPECT_EQ(bad.finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT) << address << " " << port;
  }
}

}  // namespace
}  // namespace mg::control::server_test
