// The service registry's kinds (meshguard.io/v1alpha1 Service and ServiceEndpoints) through
// policy::parse_resources: the contract's YAML, defaults, and every refusal with its line.
#include <gtest/gtest.h>

#include "policy/parse.h"

namespace mg::policy {
namespace {

const char* kContract = R"(apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: details, namespace: default}
spec:
  selector: {app: details}
  ports:
  - {name: http, port: 9080, targetPort: 9080, protocol: http}
  loadBalancer: LEAST_REQUEST
---
apiVersion: meshguard.io/v1alpha1
kind: ServiceEndpoints
metadata: {name: details, namespace: default}
spec:
  endpoints:
  - workload: details-v1
    address: 127.0.0.1
    serviceAccount: details
    ports: [{port: 9080, endpointPort: 15006}]
    healthy: true
)";

TEST(ServiceParse, ContractDocuments) {
  auto set = parse_resources(kContract, "reg.yaml");
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_EQ(set->services.size(), 1u);
  ASSERT_EQ(set->service_endpoints.size(), 1u);
  EXPECT_EQ(set->size(), 2u);
  const Service& s = set->services[0];
  EXPECT_EQ(s.meta.full_name(), "default/details");
  EXPECT_EQ(s.host(), "details.default");
  EXPECT_EQ(s.meta.line, 1);
  EXPECT_EQ(s.workload_selector, (std::map<std::string, std::string>{{"app", "details"}}));
  ASSERT_EQ(s.ports.size(), 1u);
  EXPECT_EQ(s.ports[0].name, "http");
  EXPECT_EQ(s.ports[0].port, 9080u);
  EXPECT_EQ(s.ports[0].target_port, 9080u);
  EXPECT_EQ(s.ports[0].protocol, ServiceProtocol::Http);
  EXPECT_EQ(s.load_balancer, Service::LoadBalancer::LeastRequest);
  const ServiceEndpoints& e = set->service_endpoints[0];
  EXPECT_EQ(e.meta.full_name(), "default/details");
  EXPECT_EQ(e.meta.line, 10);
  ASSERT_EQ(e.endpoints.size(), 1u);
  EXPECT_EQ(e.endpoints[0].workload, "details-v1");
  EXPECT_EQ(e.endpoints[0].address, "127.0.0.1");
  EXPECT_EQ(e.endpoints[0].service_account, "details");
  EXPECT_EQ(e.endpoints[0].ports, (std::map<uint32_t, uint32_t>{{9080, 15006}}));
  EXPECT_TRUE(e.endpoints[0].healthy);
  // The stored text re-parses alone to the same resource (the control plane pushes it).
  auto again = parse_resources(s.meta.document);
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_EQ(again->services.size(), 1u);
  EXPECT_EQ(again->services[0].ports[0].port, 9080u);
}

TEST(ServiceParse, DefaultsAndPortNameConvention) {
  auto set = parse_resources(R"(apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews, tier: back}
  loadBalancer: ROUND_ROBIN
  ports:
  - {name: http-web, port: 80, targetPort: 8080}
  - {name: http2, port: 81}
  - {name: grpc-api, port: 82}
  - {name: tcp-db, port: 83}
  - {name: mysql, port: 84}
  - {name: http, port: 85, protocol: tcp}
  - {name: httpx, port: 86}
)",
                             "r.yaml", "bookinfo");
  ASSERT_TRUE(set) << set.error().message;
  const Service& s = set->services.at(0);
  EXPECT_EQ(s.meta.ns, "bookinfo");
  EXPECT_EQ(s.load_balancer, Service::LoadBalancer::RoundRobin);
  ASSERT_EQ(s.ports.size(), 7u);
  EXPECT_EQ(s.ports[0].target_port, 8080u);
  EXPECT_EQ(s.ports[1].target_port, 81u);  // default: port
  const ServiceProtocol want[] = {ServiceProtocol::Http, ServiceProtocol::Http2, ServiceProtocol::Grpc,
                                  ServiceProtocol::Tcp,  ServiceProtocol::Tcp,   ServiceProtocol::Tcp,
                                  ServiceProtocol::Tcp};
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(s.ports[i].protocol, want[i]) << s.ports[i].name;
  // -n placed the namespace into the stored text.
  auto again = parse_resources(s.meta.document);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->services.at(0).meta.ns, "bookinfo");
}

TEST(ServiceParse, OneUnnamedPortAndEndpointDefaults) {
  auto set = parse_resources(R"(apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: db}
spec:
  selector: {app: db}
  ports: [{port: 5432}]
---
apiVersion: meshguard.io/v1alpha1
kind: ServiceEndpoints
metadata: {name: db}
spec:
  endpoints:
  - {workload: db-0, address: "::1", serviceAccount: db, ports: [{port: 5432, endpointPort: 15432}]}
  - {workload: db-1, address: 10.0.0.2, serviceAccount: db, ports: [{port: 5432, endpointPort: 15432}], healthy: false}
)");
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->services.at(0).ports.at(0).name, "");
  EXPECT_EQ(set->services.at(0).ports.at(0).protocol, ServiceProtocol::Tcp);
  EXPECT_EQ(set->services.at(0).load_balancer, Service::LoadBalancer::LeastRequest);
  const auto& eps = set->service_endpoints.at(0).endpoints;
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_TRUE(eps[0].healthy);
  EXPECT_FALSE(eps[1].healthy);
  // An empty endpoint list is a service with no backends, not an error.
  auto empty = parse_resources("apiVersion: meshguard.io/v1alpha1\nkind: ServiceEndpoints\nmetadata: {name: db}\nspec:\n  endpoints: []\n");
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_TRUE(empty->service_endpoints.at(0).endpoints.empty());
}

TEST(ServiceParse, KubernetesServiceStaysSkipped) {
  auto set = parse_resources(R"(apiVersion: v1
kind: Service
metadata: {name: details}
spec:
  selector: {app: details}
  ports: [{port: 9080, name: http}]
)");
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->size(), 0u);
  ASSERT_EQ(set->skipped.size(), 1u);
  EXPECT_EQ(set->skipped[0].kind, "Service");
}

TEST(ServiceParse, AppendKeepsRegistryKinds) {
  auto a = parse_resources(kContract, "a.yaml");
  auto b = parse_resources(kContract, "b.yaml");
  ASSERT_TRUE(a && b);
  a->append(std::move(*b));
  EXPECT_EQ(a->services.size(), 1u);
  EXPECT_EQ(a->service_endpoints.size(), 1u);
  EXPECT_EQ(a->services[0].meta.source, "b.yaml");
  EXPECT_EQ(a->replaced.size(), 2u);
}

struct Bad {
  const char* name;
  std::string yaml;
  std::string want;  // substring of the error, which starts with "bad.yaml:<line>:"
};

std::string service(const std::string& spec) {
  return "apiVersion: meshguard.io/v1alpha1\nkind: Service\nmetadata: {name: details}\nspec:\n" + spec;
}
std::string endpoints(const std::string& spec) {
  return "apiVersion: meshguard.io/v1alpha1\nkind: ServiceEndpoints\nmetadata: {name: details}\nspec:\n" + spec;
}
const std::string kEp = "  - workload: w\n    address: 127.0.0.1\n    serviceAccount: sa\n";

TEST(ServiceParse, Refusals) {
  const Bad cases[] = {
      {"no spec", "apiVersion: meshguard.io/v1alpha1\nkind: Service\nmetadata: {name: d}\n", "bad.yaml:1: Service.spec is required"},
      {"unknown spec field", service("  selector: {app: d}\n  ports: [{port: 1}]\n  type: ClusterIP\n"),
       "bad.yaml:7: unknown field \"type\" in Service.spec"},
      {"unknown port field", service("  selector: {app: d}\n  ports:\n  - {port: 1, nodePort: 3}\n"),
       "bad.yaml:7: unknown field \"nodePort\""},
      {"no selector", service("  ports: [{port: 1}]\n"), "bad.yaml:5: Service.spec.selector is required"},
      {"empty selector", service("  selector: {}\n  ports: [{port: 1}]\n"), "bad.yaml:5: Service.spec.selector is required"},
      {"matchLabels is not plain", service("  selector: {matchLabels: {app: d}}\n  ports: [{port: 1}]\n"),
       "bad.yaml:5: Service.spec.selector.matchLabels must be a string"},
      {"no ports", service("  selector: {app: d}\n"), "bad.yaml:5: Service.spec.ports is required"},
      {"empty ports", service("  selector: {app: d}\n  ports: []\n"), "bad.yaml:6: Service.spec.ports is required"},
      {"port missing", service("  selector: {app: d}\n  ports:\n  - {name: http}\n"), "bad.yaml:7: Service.spec.ports[]: port is required"},
      {"port zero", service("  selector: {app: d}\n  ports: [{port: 0}]\n"), "bad.yaml:6: ports[].port must be a whole number from 1 to 65535"},
      {"port too big", service("  selector: {app: d}\n  ports: [{port: 70000}]\n"), "from 1 to 65535, not \"70000\""},
      {"target not a number", service("  selector: {app: d}\n  ports: [{port: 1, targetPort: http}]\n"), "ports[].targetPort must be a whole number"},
      {"bad protocol", service("  selector: {app: d}\n  ports:\n  - port: 1\n    protocol: HTTP\n"),
       "bad.yaml:8: ports[].protocol must be http, http2, grpc or tcp, not \"HTTP\""},
      {"two unnamed", service("  selector: {app: d}\n  ports:\n  - {port: 1}\n  - {name: b, port: 2}\n"),
       "bad.yaml:7: Service.spec.ports[]: name is required when the service has more than one port"},
      {"duplicate names", service("  selector: {app: d}\n  ports:\n  - {name: a, port: 1}\n  - {name: a, port: 2}\n"),
       "bad.yaml:8: Service.spec.ports: duplicate port name \"a\""},
      {"duplicate numbers", service("  selector: {app: d}\n  ports:\n  - {name: a, port: 1}\n  - {name: b, port: 1}\n"),
       "bad.yaml:8: Service.spec.ports: duplicate port 1"},
      {"bad port name", service("  selector: {app: d}\n  ports: [{name: Web_1, port: 1}]\n"), "ports[].name \"Web_1\" must be a DNS label"},
      {"bad lb", service("  selector: {app: d}\n  ports: [{port: 1}]\n  loadBalancer: RANDOM\n"),
       "bad.yaml:7: Service.spec.loadBalancer must be LEAST_REQUEST or ROUND_ROBIN"},
      {"bad name", "apiVersion: meshguard.io/v1alpha1\nkind: Service\nmetadata: {name: Details}\nspec: {selector: {a: b}, ports: [{port: 1}]}\n",
       "bad.yaml:3: Service: metadata name and namespace must be DNS labels"},
      {"wrong apiVersion", "apiVersion: meshguard.io/v1\nkind: Service\nmetadata: {name: d}\nspec: {}\n",
       "bad.yaml:1: Service: apiVersion must be meshguard.io/v1alpha1"},
      {"endpoints wrong apiVersion", "apiVersion: v1\nkind: ServiceEndpoints\nmetadata: {name: d}\nspec: {}\n",
       "ServiceEndpoints: apiVersion must be meshguard.io/v1alpha1"},
      {"endpoints unknown field", endpoints("  endpoints:\n" + kEp + "    ports: [{port: 1, endpointPort: 2}]\n    zone: a\n"),
       "bad.yaml:10: unknown field \"zone\" in ServiceEndpoints.spec.endpoints[]"},
      {"endpoints spec unknown field", endpoints("  subsets: []\n"), "bad.yaml:5: unknown field \"subsets\""},
      {"endpoint bad address", endpoints("  endpoints:\n  - workload: w\n    address: details.local\n    serviceAccount: sa\n    ports: [{port: 1, endpointPort: 2}]\n"),
       "bad.yaml:7: endpoints[].address must be an IP address"},
      {"endpoint no address", endpoints("  endpoints:\n  - workload: w\n    serviceAccount: sa\n    ports: [{port: 1, endpointPort: 2}]\n"),
       "bad.yaml:6: endpoints[].address is required"},
      {"endpoint no account", endpoints("  endpoints:\n  - workload: w\n    address: 127.0.0.1\n    ports: [{port: 1, endpointPort: 2}]\n"),
       "endpoints[].serviceAccount is required"},
      {"endpoint no ports", endpoints("  endpoints:\n" + kEp), "bad.yaml:6: endpoints[].ports is required"},
      {"endpoint empty ports", endpoints("  endpoints:\n" + kEp + "    ports: []\n"), "bad.yaml:9: endpoints[].ports must be a non-empty list"},
      {"endpoint port missing endpointPort", endpoints("  endpoints:\n" + kEp + "    ports: [{port: 1}]\n"),
       "bad.yaml:9: ServiceEndpoints.spec.endpoints[].ports[] needs port and endpointPort"},
      {"endpoint port twice", endpoints("  endpoints:\n" + kEp + "    ports: [{port: 1, endpointPort: 2}, {port: 1, endpointPort: 3}]\n"),
       "service port 1 is listed twice"},
      {"endpoint bad healthy", endpoints("  endpoints:\n" + kEp + "    ports: [{port: 1, endpointPort: 2}]\n    healthy: yes\n"),
       "bad.yaml:10: endpoints[].healthy must be true or false"},
      {"endpoint workload twice", endpoints("  endpoints:\n" + kEp + "    ports: [{port: 1, endpointPort: 2}]\n" + kEp + "    ports: [{port: 1, endpointPort: 2}]\n"),
       "bad.yaml:10: ServiceEndpoints.spec.endpoints: workload \"w\" is listed twice"},
      {"endpoints not a list", endpoints("  endpoints: {w: 1}\n"), "bad.yaml:5: ServiceEndpoints.spec.endpoints must be a list"},
  };
  for (const auto& c : cases) {
    auto set = parse_resources(c.yaml, "bad.yaml");
    ASSERT_FALSE(set) << c.name;
    EXPECT_NE(set.error().message.find(c.want), std::string::npos) << c.name << ": " << set.error().message;
    EXPECT_EQ(set.error().message.rfind("bad.yaml:", 0), 0u) << c.name << ": " << set.error().message;
  }
}

}  // namespace
}  // namespace mg::policy
