// proxy/gateway_mode.h: the gateway's listeners as inbound ports of the config (modes by tls
// mode), the ServiceEntries it dials, and destination resolution (registry first, short names in
// the VirtualService's namespace, then MESH_INTERNAL STATIC ServiceEntries; HTTP ports only).
#include "proxy/gateway_mode.h"

#include <gtest/gtest.h>

#include "policy/parse.h"

namespace mg::proxy {
namespace {

const char* kDocs = R"(apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000}, {name: db, port: 5432, protocol: tcp}]
---
apiVersion: meshguard.io/v1alpha1
kind: ServiceEndpoints
metadata: {name: httpbin, namespace: foo}
spec:
  endpoints: [{workload: httpbin-v1, address: 10.0.0.5, serviceAccount: httpbin, ports: [{port: 8000, endpointPort: 15006}]}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: billing, namespace: edge}
spec:
  hosts: [Billing.Internal, billing.alias]
  ports: [{number: 9080, name: http, protocol: HTTP}, {number: 9443, name: grpc, protocol: GRPC, targetPort: 19443},
          {number: 9000, name: raw, protocol: TCP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 10.0.0.7, ports: {http: 15006}}, {address: 10.0.0.8}]
  subjectAltNames: ["spiffe://cluster.local/ns/billing/sa/b2", "spiffe://cluster.local/ns/billing/sa/b1"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: edge}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - {port: {number: 0, protocol: HTTP}, hosts: ["*"]}
  - {port: {number: 8443, protocol: HTTPS}, hosts: ["*"], tls: {mode: ISTIO_MUTUAL}}
  - {port: {number: 443, protocol: HTTPS}, hosts: ["*"], tls: {mode: SIMPLE, credentialName: c}}
)";

std::shared_ptr<const policy::ResourceSet> docs() {
  auto parsed = policy::parse_resources(kDocs, "gw.yaml");
  EXPECT_TRUE(parsed) << parsed.error().message;
  return std::make_shared<const policy::ResourceSet>(std::move(*parsed));
}

policy::HttpRouteDestination to(std::string host, uint32_t port = 0) {
  policy::HttpRouteDestination d;
  d.host = std::move(host);
  d.port = port;
  return d;
}

TEST(GatewayMode, ServiceEntriesAreMeshInternalStaticOnly) {
  auto entries = service_entry_services(*docs());
  ASSERT_EQ(entries.size(), 2u);  // one per host of the MESH_INTERNAL entry; the DNS one is not dialled
  const RegistryService& s = entries[0];
  EXPECT_EQ(s.name, "billing.internal");
  EXPECT_EQ(entries[1].name, "billing.alias");
  EXPECT_EQ(s.identities, (std::vector<std::string>{"spiffe://cluster.local/ns/billing/sa/b1",
                                                    "spiffe://cluster.local/ns/billing/sa/b2"}));
  ASSERT_EQ(s.ports.size(), 3u);
  ASSERT_EQ(s.ports[0].endpoints.size(), 2u);
  EXPECT_EQ(s.ports[0].endpoints[0].address, "10.0.0.7");
  EXPECT_EQ(s.ports[0].endpoints[0].port, 15006);  // the endpoint's port by name
  EXPECT_EQ(s.ports[0].endpoints[1].port, 9080);   // else the port's number
  EXPECT_EQ(s.ports[1].endpoints[0].port, 19443);  // else its targetPort
  EXPECT_EQ(s.ports[1].protocol, Protocol::Grpc);
  EXPECT_EQ(s.ports[2].protocol, Protocol::Tcp);
  EXPECT_NE(s.ports[0].endpoints[0].health, nullptr);
}

TEST(GatewayMode, HealthIsCarriedForEndpointsThatStay) {
  auto before = service_entry_services(*docs());
  auto after = service_entry_services(*docs());
  after[0].ports[0].endpoints[1].port = 9999;  // this endpoint moved: a new one
  carry_health(after, before);
  EXPECT_EQ(after[0].ports[0].endpoints[0].health, before[0].ports[0].endpoints[0].health);
  EXPECT_NE(after[0].ports[0].endpoints[1].health, before[0].ports[0].endpoints[1].health);
  EXPECT_EQ(after[1].ports[2].endpoints[0].health, before[1].ports[2].endpoints[0].health);
}

TEST(GatewayMode, ResolvesTheRegistryFirstThenServiceEntries) {
  auto set = docs();
  auto registry = Registry::build(*set, "cluster.local", "istio-system");
  GatewayRoutes routes;
  routes.entries = service_entry_services(*set);

  auto httpbin = resolve_destination(routes, *registry, to("httpbin", 8000), "foo");
  ASSERT_TRUE(httpbin);
  EXPECT_EQ(httpbin->name, "httpbin.foo.svc.cluster.local");
  EXPECT_EQ(httpbin->port->endpoints.at(0).port, 15006);
  EXPECT_EQ(httpbin->service->identities,
            std::vector<std::string>{"spiffe://cluster.local/ns/foo/sa/httpbin"});
  // A short name is the VirtualService's namespace's, not the gateway's.
  EXPECT_FALSE(resolve_destination(routes, *registry, to("httpbin", 8000), "bar"));
  EXPECT_TRUE(resolve_destination(routes, *registry, to("httpbin.foo.svc.cluster.local", 8000), "bar"));
  // Not an HTTP port, or no such port.
  EXPECT_FALSE(resolve_destination(routes, *registry, to("httpbin", 5432), "foo"));
  EXPECT_FALSE(resolve_destination(routes, *registry, to("httpbin", 9999), "foo"));

  auto billing = resolve_destination(routes, *registry, to("BILLING.internal", 9080), "other");
  ASSERT_TRUE(billing);
  EXPECT_EQ(billing->name, "billing.internal");
  EXPECT_EQ(billing->service->identities.size(), 2u);
  EXPECT_TRUE(resolve_destination(routes, *registry, to("billing.internal", 9443), "other"));
  EXPECT_FALSE(resolve_destination(routes, *registry, to("billing.internal", 9000), "other"));  // TCP
  EXPECT_FALSE(
      resolve_destination(routes, *registry, to("billing.internal"), "other"));  // three ports, none 80
  EXPECT_FALSE(resolve_destination(routes, *registry, to("api.example.com", 443), "edge"));  // MESH_EXTERNAL
  EXPECT_FALSE(resolve_destination(routes, *registry, to("nowhere.internal"), "edge"));
}

TEST(GatewayMode, ListenersBecomeInboundPorts) {
  ProxyConfig config;
  config.workload.labels = {{"istio", "ingressgateway"}};
  config.workload.address = "127.0.0.1";
  config.gateway = GatewaySettings{};
  GatewayMode mode(config);
  ASSERT_TRUE(mode.plan(config.workload, docs()));
  ASSERT_EQ(mode.listeners(), 3u);
  EXPECT_EQ(mode.to_bind(), (std::vector<size_t>{0, 1, 2}));
  EXPECT_TRUE(mode.to_close().empty());
  const InboundPort http = mode.inbound_port(0);
  EXPECT_EQ(http.gateway, 0u);
  EXPECT_EQ(http.address, "127.0.0.1");
  EXPECT_EQ(http.port, 0);
  EXPECT_EQ(http.mtls, MtlsMode::Permissive);  // HTTP: plaintext from outside, mTLS from the mesh
  EXPECT_FALSE(http.edge_tls);
  EXPECT_EQ(mode.inbound_port(1).port, 8443);
  EXPECT_EQ(mode.inbound_port(1).app_port, 8443);
  EXPECT_EQ(mode.inbound_port(1).mtls, MtlsMode::Strict);   // ISTIO_MUTUAL: the mesh's mTLS
  EXPECT_EQ(mode.inbound_port(2).mtls, MtlsMode::Disable);  // SIMPLE: TLS ends in the gateway itself
  EXPECT_TRUE(mode.inbound_port(2).edge_tls);
  ASSERT_NE(mode.routes()->table, nullptr);
  EXPECT_EQ(mode.routes()->table->listeners(), 3u);
  EXPECT_EQ(mode.routes()->entries.size(), 2u);
  mode.bound(1, 7);
  EXPECT_EQ(mode.inbound_index(1), 7u);
  EXPECT_EQ(mode.to_bind(), (std::vector<size_t>{0, 2}));
}

TEST(GatewayMode, NoGatewaySelectingTheWorkloadNoListeners) {
  ProxyConfig config;
  config.workload.labels = {{"app", "details"}};
  config.gateway = GatewaySettings{};
  GatewayMode mode(config);
  ASSERT_TRUE(mode.plan(config.workload, docs()));
  EXPECT_TRUE(mode.enabled());
  EXPECT_EQ(mode.listeners(), 0u);
  EXPECT_TRUE(mode.to_bind().empty());
}

std::shared_ptr<const policy::ResourceSet> gateway_on(const std::string& servers) {
  const std::string text =
      "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: edge}\n"
      "spec:\n  selector: {istio: ingressgateway}\n  servers:\n" +
      servers;
  auto parsed = policy::parse_resources(text, "gw.yaml");
  EXPECT_TRUE(parsed) << parsed.error().message;
  return std::make_shared<const policy::ResourceSet>(std::move(*parsed));
}

// A publish keeps the listeners it still asks for (same port and protocol), closes the others
// and opens new ones under new ids; an id is never reused.
TEST(GatewayMode, APublishKeepsClosesAndOpensListeners) {
  ProxyConfig config;
  config.workload.labels = {{"istio", "ingressgateway"}};
  GatewayMode mode(config);
  const std::string http80 = "  - {port: {number: 8080, protocol: HTTP}, hosts: [\"*\"]}\n";
  const std::string http0 = "  - {port: {number: 0, protocol: HTTP}, hosts: [\"a.test\"]}\n";
  const std::string mutual =
      "  - {port: {number: 8443, protocol: HTTPS}, hosts: [\"*\"], tls: {mode: ISTIO_MUTUAL}}\n";
  ASSERT_TRUE(mode.plan(config.workload, gateway_on(http80 + http0)));
  mode.bound(0, 0);
  mode.bound(1, 1);
  EXPECT_FALSE(mode.publish(gateway_on(http80 + http0)));  // nothing to bind or close
  EXPECT_FALSE(mode.publish(gateway_on(http0 + http80)));  // the order does not matter

  ASSERT_TRUE(mode.publish(gateway_on(http80 + mutual)));
  EXPECT_EQ(mode.to_close(), (std::vector<size_t>{1}));
  EXPECT_EQ(mode.to_bind(), (std::vector<size_t>{2}));
  EXPECT_EQ(mode.inbound_port(2).port, 8443);
  EXPECT_EQ(mode.inbound_port(2).mtls, MtlsMode::Strict);
  mode.closed(1);
  mode.bound(2, 2);
  EXPECT_TRUE(mode.to_close().empty());
  EXPECT_TRUE(mode.to_bind().empty());

  // Port 8080 becomes HTTPS: another listener (a new id), the HTTP one closes.
  ASSERT_TRUE(mode.publish(gateway_on(
      "  - {port: {number: 8080, protocol: HTTPS}, hosts: [\"*\"], tls: {mode: ISTIO_MUTUAL}}\n" + http0)));
  EXPECT_EQ(mode.to_close(), (std::vector<size_t>{0, 2}));
  EXPECT_EQ(mode.to_bind(), (std::vector<size_t>{3, 4}));  // the port-0 server back: a new id too
  EXPECT_EQ(mode.listeners(), 5u);
  EXPECT_EQ(mode.routes()->table->listeners(), 5u);  // routes indexed by id
}

// A bind that failed is tried again at the next publish, under the same id; a slot given up
// before it was ever bound has nothing to close.
TEST(GatewayMode, AListenerNotBoundIsTriedAgain) {
  ProxyConfig config;
  config.workload.labels = {{"istio", "ingressgateway"}};
  GatewayMode mode(config);
  const std::string http80 = "  - {port: {number: 8080, protocol: HTTP}, hosts: [\"*\"]}\n";
  const std::string http81 = "  - {port: {number: 8081, protocol: HTTP}, hosts: [\"*\"]}\n";
  ASSERT_TRUE(mode.plan(config.workload, gateway_on(http80 + http81)));
  mode.bound(0, 0);  // 8081's bind failed
  EXPECT_TRUE(mode.publish(gateway_on(http80 + http81)));
  EXPECT_EQ(mode.to_bind(), (std::vector<size_t>{1}));
  EXPECT_FALSE(mode.publish(gateway_on(http80)));
  EXPECT_TRUE(mode.to_bind().empty());
  EXPECT_TRUE(mode.to_close().empty());
}

// Ids are capped: a publish past the cap opens nothing more (the listeners in force stay).
TEST(GatewayMode, ListenerIdsAreCapped) {
  ProxyConfig config;
  config.workload.labels = {{"istio", "ingressgateway"}};
  GatewayMode mode(config);
  ASSERT_TRUE(
      mode.plan(config.workload, gateway_on("  - {port: {number: 1, protocol: HTTP}, hosts: [\"*\"]}\n")));
  for (size_t i = 2; i <= GatewayMode::kMaxListeners + 10; ++i) {
    mode.publish(
        gateway_on("  - {port: {number: " + std::to_string(i) + ", protocol: HTTP}, hosts: [\"*\"]}\n"));
  }
  EXPECT_EQ(mode.listeners(), GatewayMode::kMaxListeners);
}

}  // namespace
}  // namespace mg::proxy

namespace mg::proxy {
namespace {

// A TLS PASSTHROUGH server: a STRICT listener (the mesh's mTLS carrying the app's TLS), flagged
// passthrough so the inbound path routes it by SNI; a PASSTHROUGH server taking over the port of
// an ISTIO_MUTUAL one is another listener (the tls mode changed).
TEST(GatewayMode, PassthroughListenersAreStrictAndFlagged) {
  ProxyConfig config;
  config.workload.labels = {{"istio", "ingressgateway"}};
  GatewayMode mode(config);
  const std::string mutual =
      "  - {port: {number: 8443, protocol: HTTPS}, hosts: [\"*\"], tls: {mode: ISTIO_MUTUAL}}\n";
  const std::string passthrough =
      "  - {port: {number: 8443, protocol: TLS}, hosts: [\"*\"], tls: {mode: PASSTHROUGH}}\n";
  ASSERT_TRUE(mode.plan(config.workload, gateway_on(passthrough)));
  const InboundPort port = mode.inbound_port(0);
  EXPECT_EQ(port.mtls, MtlsMode::Strict);
  EXPECT_TRUE(port.passthrough);
  EXPECT_FALSE(port.edge_tls);
  EXPECT_EQ(port.protocol, Protocol::Tcp);
  mode.bound(0, 0);
  ASSERT_TRUE(mode.publish(gateway_on(mutual)));
  EXPECT_EQ(mode.to_close(), (std::vector<size_t>{0}));
  EXPECT_EQ(mode.to_bind(), (std::vector<size_t>{1}));
  EXPECT_FALSE(mode.inbound_port(1).passthrough);
}

}  // namespace
}  // namespace mg::proxy
