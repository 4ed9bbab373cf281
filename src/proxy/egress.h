// proxy/egress.h — where an outbound request by host goes, as Istio's routing kinds say (issue 20):
// the VirtualServices bound to the reserved gateway `mesh` (a client proxy's route table), the
// ServiceEntry hosts (MESH_EXTERNAL: a destination outside the mesh, reached directly — plain, or
// with TLS originated as a DestinationRule says), and the registry's services. Built once per
// publish into a shared_ptr<const MeshRouting> (PublishedPolicy::mesh_routing); the decision
// (decide_outbound) and the external-destination resolver (resolve_external, which a gateway's
// destination resolution calls for a MESH_EXTERNAL host too) are pure: no I/O.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"
#include "gateway/routes.h"
#include "policy/resources.h"
#include "proxy/destination_rules.h"
#include "proxy/registry.h"

namespace mg::proxy {

// A destination outside the mesh: where to connect and how (OriginTls: TLS originated, the server
// verified; none: plaintext). Immutable once resolved.
struct ExternalTarget {
  std::string host;                    // the host asked for (lower case, no port)
  std::string service_entry;           // "ns/name"
  uint32_t service_port = 0;           // the ServiceEntry port the request is for
  std::vector<std::string> addresses;  // tried in order: IPs (STATIC) or names (DNS, NONE: the host)
  uint16_t port = 0;                   // the port connected to (endpoint port, targetPort, number)
  std::optional<OriginTls> origin;
  uint64_t key = 0;  // the upstream pool's key: equal for equal (addresses, port, origin)
  // "host:port" for the access log and refusals.
  std::string name() const { return host + ":" + std::to_string(port); }
};

class MeshRouting {
 public:
  // The VirtualServices bound to `mesh` and the ServiceEntries of `resources` (copied: the
  // published object owns what it points into).
  static std::shared_ptr<const MeshRouting> build(const policy::ResourceSet& resources);

  const gateway::RouteTable& routes() const { return *routes_; }

  struct Entry {
    const policy::ServiceEntry* entry = nullptr;
    const policy::ServiceEntryPort* port = nullptr;
  };
  // The ServiceEntry naming `host` (lower case, no port) — an exact host before the longest
  // wildcard, then load order — with its port `port`; `port` 0: its port 80, else its only port.
  // nullopt: no entry names the host, or it has no such port.
  std::optional<Entry> find(std::string_view host, uint32_t port) const;
  // Whether any ServiceEntry names `host` (REGISTRY_ONLY admits it).
  bool names(std::string_view host) const;
  // A MESH_INTERNAL, resolution STATIC ServiceEntry host (exact, lower case) as an upstream
  // service (its endpoints as written, its subjectAltNames the identities a server must present)
  // with its port `port` (0: its only port, else its port 80). nullopt: no such host or port.
  std::optional<Registry::Match> find_internal(std::string_view host, uint32_t port) const;

 private:
  std::shared_ptr<const policy::ResourceSet> set_;  // the VirtualServices and ServiceEntries
  std::vector<RegistryService> internal_;           // service_entry_services of set_
  std::shared_ptr<const gateway::RouteTable> routes_;
};

// A MESH_EXTERNAL destination: `host` (as asked, lower case) on the ServiceEntry port `found`,
// with the DestinationRule in force for that host, port and `subset`. Addresses: the endpoints'
// (STATIC: IPs; DNS: names) or, without endpoints (DNS, NONE), the host itself — a wildcard entry
// never names an address. Fails with reason "subset_not_found" (DestinationRules::upstream) or
// "no_endpoint" (a wildcard entry without endpoints and a wildcard host).
Result<ExternalTarget> resolve_external(const MeshRouting::Entry& found, std::string_view host,
                                        const DestinationRules& rules, std::string_view subset = "");

// What a client proxy does with a request by host (outbound-by-Host listener), in Istio's order:
// a VirtualService bound to `mesh` for the host routes it (its destination a registry service or a
// ServiceEntry host); else a registry service of that name; else a MESH_EXTERNAL ServiceEntry host
// goes out directly; else REGISTRY_ONLY refuses it (BlackHoleCluster) and ALLOW_ANY answers 404.
struct ToService {
  Registry::Match match;
  std::optional<policy::DestinationRule::LoadBalancer> load_balancer;  // from a DestinationRule
  std::string sni;                                                     // ISTIO_MUTUAL's sni, if any
  std::string virtual_service;                                         // "ns/name" when routed by one
  bool plaintext = false;  // the DestinationRule's tls.mode DISABLE: plaintext to the endpoint
};
struct ToExternal {
  ExternalTarget target;
  std::string virtual_service;
};
struct BlackHole {};  // REGISTRY_ONLY: 502, no body
struct NotFound {};   // no route: 404 NR
// A route whose destination cannot be used (unknown host, subset, a tls mode a mesh service cannot
// take): 503 with flag NC, as Envoy answers a route to a missing cluster.
struct NoCluster {
  std::string reason, detail;
};
using OutboundDecision = std::variant<ToService, ToExternal, BlackHole, NotFound, NoCluster>;

struct OutboundRequest {
  std::string_view authority;  // Host / :authority as sent
  std::string_view path, method;
  const http::Headers* headers = nullptr;
  uint32_t pick = 0;  // [0, 100): the weighted destination
};
OutboundDecision decide_outbound(const OutboundRequest& req, const Registry& registry, const MeshRouting& routing,
                                 const DestinationRules& rules);

// An app's own TLS on the by-Host listener (TLS passthrough): its ClientHello's server name and
// the port it is for. Without transparent capture there is no original destination port: a TLS
// connection is for 443, as a Host without a port is for 80.
inline constexpr uint32_t kTlsDefaultPort = 443;
struct OutboundTls {
  std::string_view sni;  // lower case; "" when the ClientHello named none
  uint32_t port = kTlsDefaultPort;
  uint32_t pick = 0;  // [0, 100): the weighted destination
};
// What a client proxy does with it, in Istio's order, the bytes never read nor ended:
// a VirtualService bound to `mesh` whose tls[] entry matches the SNI and port routes it — to a
// registry service's TCP port (ToService: mTLS with secure naming, the app's TLS inside; an egress
// gateway) or to a MESH_EXTERNAL ServiceEntry host (ToExternal); else a MESH_EXTERNAL ServiceEntry
// port of the SNI's host that carries TLS (protocol TLS, HTTPS or TCP) goes out directly
// (ToExternal, plain TCP to its addresses); else REGISTRY_ONLY refuses it (BlackHole) and ALLOW_ANY
// has no original destination to pass it through to (NotFound). No ExternalTarget of a TLS
// connection originates TLS: a DestinationRule SIMPLE for it is NoCluster (it would wrap the app's
// TLS in a second one).
// A tls[] route's destination outside the mesh (a client proxy's mesh route, an egress gateway's
// PASSTHROUGH route): the MESH_EXTERNAL ServiceEntry host it names, on its port (`destination.port`,
// else `port`, else the entry's only port) if that port carries TLS (TLS, HTTPS, TCP); relayed as
// it is, so a DestinationRule SIMPLE for it is refused. Fails with code "no_cluster" (or
// resolve_external's).
Result<ExternalTarget> resolve_passthrough(const policy::HttpRouteDestination& destination, uint32_t port,
                                           const MeshRouting& routing, const DestinationRules& rules);

OutboundDecision decide_outbound_tls(const OutboundTls& conn, const Registry& registry, const MeshRouting& routing,
                                     const DestinationRules& rules);

}  // namespace mg::proxy
