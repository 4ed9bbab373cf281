// proxy/h2_upstream.h — one HTTP/2 connection to where requests go: the local app on an inbound
// port whose protocol is http2 or grpc (h2c with prior knowledge), or a route's destination
// proxy that selected ALPN h2 (mTLS). Many requests share it, each a stream, concurrently; the
// worker's UpstreamPool keeps it and hands it to the next request while it has room under the
// server's stream limit. A reader coroutine feeds the session for as long as the connection
// lives; it ends the connection after the idle timeout with no stream open.
// Owns: the upstream connection (its stream, the peer's principal) and its client session.
#pragma once

#include <memory>
#include <string>

#include "http2/client.h"
#include "proxy/h2_connection.h"

namespace mg::proxy {

struct UpstreamConn;

class H2Upstream final : public H2Connection {
 public:
  // Takes over `conn` (connected; TLS handshake done) and starts the reader on its executor.
  static Result<std::shared_ptr<H2Upstream>> start(std::unique_ptr<UpstreamConn> conn,
                                                   const http2::Limits& limits,
                                                   std::chrono::milliseconds stall_timeout,
                                                   std::chrono::milliseconds idle_timeout);
  ~H2Upstream() override;

  // Whether a new request may go on it: alive, no GOAWAY either way, under the stream limit.
  bool usable() const;
  size_t open_streams() const { return streams_.size(); }
  const std::string& peer_principal() const;
  bool tls() const;

  // Sends a request head; its response comes into the returned stream (response, data, end).
  Result<std::shared_ptr<H2Stream>> submit(const http::Request& req, bool end_stream);
  // Ends the request body, with `trailers` when not empty.
  void end(H2Stream& st, const http::Headers& trailers);

 private:
  H2Upstream(std::unique_ptr<UpstreamConn> conn, std::unique_ptr<http2::Session> session,
             std::chrono::milliseconds stall_timeout);
  net::awaitable<void> read_loop(std::shared_ptr<H2Upstream> self, std::chrono::milliseconds idle_timeout);
  http2::ClientSession& client() { return static_cast<http2::ClientSession&>(*session_); }

  std::unique_ptr<UpstreamConn> conn_;
};

}  // namespace mg::proxy
