// proxy/forwarder.h — one allowed request to the app (inbound) or the route's destination
// (outbound) and its response back: the head the next hop sees (hop-by-hop fields removed,
// framing restated, XFCC set only by this proxy), a pooled or new upstream connection (retried
// once when a reused one was closed under it), the body both ways with the upstream timeout, and
// a WebSocket upgrade relayed and spliced — registered with the connection manager so a policy
// reload judges it again. Every response the client gets, relayed or local, is written here, in
// the framing of the connection's codec (proxy/codec.h); the upstream side speaks
// HTTP/1.1, or HTTP/2 on a shared connection (forwarder_h2.cpp) to an h2c app or an h2 peer proxy.
// Owns nothing per request beyond the coroutine frames; per-worker state is the Worker's.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "http/message.h"
#include "http/parser.h"
#include "proxy/buffer_pool.h"
#include "proxy/config.h"
#include "proxy/exchange.h"
#include "proxy/net.h"

namespace mg::proxy {

class ConnectionManager;
class Credentials;
class GatewayMode;
class PolicyState;
class H2Upstream;
class Report;
struct H2Stream;
class ServerCodec;
struct JudgedUpgrade;
struct UpstreamConn;
struct Worker;

// The bodies of the 502s and 503s the proxy answers itself (the 503s in Envoy's words).
inline const std::string kConnectFailure =
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure";
inline const std::string kResetBeforeHeaders =
    "upstream connect error or disconnect/reset before headers. reset reason: connection termination";
inline const std::string kMalformedResponse = "upstream sent a malformed response";

// Writes what the response relay gathered in `out` (then empty), counted in `ex`; false (flag
// DownstreamReset) when the client is gone.
net::awaitable<bool> flush_response(net::Stream& down, std::string& out, Exchange& ex);

// Ends the relayed response body in `codec` (a chunked response's or an HTTP/2 upstream's
// trailers relayed); what the codec hands to the client itself (an HTTP/2 stream's last bytes)
// is counted in `ex` as sent. What stays in `out` is for flush_response.
void end_response_body(ServerCodec& codec, std::string& out, const http::Headers& trailers, Exchange& ex);

// A response made by the proxy itself (text/plain `body`, in `codec`'s framing), recorded in `ex`;
// without keep-alive the sending side is shut down after it.
net::awaitable<void> local_reply(net::Stream& down, const ServerCodec& codec, Exchange& ex, int status,
                                 const std::string& body, bool keep_alive,
                                 const std::vector<http::Header>& extra = {});

class Forwarder {
 public:
  Forwarder(const ProxyConfig& config, const http::Limits& limits, const Credentials& credentials,
            ConnectionManager& connections, const PolicyState& policy, Report& report,
            const std::atomic<bool>& draining, const GatewayMode& gateway);

  // Forwards one request (its head parsed into `req`, the bytes after it in `in`) and relays its
  // response. Returns whether the downstream connection stays open for the next request. The
  // client's side is read and written through `codec`; the upstream side speaks HTTP/1.1 or HTTP/2
  // (UpstreamPool::may_use_h2).
  // `upgrade` (ServerCodec::relayed_upgrade) is restated for the next hop, its two fields being
  // hop-by-hop; a 101 answer splices the two connections, `as_received` (inbound) staying with
  // them for policy reloads to judge.
  net::awaitable<bool> forward(net::Stream& down, ServerCodec& codec, std::string& in,
                               BufferPool::Lease& chunk, net::Watchdog& watchdog, Worker& worker,
                               const HttpSide& side, http::Request& req,
                               const std::optional<std::string>& upgrade,
                               std::optional<JudgedUpgrade>& as_received, Exchange& ex);

  // A gateway request refused before it was forwarded: its destination, when outside the mesh
  // (the egress audit line is written for denied calls too). Routes without connecting.
  std::optional<Exchange::Egress> egress_of(const HttpSide& side, const http::Request& req) const;

 private:
  net::awaitable<bool> forward_by_name(net::Stream& down, ServerCodec& codec, std::string& in,
                                       BufferPool::Lease& chunk, net::Watchdog& watchdog, Worker& worker,
                                       const HttpSide& side, http::Request& req,
                                       const std::optional<std::string>& upgrade,
                                       std::optional<JudgedUpgrade>& as_received, Exchange& ex);
  // forwarder_gateway.cpp: a gateway listener's request (side.gateway), routed by the listener's
  // RouteTable (no route: 404 NR), its destination resolved (resolve_destination: a registry
  // service or a MESH_INTERNAL ServiceEntry; nothing there or no healthy endpoint: 503 UH), the
  // edge headers set (gateway/edge_headers.h), then relayed over mTLS to the endpoint chosen.
  net::awaitable<bool> forward_gateway(net::Stream& down, ServerCodec& codec, std::string& in,
                                       BufferPool::Lease& chunk, net::Watchdog& watchdog, Worker& worker,
                                       const HttpSide& side, http::Request& req,
                                       const std::optional<std::string>& upgrade,
                                       std::optional<JudgedUpgrade>& as_received, Exchange& ex);
  // forward() to a known destination (a route's, an inbound port's app, or side.target).
  net::awaitable<bool> relay(net::Stream& down, ServerCodec& codec, std::string& in, BufferPool::Lease& chunk,
                             net::Watchdog& watchdog, Worker& worker, const HttpSide& side, http::Request& req,
                             const std::optional<std::string>& upgrade, std::optional<JudgedUpgrade>& as_received,
                             Exchange& ex);
  // The response's half of the metadata exchange (proxy/peer_metadata.h), on the head the client
  // is to get: the headers the upstream sent are taken off; outbound, the destination proxy's are
  // the peer's labels in `ex`; inbound to an mTLS peer, this workload's are added.
  void exchange_response_metadata(const HttpSide& side, http::Headers& headers, Worker& worker, Exchange& ex);
  // A registry request whose endpoint could not be connected: that failure recorded, another
  // endpoint in side.target (once per request). False: answer the failure.
  bool retry_elsewhere(const HttpSide& side, const std::string& reason, const std::string& detail);
  // "ip:port" the request goes to, for the log.
  std::string destination_name(const HttpSide& side) const;
  net::awaitable<bool> forward_request_body(net::Stream& down, ServerCodec& codec, std::string& in,
                                            BufferPool::Lease& chunk, net::Watchdog& watchdog,
                                            UpstreamConn& up, const http::Request& req, Exchange& ex);
  net::awaitable<bool> relay_upgrade(net::Stream& down, ServerCodec& codec, std::string& in, Worker& worker,
                                     const HttpSide& side, std::unique_ptr<UpstreamConn> up,
                                     http::Response& resp, const std::string& protocol,
                                     std::optional<JudgedUpgrade>& as_received, Exchange& ex);
  // forwarder_h2.cpp: the request as a stream of a shared HTTP/2 upstream connection
  // (`forwarded`: its head as the next hop gets it). The request body is pumped up beside the
  // response relay (a bidirectional gRPC stream needs both at once); trailers are relayed;
  // grpc-timeout bounds the proxy's own timeouts. A stream the upstream refuses (REFUSED_STREAM,
  // or above a GOAWAY's last-stream-id: never processed) is retried once on another stream, its
  // body replayed when no more than 64 KiB of it had gone.
  struct BodyPump;
  // An inbound HTTP/2 stream (`as_received` set) is registered with the connection manager while
  // relayed, so a policy reload judges it again.
  net::awaitable<bool> forward_h2(net::Stream& down, ServerCodec& codec, std::string& in,
                                  BufferPool::Lease& chunk, net::Watchdog& watchdog, Worker& worker,
                                  const HttpSide& side, std::shared_ptr<H2Upstream> h2, http::Request& forwarded,
                                  const http::Request& req, std::optional<JudgedUpgrade>& as_received,
                                  Exchange& ex);
  net::awaitable<void> pump_body_h2(net::Stream& down, ServerCodec& codec, std::string& in,
                                    BufferPool::Lease& chunk, net::Watchdog& watchdog, const http::Request& req,
                                    Exchange& ex, BodyPump& pump);
  // Reads a final (non-1xx) response head. Error status 0: the connection ended before any byte.
  net::awaitable<Result<http::Response, http::ParseError>> read_response_head(
      UpstreamConn& up, BufferPool::Lease& chunk, const std::string& method,
      const std::optional<std::string>& upgrade, bool& response_started);

  const ProxyConfig& config_;
  const http::Limits& limits_;
  const Credentials& credentials_;
  ConnectionManager& connections_;
  const PolicyState& policy_;
  Report& report_;
  const std::atomic<bool>& draining_;
  const GatewayMode& gateway_;
};

}  // namespace mg::proxy
