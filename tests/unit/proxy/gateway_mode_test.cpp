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
  config.inbound.push_back(InboundPort{});
  GatewayMode mode(config);
  ASSERT_TRUE(mode.plan(config, docs()));
  ASSERT_EQ(mode.listeners(), 3u);
  ASSERT_EQ(config.inbound.size(), 4u);
  EXPECT_EQ(mode.inbound_index(0), 1u);
  const InboundPort& http = config.inbound[1];
  EXPECT_EQ(http.gateway, 0u);
  EXPECT_EQ(http.address, "127.0.0.1");
  EXPECT_EQ(http.mtls, MtlsMode::Disable);
  EXPECT_EQ(config.inbound[2].port, 8443);
  EXPECT_EQ(config.inbound[2].app_port, 8443);
  EXPECT_EQ(config.inbound[2].mtls, MtlsMode::Strict);   // ISTIO_MUTUAL: the mesh's mTLS
  EXPECT_EQ(config.inbound[3].mtls, MtlsMode::Disable);  // SIMPLE: TLS ends in the gateway itself
  EXPECT_EQ(mode.tls_mode(2), policy::GatewayServer::TlsMode::Simple);
  ASSERT_NE(mode.routes()->table, nullptr);
  EXPECT_EQ(mode.routes()->table->listeners(), 3u);
  EXPECT_EQ(mode.routes()->entries.size(), 2u);
}

TEST(GatewayMode, NoGatewaySelectingTheWorkloadNoListeners) {
  ProxyConfig config;
  config.workload.labels = {{"app", "details"}};
  config.gateway = GatewaySettings{};
  GatewayMode mode(config);
  ASSERT_TRUE(mode.plan(config, docs()));
  EXPECT_TRUE(mode.enabled());
  EXPECT_EQ(mode.listeners(), 0u);
  EXPECT_TRUE(config.inbound.empty());
}

}  // namespace
}  // namespace mg::proxy
