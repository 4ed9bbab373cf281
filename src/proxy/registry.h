// proxy/registry.h — the proxy's view of the service registry: the Service and ServiceEndpoints
// documents of the policy in force turned into what outbound routing needs, built once per policy
// publish (PolicyState, the same path as the policies) and shared read-only as
// shared_ptr<const Registry>. A host name an app uses (Host / :authority) resolves to one service
// port; each service port lists its endpoints (the peer proxies to dial) and each service the
// SPIFFE IDs its endpoints may present (secure naming is per service, as Istio's). The only state
// that changes after the build is each endpoint's passive health (proxy/balancer.h), carried over
// to the next publish for endpoints that stay. Proxy-specific (the control plane computes
// endpoints, it does not route), hence here and not in src/policy. Pure: no I/O.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/resources.h"
#include "proxy/config.h"

namespace mg::proxy {

struct EndpointHealth;  // proxy/balancer.h

// One backend of one service port: where the client proxy connects and who must answer.
struct RegistryEndpoint {
  std::string workload;
  std::string address;  // IP address of the workload's proxy
  uint16_t port = 0;    // its inbound listener serving this service port (endpointPort)
  std::string service_account;
  std::string identity;  // spiffe://<trust domain>/ns/<service namespace>/sa/<service account>
  bool healthy = true;   // as registered (the control plane's view); ejection is in `health`
  std::shared_ptr<EndpointHealth> health;  // never null; shared across publishes while it stays
};

// One port of a service: an Envoy cluster (outbound|PORT||HOST).
struct RegistryPort {
  std::string name;
  uint16_t port = 0;
  uint16_t target_port = 0;
  Protocol protocol = Protocol::Tcp;
  std::vector<RegistryEndpoint> endpoints;
  std::shared_ptr<std::atomic<uint64_t>> next = std::make_shared<std::atomic<uint64_t>>(0);  // ROUND_ROBIN
};

struct RegistryService {
  std::string name, ns;
  policy::Service::LoadBalancer load_balancer = policy::Service::LoadBalancer::LeastRequest;
  // Secure naming: the identities of every endpoint's service account (sorted, unique). A server
  // for this service must present one of them.
  std::vector<std::string> identities;
  std::vector<RegistryPort> ports;
  // A MESH_INTERNAL STATIC ServiceEntry's host (proxy/gateway_mode.h service_entry_services): its
  // name is the host itself, which is also its cluster's name.
  bool service_entry = false;
  std::string host() const { return name + "." + ns; }
  std::string fqdn() const { return service_entry ? name : name + "." + ns + ".svc.cluster.local"; }
  const RegistryPort* find_port(uint16_t port) const;
};

class Registry {
 public:
  // The services of `resources` with their endpoints (a ServiceEndpoints document pairs with the
  // Service of its name and namespace; one without a Service is ignored, a Service without one has
  // no endpoints). `trust_domain` makes the endpoints' identities and is a name suffix besides
  // cluster.local; `own_ns` is the namespace whose services may be called by their short name.
  static std::shared_ptr<Registry> build(const policy::ResourceSet& resources, const std::string& trust_domain,
                                         const std::string& own_ns);

  struct Match {
    const RegistryService* service = nullptr;
    const RegistryPort* port = nullptr;
  };
  // The service port an authority ("details", "details.default:9080", ...) names: the name forms
  // NAME (only for a service in own_ns), NAME.NS, NAME.NS.svc, NAME.NS.svc.cluster.local and
  // NAME.NS.svc.<trust domain>, case-insensitive, with or without a trailing dot. With a port it
  // must be one of the service's ports; without one: its port 80, else its only http/http2/grpc
  // port (an HTTP request can go nowhere else).
  // nullopt: no such service or port.
  std::optional<Match> resolve(std::string_view authority) const;
  // "NAME.NAMESPACE" (a config's `service:`) and a port.
  std::optional<Match> find(std::string_view name, std::string_view ns, uint16_t port) const;

  const std::vector<RegistryService>& services() const { return services_; }
  const std::string& trust_domain() const { return trust_domain_; }

  // Takes over `previous`'s health state for each endpoint that is still there (same service,
  // port, address and endpoint port), so a publish neither forgets an ejection nor the requests
  // in flight. Before this registry is shared.
  void carry_health(const Registry& previous);

  // Mesh.spec.outboundTrafficPolicy REGISTRY_ONLY: a host no service names is refused as Istio's
  // BlackHoleCluster refuses it (HTTP 502), not answered 404. Set before the registry is shared.
  void set_registry_only(bool on) { registry_only_ = on; }
  bool registry_only() const { return registry_only_; }

 private:
  std::vector<RegistryService> services_;
  std::unordered_map<std::string, size_t> by_name_;  // every accepted name form, lower-case
  std::string trust_domain_;
  bool registry_only_ = false;
};

}  // namespace mg::proxy
