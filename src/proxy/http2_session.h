// proxy/http2_session.h — a downstream HTTP/2 connection (h2c with prior knowledge, or h2 over
// mTLS; HttpSession hands it over when the connection preface arrives): the connection's loop
// feeds http2::ServerSession and dispatches its events; every stream runs in a coroutine of its
// own through the very request handling an HTTP/1.1 request goes through
// (HttpSession::handle_request: enforcement, JWT, OPA, authorization, forwarding, access log and
// metrics). That is what the two adaptors here are for: per stream, a ServerCodec
// (H2StreamCodec: the request as the stream's head gave it, its body as the DATA frames carry it,
// the response as HEADERS / DATA / trailers, a gRPC caller's denial in gRPC's terms) and a
// net::Stream (H2StreamIo: the stream's body bytes in, with the session's flow control).
// Timeouts: the connection's idle timeout while no stream is open; a stream's request body waits
// at most the idle timeout between pieces (the forwarder's watchdog resets the stream); a stream
// whose peer keeps its window shut past the header timeout is reset (zero-window stall).
// Owns: each connection's coroutine frame (its session and streams).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "http/parser.h"
#include "http2/server.h"
#include "proxy/codec.h"
#include "proxy/config.h"
#include "proxy/exchange.h"
#include "proxy/h2_connection.h"
#include "proxy/net.h"

namespace mg::proxy {

class HttpSession;
class Report;
struct ConnEntry;
struct Worker;

// The HTTP/2 limits of the proxy's connections, from its config (header list as the HTTP/1 head).
http2::Limits http2_limits(const ProxyConfig& config);

// One HTTP/2 stream seen as the one-request connection the codec seam (proxy/codec.h) expects.
class H2StreamCodec final : public ServerCodec {
 public:
  H2StreamCodec(H2Connection& conn, H2Stream& st) : conn_(&conn), st_(&st) {}
  bool response_ended() const { return response_ended_; }

  void begin_head() override {}
  HeadState scan_head(std::string_view) override { return HeadState::Complete; }
  Result<http::Request, http::ParseError> take_head(std::string& in, size_t& consumed) override;
  std::optional<std::string> relayed_upgrade(const http::Request&) const override { return std::nullopt; }

  void begin_request_body(const http::Request& req) override;
  bool request_body_done() const override;
  Result<size_t, http::ParseError> read_request_body(std::string_view in, std::string& payload) override;
  const http::Headers& request_trailers() const override { return st_->trailers; }

  // These submit to the session (HTTP/2 has no bytes of its own to hand back) and return "";
  // body payload passes through `out` as is, sent by H2StreamIo::write_all.
  std::string_view continue_response() const override;
  std::string begin_response(http::Response& resp, const http::Request& req, bool& keep_alive) override;
  void append_body(std::string& out, std::string_view payload) override;
  void end_body(std::string& out, const http::Headers& trailers) override;
  std::string switching_protocols(http::Response& resp, const std::string& protocol) override;
  std::string local_response(int status, std::string_view body, bool keep_alive,
                             const std::vector<http::Header>& extra) const override;

 private:
  http2::ServerSession& server() const;
  // Pointers: the const members of the seam still submit frames.
  H2Connection* conn_;
  H2Stream* st_;
  bool grpc_ = false;
  bool head_taken_ = false;
  bool response_started_ = false;
  mutable bool response_ended_ = false;
  http::BodyFraming framing_ = http::BodyFraming::None;
  uint64_t expected_ = 0, received_ = 0;
};

// One HTTP/2 stream's body as a net::Stream: read_some takes its DATA, write_all sends response
// body bytes (with backpressure), close() resets the stream. Shares the connection's socket.
class H2StreamIo final : public net::Stream {
 public:
  H2StreamIo(H2Connection& conn, H2Stream& st) : conn_(conn), st_(st) {}
  net::awaitable<size_t> read_some(asio::mutable_buffer buf, std::error_code& ec) override;
  net::awaitable<void> write_all(asio::const_buffer buf, std::error_code& ec) override;
  void close() override;
  void shutdown_send() override {}  // the codec ends the stream
  net::tcp::socket& socket() override { return conn_.stream().socket(); }
  SSL* ssl() override { return conn_.stream().ssl(); }
  bool is_h2_stream() const override { return true; }

 private:
  H2Connection& conn_;
  H2Stream& st_;
  std::string taken_;  // bytes taken from the stream beyond what the caller's buffer held
};

class Http2Session {
 public:
  Http2Session(const ProxyConfig& config, HttpSession& http, Report& report,
               const std::atomic<bool>& draining);

  // Streams on `down` until it closes, fails, or the proxy drains (GOAWAY, then the streams
  // begun run to their end). `first`: the bytes read so far (the connection preface's start).
  net::awaitable<void> serve(net::Stream& down, ConnEntry& entry, Worker& worker, const HttpSide& side,
                             std::string first);

 private:
  const ProxyConfig& config_;
  HttpSession& http_;
  Report& report_;
  const std::atomic<bool>& draining_;
};

}  // namespace mg::proxy
