// Inbound::serve_passthrough (inbound.h): a TLS PASSTHROUGH gateway listener's connection — an
// egress gateway relaying a workload's own TLS to a host outside the mesh, by its SNI, without
// ending it (docs/GATEWAYS.md "TLS passthrough").
#include "proxy/balancer.h"
#include "proxy/connection_manager.h"
#include "proxy/credentials.h"
#include "proxy/egress.h"
#include "proxy/enforcement.h"
#include "proxy/gateway_mode.h"
#include "proxy/inbound.h"
#include "proxy/policy_state.h"
#include "proxy/report.h"
#include "proxy/splice.h"
#include "proxy/worker.h"

namespace mg::proxy {

net::awaitable<void> Inbound::serve_passthrough(net::Stream& down, ConnEntry& entry, Worker& worker,
                                                size_t index, const std::string& source,
                                                const std::optional<tls::PeerIdentity>& peer,
                                                Clock::time_point start) {
  const InboundPort& port = config_.inbound[index];
  const std::string own = credentials_.own_principal();
  const std::string source_principal = peer ? peer->id.str() : "unknown";
  // The app's ClientHello, from inside the mesh's mTLS: read (a TLS stream cannot be peeked) and
  // relayed first.
  std::string hello_bytes;
  auto hello = co_await net::read_client_hello(down, hello_bytes,
                                               std::chrono::milliseconds(config_.limits.header_timeout_ms));
  if (!hello) {
    report_.connection_refused(source, port.port, Refusal::TlsClientHelloInvalid, hello.error().to_string());
    co_return;
  }
  const std::string sni = hello->sni;

  // The route (pure, before any connection): the tls[] entry of a VirtualService bound to this
  // listener, to a MESH_EXTERNAL host. Held for the connection.
  const std::shared_ptr<const GatewayRoutes> routes = gateway_.routes();
  const std::shared_ptr<const PublishedPolicy> published = policy_.current();
  std::optional<gateway::TlsRouteMatch> route;
  if (routes->table && port.gateway) route = routes->table->route_tls(*port.gateway, sni, weight_draw());
  Result<ExternalTarget> target =
      fail("no_route", "no VirtualService tls route on this listener for SNI \"" + sni + "\"");
  if (route)
    target = resolve_passthrough(*route->destination, kTlsDefaultPort, *published->mesh_routing,
                                 *published->destination_rules);

  Report::EgressAudit audit;
  audit.source_principal = source_principal;
  audit.source_address = source;
  audit.host = target ? target->host : sni;
  audit.port = target ? target->port : 0;
  audit.sni = sni;

  // Authorization on what a TLS connection shows: the caller's principal, its address, the port,
  // and connection.sni.
  const Judgement judged = enforcement_.judge_connection(index, source, peer, sni);
  const Verdict& decision = judged.decision;
  audit.policy = decision.policy.value_or("");
  audit.reason = decision.reason;
  telemetry::Labels labels = report_.tcp_labels(true, source_principal, own, peer.has_value(), nullptr);
  if (!judged.verdict.allow) {
    report_.inbound_tcp(source, source_principal, own, port, hello_bytes.size(), 0, start,
                        ResponseFlag::Denied, decision);
    report_.count_refused(ListenerKind::Inbound, Refusal::Denied);
    audit.bytes_received = hello_bytes.size();
    report_.egress_audit(audit);
    co_return;
  }
  audit.allowed = true;
  if (!target) {
    report_.connection_refused(source, port.port, Refusal::NoRoute, target.error().to_string());
    audit.bytes_received = hello_bytes.size();
    audit.reason = target.error().to_string();
    report_.egress_audit(audit);
    co_return;
  }
  std::string reason, detail;
  std::unique_ptr<UpstreamConn> up = co_await worker.upstreams.connect_external(*target, reason, detail);
  std::error_code ec;
  if (up) co_await up->stream->write_all(asio::buffer(hello_bytes), ec);
  if (!up || ec) {
    report_.inbound_tcp(source, source_principal, own, port, hello_bytes.size(), 0, start,
                        ResponseFlag::UpstreamConnectFailure, decision);
    audit.bytes_received = hello_bytes.size();
    audit.reason = up ? "upstream write failed: " + ec.message() : reason + ": " + detail;
    report_.egress_audit(audit);
    co_return;
  }
  report_.tcp_opened(labels);
  // Registered for policy reloads while spliced: judged again with the same SNI.
  LiveTcp live{index, source, peer, up->stream.get(), false, judged.generation, sni};
  entry.tcp = &live;
  struct Unregister {
    ConnEntry& entry;
    ~Unregister() { entry.tcp = nullptr; }
  } unregister{entry};
  connections_.rejudge_if_chains_changed(entry, live);
  auto [received, sent] = co_await splice(down, *up->stream, worker.buffers,
                                          std::chrono::milliseconds(config_.limits.idle_timeout_ms));
  received += hello_bytes.size();
  report_.tcp_closed(labels, received, sent);
  const Verdict final_decision = live.closed_by_policy
                                     ? Verdict::deny(0, "", "closed: no longer allowed after a policy reload")
                                     : decision;
  report_.inbound_tcp(source, source_principal, own, port, received, sent, start, ResponseFlag::None,
                      final_decision);
  audit.bytes_received = received;
  audit.bytes_sent = sent;
  if (live.closed_by_policy) {
    audit.allowed = false;
    audit.reason = final_decision.reason;
  }
  report_.egress_audit(audit);
  up->stream->close();
}

}  // namespace mg::proxy
