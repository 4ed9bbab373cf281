// proxy/gateway_mode.h — meshguard-proxy as a gateway (the config's `gateway:` block, issue 20):
// its listeners, its routes and where a route's destination is.
//  - Listeners: at start-up, the Gateways selecting this workload's labels (policyDir, or the
//    control plane's push written to the agent's fail-static copy before the proxy starts) are
//    planned (gateway::plan_listeners) and each listener becomes an inbound port of the config
//    (InboundPort::gateway): the same accept path, PROXY header, enforcement step, access log and
//    live-connection re-judging as every inbound port. An HTTP or HTTPS SIMPLE listener is mTLS
//    DISABLE (clients are outside the mesh; SIMPLE terminates TLS with the credentialName's
//    certificate, proxy/edge_certificates.h), an ISTIO_MUTUAL one STRICT (the caller's SVID is
//    verified and is source.principal). Listeners are bound at start-up only; a publish that
//    adds, removes or re-protocols one is logged and waits for a restart.
//  - Routes: at every publish, the RouteTable (gateway/routes.h) of the VirtualServices bound to
//    those listeners and the MESH_INTERNAL STATIC ServiceEntries as upstream services; the
//    SIMPLE listeners' certificates are configured again (hosts and credentialNames may change).
//  - Destination resolution (resolve_destination): the one place a route's destination becomes
//    the service port whose endpoints are dialled over mTLS and whose identities the server must
//    present (secure naming).
// Owns: the listener plan, the routes snapshot (immutable, shared_ptr<const GatewayRoutes>) and
// the edge certificates.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "gateway/routes.h"
#include "proxy/config.h"
#include "proxy/edge_certificates.h"
#include "proxy/egress.h"
#include "proxy/registry.h"

namespace mg::proxy {

struct PublishedPolicy;

// What a gateway routes with, as of one publish; held by a request while it is forwarded (its
// target points into `entries`).
struct GatewayRoutes {
  std::shared_ptr<const gateway::RouteTable> table;
  // MESH_INTERNAL, resolution STATIC ServiceEntries: one service per host, its ports and
  // endpoints as written, its identities the entry's subjectAltNames.
  std::vector<RegistryService> entries;
};

// Where a route's destination goes: a service port (of the registry or a ServiceEntry) whose
// endpoint the balancer picks and whose identities the server must present.
struct ResolvedDestination {
  const RegistryService* service = nullptr;
  const RegistryPort* port = nullptr;
  std::string name;  // for the access log: the registry service's FQDN, or the ServiceEntry host
  // A MESH_EXTERNAL ServiceEntry host (service and port null): a host outside the mesh, reached
  // plain or with TLS originated as its DestinationRule says (proxy/egress.h).
  std::optional<ExternalTarget> external;
};

// Destination resolution. `destination.host` names a registry service (any of its name forms,
// proxy/registry.h; a short name is in `vs_namespace`, the VirtualService's, as Istio reads it)
// or, failing that, a ServiceEntry host of `routes.entries` (exact, case ignored);
// `destination.port` one of its ports, 0 its only (or its port 80); failing both, a MESH_EXTERNAL
// ServiceEntry host of `external_hosts` with the DestinationRules `rules` (resolve_external:
// endpoints or the host itself, TLS origination per port and `destination.subset`). nullopt:
// nothing by that name and port (or not an HTTP port, or a subset the rule does not have).
std::optional<ResolvedDestination> resolve_destination(const GatewayRoutes& routes, const Registry& registry,
                                                       const policy::HttpRouteDestination& destination,
                                                       std::string_view vs_namespace,
                                                       const MeshRouting* external_hosts = nullptr,
                                                       const DestinationRules* rules = nullptr);

// The upstream services of the MESH_INTERNAL STATIC ServiceEntries of `set` (pure).
std::vector<RegistryService> service_entry_services(const policy::ResourceSet& set);
// Each endpoint of `entries` that `previous` had (same host, port, address and endpoint port)
// takes over its health — ejections and requests in flight — and with it its pooled connections
// (the pool key is the health's id), as Registry::carry_health does for the registry.
void carry_health(std::vector<RegistryService>& entries, const std::vector<RegistryService>& previous);

class GatewayMode {
 public:
  explicit GatewayMode(const ProxyConfig& config)
      : certificates_(config.gateway ? config.gateway->credentials_dir : std::string()) {}

  // plan() ran: this proxy is a gateway.
  bool enabled() const { return planned_; }

  // Start-up, after the first policy load and before the listeners are bound: plans the
  // listeners from `resources` and appends one InboundPort per listener to `config.inbound`.
  // Fails on a port conflict between Gateways (the error names both).
  Status plan(ProxyConfig& config, const std::shared_ptr<const policy::ResourceSet>& resources);
  // At every publish (any thread): the routes and certificates again.
  void publish(const std::shared_ptr<const policy::ResourceSet>& resources);

  size_t listeners() const { return plans_.size(); }
  // Listener `i`'s port in config.inbound.
  size_t inbound_index(size_t i) const { return first_inbound_ + i; }
  policy::GatewayServer::TlsMode tls_mode(size_t i) const { return plans_[i].tls_mode; }

  std::shared_ptr<const GatewayRoutes> routes() const { return routes_.load(); }
  EdgeCertificates& certificates() { return certificates_; }
  const EdgeCertificates& certificates() const { return certificates_; }

 private:
  std::vector<gateway::ListenerPlan> plans_;  // fixed at start-up
  bool planned_ = false;
  size_t first_inbound_ = 0;
  gateway::Labels labels_;
  std::atomic<std::shared_ptr<const GatewayRoutes>> routes_{std::make_shared<const GatewayRoutes>()};
  EdgeCertificates certificates_;
};

}  // namespace mg::proxy
