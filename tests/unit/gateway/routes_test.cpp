// gateway/routes.h: listeners from the Gateways selecting the proxy, routes from the
// VirtualServices bound to them — host specificity, uri/headers/method, weights, namespaces.
#include "gateway/routes.h"

#include <gtest/gtest.h>

#include "policy/parse.h"

namespace mg::gateway {
namespace {

const char* kConfig = R"(apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 0, name: https, protocol: HTTPS}
    hosts: ["*.example.com"]
    tls: {mode: SIMPLE, credentialName: wildcard}
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["shop/*"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: more, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http2, protocol: HTTP}
    hosts: ["./api.example.com"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: elsewhere, namespace: edge}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 9000, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: shop}
spec:
  hosts: [shop.example.com]
  gateways: [edge/public]
  http:
  - match: [{uri: {prefix: /api/}, method: {exact: POST}}, {headers: {x-canary: {exact: "1"}}}]
    route:
    - {destination: {host: api.shop}, weight: 90}
    - {destination: {host: api-canary.shop, port: {number: 8081}}, weight: 10}
  - match: [{uri: {exact: /}}]
    route: [{destination: {host: web.shop}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: catch-all, namespace: edge}
spec:
  hosts: ["*.example.com"]
  gateways: [public, more]
  http:
  - route: [{destination: {host: default.edge}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: edge}
spec:
  hosts: [api.example.com]
  gateways: [more]
  http:
  - route: [{destination: {host: api.edge}}]
)";

struct Fixture : ::testing::Test {
  void SetUp() override {
    auto parsed = policy::parse_resources(kConfig, "gw.yaml");
    ASSERT_TRUE(parsed) << parsed.error().message;
    set = std::make_shared<const policy::ResourceSet>(std::move(*parsed));
    auto planned = plan_listeners(*set, {{"istio", "ingressgateway"}, {"app", "gw"}});
    ASSERT_TRUE(planned) << planned.error().message;
    plans = std::move(*planned);
    table = RouteTable::build(set, plans);
  }
  std::string dest(size_t listener, std::string_view host, std::string_view path, std::string_view method = "GET",
                   const http::Headers& headers = {}, uint32_t pick = 0) {
    auto r = table->route(listener, host, path, method, headers, pick);
    return r ? r->virtual_service + " " + r->destination->host : "404";
  }
  std::shared_ptr<const policy::ResourceSet> set;
  std::vector<ListenerPlan> plans;
  std::shared_ptr<const RouteTable> table;
};

TEST_F(Fixture, ListenersFromTheSelectingGateways) {
  ASSERT_EQ(plans.size(), 2u);  // the egress gateway's server is not ours
  EXPECT_EQ(plans[0].port, 0u);
  EXPECT_EQ(plans[0].protocol, policy::GatewayServer::Protocol::Https);
  EXPECT_EQ(plans[1].port, 8080u);
  ASSERT_EQ(plans[1].servers.size(), 2u);  // two Gateways' servers share port 8080
  EXPECT_EQ(plans[1].servers[1].gateway_name, "more");
  EXPECT_EQ(table->listeners(), 2u);
}

TEST_F(Fixture, HostSpecificityAndMatches) {
  // The exact host beats the wildcard VirtualService; its first matching http[] entry routes.
  EXPECT_EQ(dest(0, "shop.example.com", "/"), "shop/shop web.shop");
  EXPECT_EQ(dest(0, "SHOP.example.com", "/?q=1"), "shop/shop web.shop");  // case, query ignored
  EXPECT_EQ(dest(0, "shop.example.com", "/api/orders", "POST"), "shop/shop api.shop");
  EXPECT_EQ(dest(0, "shop.example.com", "/api/orders", "POST", {}, 95), "shop/shop api-canary.shop");
  http::Headers canary;
  canary.add("x-canary", "1");
  EXPECT_EQ(dest(0, "shop.example.com", "/other", "GET", canary), "shop/shop api.shop");
  // The host is the shop VirtualService's, and none of its routes matches: 404, no fallback.
  EXPECT_EQ(dest(0, "shop.example.com", "/api/orders", "GET"), "404");
  EXPECT_EQ(dest(0, "other.example.com", "/x"), "edge/catch-all default.edge");
  EXPECT_EQ(dest(0, "example.com", "/x"), "404");  // "*.example.com" needs a label before it
  EXPECT_EQ(dest(0, "unknown.org", "/"), "404");
}

TEST_F(Fixture, NamespacesOfServerHosts) {
  // Port 8080: "shop/*" admits the shop namespace's VirtualServices, "./api.example.com" the
  // Gateway's own namespace's; shop/shop names only edge/public, which has the shop/* server.
  EXPECT_EQ(dest(1, "shop.example.com", "/"), "shop/shop web.shop");
  EXPECT_EQ(dest(1, "api.example.com", "/"), "edge/api api.edge");
  // catch-all names both Gateways but only "more"'s ./api.example.com admits edge on 8080.
  EXPECT_EQ(dest(1, "x.example.com", "/"), "404");
}

TEST(Routes, PortConflictAcrossGatewaysIsRefused) {
  auto parsed = policy::parse_resources(R"(apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: a}
spec:
  selector: {app: gw}
  servers: [{port: {number: 80, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: b}
spec:
  selector: {app: gw}
  servers: [{port: {number: 80, protocol: HTTPS}, hosts: ["*"], tls: {mode: SIMPLE, credentialName: c}}]
)",
                                        "two.yaml");
  ASSERT_TRUE(parsed) << parsed.error().message;
  auto planned = plan_listeners(*parsed, {{"app", "gw"}});
  ASSERT_FALSE(planned);
  EXPECT_EQ(planned.error().message, "two.yaml:13: Gateway default/b: port 80 is already HTTP in Gateway default/a");
  EXPECT_TRUE(plan_listeners(*parsed, {{"app", "other"}})->empty());
}

TEST(Routes, TlsModesDoNotShareAPort) {
  auto parsed = policy::parse_resources(R"(apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: a}
spec:
  selector: {app: gw}
  servers: [{port: {number: 443, protocol: HTTPS}, hosts: ["*"], tls: {mode: SIMPLE, credentialName: c}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: b}
spec:
  selector: {app: gw}
  servers: [{port: {number: 443, protocol: HTTPS}, hosts: ["*"], tls: {mode: ISTIO_MUTUAL}}]
)",
                                        "two.yaml");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->gateways[1].servers[0].tls_mode, policy::GatewayServer::TlsMode::IstioMutual);
  auto planned = plan_listeners(*parsed, {{"app", "gw"}});
  ASSERT_FALSE(planned);
  EXPECT_EQ(planned.error().message,
            "two.yaml:13: Gateway default/b: port 443 is already HTTPS in Gateway default/a");
}

TEST(Routes, HostHelpers) {
  EXPECT_TRUE(host_matches("*", "a"));
  EXPECT_TRUE(host_matches("*.a.com", "x.y.a.com"));
  EXPECT_FALSE(host_matches("*.a.com", "a.com"));
  EXPECT_FALSE(host_matches("*.a.com", "xa.com"));
  EXPECT_EQ(host_without_port("a.com:8443"), "a.com");
  EXPECT_EQ(host_without_port("[::1]:80"), "::1");
  EXPECT_EQ(host_without_port("a.com"), "a.com");
}

// match[].gateways and match[].port (Istio's egress tasks): one VirtualService bound to a Gateway
// and to `mesh`, each entry applying only where its gateways say, on its port.
TEST(Routes, MatchGatewaysAndPortsAndTheMeshTable) {
  const char* text = R"(apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: [api.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: through-egress, namespace: istio-system}
spec:
  hosts: [api.example.com]
  gateways: [egress, mesh]
  http:
  - match: [{gateways: [mesh], port: 80}]
    route: [{destination: {host: egress-gw.istio-system, port: {number: 8080}}}]
  - match: [{gateways: [istio-system/egress], port: 8080}]
    route: [{destination: {host: api.example.com, port: {number: 443}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: plain, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews-v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: gateway-only, namespace: default}
spec:
  hosts: [other.example.com]
  gateways: [istio-system/egress]
  http:
  - route: [{destination: {host: x}}]
)";
  auto parsed = policy::parse_resources(text, "egress.yaml");
  ASSERT_TRUE(parsed) << parsed.error().message;
  auto set = std::make_shared<const policy::ResourceSet>(std::move(*parsed));
  ASSERT_EQ(set->virtual_services[0].http[0].match[0].gateways, (std::vector<std::string>{"mesh"}));
  EXPECT_EQ(set->virtual_services[0].http[0].match[0].port, 80u);
  auto plans = plan_listeners(*set, {{"istio", "egressgateway"}});
  ASSERT_TRUE(plans) << plans.error().message;
  auto gw = RouteTable::build(set, *plans);
  // At the gateway (listener port 8080): the second entry.
  auto r = gw->route(0, "api.example.com", "/", "GET", {}, 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->http_index, 1u);
  EXPECT_EQ(r->destination->port, 443u);
  EXPECT_FALSE(gw->route(0, "api.example.com", "/", "GET", {}, 0, 9090));  // another port
  EXPECT_TRUE(gw->serves(0, "api.example.com"));
  EXPECT_FALSE(gw->serves(0, "api.example.com", 9090));

  auto mesh = RouteTable::build_mesh(set);
  ASSERT_EQ(mesh->listeners(), 1u);
  auto m = mesh->route(0, "api.example.com", "/", "GET", {}, 0, 80);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->http_index, 0u);
  EXPECT_EQ(m->destination->host, "egress-gw.istio-system");
  EXPECT_FALSE(mesh->route(0, "api.example.com", "/", "GET", {}, 0, 8080));  // the gateway's entry
  EXPECT_FALSE(mesh->serves(0, "api.example.com", 8080));
  // `gateways` absent: bound to mesh, every port.
  auto plain = mesh->route(0, "reviews", "/", "GET", {}, 0, 9080);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->virtual_service, "default/plain");
  EXPECT_FALSE(mesh->route(0, "other.example.com", "/", "GET", {}, 0, 80));  // bound to a Gateway only
}

}  // namespace
}  // namespace mg::gateway
