// Istio's routing kinds (networking.istio.io Gateway, VirtualService, ServiceEntry) through
// policy::parse_resources: the subset issue 20 names, its defaults, and refusals with file:line.
#include <gtest/gtest.h>

#include "policy/parse.h"

namespace mg::policy {
namespace {

const char* kIngress = R"(apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: ["*.example.com", "shop/Shop.Example.com"]
    tls: {mode: SIMPLE, credentialName: example-cert}
  - port: {number: 0, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: shop, namespace: edge}
spec:
  hosts: [shop.example.com]
  gateways: [public, other/gw]
  http:
  - name: api
    match:
    - uri: {prefix: /api/}
      headers: {X-Version: {exact: v2}}
      method: {exact: POST}
    - uri: {exact: /health}
    route:
    - destination: {host: api.shop, port: {number: 8080}}
      weight: 80
    - destination: {host: api-canary.shop}
      weight: 20
  - route:
    - destination: {host: web.shop}
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: billing, namespace: edge}
spec:
  hosts: [billing.internal]
  ports: [{number: 9080, name: http, protocol: http, targetPort: 19080}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports: {http: 15006}
  - address: 127.0.0.2
  subjectAltNames: ["spiffe://cluster.local/ns/billing/sa/billing"]
)";

TEST(NetworkingParse, IssueContractDocuments) {
  auto set = parse_resources(kIngress, "edge.yaml");
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->size(), 3u);
  EXPECT_TRUE(set->skipped.empty());
  ASSERT_EQ(set->gateways.size(), 1u);
  const Gateway& g = set->gateways[0];
  EXPECT_EQ(g.meta.full_name(), "edge/public");
  EXPECT_EQ(g.workload_selector, (std::map<std::string, std::string>{{"istio", "ingressgateway"}}));
  ASSERT_EQ(g.servers.size(), 2u);
  EXPECT_EQ(g.servers[0].line, 7);
  EXPECT_EQ(g.servers[0].port, 8443u);
  EXPECT_EQ(g.servers[0].port_name, "https");
  EXPECT_EQ(g.servers[0].protocol, GatewayServer::Protocol::Https);
  EXPECT_EQ(g.servers[0].hosts, (std::vector<std::string>{"*.example.com", "shop/shop.example.com"}));
  EXPECT_EQ(g.servers[0].credential_name, "example-cert");
  EXPECT_EQ(g.servers[1].port, 0u);  // kernel-chosen
  EXPECT_EQ(g.servers[1].protocol, GatewayServer::Protocol::Http);
  EXPECT_TRUE(g.servers[1].credential_name.empty());

  ASSERT_EQ(set->virtual_services.size(), 1u);
  const VirtualService& vs = set->virtual_services[0];
  EXPECT_EQ(vs.meta.line, 13);
  EXPECT_EQ(vs.hosts, (std::vector<std::string>{"shop.example.com"}));
  EXPECT_EQ(vs.gateways, (std::vector<std::string>{"public", "other/gw"}));
  ASSERT_EQ(vs.http.size(), 2u);
  const HttpRoute& api = vs.http[0];
  EXPECT_EQ(api.name, "api");
  ASSERT_EQ(api.match.size(), 2u);
  ASSERT_TRUE(api.match[0].uri);
  EXPECT_EQ(api.match[0].uri->kind, HttpStringMatch::Kind::Prefix);
  EXPECT_TRUE(api.match[0].uri->matches("/api/x"));
  EXPECT_FALSE(api.match[0].uri->matches("/apix"));
  ASSERT_EQ(api.match[0].headers.count("x-version"), 1u);  // header names lower-cased
  EXPECT_TRUE(api.match[0].headers.at("x-version").matches("v2"));
  ASSERT_TRUE(api.match[0].method);
  EXPECT_TRUE(api.match[0].method->matches("POST"));
  EXPECT_EQ(api.match[1].uri->kind, HttpStringMatch::Kind::Exact);
  EXPECT_FALSE(api.match[1].method);
  ASSERT_EQ(api.route.size(), 2u);
  EXPECT_EQ(api.route[0].host, "api.shop");
  EXPECT_EQ(api.route[0].port, 8080u);
  EXPECT_EQ(api.route[0].weight, 80u);
  EXPECT_EQ(api.route[1].port, 0u);
  EXPECT_EQ(api.route[1].weight, 20u);
  EXPECT_TRUE(vs.http[1].match.empty());
  ASSERT_EQ(vs.http[1].route.size(), 1u);
  EXPECT_EQ(vs.http[1].route[0].weight, 100u);  // a single destination takes everything

  ASSERT_EQ(set->service_entries.size(), 1u);
  const ServiceEntry& se = set->service_entries[0];
  EXPECT_EQ(se.hosts, (std::vector<std::string>{"billing.internal"}));
  ASSERT_EQ(se.ports.size(), 1u);
  EXPECT_EQ(se.ports[0].protocol, "HTTP");
  EXPECT_EQ(se.ports[0].target_port, 19080u);
  EXPECT_EQ(se.location, ServiceEntry::Location::MeshInternal);
  EXPECT_EQ(se.resolution, ServiceEntry::Resolution::Static);
  ASSERT_EQ(se.endpoints.size(), 2u);
  EXPECT_EQ(se.endpoints[0].ports, (std::map<std::string, uint32_t>{{"http", 15006}}));
  EXPECT_TRUE(se.endpoints[1].ports.empty());
  EXPECT_EQ(se.subject_alt_names, (std::vector<std::string>{"spiffe://cluster.local/ns/billing/sa/billing"}));

  // Every stored text re-parses alone to the same resource (the control plane pushes it).
  for (const std::string* doc : {&g.meta.document, &vs.meta.document, &se.meta.document}) {
    auto again = parse_resources(*doc, "stored");
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(again->size(), 1u);
  }
}

TEST(NetworkingParse, DefaultsAndNamespacePlacement) {
  auto set = parse_resources(R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec: {hosts: [api.example.com]}
)",
                             "se.yaml", "payments");
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_EQ(set->service_entries.size(), 1u);
  const auto& se = set->service_entries[0];
  EXPECT_EQ(se.meta.full_name(), "payments/ext");
  EXPECT_EQ(se.location, ServiceEntry::Location::MeshExternal);  // Istio's defaults
  EXPECT_EQ(se.resolution, ServiceEntry::Resolution::None);
  auto again = parse_resources(se.meta.document);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->service_entries.at(0).meta.full_name(), "payments/ext");
}

TEST(NetworkingParse, OtherGatewayKindsAreStillSkipped) {
  // The Kubernetes Gateway API's Gateway and networking.istio.io's kinds meshguard does not act on
  // (Sidecar) are not ours; a DestinationRule is (its TLS subset, parse_destination_rule.cpp).
  auto set = parse_resources(R"(apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec: {gatewayClassName: istio}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec: {egress: [{hosts: ["./*"]}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dr}
spec: {host: x}
)",
                             "k8s.yaml");
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->size(), 1u);
  EXPECT_EQ(set->destination_rules.size(), 1u);
  ASSERT_EQ(set->skipped.size(), 2u);
  EXPECT_EQ(set->skipped[0].kind, "Gateway");
  EXPECT_EQ(set->skipped[1].kind, "Sidecar");
}

std::string gateway(const std::string& servers) {
  return "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  selector: {istio: "
         "ingressgateway}\n  servers:\n" +
         servers;
}
std::string virtual_service(const std::string& http) {
  return "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a.com]\n"
         "  http:\n" +
         http;
}
std::string virtual_service_tls(const std::string& tls) {
  return "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a.com]\n"
         "  tls:\n" +
         tls;
}
std::string service_entry(const std::string& spec) {
  return "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec:\n" + spec;
}

// Istio's "Egress Gateways" task, section "Egress gateway for HTTPS traffic", as written.
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

TEST(NetworkingParse, HttpsEgressTaskAsWritten) {
  auto set = parse_resources(kHttpsEgressTask, "task.yaml");
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_EQ(set->service_entries.size(), 1u);
  EXPECT_EQ(set->service_entries[0].ports[0].protocol, "TLS");
  ASSERT_EQ(set->gateways.size(), 1u);
  const auto& server = set->gateways[0].servers[0];
  EXPECT_EQ(server.protocol, GatewayServer::Protocol::Tls);
  EXPECT_EQ(server.tls_mode, GatewayServer::TlsMode::Passthrough);
  EXPECT_EQ(server.port, 443u);
  ASSERT_EQ(set->virtual_services.size(), 1u);
  const auto& vs = set->virtual_services[0];
  EXPECT_TRUE(vs.http.empty());
  ASSERT_EQ(vs.tls.size(), 2u);
  EXPECT_EQ(vs.tls[0].match[0].gateways, std::vector<std::string>{"mesh"});
  EXPECT_EQ(vs.tls[0].match[0].port, 443u);
  EXPECT_EQ(vs.tls[0].match[0].sni_hosts, std::vector<std::string>{"edition.cnn.com"});
  EXPECT_EQ(vs.tls[0].route[0].host, "istio-egressgateway.istio-system.svc.cluster.local");
  EXPECT_EQ(vs.tls[0].route[0].subset, "cnn");
  EXPECT_EQ(vs.tls[0].route[0].port, 443u);
  EXPECT_EQ(vs.tls[0].route[0].weight, 100u);
  EXPECT_EQ(vs.tls[1].match[0].gateways, std::vector<std::string>{"istio-egressgateway"});
  EXPECT_EQ(vs.tls[1].route[0].host, "edition.cnn.com");
  // An sniHost within a wildcard host is accepted.
  const std::string wild = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n"
                           "  hosts: ['*.a.com']\n  tls:\n  - match: [{sniHosts: [x.a.com]}]\n"
                           "    route: [{destination: {host: x.a.com}}]\n";
  EXPECT_TRUE(parse_resources(wild, "w.yaml"));
}

TEST(NetworkingParse, RefusalsNameTheLine) {
  struct Case {
    const char* name;
    std::string yaml;
    std::string want;
  };
  const Case cases[] = {
      {"bad version", "apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: g}\nspec: {}\n",
       "n.yaml:1: Gateway: apiVersion must be networking.istio.io/v1"},
      {"unknown Gateway field", gateway("  - port: {number: 80, protocol: HTTP}\n    hosts: ['*']\n    bind: 1.2.3.4\n"),
       "n.yaml:9: unknown field \"bind\" in Gateway.spec.servers[]"},
      {"no servers", "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec: {selector: {a: b}}\n",
       "n.yaml:4: Gateway.spec.servers must list at least one server"},
      {"TCP server", gateway("  - port: {number: 80, protocol: TCP}\n    hosts: ['*']\n"),
       "n.yaml:7: servers[].port.protocol must be HTTP, HTTPS or TLS"},
      {"HTTPS without tls", gateway("  - port: {number: 443, protocol: HTTPS}\n    hosts: ['*']\n"),
       "n.yaml:7: Gateway.spec.servers[]: protocol HTTPS needs tls"},
      {"PASSTHROUGH on HTTPS", gateway("  - port: {number: 443, protocol: HTTPS}\n    hosts: ['*']\n    tls: {mode: PASSTHROUGH}\n"),
       "n.yaml:7: Gateway.spec.servers[]: tls mode PASSTHROUGH is for protocol TLS"},
      {"AUTO_PASSTHROUGH", gateway("  - port: {number: 15443, protocol: TLS}\n    hosts: ['*']\n    tls: {mode: AUTO_PASSTHROUGH}\n"),
       "n.yaml:9: servers[].tls.mode AUTO_PASSTHROUGH is not supported"},
      {"MUTUAL", gateway("  - port: {number: 443, protocol: TLS}\n    hosts: ['*']\n    tls: {mode: MUTUAL}\n"),
       "n.yaml:9: servers[].tls.mode \"MUTUAL\" is not supported (SIMPLE, ISTIO_MUTUAL or PASSTHROUGH)"},
      {"TLS without tls", gateway("  - port: {number: 443, protocol: TLS}\n    hosts: ['*']\n"),
       "n.yaml:7: Gateway.spec.servers[]: protocol TLS needs tls {mode: PASSTHROUGH}"},
      {"TLS with SIMPLE", gateway("  - port: {number: 443, protocol: TLS}\n    hosts: ['*']\n    tls: {mode: SIMPLE, credentialName: c}\n"),
       "n.yaml:7: Gateway.spec.servers[]: protocol TLS needs tls {mode: PASSTHROUGH}"},
      {"PASSTHROUGH with a credential",
       gateway("  - port: {number: 443, protocol: TLS}\n    hosts: ['*']\n    tls: {mode: PASSTHROUGH, credentialName: c}\n"),
       "n.yaml:9: Gateway.spec.servers[].tls.credentialName is not used with mode PASSTHROUGH"},
      {"port shared by TLS and HTTP",
       gateway("  - port: {number: 443, protocol: HTTP}\n    hosts: ['*']\n  - port: {number: 443, protocol: TLS}\n"
               "    hosts: ['*']\n    tls: {mode: PASSTHROUGH}\n"),
       "n.yaml:9: Gateway.spec.servers: port 443 is both HTTP and TLS"},
      {"tls route without match", virtual_service_tls("  - route: [{destination: {host: a.com}}]\n"),
       "n.yaml:7: VirtualService.spec.tls[].match is required"},
      {"tls match without sniHosts", virtual_service_tls("  - match: [{port: 443}]\n    route: [{destination: {host: a.com}}]\n"),
       "n.yaml:7: VirtualService.spec.tls[].match[].sniHosts is required"},
      {"tls match sourceLabels",
       virtual_service_tls("  - match: [{sniHosts: [a.com], sourceLabels: {app: x}}]\n    route: [{destination: {host: a.com}}]\n"),
       "n.yaml:7: unknown field \"sourceLabels\" in VirtualService.spec.tls[].match[]"},
      {"sniHost outside hosts",
       virtual_service_tls("  - match: [{sniHosts: [b.com]}]\n    route: [{destination: {host: a.com}}]\n"),
       "n.yaml:7: tls[].match[].sniHosts: \"b.com\" is not within the VirtualService's hosts"},
      {"tls weights",
       virtual_service_tls("  - match: [{sniHosts: [a.com]}]\n    route:\n    - {destination: {host: a.com}, weight: 50}\n"),
       "n.yaml:7: tls[].route: a single destination's weight must be 100"},
      {"ISTIO_MUTUAL with a credential",
       gateway("  - port: {number: 443, protocol: HTTPS}\n    hosts: ['*']\n    tls: {mode: ISTIO_MUTUAL, credentialName: c}\n"),
       "n.yaml:9: Gateway.spec.servers[].tls.credentialName is not used with mode ISTIO_MUTUAL"},
      {"SIMPLE without a credential", gateway("  - port: {number: 443, protocol: HTTPS}\n    hosts: ['*']\n    tls: {mode: SIMPLE}\n"),
       "n.yaml:9: Gateway.spec.servers[].tls.credentialName is required with mode SIMPLE"},
      {"credential path", gateway("  - port: {number: 443, protocol: HTTPS}\n    hosts: ['*']\n    tls: {mode: SIMPLE, credentialName: ../etc}\n"),
       "n.yaml:9: servers[].tls.credentialName \"../etc\" must be a Secret name"},
      {"port shared by HTTP and HTTPS",
       gateway("  - port: {number: 80, protocol: HTTP}\n    hosts: ['*']\n  - port: {number: 80, protocol: HTTPS}\n"
               "    hosts: ['*']\n    tls: {mode: SIMPLE, credentialName: c}\n"),
       "n.yaml:9: Gateway.spec.servers: port 80 is both HTTP and HTTPS"},
      {"bad host", gateway("  - port: {number: 80, protocol: HTTP}\n    hosts: ['a.*.com']\n"),
       "n.yaml:8: servers[].hosts: \"a.*.com\" is not a host name"},
      {"VS tcp routes", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a]\n  tcp: []\n",
       "n.yaml:6: unknown field \"tcp\" in VirtualService.spec"},
      {"VS without hosts", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec: {http: []}\n",
       "n.yaml:4: VirtualService.spec.hosts is required"},
      {"regex", virtual_service("  - match: [{uri: {regex: '.*'}}]\n    route: [{destination: {host: b}}]\n"),
       "n.yaml:7: match[].uri: regex is not supported"},
      {"uri without slash", virtual_service("  - match: [{uri: {prefix: api}}]\n    route: [{destination: {host: b}}]\n"),
       "n.yaml:7: match[].uri must start with '/'"},
      {"retries", virtual_service("  - route: [{destination: {host: b}}]\n    retries: {attempts: 3}\n"),
       "n.yaml:8: unknown field \"retries\" in VirtualService.spec.http[]"},
      {"subset", virtual_service("  - route: [{destination: {host: b, subset: V1}}]\n"),
       "n.yaml:7: route[].destination.subset must name a DestinationRule subset"},
      {"match port", virtual_service("  - match: [{port: 0}]\n    route: [{destination: {host: b}}]\n"),
       "n.yaml:7: match[].port"},
      {"match gateways", virtual_service("  - match: [{gateways: [a/b/c]}]\n    route: [{destination: {host: b}}]\n"),
       "n.yaml:7: match[].gateways: \"a/b/c\" must be NAME or NAMESPACE/NAME"},
      {"no route", virtual_service("  - match: [{uri: {exact: /}}]\n"),
       "n.yaml:7: VirtualService.spec.http[].route must list a destination"},
      {"weights not 100",
       virtual_service("  - route:\n    - {destination: {host: b}, weight: 50}\n    - {destination: {host: c}, weight: 40}\n"),
       "n.yaml:8: http[].route: the weights must add up to 100, not 90"},
      {"weight missing",
       virtual_service("  - route:\n    - {destination: {host: b}, weight: 50}\n    - {destination: {host: c}}\n"),
       "n.yaml:9: http[].route[]: weight is required"},
      {"bad gateway reference", virtual_service("  - route: [{destination: {host: b}}]\n") + "  gateways: [a/b/c]\n",
       "n.yaml:8: VirtualService.spec.gateways: \"a/b/c\" must be NAME or NAMESPACE/NAME"},
      {"SE unknown field", service_entry("  hosts: [a.com]\n  workloadSelector: {labels: {a: b}}\n"),
       "n.yaml:6: unknown field \"workloadSelector\" in ServiceEntry.spec"},
      {"SE bad location", service_entry("  hosts: [a.com]\n  location: INTERNAL\n"),
       "n.yaml:6: ServiceEntry.spec.location must be MESH_EXTERNAL or MESH_INTERNAL"},
      {"SE STATIC host name", service_entry("  hosts: [a.com]\n  resolution: STATIC\n  endpoints: [{address: a.com}]\n"),
       "n.yaml:7: endpoints[].address must be an IP address with resolution STATIC"},
      {"SE STATIC without endpoints", service_entry("  hosts: [a.com]\n  resolution: STATIC\n"),
       "n.yaml:5: ServiceEntry.spec: resolution STATIC needs endpoints"},
      {"SE endpoint port name", service_entry("  hosts: [a.com]\n  ports: [{number: 80, name: http}]\n  resolution: STATIC\n"
                                              "  endpoints: [{address: 10.0.0.1, ports: {web: 8080}}]\n"),
       "n.yaml:8: endpoints[].ports: \"web\" names no port of spec.ports"},
      {"SE port without name", service_entry("  hosts: [a.com]\n  ports: [{number: 80}]\n"),
       "n.yaml:6: ServiceEntry.spec.ports[].name is required"},
      {"SE SAN not SPIFFE", service_entry("  hosts: [a.com]\n  location: MESH_INTERNAL\n  subjectAltNames: [a.com]\n"),
       "n.yaml:7: ServiceEntry.spec.subjectAltNames: \"a.com\" is not a SPIFFE ID"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto set = parse_resources(c.yaml, "n.yaml");
    ASSERT_FALSE(set) << c.yaml;
    EXPECT_NE(set.error().message.find(c.want), std::string::npos) << set.error().message;
  }
}

}  // namespace
}  // namespace mg::policy
