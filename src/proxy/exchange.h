// proxy/exchange.h — the value types of one proxied HTTP exchange, shared by the session that
// reads it, the forwarder that relays it and the report that records it: which side of the proxy
// it came in on (HttpSide), what happened to it (Exchange) and the Envoy response flag saying why
// it ended early (ResponseFlag), and how it was answered (ResponseDetail). No behaviour here.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"
#include "policy/resources.h"
#include "proxy/config.h"
#include "tls/tls.h"

namespace mg::proxy {

struct ConnEntry;  // proxy/connection_manager.h
struct RegistryService;   // proxy/registry.h
struct RegistryPort;
struct RegistryEndpoint;
struct PeerLabels;  // proxy/peer_metadata.h
struct ExternalTarget;  // proxy/egress.h

// An outbound request's (or TCP connection's) endpoint chosen from the registry: where to connect
// and, from its service, which identities to accept. Valid while its registry is held.
struct UpstreamTarget {
  const RegistryService* service = nullptr;
  const RegistryPort* port = nullptr;
  const RegistryEndpoint* endpoint = nullptr;
  struct EndpointHealth* counted = nullptr;  // the endpoint whose in-flight count this holds
  bool retried = false;                      // the one retry on another endpoint is used
  uint32_t ejections = 0;                    // endpoints this request's failures ejected
  // A DestinationRule's loadBalancer for this destination, over the Service's own.
  std::optional<policy::Service::LoadBalancer> load_balancer;
  std::string sni;  // a DestinationRule's ISTIO_MUTUAL sni, sent on the mTLS connection
  // A DestinationRule's tls.mode DISABLE toward the service: plaintext HTTP/1.1 to the endpoint
  // (Istio sends plaintext then; the server's proxy must accept it: PERMISSIVE or DISABLE).
  bool plaintext = false;
};

// Response flags as Envoy names them (%RESPONSE_FLAGS%).
enum class ResponseFlag : uint8_t {
  None,                    // "-"
  UpstreamConnectFailure,  // "UF"
  UpstreamReset,           // "UC"
  DownstreamReset,         // "DC"
  UpstreamTimeout,         // "UT"
  NoRouteFound,            // "NR": no service of that host (outbound by name)
  NoHealthyUpstream,       // "UH": the service has no healthy endpoint
  NoClusterFound,          // "NC": a route's destination names no usable cluster (host, subset)
  // A TCP connection the connection chain refused: meshguard's own flag ("denied"; Envoy's
  // RBAC filter says "RBAC"), kept as the access log has always written it.
  Denied,
};
std::string_view to_string(ResponseFlag flag);

// How the exchange was answered, in Envoy's %RESPONSE_CODE_DETAILS% words where it has them.
enum class ResponseDetail : uint8_t {
  ViaUpstream,                  // "via_upstream": the app's (or next hop's) response
  LocalReply,                   // "local_reply": made by the proxy (malformed request, upstream failure)
  RbacAccessDenied,             // "rbac_access_denied": the policy denied it (403)
  JwtAuthnAccessDenied,         // "jwt_authn_access_denied": its token was rejected (401)
  LocalDeny,                    // "local_deny": denied with another status (400 from normalization)
  Upgrade,                      // "upgrade": switched protocols and spliced
  UpgradeClosedByPolicyReload,  // "upgrade_closed_by_policy_reload"
  ExtAuthzDenied,               // "ext_authz_denied": a CUSTOM policy's provider denied it
  ExtAuthzError,                // "ext_authz_error": its provider failed (statusOnError)
  RouteNotFound,                // "route_not_found": outbound by name, no such service or port
  DirectResponse,               // "direct_response": REGISTRY_ONLY refused an unknown host (502)
};
std::string_view to_string(ResponseDetail detail);

// One side of an HTTP proxying connection: inbound (a listener port → the local app, with the
// enforcement step) or outbound (the local app → a route's destination proxy over mTLS; for a
// registry route, the request's endpoint in `target`).
struct HttpSide {
  const InboundPort* inbound = nullptr;
  size_t inbound_index = 0;
  std::optional<size_t> route;
  UpstreamTarget* target = nullptr;
  const ExternalTarget* external = nullptr;  // a host outside the mesh (proxy/egress.h)
  std::string source;                     // downstream "ip:port"
  std::optional<tls::PeerIdentity> peer;  // inbound mTLS peer
  // Inbound: the peer's workload from a TCP metadata exchange on this connection (a client proxy's
  // TCP route to an HTTP port): its requests' labels when they carry no x-envoy-peer-metadata.
  std::shared_ptr<const PeerLabels> peer_labels;
  uint16_t listen_port = 0;
  // Gateway mode: the gateway listener the request came in on (`inbound` is its port); requests
  // are routed by its RouteTable (proxy/gateway_mode.h). `edge_tls`: the client's TLS ended here.
  std::optional<size_t> gateway;
  bool edge_tls = false;
  ConnEntry* entry = nullptr;  // the connection's registration with its worker
  std::string source_principal() const { return peer ? peer->id.str() : "unknown"; }
};

// One request and its response as the access log and the request metrics record them.
struct Exchange {
  using Clock = std::chrono::steady_clock;
  std::string method, host, path;
  int status = 0;
  ResponseFlag flags = ResponseFlag::None;
  ResponseDetail details = ResponseDetail::ViaUpstream;
  std::string upstream_principal;  // outbound: the server's verified SPIFFE ID
  // Outbound by name: the service's FQDN and the endpoint's "ip:port" (else the route's).
  std::string destination_service, upstream_address;
  uint64_t bytes_received = 0, bytes_sent = 0;
  Clock::time_point start = Clock::now();
  std::vector<http::Header> add_response_headers;  // an allowing OPAPolicy's response_headers_to_add
  bool grpc = false;        // a gRPC call (content-type application/grpc): request_protocol "grpc"
  std::string grpc_status;  // its grpc-status as answered (trailers, trailers-only head or a local reply)
  // The far end's workload as its proxy's metadata exchange told it (proxy/peer_metadata.h): the
  // source inbound, the destination outbound. Null: known by its principal only.
  std::shared_ptr<const PeerLabels> peer;
  // A gateway's request for a host outside the mesh (a MESH_EXTERNAL destination): what its
  // egress audit line names (Report::egress_audit), written once with the access-log line.
  struct Egress {
    std::string host;
    uint16_t port = 0;
    std::string sni;  // the server name originated; "" for plaintext
  };
  std::optional<Egress> egress;
};

}  // namespace mg::proxy
