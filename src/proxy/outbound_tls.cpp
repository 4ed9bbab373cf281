// Outbound::serve_tls (outbound.h): an app's own TLS on the by-Host listener, routed by the SNI
// of its ClientHello (read by peeking: every byte stays in the socket and is relayed as sent) —
// Istio's TLS passthrough at a sidecar (docs/GATEWAYS.md "TLS passthrough").
#include "proxy/balancer.h"
#include "proxy/connection_manager.h"
#include "proxy/egress.h"
#include "proxy/outbound.h"
#include "proxy/peer_exchange.h"
#include "proxy/policy_state.h"
#include "proxy/report.h"
#include "proxy/splice.h"
#include "proxy/worker.h"

namespace mg::proxy {

net::awaitable<void> Outbound::serve_tls(net::PlainStream& down, Worker& worker, const HttpSide& side,
                                         std::chrono::steady_clock::time_point start) {
  const auto timeout = std::chrono::milliseconds(config_.limits.header_timeout_ms);
  auto hello = co_await net::peek_client_hello(down.socket(), timeout);
  if (!hello) {
    report_.outbound_refused(side.source, "tls", "tls_client_hello_invalid", hello.error().to_string());
    co_return;
  }
  const std::string sni = hello->sni;
  // Held for the connection: the target points into the registry.
  const std::shared_ptr<const PublishedPolicy> published = policy_.current();
  const OutboundDecision decision =
      decide_outbound_tls({sni, kTlsDefaultPort, weight_draw()}, *published->registry,
                          *published->mesh_routing, *published->destination_rules);
  const std::string asked =
      (sni.empty() ? std::string("(no SNI)") : sni) + ":" + std::to_string(kTlsDefaultPort);
  if (std::holds_alternative<BlackHole>(decision)) {
    // Istio's REGISTRY_ONLY: the connection goes to the BlackHoleCluster, which closes it.
    report_.outbound_refused(side.source, "BlackHoleCluster", "black_hole",
                             "REGISTRY_ONLY: no Service or ServiceEntry names the TLS server " + asked);
    co_return;
  }
  if (std::holds_alternative<NotFound>(decision)) {
    report_.outbound_refused(
        side.source, asked, "no_route",
        "no VirtualService tls route, Service or MESH_EXTERNAL ServiceEntry for the TLS server " + asked +
            " (without transparent capture there is no original destination)");
    co_return;
  }
  if (const auto* none = std::get_if<NoCluster>(&decision)) {
    report_.outbound_refused(side.source, asked, none->reason, none->detail);
    co_return;
  }
  std::string reason, detail, destination, service;
  std::unique_ptr<UpstreamConn> up;
  UpstreamTarget target;
  std::optional<Registry::Match> match;
  if (const auto* external = std::get_if<ToExternal>(&decision)) {
    // Straight out of the mesh: plain TCP, the app's TLS end to end; nothing of the mesh added.
    service = external->target.host;
    destination = external->target.name();
    up = co_await worker.upstreams.connect_external(external->target, reason, detail);
  } else {
    const ToService& to = std::get<ToService>(decision);
    match = to.match;
    service = match->service->fqdn();
    target = UpstreamTarget{match->service, match->port};
    target.load_balancer = to.load_balancer;
    target.sni = to.sni;
    // mTLS with secure naming (the service's identities); the metadata exchange as a TCP route.
    up = co_await connect_service(worker, target, side, service, destination, reason, detail);
  }
  if (!up) {
    report_.outbound_refused(side.source, destination, reason, detail);
    co_return;
  }
  std::optional<WorkloadLabels> peer;
  if (match && peer_exchange_selected(*up->stream)) {
    const std::shared_ptr<const OwnMetadata> own_metadata = report_.own();
    auto exchanged = co_await exchange_peer_metadata(*up->stream, *own_metadata, up->peer_principal, timeout);
    if (!exchanged) {
      report_.outbound_refused(side.source, destination, "peer_metadata_invalid",
                               exchanged.error().to_string());
      up->stream->close();
      co_return;
    }
    if (*exchanged) peer = (*exchanged)->labels;
  }
  const std::string own = up->creds ? up->creds->own_id.str() : std::string("unknown");
  telemetry::Labels labels =
      report_.tcp_labels(false, own, up->peer_principal, match.has_value(), peer ? &*peer : nullptr);
  report_.tcp_opened(labels);
  std::optional<ActiveRequest> active;
  if (target.endpoint) active.emplace(*target.endpoint->health);
  // The ClientHello is still in the socket: the splice relays it first.
  auto [sent, received] = co_await splice(down, *up->stream, worker.buffers,
                                          std::chrono::milliseconds(config_.limits.idle_timeout_ms));
  report_.tcp_closed(labels, received, sent);
  report_.outbound_passthrough(own, side.source, sni, service, up->peer_principal, destination, start,
                               received, sent);
  up->stream->close();
}

}  // namespace mg::proxy
