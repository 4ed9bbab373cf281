// proxy/http_session.h — an HTTP connection's request loop, inbound or outbound: each request
// head read with the idle timeout before its first byte and the header timeout for the rest,
// found and parsed by the connection's codec (proxy/codec.h; a malformed head is answered 400/431
// and ends the connection), judged inbound by the enforcement step, forwarded
// (proxy/forwarder.h), then recorded (proxy/report.h). Between requests the connection holds no
// 16 KB buffer and is marked idle, so a drain can close it. The session does the I/O and the
// timeouts; what the bytes mean is the codec's (proxy/http1_codec.h). A connection whose first
// bytes are the HTTP/2 connection preface (h2c prior knowledge, or h2 after ALPN) is handed to
// the HTTP/2 session (proxy/http2_session.h), whose every stream comes back through
// handle_request: one request path whatever the wire version.
// Owns nothing beyond each connection's coroutine frame (its codec among it).
#pragma once

#include <atomic>
#include <string>

#include "http/parser.h"
#include "proxy/buffer_pool.h"
#include "proxy/chain.h"
#include "proxy/config.h"
#include "proxy/exchange.h"
#include "proxy/http2_session.h"
#include "proxy/net.h"

namespace mg::proxy {

class Credentials;
class Enforcement;
class Forwarder;
class Report;
class ServerCodec;
struct ConnEntry;
struct Worker;

class HttpSession {
 public:
  HttpSession(const ProxyConfig& config, const http::Limits& limits, const Credentials& credentials,
              Enforcement& enforcement, Forwarder& forwarder, Report& report,
              const std::atomic<bool>& draining);

  // Requests on `down` until it closes, one fails, or the proxy drains.
  net::awaitable<void> serve(net::Stream& down, ConnEntry& entry, Worker& worker, const HttpSide& side);

  // One request whose head the codec found at the front of `in` (an HTTP/1 connection's, or an
  // HTTP/2 stream's: proxy/http2_session.h): refused, answered locally or forwarded, then logged.
  // Returns whether the connection stays open for the next request. A coroutine of its own so
  // that an idle keep-alive connection's frame holds only the reading state of serve, not a
  // request's (issue 5: memory per idle connection).
  net::awaitable<bool> handle_request(net::Stream& down, ServerCodec& codec, Worker& worker,
                                      const HttpSide& side, std::string& in, BufferPool::Lease& chunk,
                                      net::Watchdog& watchdog);

 private:
  void finish_request(Worker& worker, const Exchange& ex, const HttpSide& side, const Verdict* decision);

  const ProxyConfig& config_;
  const http::Limits& limits_;
  const Credentials& credentials_;
  Enforcement& enforcement_;
  Forwarder& forwarder_;
  Report& report_;
  const std::atomic<bool>& draining_;
  Http2Session http2_;
};

}  // namespace mg::proxy
