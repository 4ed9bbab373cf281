// proxy/gateway_mode.h — meshguard-proxy as a gateway (the config's `gateway:` block, issue 20):
// its listeners, its routes and where a route's destination is.
//  - Listeners: the Gateways selecting this workload's labels (policyDir, or the control plane's
//    push) are planned (gateway::plan_listeners) at start-up and again at every publish. Each
//    planned listener is a slot whose id is its name, gateway[id]: a publish keeps the slots whose
//    port, protocol and tls mode it still asks for (a port-0 listener: the k-th of its kind keeps
//    the k-th slot), gives up those it no longer asks for (the proxy stops accepting on them; their
//    connections finish as on a drain) and opens new slots, with new ids — an id is never reused
//    within a process, at most kMaxListeners of them. The proxy binds what to_bind() lists and
//    closes what to_close() lists, on its main thread (Proxy: reconcile_gateway_listeners); a bound
//    listener becomes an inbound port of the config (inbound_port(id), InboundPort::gateway): the
//    same accept path, PROXY header, enforcement step, access log and live-connection re-judging as
//    every inbound port. An HTTP listener is mTLS PERMISSIVE (plaintext from outside the mesh, the
//    mesh's mTLS from a workload's proxy: its principal known to policy); an HTTPS SIMPLE one is
//    DISABLE (clients are outside the mesh; it terminates TLS with the credentialName's
//    certificate, proxy/edge_certificates.h), an ISTIO_MUTUAL one STRICT (the caller's SVID is
//    verified and is source.principal).
//  - Routes: at every publish, the RouteTable (gateway/routes.h) of the VirtualServices bound to
//    the slots (indexed by id; a slot given up has no servers) and the MESH_INTERNAL STATIC
//    ServiceEntries as upstream services; the SIMPLE listeners' certificates are configured again
//    (hosts and credentialNames may change).
//  - Destination resolution (resolve_destination): the one place a route's destination becomes
//    the service port whose endpoints are dialled over mTLS and whose identities the server must
//    present (secure naming).
// Owns: the listener slots (under its mutex; publish on any thread, the binding on the main
// thread), the routes snapshot (immutable, shared_ptr<const GatewayRoutes>) and the edge
// certificates.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/thread_annotations.h"
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
  // Slots a process may open (ids gateway[0..1023]): a control plane pushing a Gateway that moves
  // its ports round and round cannot make the proxy bind without end.
  static constexpr size_t kMaxListeners = 1024;

  explicit GatewayMode(const ProxyConfig& config)
      : certificates_(config.gateway ? config.gateway->credentials_dir : std::string()),
        address_(config.workload.address.empty() ? "0.0.0.0" : config.workload.address) {}

  // plan() ran: this proxy is a gateway.
  bool enabled() const { return planned_; }

  // Start-up, after the first policy load and before the listeners are bound: the slots of the
  // listeners `resources` asks for (all to bind). Fails on a port conflict between Gateways (the
  // error names both).
  Status plan(const WorkloadInfo& workload, const std::shared_ptr<const policy::ResourceSet>& resources);
  // At every publish (any thread): the listeners again (slots kept, given up, opened), the routes
  // and the certificates. True when a listener is to be bound or closed (to_bind / to_close).
  bool publish(const std::shared_ptr<const policy::ResourceSet>& resources);

  // What the main thread does next: the slots wanted but not bound (new, or a bind that failed:
  // tried again), and the slots bound but no longer wanted.
  std::vector<size_t> to_bind() const;
  std::vector<size_t> to_close() const;
  // The inbound port listener `id` is served as (its port as planned: 0 = kernel-chosen).
  InboundPort inbound_port(size_t id) const;
  // The main thread bound listener `id` (its port in config.inbound), or closed it.
  void bound(size_t id, size_t inbound_index);
  void closed(size_t id);

  // Slots opened so far (ids 0..listeners()-1, bound or not).
  size_t listeners() const;
  // The listener's port in config.inbound, once bound.
  std::optional<size_t> inbound_index(size_t id) const;

  std::shared_ptr<const GatewayRoutes> routes() const { return routes_.load(); }
  EdgeCertificates& certificates() { return certificates_; }
  const EdgeCertificates& certificates() const { return certificates_; }

 private:
  struct Slot {
    gateway::ListenerPlan plan;  // its servers as of the last publish (none once given up)
    bool wanted = true;          // false: given up (never wanted again: ids are not reused)
    bool bound = false;
    std::optional<size_t> inbound;  // config.inbound, once bound
  };
  // Matches `planned` to the slots (kept, given up, opened); returns each slot's listener plan.
  std::vector<gateway::ListenerPlan> replan(const std::vector<gateway::ListenerPlan>& planned)
      MG_REQUIRES(mutex_);

  bool planned_ = false;
  gateway::Labels labels_;
  std::atomic<std::shared_ptr<const GatewayRoutes>> routes_{std::make_shared<const GatewayRoutes>()};
  EdgeCertificates certificates_;
  const std::string address_;  // where the listeners bind: workload.address, else 0.0.0.0
  mutable Mutex mutex_;
  std::vector<Slot> slots_ MG_GUARDED_BY(mutex_);  // index = listener id
};

}  // namespace mg::proxy
