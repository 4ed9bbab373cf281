#include "proxy/forwarder.h"

#include <string_view>

#include "http/body.h"
#include "http/parser.h"
#include "http2/grpc.h"
#include "proxy/balancer.h"
#include "proxy/codec.h"
#include "proxy/connection_manager.h"
#include "proxy/credentials.h"
#include "proxy/egress.h"
#include "proxy/peer_metadata.h"
#include "proxy/policy_state.h"
#include "proxy/report.h"
#include "proxy/splice.h"
#include "proxy/worker.h"

namespace mg::proxy {

Forwarder::Forwarder(const ProxyConfig& config, const http::Limits& limits, const Credentials& credentials,
                     ConnectionManager& connections, const PolicyState& policy, Report& report,
                     const std::atomic<bool>& draining, const GatewayMode& gateway)
    : config_(config),
      limits_(limits),
      credentials_(credentials),
      connections_(connections),
      policy_(policy),
      report_(report),
      draining_(draining),
      gateway_(gateway) {}

net::awaitable<bool> Forwarder::forward(net::Stream& down, ServerCodec& codec, std::string& in,
                                        BufferPool::Lease& chunk, net::Watchdog& watchdog, Worker& worker,
                                        const HttpSide& side, http::Request& req,
                                        const std::optional<std::string>& upgrade,
                                        std::optional<JudgedUpgrade>& as_received, Exchange& ex) {
  if (side.gateway)
    co_return co_await forward_gateway(down, codec, in, chunk, watchdog, worker, side, req, upgrade,
                                       as_received, ex);
  if (side.route && config_.outbound[*side.route].by_registry())
    co_return co_await forward_by_name(down, codec, in, chunk, watchdog, worker, side, req, upgrade, as_received, ex);
  co_return co_await relay(down, codec, in, chunk, watchdog, worker, side, req, upgrade, as_received, ex);
}

net::awaitable<bool> Forwarder::forward_by_name(net::Stream& down, ServerCodec& codec, std::string& in,
                                                BufferPool::Lease& chunk, net::Watchdog& watchdog, Worker& worker,
                                                const HttpSide& side, http::Request& req,
                                                const std::optional<std::string>& upgrade,
                                                std::optional<JudgedUpgrade>& as_received, Exchange& ex) {
  // Held for the whole request: the target points into them, whatever a publish does meanwhile.
  const std::shared_ptr<const PublishedPolicy> published = policy_.current();
  const Registry& registry = *published->registry;
  const OutboundRoute& route = config_.outbound[*side.route];
  // Answered here, the request's body unread: the connection stays only without one.
  const bool keep = req.keep_alive && req.framing == http::BodyFraming::None && !draining_;
  OutboundDecision decision;
  if (route.service.empty()) {
    decision = decide_outbound({req.host, req.target, req.method, &req.headers, weight_draw()}, registry,
                               *published->mesh_routing, *published->destination_rules);
  } else if (auto found = registry.find(route.service, route.service_ns, route.service_port);
             found && is_http(found->port->protocol)) {
    decision = ToService{*found, std::nullopt, {}, {}};
  } else {
    decision = NotFound{};
  }
  if (std::holds_alternative<BlackHole>(decision)) {
    // Istio's REGISTRY_ONLY: the request goes to the BlackHoleCluster, whose route answers a
    // direct 502 with no body; the access-log line names it.
    ex.destination_service = "BlackHoleCluster";
    ex.details = ResponseDetail::DirectResponse;
    co_await local_reply(down, codec, ex, 502, "", keep);
    co_return keep;
  }
  if (std::holds_alternative<NotFound>(decision)) {
    ex.flags = ResponseFlag::NoRouteFound;
    ex.details = ResponseDetail::RouteNotFound;
    co_await local_reply(down, codec, ex, 404, "", keep);
    co_return keep;
  }
  if (const auto* none = std::get_if<NoCluster>(&decision)) {
    report_.outbound_refused(side.source, std::string(req.host), none->reason, none->detail);
    ex.flags = ResponseFlag::NoClusterFound;
    co_await local_reply(down, codec, ex, 503, "", keep);
    co_return keep;
  }
  if (const auto* external = std::get_if<ToExternal>(&decision)) {
    ex.destination_service = external->target.host;
    HttpSide routed = side;
    routed.external = &external->target;
    co_return co_await relay(down, codec, in, chunk, watchdog, worker, routed, req, upgrade, as_received, ex);
  }
  const ToService& to = std::get<ToService>(decision);
  const Registry::Match& match = to.match;
  ex.destination_service = match.service->fqdn();
  UpstreamTarget target{match.service, match.port};
  target.load_balancer = to.load_balancer;
  target.sni = to.sni;
  target.plaintext = to.plaintext;
  if (!choose_endpoint(target, BalancerClock::now())) {
    ex.flags = ResponseFlag::NoHealthyUpstream;
    co_await local_reply(down, codec, ex, 503, "no healthy upstream", keep);
    co_return keep;
  }
  HttpSide routed = side;
  routed.target = &target;
  const bool open = co_await relay(down, codec, in, chunk, watchdog, worker, routed, req, upgrade, as_received, ex);
  // The endpoint's proxy said nothing of itself (this proxy answered: 503 not reached or reset,
  // 504 timed out; or it is not a meshguard proxy): the registry still names its workload.
  if (!ex.peer && target.endpoint && !target.endpoint->workload.empty())
    ex.peer = cached_endpoint_labels(worker.series, target.endpoint->workload, match.service->ns);
  // Envoy's consecutive_5xx: a 5xx from the endpoint and a failure to reach it count alike.
  const bool failed = ex.status >= 500 || ex.flags == ResponseFlag::UpstreamConnectFailure ||
                      ex.flags == ResponseFlag::UpstreamReset || ex.flags == ResponseFlag::UpstreamTimeout;
  finish_endpoint(target, failed, config_.outlier, BalancerClock::now());
  report_.registry_outcome(*match.service, *match.port, target.retried, target.ejections);
  co_return open;
}

void Forwarder::exchange_response_metadata(const HttpSide& side, http::Headers& headers, Worker& worker,
                                           Exchange& ex) {
  auto metadata = take_peer_metadata(headers);
  if (!side.inbound) {
    // The destination proxy's, believed as its certificate allows; never passed to the app.
    if (metadata && !ex.upstream_principal.empty())
      ex.peer = cached_peer_labels(worker.series, *metadata, ex.upstream_principal);
  } else if (side.peer) {
    add_metadata(headers, *report_.own());
  }
}

bool Forwarder::retry_elsewhere(const HttpSide& side, const std::string& reason, const std::string& detail) {
  if (!side.target) return false;
  const std::string failed = destination_name(side);
  if (!proxy::retry_elsewhere(*side.target, config_.outlier, BalancerClock::now())) return false;
  report_.outbound_refused(side.source, failed, reason, detail + " (retrying on " + destination_name(side) + ")");
  return true;
}

std::string Forwarder::destination_name(const HttpSide& side) const {
  if (side.external) return side.external->name();
  if (side.target) return side.target->endpoint->address + ":" + std::to_string(side.target->endpoint->port);
  return destination_of(config_.outbound[*side.route]);
}

net::awaitable<bool> Forwarder::relay(net::Stream& down, ServerCodec& codec, std::string& in,
                                      BufferPool::Lease& chunk, net::Watchdog& watchdog, Worker& worker,
                                      const HttpSide& side, http::Request& req,
                                      const std::optional<std::string>& upgrade,
                                      std::optional<JudgedUpgrade>& as_received, Exchange& ex) {
  // gRPC asks for trailers with "te: trailers", a hop-by-hop field an HTTP/2 next hop gets again.
  const bool te_trailers = http::wants_trailers(req.headers);
  // Headers the next hop sees: hop-by-hop removed, framing re-stated; inbound, XFCC sanitized
  // and set (only this proxy vouches for the client certificate).
  // serialize_request_head reads only these; nothing reads req's target or headers after
  // this point, so they are moved rather than copied.
  http::Request forwarded;
  forwarded.method = req.method;
  forwarded.target = std::move(req.target);
  forwarded.headers = std::move(req.headers);
  http::remove_hop_by_hop(forwarded.headers);
  if (upgrade) {
    forwarded.headers.add("connection", "upgrade");
    forwarded.headers.add("upgrade", *upgrade);
  }
  forwarded.headers.remove("content-length");
  forwarded.headers.remove("expect");
  if (side.inbound && !side.gateway) {
    forwarded.headers.remove("x-forwarded-client-cert");
    if (side.peer) {
      if (auto state = credentials_.current()) {
        forwarded.headers.add("x-forwarded-client-cert", tls::xfcc_value(state->creds->own_id, *side.peer));
      }
    }
    // From a mesh peer (an ingress gateway) X-Forwarded-Proto says how the original client
    // arrived and is kept, as Envoy keeps it on an internal request; a plaintext client's claim
    // is replaced.
    if (!side.peer || !forwarded.headers.contains("x-forwarded-proto"))
      forwarded.headers.set("x-forwarded-proto", side.peer ? "https" : "http");
  } else if (!side.external) {
    // This workload's metadata for the destination proxy (the app's own was stripped on arrival:
    // HttpSession::handle_request). A gateway's edge headers were set by forward_gateway. A host outside
    // the mesh gets none.
    add_metadata(forwarded.headers, *report_.own());
  }
  if (req.framing == http::BodyFraming::ContentLength) {
    forwarded.headers.add("content-length", std::to_string(req.content_length));
  } else if (req.framing == http::BodyFraming::Chunked) {
    forwarded.headers.add("transfer-encoding", "chunked");
  }
  forwarded.version_minor = 1;

  std::error_code ec;
  if (req.expect_continue) {
    const std::string_view interim = codec.continue_response();
    co_await down.write_all(asio::buffer(interim.data(), interim.size()), ec);
    if (ec) co_return false;
  }

  // HTTP/2 to the next hop when it speaks it (forwarder_h2.cpp); a destination proxy that
  // selected http/1.1 hands back its connection for the HTTP/1.1 path below.
  std::unique_ptr<UpstreamConn> first;
  std::string reason, detail;
  // An app's HTTP/1.1 request goes to another proxy as an HTTP/2 stream unless the mesh says
  // DO_NOT_UPGRADE; an h2c app (inbound) gets HTTP/2 whatever the client spoke. No snapshot (no
  // policyDir): the default, UPGRADE.
  const bool h2_wanted = side.inbound || down.is_h2_stream() || [&] {
    const auto& snapshot = policy_.current()->snapshot;
    return !snapshot || snapshot->mesh().h2_upgrade;
  }();
  while (!upgrade && h2_wanted && worker.upstreams.may_use_h2(side)) {
    reason.clear();
    auto h2 = co_await worker.upstreams.acquire_h2(side, first, reason, detail);
    if (h2) {
      if (side.target || side.external) ex.upstream_address = destination_name(side);
      if (te_trailers) forwarded.headers.add("te", "trailers");
      co_return co_await forward_h2(down, codec, in, chunk, watchdog, worker, side, std::move(h2), forwarded, req,
                                    as_received, ex);
    }
    if (first || reason.empty() || !retry_elsewhere(side, reason, detail)) break;
    reason.clear();  // another endpoint: HTTP/2 again, or HTTP/1.1 below if it is known to want it
  }
  if (!first && !reason.empty()) {
    if (side.route || side.gateway) report_.outbound_refused(side.source, destination_name(side), reason, detail);
    ex.flags = ResponseFlag::UpstreamConnectFailure;
    co_await local_reply(down, codec, ex, 503, kConnectFailure, false);
    co_return false;
  }
  std::string head = http::serialize_request_head(forwarded);

  // Send head (+ body). A reused idle connection may have been closed by the app just now:
  // for a bodiless request, retry once on a fresh connection.
  std::unique_ptr<UpstreamConn> up;
  // An inbound HTTP/2 stream to an HTTP/1.1 app that carries a request body (an upload, a
  // streaming call), judged again by each policy publish while it is relayed, as one to an h2c app
  // is (as_received is set for HTTP/2 streams only; a WebSocket upgrade is registered by
  // relay_upgrade instead, once spliced). A bodiless request is judged once, as an HTTP/1.1 one:
  // resetting a GET that was in flight when a publish landed turned a reload under load into
  // client errors (e2e_control_opa).
  std::optional<LiveRequest> live;
  if (side.inbound && as_received && !upgrade && req.framing != http::BodyFraming::None)
    live.emplace(connections_, side, *as_received, down, ex);
  bool response_started = false;
  std::optional<http::Response> resp;
  for (int attempt = 0; attempt < 2 && !resp; ++attempt) {
    bool reused = false;
    if (live) live->relay_to(nullptr);  // `up` is replaced below
    if (first) {
      up = std::move(first);
    } else {
      up = co_await worker.upstreams.acquire(side, reused, reason, detail);
      while (!up && retry_elsewhere(side, reason, detail))
        up = co_await worker.upstreams.acquire(side, reused, reason, detail);
    }
    if (live) {
      if (live->closed_by_policy()) co_return false;  // by a reload while connecting
      if (up) live->relay_to(up->stream.get());
    }
    if (side.target || side.external) ex.upstream_address = destination_name(side);
    if (!up) {
      if (side.route || side.gateway) report_.outbound_refused(side.source, destination_name(side), reason, detail);
      ex.flags = ResponseFlag::UpstreamConnectFailure;
      co_await local_reply(down, codec, ex, 503, kConnectFailure, false);
      co_return false;
    }
    ex.upstream_principal = up->peer_principal;
    co_await up->stream->write_all(asio::buffer(head), ec);
    bool retryable = reused && req.framing == http::BodyFraming::None;
    if (ec) {
      if (retryable) continue;
      ex.flags = ResponseFlag::UpstreamReset;
      co_await local_reply(down, codec, ex, 503, kResetBeforeHeaders, false);
      co_return false;
    }
    if (req.framing != http::BodyFraming::None) {
      bool ok = co_await forward_request_body(down, codec, in, chunk, watchdog, *up, req, ex);
      if (!ok) co_return false;  // already answered (or the client is gone)
    }
    // Response head, with the upstream timeout.
    if (!up->deadline)
      up->deadline.emplace(worker.io->get_executor(), [c = up.get()] { c->stream->close(); });
    up->deadline->arm(std::chrono::milliseconds(config_.limits.upstream_timeout_ms));
    auto result = co_await read_response_head(*up, chunk, req.method, upgrade, response_started);
    up->deadline->disarm();
    if (!result) {
      if (up->deadline->fired()) {
        ex.flags = ResponseFlag::UpstreamTimeout;
        co_await local_reply(down, codec, ex, 504, "upstream request timeout", false);
        co_return false;
      }
      if (retryable && !response_started && result.error().status == 0) continue;
      ex.flags = ResponseFlag::UpstreamReset;
      int status = result.error().status == 0 ? 503 : 502;
      // Chosen outside the co_await: gcc 12 destroys a temporary made in a conditional operand of a
      // co_await expression twice.
      const std::string& body = status == 503 ? kResetBeforeHeaders : kMalformedResponse;
      co_await local_reply(down, codec, ex, status, body, false);
      co_return false;
    }
    resp = std::move(*result);
  }
  if (!resp) {
    ex.flags = ResponseFlag::UpstreamReset;
    co_await local_reply(down, codec, ex, 503, kResetBeforeHeaders, false);
    co_return false;
  }

  exchange_response_metadata(side, resp->headers, worker, ex);
  // read_response_head let a 101 through only as the switch to the protocol asked for.
  if (resp->status == 101)
    co_return co_await relay_upgrade(down, codec, in, worker, side, std::move(up), *resp, *upgrade,
                                     as_received, ex);

  // Relay the response. Head and body go out in as few writes as possible: what is ready is
  // gathered in `out` and written only before waiting for more of the body, and at the end —
  // a small response is one write (one TLS record), not one per piece.
  const bool upstream_keep = resp->keep_alive && resp->framing != http::BodyFraming::UntilClose;
  const http::BodyFraming framing = resp->framing;
  const uint64_t content_length = resp->content_length;
  bool client_keep = req.keep_alive && !draining_;
  // Not used as the upstream's any more: edited in place into the client's.
  for (const auto& h : ex.add_response_headers) resp->headers.add(h.name, h.value);
  std::string out = codec.begin_response(*resp, req, client_keep);
  ex.status = resp->status;
  auto flush = [&] { return flush_response(down, out, ex); };

  http::BodyDecoder decoder(framing, content_length);
  std::string payload;
  while (!decoder.done()) {
    if (up->buffer.empty()) {
      if (!co_await flush()) co_return false;
      up->deadline->arm(std::chrono::milliseconds(config_.limits.upstream_timeout_ms));
      size_t n = co_await up->stream->read_some(chunk.get(), ec);
      up->deadline->disarm();
      if (ec || n == 0) {
        if (decoder.accept_eof()) break;
        co_await flush();  // what arrived; the client sees the connection end mid-body
        ex.flags = ResponseFlag::UpstreamReset;
        co_return false;
      }
      up->buffer.append(chunk.data(), n);
    }
    auto used = decoder.feed(up->buffer, payload);
    if (!used) {
      co_await flush();
      ex.flags = ResponseFlag::UpstreamReset;
      co_return false;
    }
    up->buffer.erase(0, *used);
    if (!payload.empty()) {
      codec.append_body(out, payload);
      payload.clear();
      // Big bodies go out as they come rather than piling up.
      if (out.size() >= kReadChunk && !co_await flush()) co_return false;
    }
  }
  end_response_body(codec, out, decoder.trailers(), ex);
  if (!co_await flush()) co_return false;
  live.reset();  // before the upstream connection goes back to the pool
  if (upstream_keep && up->buffer.empty()) worker.upstreams.release(side, std::move(up));
  if (!client_keep) down.shutdown_send();
  co_return client_keep;
}

net::awaitable<bool> Forwarder::forward_request_body(net::Stream& down, ServerCodec& codec, std::string& in,
                                                     BufferPool::Lease& chunk, net::Watchdog& watchdog,
                                                     UpstreamConn& up, const http::Request& req,
                                                     Exchange& ex) {
  codec.begin_request_body(req);
  std::string payload;
  std::error_code ec;
  while (!codec.request_body_done()) {
    if (in.empty()) {
      watchdog.arm(std::chrono::milliseconds(config_.limits.idle_timeout_ms));
      size_t n = co_await down.read_some(chunk.get(), ec);
      watchdog.disarm();
      if (ec || n == 0) {
        if (codec.request_body_done()) break;  // an HTTP/2 stream's end, after its last DATA
        ex.flags = ResponseFlag::DownstreamReset;
        co_return false;
      }
      in.append(chunk.data(), n);
    }
    auto used = codec.read_request_body(in, payload);
    if (!used) {
      co_await local_reply(down, codec, ex, 400, "Bad Request", false);
      co_return false;
    }
    ex.bytes_received += *used;
    in.erase(0, *used);
    if (!payload.empty()) {
      std::string piece = req.framing == http::BodyFraming::Chunked ? http::encode_chunk(payload) : payload;
      payload.clear();
      co_await up.stream->write_all(asio::buffer(piece), ec);
      if (ec) {
        ex.flags = ResponseFlag::UpstreamReset;
        co_await local_reply(down, codec, ex, 503, kResetBeforeHeaders, false);
        co_return false;
      }
    }
  }
  if (req.framing == http::BodyFraming::Chunked) {
    std::string last;
    http::append_last_chunk(last, codec.request_trailers());  // the client's trailers, relayed
    co_await up.stream->write_all(asio::buffer(last), ec);
    if (ec) {
      ex.flags = ResponseFlag::UpstreamReset;
      co_await local_reply(down, codec, ex, 503, kResetBeforeHeaders, false);
      co_return false;
    }
  }
  co_return true;
}

// The app (or the next proxy) switched protocols: the 101 goes to the client with the bytes
// that followed it, the client's bytes past its request head go up, and from then on the two
// connections are spliced until both directions end (or the idle timeout). The connection is
// not reused afterwards, nor is the upstream one pooled.
net::awaitable<bool> Forwarder::relay_upgrade(net::Stream& down, ServerCodec& codec, std::string& in,
                                              Worker& worker, const HttpSide& side,
                                              std::unique_ptr<UpstreamConn> up, http::Response& resp,
                                              const std::string& protocol,
                                              std::optional<JudgedUpgrade>& as_received, Exchange& ex) {
  // Registered for policy reloads while spliced (all on this worker's thread): a reload to
  // STRICT closes a plaintext one; one whose upgrade request the new policy denies is closed.
  std::optional<LiveUpgrade> live;
  if (side.entry) {
    side.entry->upgraded = true;
    if (side.inbound && as_received) {
      live.emplace(LiveUpgrade{
          {side.inbound_index, side.source, side.peer, up->stream.get(), false, as_received->generation},
          side.listen_port,
          std::move(as_received->request),
          as_received->judged_at});
      side.entry->upgrade = &*live;
    }
  }
  struct Unregister {
    ConnEntry* entry;
    ~Unregister() {
      if (entry) entry->upgrade = nullptr;
    }
  } unregister{live ? side.entry : nullptr};
  if (live) {
    connections_.rejudge_if_chains_changed(*side.entry, *live);
    if (live->closed_by_policy) {  // by a reload while the app was answering: no 101 goes out
      ex.details = ResponseDetail::UpgradeClosedByPolicyReload;
      co_return false;
    }
  }
  std::string out = codec.switching_protocols(resp, protocol);
  out += up->buffer;
  up->buffer.clear();
  ex.status = 101;
  ex.details = ResponseDetail::Upgrade;
  std::error_code ec;
  co_await down.write_all(asio::buffer(out), ec);
  ex.bytes_sent += out.size();
  if (ec) {
    ex.flags = ResponseFlag::DownstreamReset;
    co_return false;
  }
  if (!in.empty()) {
    co_await up->stream->write_all(asio::buffer(in), ec);
    ex.bytes_received += in.size();
    in.clear();
    if (ec) {
      ex.flags = ResponseFlag::UpstreamReset;
      co_return false;
    }
  }
  auto [down_to_up, up_to_down] = co_await splice(down, *up->stream, worker.buffers,
                                                  std::chrono::milliseconds(config_.limits.idle_timeout_ms));
  ex.bytes_received += down_to_up;
  ex.bytes_sent += up_to_down;
  if (live && live->closed_by_policy) ex.details = ResponseDetail::UpgradeClosedByPolicyReload;
  co_return false;
}

net::awaitable<Result<http::Response, http::ParseError>> Forwarder::read_response_head(
    UpstreamConn& up, BufferPool::Lease& chunk, const std::string& method,
    const std::optional<std::string>& upgrade, bool& response_started) {
  while (true) {
    http::HeadScanner scanner;
    http::HeadScan scan;
    while (true) {
      scan = scanner.scan(up.buffer, limits_.max_head_bytes);
      if (scan.state != http::HeadScan::State::Incomplete) break;
      std::error_code ec;
      size_t n = co_await up.stream->read_some(chunk.get(), ec);
      if (ec || n == 0) {
        co_return fail(http::ParseError{response_started || !up.buffer.empty() ? 502 : 0, "upstream closed"});
      }
      response_started = true;
      up.buffer.append(chunk.data(), n);
    }
    if (scan.state != http::HeadScan::State::Complete)
      co_return fail(http::ParseError{502, "malformed response head"});
    auto resp =
        http::parse_response_head(std::string_view(up.buffer).substr(0, scan.length), limits_, method);
    up.buffer.erase(0, scan.length);
    if (!resp) co_return fail(resp.error());
    if (resp->status >= 100 && resp->status < 200) {
      // 101 only answers a request that asked for an upgrade, to the protocol it asked for.
      if (resp->status == 101) {
        auto switched = http::upgrade_protocol(resp->headers);
        if (upgrade && switched && http::iequals(*switched, *upgrade)) co_return std::move(*resp);
        co_return fail(http::ParseError{502, "switching protocols without a matching upgrade request"});
      }
      continue;  // interim responses are not relayed (Expect was answered by the proxy)
    }
    co_return std::move(*resp);
  }
}

net::awaitable<bool> flush_response(net::Stream& down, std::string& out, Exchange& ex) {
  if (out.empty()) co_return true;
  std::error_code ec;
  co_await down.write_all(asio::buffer(out), ec);
  ex.bytes_sent += out.size();
  out.clear();
  if (ec) ex.flags = ResponseFlag::DownstreamReset;
  co_return !ec;
}

void end_response_body(ServerCodec& codec, std::string& out, const http::Headers& trailers, Exchange& ex) {
  const size_t pending = out.size();
  codec.end_body(out, trailers);
  if (out.size() < pending) ex.bytes_sent += pending - out.size();
}

net::awaitable<void> local_reply(net::Stream& down, const ServerCodec& codec, Exchange& ex, int status,
                                 const std::string& body, bool keep_alive, const std::vector<http::Header>& extra) {
  if (ex.details == ResponseDetail::ViaUpstream) ex.details = ResponseDetail::LocalReply;
  std::string response = codec.local_response(status, body, keep_alive, extra);
  std::error_code ec;
  co_await down.write_all(asio::buffer(response), ec);
  ex.status = status;
  if (ex.grpc && down.is_h2_stream()) {
    // Answered as gRPC answers (HTTP 200, the outcome in grpc-status): recorded as sent.
    ex.grpc_status = std::to_string(http2::grpc_status_for_http(status));
    ex.status = 200;
  }
  ex.bytes_sent += response.size();
  if (!keep_alive) down.shutdown_send();
}

}  // namespace mg::proxy
