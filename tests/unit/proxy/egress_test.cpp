// proxy/egress.h (issue 20): where a client proxy sends a request by host — a VirtualService bound
// to `mesh`, a registry service, a MESH_EXTERNAL ServiceEntry (directly, TLS originated as a
// DestinationRule says), REGISTRY_ONLY's BlackHoleCluster — and resolve_external, the egress
// gateway's MESH_EXTERNAL resolver, on the documents of Istio's egress tasks (written from their
// published shapes: egress-tls-origination, egress-gateway, egress-gateway-tls-origination).
#include "proxy/egress.h"

#include <gtest/gtest.h>

#include "policy/parse.h"

namespace mg::proxy {
namespace {

// The egress gateway's Service as the registry holds it (a Kubernetes Service in Istio).
const char* kEgressGatewayService = R"(apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  ports: [{name: http, port: 80, protocol: http}, {name: https, port: 443, protocol: http}]
---
apiVersion: meshguard.io/v1alpha1
kind: ServiceEndpoints
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  endpoints:
  - {workload: egw, address: 127.0.0.1, serviceAccount: istio-egressgateway-service-account, ports: [{port: 80, endpointPort: 15080}]}
---
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, protocol: http}]
)";

// Istio's "Egress TLS Origination" task: the sidecar originates TLS for plain-HTTP calls.
const char* kSidecarOrigination = R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: edition-cnn-com
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
    targetPort: 443
  - number: 443
    name: https-port
    protocol: HTTPS
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: edition-cnn-com
spec:
  host: edition.cnn.com
  trafficPolicy:
    portLevelSettings:
    - port:
        number: 80
      tls:
        mode: SIMPLE # initiates HTTPS when accessing edition.cnn.com
)";

// Istio's "Egress Gateways with TLS Origination" task.
const char* kGatewayOrigination = R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: cnn
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 80
    name: http
    protocol: HTTP
  - number: 443
    name: https
    protocol: HTTPS
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
      portLevelSettings:
      - port:
          number: 80
        tls:
          mode: ISTIO_MUTUAL
          sni: edition.cnn.com
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts:
  - edition.cnn.com
  gateways:
  - istio-egressgateway
  - mesh
  http:
  - match:
    - gateways:
      - mesh
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: cnn
        port:
          number: 80
      weight: 100
  - match:
    - gateways:
      - istio-egressgateway
      port: 80
    route:
    - destination:
        host: edition.cnn.com
        port:
          number: 443
      weight: 100
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: originate-tls-for-edition-cnn-com
spec:
  host: edition.cnn.com
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
    portLevelSettings:
    - port:
        number: 443
      tls:
        mode: SIMPLE # initiates HTTPS for connections to edition.cnn.com
)";

struct World {
  explicit World(const std::string& yaml, bool registry_only = false, const std::string& ns = "default",
                 const char* base = kEgressGatewayService) {
    auto parsed = policy::parse_resources(std::string(base) + "---\n" + yaml, "egress.yaml");
    EXPECT_TRUE(parsed) << parsed.error().message;
    if (parsed) set = std::move(*parsed);
    registry = Registry::build(set, "cluster.local", ns);
    registry->set_registry_only(registry_only);
    auto built = DestinationRules::build(set, ns, "istio-system");
    EXPECT_TRUE(built) << built.error().message;
    if (built) rules = *built;
    routing = MeshRouting::build(set);
  }
  OutboundDecision decide(std::string_view authority, std::string_view path = "/politics") const {
    return decide_outbound({authority, path, "GET", nullptr, 0}, *registry, *routing, *rules);
  }
  OutboundDecision decide_tls(std::string_view sni, uint32_t port = kTlsDefaultPort) const {
    return decide_outbound_tls({sni, port, 0}, *registry, *routing, *rules);
  }
  policy::ResourceSet set;
  std::shared_ptr<Registry> registry;
  std::shared_ptr<const DestinationRules> rules;
  std::shared_ptr<const MeshRouting> routing;
};

TEST(Egress, SidecarTlsOriginationTask) {
  World w(kSidecarOrigination);
  auto d = w.decide("edition.cnn.com");
  ASSERT_TRUE(std::holds_alternative<ToExternal>(d)) << d.index();
  const ExternalTarget& t = std::get<ToExternal>(d).target;
  EXPECT_EQ(t.host, "edition.cnn.com");
  EXPECT_EQ(t.service_entry, "default/edition-cnn-com");
  EXPECT_EQ(t.service_port, 80u);
  EXPECT_EQ(t.port, 443);  // targetPort
  EXPECT_EQ(t.addresses, (std::vector<std::string>{"edition.cnn.com"}));  // DNS: the host itself
  ASSERT_TRUE(t.origin);
  EXPECT_EQ(t.origin->server_name, "edition.cnn.com");
  EXPECT_EQ(t.origin->rule, "default/edition-cnn-com");
  // Port 443 of the entry has no port-level tls: plaintext to 443 (the app speaks TLS itself).
  auto https = w.decide("edition.cnn.com:443");
  ASSERT_TRUE(std::holds_alternative<ToExternal>(https));
  EXPECT_FALSE(std::get<ToExternal>(https).target.origin);
  EXPECT_NE(std::get<ToExternal>(https).target.key, t.key);
  // A port the entry does not declare: unknown (404; REGISTRY_ONLY: the black hole).
  EXPECT_TRUE(std::holds_alternative<NotFound>(w.decide("edition.cnn.com:8080")));
  EXPECT_TRUE(std::holds_alternative<NotFound>(w.decide("www.google.com")));
}

TEST(Egress, RegistryOnlyAdmitsServiceEntryHostsAndServices) {
  World w(kSidecarOrigination, true);
  EXPECT_TRUE(std::holds_alternative<ToExternal>(w.decide("Edition.CNN.com")));
  EXPECT_TRUE(std::holds_alternative<ToService>(w.decide("reviews:9080")));
  EXPECT_TRUE(std::holds_alternative<BlackHole>(w.decide("www.google.com")));
  EXPECT_TRUE(std::holds_alternative<BlackHole>(w.decide("edition.cnn.com:8080")));
}

TEST(Egress, GatewayTlsOriginationTaskAtTheClient) {
  World w(kGatewayOrigination, true);
  // Port 80 (the Host has none): the `mesh` entry sends it to the egress gateway's subset cnn,
  // over mTLS with the external host as SNI and the subset's port-level settings (no balancer).
  auto d = w.decide("edition.cnn.com");
  ASSERT_TRUE(std::holds_alternative<ToService>(d)) << d.index();
  const ToService& s = std::get<ToService>(d);
  EXPECT_EQ(s.match.service->host(), "istio-egressgateway.istio-system");
  EXPECT_EQ(s.match.port->port, 80);
  EXPECT_EQ(s.sni, "edition.cnn.com");
  EXPECT_FALSE(s.load_balancer);
  EXPECT_EQ(s.virtual_service, "default/direct-cnn-through-egress-gateway");
  // Port 443: no entry of the VirtualService applies at `mesh` on that port, so the VirtualService
  // does not take it (Istio builds its routes per port): the ServiceEntry's port, directly.
  auto other = w.decide("edition.cnn.com:443");
  EXPECT_TRUE(std::holds_alternative<ToExternal>(other)) << other.index();
  // On port 80 a path the `mesh` entry does not match would be a 404 (here every path matches).
}

TEST(Egress, GatewayTlsOriginationTaskAtTheGateway) {
  World w(kGatewayOrigination);
  // The egress gateway's listener for the Gateway on port 80: the second entry applies there.
  const char* gateway = R"(apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 80
      name: https-port-for-tls-origination
      protocol: HTTPS
    hosts:
    - edition.cnn.com
    tls:
      mode: ISTIO_MUTUAL
)";
  auto parsed = policy::parse_resources(std::string(gateway) + "---\n" + kGatewayOrigination, "gw.yaml");
  if (!parsed) GTEST_SKIP() << "Gateway tls.mode ISTIO_MUTUAL is the gateway mode's (gwmode): " << parsed.error().message;
  auto set = std::make_shared<const policy::ResourceSet>(std::move(*parsed));
  auto plans = gateway::plan_listeners(*set, {{"istio", "egressgateway"}});
  ASSERT_TRUE(plans) << plans.error().message;
  auto table = gateway::RouteTable::build(set, *plans);
  auto r = table->route(0, "edition.cnn.com", "/politics", "GET", {}, 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->destination->host, "edition.cnn.com");
  EXPECT_EQ(r->destination->port, 443u);
  auto routing = MeshRouting::build(*set);
  auto entry = routing->find(r->destination->host, r->destination->port);
  ASSERT_TRUE(entry);
  auto target = resolve_external(*entry, r->destination->host, *w.rules, r->destination->subset);
  ASSERT_TRUE(target) << target.error().message;
  EXPECT_EQ(target->port, 443);
  ASSERT_TRUE(target->origin);
  EXPECT_EQ(target->origin->server_name, "edition.cnn.com");
  EXPECT_EQ(target->origin->rule, "default/originate-tls-for-edition-cnn-com");
}

TEST(Egress, MeshVirtualServicesRouteByWeightAndRefuseUnknownDestinations) {
  World w(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-split}
spec:
  hosts: [api.partner.example]
  http:
  - match: [{uri: {prefix: /v2/}}]
    route: [{destination: {host: reviews.default.svc.cluster.local, port: {number: 9080}}}]
  - match: [{uri: {prefix: /gone/}}]
    route: [{destination: {host: nowhere.example}}]
  - match: [{uri: {prefix: /subset/}}]
    route: [{destination: {host: reviews, subset: v9}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: only-at-a-gateway}
spec:
  hosts: [gw-only.example]
  gateways: [some-gateway]
  http:
  - route: [{destination: {host: reviews}}]
)");
  auto routed = w.decide("api.partner.example", "/v2/x");
  ASSERT_TRUE(std::holds_alternative<ToService>(routed));
  EXPECT_EQ(std::get<ToService>(routed).match.service->host(), "reviews.default");
  // No entry of the VirtualService matches: 404, never a fall-through to the registry.
  EXPECT_TRUE(std::holds_alternative<NotFound>(w.decide("api.partner.example", "/other")));
  auto gone = w.decide("api.partner.example", "/gone/");
  ASSERT_TRUE(std::holds_alternative<NoCluster>(gone));
  EXPECT_NE(std::get<NoCluster>(gone).detail.find("nowhere.example"), std::string::npos);
  auto subset = w.decide("api.partner.example", "/subset/");
  ASSERT_TRUE(std::holds_alternative<NoCluster>(subset));
  EXPECT_EQ(std::get<NoCluster>(subset).reason, "subset_not_found");
  // Bound to a Gateway only: client proxies do not route by it.
  EXPECT_TRUE(std::holds_alternative<NotFound>(w.decide("gw-only.example")));
}

TEST(Egress, StaticEndpointsAndWildcards) {
  World w(R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: partner}
spec:
  hosts: [api.partner.example]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {https: 8443}}, {address: 127.0.0.2, ports: {https: 8443}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild}
spec:
  hosts: ["*.wild.example"]
  ports: [{number: 80, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: partner}
spec:
  host: api.partner.example
  trafficPolicy: {tls: {mode: SIMPLE, sni: partner.example}}
)");
  auto d = w.decide("api.partner.example:443");
  ASSERT_TRUE(std::holds_alternative<ToExternal>(d));
  const ExternalTarget& t = std::get<ToExternal>(d).target;
  EXPECT_EQ(t.addresses, (std::vector<std::string>{"127.0.0.1", "127.0.0.2"}));
  EXPECT_EQ(t.port, 8443);
  ASSERT_TRUE(t.origin);
  EXPECT_EQ(t.origin->server_name, "partner.example");
  // Without a port, the entry's only port.
  EXPECT_TRUE(std::holds_alternative<ToExternal>(w.decide("api.partner.example")));
  // A wildcard entry (resolution NONE) resolves the host asked for.
  auto wild = w.decide("a.wild.example");
  ASSERT_TRUE(std::holds_alternative<ToExternal>(wild));
  EXPECT_EQ(std::get<ToExternal>(wild).target.addresses, (std::vector<std::string>{"a.wild.example"}));
  EXPECT_FALSE(std::get<ToExternal>(wild).target.origin);
}

TEST(Egress, MeshInternalEntriesAreReachedOverMtls) {
  World w(R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: billing}
spec:
  hosts: [billing.internal]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: 15006}}]
  subjectAltNames: ["spiffe://cluster.local/ns/billing/sa/billing"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ledger}
spec:
  hosts: [ledger.internal]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: billing}
spec:
  host: billing.internal
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
)", true);
  // The entry's endpoints over mTLS, its subjectAltNames the identities to expect.
  auto d = w.decide("Billing.Internal");
  ASSERT_TRUE(std::holds_alternative<ToService>(d)) << d.index();
  const ToService& s = std::get<ToService>(d);
  EXPECT_EQ(s.match.service->fqdn(), "billing.internal");
  EXPECT_EQ(s.match.service->identities, std::vector<std::string>{"spiffe://cluster.local/ns/billing/sa/billing"});
  EXPECT_EQ(s.match.port->port, 80);
  ASSERT_EQ(s.match.port->endpoints.size(), 1u);
  EXPECT_EQ(s.match.port->endpoints[0].address, "127.0.0.1");
  EXPECT_EQ(s.match.port->endpoints[0].port, 15006);
  EXPECT_EQ(s.load_balancer, policy::Service::LoadBalancer::RoundRobin);
  // A port the entry does not declare: REGISTRY_ONLY's black hole.
  EXPECT_TRUE(std::holds_alternative<BlackHole>(w.decide("billing.internal:8080")));
  // Without STATIC endpoints there is nothing to dial: 503 NC.
  auto dns = w.decide("ledger.internal");
  ASSERT_TRUE(std::holds_alternative<NoCluster>(dns));
  EXPECT_NE(std::get<NoCluster>(dns).detail.find("without resolution STATIC"), std::string::npos);
}

}  // namespace
}  // namespace mg::proxy

namespace mg::proxy {
namespace {

// The egress gateway's Service with a TCP port 443 (what a TLS route to it needs).
const char* kEgressGatewayTlsService = R"(apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  ports: [{name: tls, port: 443, protocol: tcp}]
---
apiVersion: meshguard.io/v1alpha1
kind: ServiceEndpoints
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  endpoints:
  - {workload: egw, address: 127.0.0.1, serviceAccount: istio-egressgateway-service-account, ports: [{port: 443, endpointPort: 15443}]}
)";

// Istio's "Egress Gateways" task, "Egress gateway for HTTPS traffic", as written.
const char* kHttpsEgressTask = R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: cnn
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 443
    name: tls
    protocol: TLS
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 443
      name: tls
      protocol: TLS
    hosts:
    - edition.cnn.com
    tls:
      mode: PASSTHROUGH
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts:
  - edition.cnn.com
  gateways:
  - mesh
  - istio-egressgateway
  tls:
  - match:
    - gateways:
      - mesh
      port: 443
      sniHosts:
      - edition.cnn.com
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: cnn
        port:
          number: 443
  - match:
    - gateways:
      - istio-egressgateway
      port: 443
      sniHosts:
      - edition.cnn.com
    route:
    - destination:
        host: edition.cnn.com
        port:
          number: 443
      weight: 100
)";

TEST(EgressTls, HttpsEgressGatewayTaskAtTheClient) {
  for (bool registry_only : {false, true}) {
    World w(kHttpsEgressTask, registry_only, "default", kEgressGatewayTlsService);
    // The app's TLS for edition.cnn.com (port 443): the `mesh` tls entry sends it to the egress
    // gateway's TCP port 443, over mTLS (the app's TLS inside).
    auto d = w.decide_tls("Edition.CNN.com");
    ASSERT_TRUE(std::holds_alternative<ToService>(d)) << d.index();
    const ToService& s = std::get<ToService>(d);
    EXPECT_EQ(s.match.service->host(), "istio-egressgateway.istio-system");
    EXPECT_EQ(s.match.port->port, 443);
    EXPECT_EQ(s.virtual_service, "default/direct-cnn-through-egress-gateway");
    EXPECT_EQ(s.sni, "");  // the subset has no ISTIO_MUTUAL sni
    // An unknown SNI: refused (REGISTRY_ONLY: the black hole; ALLOW_ANY: nowhere to pass it).
    auto unknown = w.decide_tls("www.google.com");
    EXPECT_TRUE(registry_only ? std::holds_alternative<BlackHole>(unknown) : std::holds_alternative<NotFound>(unknown))
        << unknown.index();
    auto none = w.decide_tls("");
    EXPECT_TRUE(registry_only ? std::holds_alternative<BlackHole>(none) : std::holds_alternative<NotFound>(none));
    // Another port: the `mesh` entry (port 443) does not apply, and the entry has no such port.
    auto other = w.decide_tls("edition.cnn.com", 8443);
    EXPECT_FALSE(std::holds_alternative<ToService>(other));
    // The VirtualService has no http[]: plain HTTP for the host is not routed by it.
    EXPECT_FALSE(std::holds_alternative<ToService>(w.decide("edition.cnn.com")));
  }
}

TEST(EgressTls, HttpsEgressGatewayTaskAtTheGateway) {
  World w(kHttpsEgressTask, false, "default", kEgressGatewayTlsService);
  auto set = std::make_shared<const policy::ResourceSet>(w.set);
  auto plans = gateway::plan_listeners(*set, {{"istio", "egressgateway"}});
  ASSERT_TRUE(plans) << plans.error().message;
  ASSERT_EQ(plans->size(), 1u);
  EXPECT_EQ((*plans)[0].protocol, policy::GatewayServer::Protocol::Tls);
  EXPECT_EQ((*plans)[0].tls_mode, policy::GatewayServer::TlsMode::Passthrough);
  auto table = gateway::RouteTable::build(set, *plans);
  // The second tls entry (gateways: istio-egressgateway, port 443) applies on the listener.
  auto r = table->route_tls(0, "edition.cnn.com", 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tls_index, 1u);
  EXPECT_EQ(r->destination->host, "edition.cnn.com");
  EXPECT_FALSE(table->route_tls(0, "www.google.com", 0));
  EXPECT_FALSE(table->route_tls(0, "", 0));
  EXPECT_FALSE(table->route_tls(0, "edition.cnn.com", 0, 8443));  // the entry's port is 443
  // The HTTP route of the listener: none (tls only).
  EXPECT_FALSE(table->route(0, "edition.cnn.com", "/", "GET", {}, 0));
  auto target = resolve_passthrough(*r->destination, kTlsDefaultPort, *w.routing, *w.rules);
  ASSERT_TRUE(target) << target.error().message;
  EXPECT_EQ(target->host, "edition.cnn.com");
  EXPECT_EQ(target->port, 443);
  EXPECT_EQ(target->addresses, (std::vector<std::string>{"edition.cnn.com"}));
  EXPECT_FALSE(target->origin);
}

TEST(EgressTls, DirectAndRefusedDestinations) {
  const std::string entries = R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: tls}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {tls: 8443}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: plain}
spec:
  hosts: [plain.example.com]
  ports: [{number: 443, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: originated}
spec:
  hosts: [simple.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: simple}
spec:
  host: simple.example.com
  trafficPolicy: {tls: {mode: SIMPLE}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: internal}
spec:
  hosts: [internal.example.com]
  location: MESH_INTERNAL
  ports: [{number: 443, name: tls, protocol: TLS}]
)";
  World w(entries, true, "default", kEgressGatewayTlsService);
  // No route: a MESH_EXTERNAL TLS port of the SNI's host, straight out (its endpoint's port).
  auto d = w.decide_tls("api.example.com");
  ASSERT_TRUE(std::holds_alternative<ToExternal>(d)) << d.index();
  EXPECT_EQ(std::get<ToExternal>(d).target.port, 8443);
  EXPECT_EQ(std::get<ToExternal>(d).target.addresses, (std::vector<std::string>{"127.0.0.1"}));
  EXPECT_FALSE(std::get<ToExternal>(d).target.origin);
  // An HTTP port cannot carry the app's TLS; SIMPLE would wrap it in a second TLS; a
  // MESH_INTERNAL host is a gateway's: all 503 NC's kind of refusal.
  EXPECT_TRUE(std::holds_alternative<NoCluster>(w.decide_tls("plain.example.com")));
  auto simple = w.decide_tls("simple.example.com");
  ASSERT_TRUE(std::holds_alternative<NoCluster>(simple));
  EXPECT_NE(std::get<NoCluster>(simple).detail.find("wrap the app's TLS"), std::string::npos);
  EXPECT_TRUE(std::holds_alternative<NoCluster>(w.decide_tls("internal.example.com")));
}

}  // namespace
}  // namespace mg::proxy

namespace mg::proxy {
namespace {

// DestinationRule tls.mode DISABLE toward a mesh service: plaintext to its endpoints, by Host and
// through a `mesh` route; ISTIO_MUTUAL (or no rule) stays mTLS.
TEST(Egress, DisableSendsPlaintextToAMeshService) {
  World w(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy: {tls: {mode: DISABLE}}
  subsets:
  - name: mutual
    trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-route}
spec:
  hosts: [reviews-alias]
  http:
  - route: [{destination: {host: reviews, subset: mutual}}]
)");
  auto direct = w.decide("reviews:9080");
  ASSERT_TRUE(std::holds_alternative<ToService>(direct)) << direct.index();
  EXPECT_TRUE(std::get<ToService>(direct).plaintext);
  auto routed = w.decide("reviews-alias");
  ASSERT_TRUE(std::holds_alternative<ToService>(routed)) << routed.index();
  EXPECT_FALSE(std::get<ToService>(routed).plaintext);  // the subset's ISTIO_MUTUAL
  World none("");
  auto plain = none.decide("reviews:9080");
  ASSERT_TRUE(std::holds_alternative<ToService>(plain));
  EXPECT_FALSE(std::get<ToService>(plain).plaintext);
}

}  // namespace
}  // namespace mg::proxy
