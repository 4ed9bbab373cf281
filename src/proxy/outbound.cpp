#include "proxy/outbound.h"

#include "proxy/connection_manager.h"
#include "proxy/http_session.h"
#include "proxy/report.h"
#include "proxy/splice.h"
#include "proxy/worker.h"

namespace mg::proxy {

Outbound::Outbound(const ProxyConfig& config, ConnectionManager& connections, HttpSession& http,
                   Report& report)
    : config_(config), connections_(connections), http_(http), report_(report) {}

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

  if (is_http(route.protocol)) {
    co_await http_.serve(down, guard.entry, worker, side);
    down.close();
    co_return;
  }

  std::string reason, detail;
  auto up = co_await worker.upstreams.connect_route(index, reason, detail);
  std::string destination = destination_of(route);
  if (!up) {
    report_.outbound_refused(side.source, destination, reason, detail);
    co_return;
  }
  std::string own = up->creds->own_id.str();
  telemetry::Labels labels = report_.tcp_labels(false, own, up->peer_principal, true);
  report_.tcp_opened(labels);
  auto [sent, received] = co_await splice(down, *up->stream, worker.buffers,
                                          std::chrono::milliseconds(config_.limits.idle_timeout_ms));
  worker.upstreams.remember_session(index, *up);
  report_.tcp_closed(labels, received, sent);
  report_.outbound_tcp(own, side.source, up->peer_principal, destination, start, received, sent);
  up->stream->close();
}

}  // namespace mg::proxy
