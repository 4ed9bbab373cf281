#include "proxy/outbound.h"

#include "proxy/balancer.h"
#include "proxy/connection_manager.h"
#include "proxy/http_session.h"
#include "proxy/peer_exchange.h"
#include "proxy/policy_state.h"
#include "proxy/report.h"
#include "proxy/splice.h"
#include "proxy/worker.h"

namespace mg::proxy {

Outbound::Outbound(const ProxyConfig& config, ConnectionManager& connections, HttpSession& http,
                   const PolicyState& policy, Report& report)
    : config_(config), connections_(connections), http_(http), policy_(policy), report_(report) {}

net::awaitable<void> Outbound::serve(net::tcp::socket socket, Worker& worker, size_t index) {
  ConnectionManager::Registration guard(connections_, worker.connections);
  const OutboundRoute& route = config_.outbound[index];
  HttpSide side;
  side.entry = &guard.entry;
  side.route = index;
  side.source = net::remote_address(socket);
  side.listen_port = route.listen_port;
  auto start = std::chrono::steady_clock::now();
  net::PlainStream down(std::move(socket));
  guard.entry.stream = &down;

  // A service-port listener is TCP or HTTP as the registry in force declares the port; held for
  // the connection (the target points into it).
  std::shared_ptr<const Registry> registry;
  std::optional<Registry::Match> match;
  if (route.by_registry() && !route.service.empty()) {
    registry = policy_.current()->registry;
    match = registry->find(route.service, route.service_ns, route.service_port);
  }
  const bool http = route.by_registry() ? route.service.empty() || (match && is_http(match->port->protocol))
                                        : is_http(route.protocol);
  if (http && route.by_registry() && route.service.empty()) {
    // The by-Host listener: HTTP, or an app's own TLS (a handshake record first: no HTTP request
    // or HTTP/2 preface starts with 0x16). One peek, bounded by the header timeout.
    net::Watchdog first_byte(down.socket().get_executor(), [&down] { down.close(); });
    first_byte.arm(std::chrono::milliseconds(config_.limits.header_timeout_ms));
    unsigned char first = 0;
    std::error_code ec;
    const size_t n = co_await down.socket().async_receive(asio::buffer(&first, 1), net::tcp::socket::message_peek,
                                                          net::nothrow(ec));
    first_byte.disarm();
    if (ec || n == 0) {
      down.close();
      co_return;
    }
    if (first == 0x16) {
      co_await serve_tls(down, worker, side, start);
      down.close();
      co_return;
    }
  }
  if (http) {
    co_await http_.serve(down, guard.entry, worker, side);
    down.close();
    co_return;
  }

  std::string reason, detail;
  std::unique_ptr<UpstreamConn> up;
  std::string destination;
  UpstreamTarget target;
  if (!route.by_registry()) {
    up = co_await worker.upstreams.connect_route(index, reason, detail, AlpnOffer::PeerExchange);
    destination = destination_of(route);
  } else {
    const std::string name = route.service + "." + route.service_ns + ":" + std::to_string(route.service_port);
    if (!match) {
      report_.outbound_refused(side.source, name, "no_route", "no such service port in the registry");
      co_return;
    }
    target = UpstreamTarget{match->service, match->port};
    up = co_await connect_service(worker, target, side, name, destination, reason, detail);
    side.target = &target;
  }
  if (!up) {
    report_.outbound_refused(side.source, destination, reason, detail);
    co_return;
  }
  std::string own = up->creds->own_id.str();
  // The destination's workload: from its proxy's metadata frame when it selected the exchange
  // (an older or foreign server did not: the bytes flow as they are); else, outbound by name, the
  // registry's endpoint (a name and namespace, no labels).
  std::optional<WorkloadLabels> peer;
  if (peer_exchange_selected(*up->stream)) {
    const std::shared_ptr<const OwnMetadata> own_metadata = report_.own();
    auto exchanged =
        co_await exchange_peer_metadata(*up->stream, *own_metadata, up->peer_principal,
                                        std::chrono::milliseconds(config_.limits.header_timeout_ms));
    if (!exchanged) {
      report_.outbound_refused(side.source, destination, "peer_metadata_invalid",
                               exchanged.error().to_string());
      up->stream->close();
      co_return;
    }
    if (*exchanged) peer = (*exchanged)->labels;
  }
  if (!peer && target.endpoint && !target.endpoint->workload.empty())
    peer = WorkloadLabels::of_name(target.endpoint->workload, target.service->ns);
  telemetry::Labels labels = report_.tcp_labels(false, own, up->peer_principal, true, peer ? &*peer : nullptr);
  report_.tcp_opened(labels);
  std::optional<ActiveRequest> active;
  if (target.endpoint) active.emplace(*target.endpoint->health);  // least-request counts connections
  auto [sent, received] = co_await splice(down, *up->stream, worker.buffers,
                                          std::chrono::milliseconds(config_.limits.idle_timeout_ms));
  worker.upstreams.remember_session(side, *up);
  report_.tcp_closed(labels, received, sent);
  report_.outbound_tcp(own, side.source, up->peer_principal, destination, start, received, sent,
                       peer ? &*peer : nullptr);
  up->stream->close();
}

net::awaitable<std::unique_ptr<UpstreamConn>> Outbound::connect_service(
    Worker& worker, UpstreamTarget& target, const HttpSide& side, const std::string& name,
    std::string& destination, std::string& reason, std::string& detail) {
  if (!choose_endpoint(target, BalancerClock::now())) {
    destination = name;
    reason = "no_healthy_upstream";
    detail = "the service has no healthy endpoint";
    co_return nullptr;
  }
  std::unique_ptr<UpstreamConn> up;
  while (true) {
    destination = target.endpoint->address + ":" + std::to_string(target.endpoint->port);
    up = co_await worker.upstreams.connect_target(target, reason, detail, AlpnOffer::PeerExchange);
    if (up || !retry_elsewhere(target, config_.outlier, BalancerClock::now())) break;
    report_.outbound_refused(side.source, destination, reason, detail + " (retrying on another endpoint)");
  }
  // A connection made is a success for outlier detection; what the bytes say is not looked at.
  finish_endpoint(target, !up, config_.outlier, BalancerClock::now());
  report_.registry_outcome(*target.service, *target.port, target.retried, target.ejections);
  co_return up;
}

}  // namespace mg::proxy
