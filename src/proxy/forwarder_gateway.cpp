// Forwarder::forward_gateway (forwarder.h): a gateway listener's request, routed and relayed.
#include "crypto/openssl.h"
#include "gateway/edge_headers.h"
#include "proxy/balancer.h"
#include "proxy/codec.h"
#include "proxy/forwarder.h"
#include "proxy/gateway_mode.h"
#include "proxy/policy_state.h"
#include "proxy/report.h"

namespace mg::proxy {

namespace {

// A request id for a request without one: a random UUID (Envoy's), or, should the random source
// fail, none (the backends then see none rather than a guessable one).
std::string new_request_id() {
  auto bytes = crypto::random_bytes(16);
  if (!bytes || bytes->size() != 16) return {};
  std::array<uint8_t, 16> raw{};
  std::copy(bytes->begin(), bytes->end(), raw.begin());
  return gateway::uuid_v4(raw);
}

}  // namespace

net::awaitable<bool> Forwarder::forward_gateway(net::Stream& down, ServerCodec& codec, std::string& in,
                                                BufferPool::Lease& chunk, net::Watchdog& watchdog,
                                                Worker& worker, const HttpSide& side, http::Request& req,
                                                const std::optional<std::string>& upgrade,
                                                std::optional<JudgedUpgrade>& as_received, Exchange& ex) {
  // Held for the whole request: the target points into them, whatever a publish does meanwhile.
  const std::shared_ptr<const GatewayRoutes> routes = gateway_.routes();
  const std::shared_ptr<const PublishedPolicy> published = policy_.current();
  const std::shared_ptr<const Registry> registry = published->registry;
  // Answered here, the request's body unread: the connection stays only without one.
  const bool keep = req.keep_alive && req.framing == http::BodyFraming::None && !draining_;
  std::optional<gateway::RouteMatch> route;
  if (routes->table)
    route = routes->table->route(*side.gateway, gateway::host_without_port(req.host), req.path, req.method,
                                 req.headers, weight_draw());
  if (!route) {
    ex.flags = ResponseFlag::NoRouteFound;
    ex.details = ResponseDetail::RouteNotFound;
    co_await local_reply(down, codec, ex, 404, "", keep);
    co_return keep;
  }
  const std::string_view vs_ns =
      std::string_view(route->virtual_service).substr(0, route->virtual_service.find('/'));
  const auto destination = resolve_destination(*routes, *registry, *route->destination, vs_ns,
                                               published->mesh_routing.get(), published->destination_rules.get());
  if (destination && destination->external) {
    // Out of the mesh (an egress gateway): no mesh metadata and no edge headers leave with it
    // (X-Forwarded-For would name workloads' addresses); the audit line names the call.
    const ExternalTarget& external = *destination->external;
    ex.destination_service = external.host;
    ex.egress = Exchange::Egress{external.host, external.port, external.origin ? external.origin->server_name : ""};
    HttpSide routed = side;
    routed.external = &external;
    co_return co_await relay(down, codec, in, chunk, watchdog, worker, routed, req, upgrade, as_received, ex);
  }
  UpstreamTarget target;
  if (destination) {
    ex.destination_service = destination->name;
    target = UpstreamTarget{destination->service, destination->port};
  }
  if (!destination || !choose_endpoint(target, BalancerClock::now())) {
    // Envoy's answer for a cluster without a healthy host (an unknown one included).
    ex.flags = ResponseFlag::NoHealthyUpstream;
    co_await local_reply(down, codec, ex, 503, "no healthy upstream", keep);
    co_return keep;
  }
  gateway::set_edge_headers(req.headers, gateway::host_without_port(side.source), side.edge_tls || side.peer.has_value(),
                            new_request_id);
  HttpSide routed = side;
  routed.target = &target;
  const bool open =
      co_await relay(down, codec, in, chunk, watchdog, worker, routed, req, upgrade, as_received, ex);
  // Envoy's consecutive_5xx: a 5xx from the endpoint and a failure to reach it count alike.
  const bool failed = ex.status >= 500 || ex.flags == ResponseFlag::UpstreamConnectFailure ||
                      ex.flags == ResponseFlag::UpstreamReset || ex.flags == ResponseFlag::UpstreamTimeout;
  finish_endpoint(target, failed, config_.outlier, BalancerClock::now());
  report_.registry_outcome(*destination->service, *destination->port, target.retried, target.ejections);
  co_return open;
}

std::optional<Exchange::Egress> Forwarder::egress_of(const HttpSide& side, const http::Request& req) const {
  if (!side.gateway) return std::nullopt;
  const std::shared_ptr<const GatewayRoutes> routes = gateway_.routes();
  if (!routes->table) return std::nullopt;
  // The first of weighted destinations: a request refused before routing has no draw of its own.
  auto route =
      routes->table->route(*side.gateway, gateway::host_without_port(req.host), req.path, req.method, req.headers, 0);
  if (!route) return std::nullopt;
  const std::shared_ptr<const PublishedPolicy> published = policy_.current();
  const std::string_view vs_ns = std::string_view(route->virtual_service).substr(0, route->virtual_service.find('/'));
  auto destination = resolve_destination(*routes, *published->registry, *route->destination, vs_ns,
                                         published->mesh_routing.get(), published->destination_rules.get());
  if (!destination || !destination->external) return std::nullopt;
  const ExternalTarget& external = *destination->external;
  return Exchange::Egress{external.host, external.port, external.origin ? external.origin->server_name : ""};
}

}  // namespace mg::proxy
