// gateway/routes.h — what a gateway-mode proxy listens on and where each request goes, from the
// Gateway and VirtualService documents in force (policy/resources.h): the Gateways whose selector
// the proxy's labels carry give the listeners (servers sharing a port share one; a port-0 server
// gets its own, kernel-chosen); the VirtualServices bound to those Gateways give, per listener, the
// routes by host, then uri / headers / method, then a weighted destination. Istio's rules, the
// subset issue 20 names (docs/GATEWAYS.md). Pure logic: no I/O; a RouteTable is immutable and
// shared by snapshot (shared_ptr<const RouteTable>).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "http/message.h"
#include "policy/resources.h"

namespace mg::gateway {

using Labels = std::map<std::string, std::string>;

// A Gateway server bound to a listener, with the Gateway it belongs to.
struct BoundServer {
  std::string gateway_ns, gateway_name;
  policy::GatewayServer server;
};

// One listener of the gateway: servers[].port.number (0 = kernel-chosen) and its protocol.
struct ListenerPlan {
  uint32_t port = 0;
  policy::GatewayServer::Protocol protocol = policy::GatewayServer::Protocol::Http;
  // HTTPS: SIMPLE (the servers' credentialNames, chosen by SNI) or ISTIO_MUTUAL (the mesh's mTLS);
  // the servers of one listener share it.
  policy::GatewayServer::TlsMode tls_mode = policy::GatewayServer::TlsMode::None;
  std::vector<BoundServer> servers;
};

// Whether a Gateway's selector selects a proxy with `labels` (a non-empty selector, every entry
// carried; Istio's Gateway selector is not namespace-scoped).
bool selects(const policy::Gateway& g, const Labels& labels);

// The listeners of the Gateways selecting `labels`, in load order. Two servers on one non-zero
// port with different protocols or TLS modes (from different Gateways) are refused (the error
// names both).
Result<std::vector<ListenerPlan>> plan_listeners(const policy::ResourceSet& set, const Labels& labels);

// Istio host matching: `pattern` "*" matches every host, "*.example.com" any host ending with
// ".example.com", anything else the same host (case-insensitive; `host` without its port).
bool host_matches(std::string_view pattern, std::string_view host);

// A request's route: the VirtualService and http[] entry that matched, and the destination the
// weights picked.
struct RouteMatch {
  std::string virtual_service;  // "ns/name"
  size_t http_index = 0;
  const policy::HttpRouteDestination* destination = nullptr;
};

// A TLS connection's route (VirtualService tls[]): the entry whose sniHosts matched, and the
// destination the weights picked.
struct TlsRouteMatch {
  std::string virtual_service;  // "ns/name"
  size_t tls_index = 0;
  const policy::HttpRouteDestination* destination = nullptr;
};

class RouteTable {
 public:
  // For every listener of `listeners`, the VirtualServices of `set` bound to one of its servers
  // (gateways names the server's Gateway, and a VirtualService host matches a server host the
  // VirtualService's namespace may use).
  static std::shared_ptr<const RouteTable> build(std::shared_ptr<const policy::ResourceSet> set,
                                                 const std::vector<ListenerPlan>& listeners);
  // The client proxies' table (Istio's reserved gateway "mesh"): one listener, 0, holding every
  // VirtualService whose `gateways` is absent or names "mesh", for its own hosts.
  static std::shared_ptr<const RouteTable> build_mesh(std::shared_ptr<const policy::ResourceSet> set);

  // The route of a request on listener `listener` for `host` (no port), `path` (its query is
  // ignored), `method` and `headers`. nullopt: no VirtualService of that host (404) or none of
  // its routes matches (404, as Envoy's "route not found"). `pick` in [0, 100) chooses among
  // weighted destinations. A match entry with `gateways` applies only when they name a Gateway of
  // the listener that binds the VirtualService (or "mesh", on the mesh table); one with `port`
  // only when the request came to that port: `port`, else the listener's own port.
  std::optional<RouteMatch> route(size_t listener, std::string_view host, std::string_view path,
                                  std::string_view method, const http::Headers& headers, uint32_t pick,
                                  uint32_t port = 0) const;

  // The route of a TLS connection on listener `listener` whose ClientHello named `sni`, to `port`
  // (0: the listener's): the bound VirtualService with tls[] entries whose host matches the SNI
  // most specifically (exact, longest "*." suffix, "*"; first in load order among equals), in it
  // the first tls[] entry with a match whose sniHosts match the SNI, whose gateways apply there
  // and whose port (if any) is `port`. nullopt: none (the connection is refused; no fall-through
  // to another VirtualService, as for HTTP). An empty SNI has no route.
  std::optional<TlsRouteMatch> route_tls(size_t listener, std::string_view sni, uint32_t pick,
                                         uint32_t port = 0) const;

  // Whether a VirtualService bound to `listener` takes `host` on `port` (0: the listener's): it has
  // an http[] entry that may apply there. A request it then does not route is a 404, not passed
  // to a default destination (Envoy's virtual host for the VirtualService's hosts).
  bool serves(size_t listener, std::string_view host, uint32_t port = 0) const;

  size_t listeners() const { return bound_.size(); }

  // What listener `listener` serves (for /config_dump): each VirtualService bound to it, in the
  // order requests try them, with the hosts it serves there. Points into the table.
  struct BoundView {
    const policy::VirtualService* virtual_service;
    std::vector<std::string> hosts;
  };
  std::vector<BoundView> bound(size_t listener) const;

 private:
  struct Bound {
    const policy::VirtualService* vs;
    // The hosts the listener serves for it: the narrower of each overlapping (server host,
    // VirtualService host) pair, and the VirtualService host, whose specificity ranks it.
    struct Host {
      std::string match, vs_host;
      bool operator==(const Host&) const = default;
    };
    std::vector<Host> hosts;
    // The Gateways ("ns/name") of the listener's servers that bind it, or "mesh".
    std::vector<std::string> gateways;
  };
  std::vector<uint32_t> ports_;                      // per listener (0: kernel-chosen or mesh)
  std::shared_ptr<const policy::ResourceSet> set_;  // owns what Bound points into
  std::vector<std::vector<Bound>> bound_;            // per listener
};

// The request's host without its port ("a.example.com:8443" → "a.example.com", "[::1]:80" → "::1").
std::string_view host_without_port(std::string_view host);

}  // namespace mg::gateway
