// proxy/forwarder.h — one allowed request to the app (inbound) or the route's destination
// (outbound) and its response back: the head the next hop sees (hop-by-hop fields removed,
// framing restated, XFCC set only by this proxy), a pooled or new upstream connection (retried
// once when a reused one was closed under it), the body both ways with the upstream timeout, and
// a WebSocket upgrade relayed and spliced — registered with the connection manager so a policy
// reload judges it again. Every response the client gets, relayed or local, is written here, in
// the framing of the connection's codec (proxy/codec.h); the upstream side speaks HTTP/1.1.
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
class Report;
class ServerCodec;
struct JudgedUpgrade;
struct UpstreamConn;
struct Worker;

// A response made by the proxy itself (text/plain `body`, in `codec`'s framing), recorded in `ex`;
// without keep-alive the sending side is shut down after it.
net::awaitable<void> local_reply(net::Stream& down, const ServerCodec& codec, Exchange& ex, int status,
                                 const std::string& body, bool keep_alive,
                                 const std::vector<http::Header>& extra = {});

class Forwarder {
 public:
  Forwarder(const ProxyConfig& config, const http::Limits& limits, const Credentials& credentials,
            ConnectionManager& connections, Report& report, const std::atomic<bool>& draining);

  // Forwards one request (its head parsed into `req`, the bytes after it in `in`) and relays its
  // response. Returns whether the downstream connection stays open for the next request. The
  // client's side is read and written through `codec`; the upstream side speaks HTTP/1.1.
  // `upgrade` (ServerCodec::relayed_upgrade) is restated for the next hop, its two fields being
  // hop-by-hop; a 101 answer splices the two connections, `as_received` (inbound) staying with
  // them for policy reloads to judge.
  net::awaitable<bool> forward(net::Stream& down, ServerCodec& codec, std::string& in,
                               BufferPool::Lease& chunk, net::Watchdog& watchdog, Worker& worker,
                               const HttpSide& side, http::Request& req,
                               const std::optional<std::string>& upgrade,
                               std::optional<JudgedUpgrade>& as_received, Exchange& ex);

 private:
  net::awaitable<bool> forward_request_body(net::Stream& down, ServerCodec& codec, std::string& in,
                                            BufferPool::Lease& chunk, net::Watchdog& watchdog,
                                            UpstreamConn& up, const http::Request& req, Exchange& ex);
  net::awaitable<bool> relay_upgrade(net::Stream& down, ServerCodec& codec, std::string& in, Worker& worker,
                                     const HttpSide& side, std::unique_ptr<UpstreamConn> up,
                                     http::Response& resp, const std::string& protocol,
                                     std::optional<JudgedUpgrade>& as_received, Exchange& ex);
  // Reads a final (non-1xx) response head. Error status 0: the connection ended before any byte.
  net::awaitable<Result<http::Response, http::ParseError>> read_response_head(
      UpstreamConn& up, BufferPool::Lease& chunk, const std::string& method,
      const std::optional<std::string>& upgrade, bool& response_started);

  const ProxyConfig& config_;
  const http::Limits& limits_;
  const Credentials& credentials_;
  ConnectionManager& connections_;
  Report& report_;
  const std::atomic<bool>& draining_;
};

}  // namespace mg::proxy
