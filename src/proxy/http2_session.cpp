#include "proxy/http2_session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>

#include "http/body.h"
#include "http2/grpc.h"
#include "http2/server.h"
#include "proxy/connection_manager.h"
#include "proxy/http_session.h"
#include "proxy/report.h"
#include "proxy/worker.h"

namespace mg::proxy {

http2::Limits http2_limits(const ProxyConfig& config) {
  http2::Limits limits;
  limits.max_header_list_size = config.limits.max_head_bytes;
  limits.max_headers = config.limits.max_headers;
  return limits;
}

// --- H2StreamCodec ---------------------------------------------------------------------------

http2::ServerSession& H2StreamCodec::server() const {
  return static_cast<http2::ServerSession&>(conn_->session());
}

Result<http::Request, http::ParseError> H2StreamCodec::take_head(std::string&, size_t& consumed) {
  consumed = 0;
  if (head_taken_) return fail(http::ParseError{400, "one request per stream"});
  head_taken_ = true;
  grpc_ = http2::is_grpc_request(st_->request);
  return std::move(st_->request);
}

void H2StreamCodec::begin_request_body(const http::Request& req) {
  framing_ = req.framing;
  expected_ = req.content_length;
  received_ = 0;
}

bool H2StreamCodec::request_body_done() const {
  // Done once every byte the stream carried went through read_request_body (bytes read ahead,
  // e.g. for an ext_authz check, wait in the caller's buffer until then). A body shorter than its
  // Content-Length never ends here: reading on finds the stream's end and the request is dropped,
  // never relayed short.
  return st_->ended && received_ == st_->data_bytes &&
         (framing_ != http::BodyFraming::ContentLength || received_ == expected_);
}

Result<size_t, http::ParseError> H2StreamCodec::read_request_body(std::string_view in, std::string& payload) {
  received_ += in.size();
  // RFC 9113 §8.1.1: DATA beyond the declared Content-Length makes the request malformed.
  if (framing_ == http::BodyFraming::ContentLength && received_ > expected_)
    return fail(http::ParseError{400, "body longer than Content-Length"});
  payload.append(in);
  return in.size();
}

std::string_view H2StreamCodec::continue_response() const {
  if (server().send_continue(st_->id)) conn_->kick();
  return {};
}

std::string H2StreamCodec::begin_response(http::Response& resp, const http::Request&, bool&) {
  response_started_ = true;
  // A response without a body (HTTP/1 framing None) is one HEADERS frame ending the stream.
  const bool bodiless = resp.framing == http::BodyFraming::None;
  if (!server().respond(st_->id, resp, bodiless)) {
    conn_->reset(*st_, NGHTTP2_INTERNAL_ERROR);
    response_ended_ = true;
    return {};
  }
  response_ended_ = bodiless;
  conn_->kick();
  return {};
}

void H2StreamCodec::append_body(std::string& out, std::string_view payload) {
  if (!response_ended_) out += payload;
}

void H2StreamCodec::end_body(std::string& out, const http::Headers& trailers) {
  if (response_ended_) {
    out.clear();
    return;
  }
  response_ended_ = true;
  if (!out.empty()) (void)server().append_body(st_->id, out);
  out.clear();
  http::Headers relayed;
  for (const auto& t : trailers) {
    if (http::relayable_trailer(t.name)) relayed.add(t.name, t.value);
  }
  (void)server().end_body(st_->id, relayed);
  conn_->kick();
}

std::string H2StreamCodec::switching_protocols(http::Response&, const std::string&) {
  return {};  // relayed_upgrade() never asks for one
}

std::string H2StreamCodec::local_response(int status, std::string_view body, bool,
                                          const std::vector<http::Header>& extra) const {
  if (response_ended_ || response_started_) return {};
  response_ended_ = true;
  if (grpc_) {
    // A gRPC caller reads the outcome from grpc-status: Envoy's answer (http2/grpc.h).
    http::Response resp = http2::grpc_deny_response(status, body);
    for (const auto& h : extra) {
      if (!http::iequals(h.name, "content-type")) resp.headers.add(h.name, h.value);
    }
    if (!server().respond(st_->id, resp, true)) conn_->reset(*st_, NGHTTP2_INTERNAL_ERROR);
    conn_->kick();
    return {};
  }
  http::Response resp;
  resp.status = status;
  const bool typed =
      std::any_of(extra.begin(), extra.end(), [](const auto& h) { return h.name == "content-type"; });
  if (!typed) resp.headers.add("content-type", "text/plain");
  for (const auto& h : extra) resp.headers.add(h.name, h.value);
  resp.headers.add("content-length", std::to_string(body.size()));
  bool ok = server().respond(st_->id, resp, body.empty()).has_value();
  if (ok && !body.empty()) ok = server().append_body(st_->id, body) && server().end_body(st_->id);
  if (!ok) conn_->reset(*st_, NGHTTP2_INTERNAL_ERROR);
  conn_->kick();
  return {};
}

// --- H2StreamIo ------------------------------------------------------------------------------

// Not coroutines themselves: each hands back the one coroutine doing the work (h2_connection.h).
net::awaitable<size_t> H2StreamIo::read_some(asio::mutable_buffer buf, std::error_code& ec) {
  return read_body(conn_, st_, taken_, buf, ec);
}

net::awaitable<void> H2StreamIo::write_all(asio::const_buffer buf, std::error_code& ec) {
  return write_body(conn_, st_, std::string_view(static_cast<const char*>(buf.data()), buf.size()), ec);
}

void H2StreamIo::close() {
  conn_.reset(st_, NGHTTP2_CANCEL);
  st_.closed = true;
  st_.data_wake.notify();
  st_.room_wake.notify();
}

// --- Http2Session ----------------------------------------------------------------------------

namespace {

// The stream coroutines of one connection: counted so the connection's frame (which they
// reference) outlives them all.
struct StreamCount {
  explicit StreamCount(const asio::any_io_executor& ex) : done(ex) {}
  size_t active = 0;
  Wake done;
};

net::awaitable<void> run_stream(std::shared_ptr<H2Connection> conn, std::shared_ptr<H2Stream> st,
                                HttpSession& http, Worker& worker, const HttpSide& side, StreamCount& count) {
  {
    H2StreamIo io(*conn, *st);
    H2StreamCodec codec(*conn, *st);
    std::string in;
    BufferPool::Lease chunk(worker.buffers);
    net::Watchdog watchdog(conn->stream().socket().get_executor(), [&io] { io.close(); });
    co_await http.handle_request(io, codec, worker, side, in, chunk, watchdog);
    // Given up before the response ended (upstream reset, client gone): the stream is reset,
    // never left open. Ended: what the peer's window still holds back goes out, or the stall
    // timer resets the stream.
    if (!codec.response_ended()) {
      conn->reset(*st, NGHTTP2_INTERNAL_ERROR);
    } else if (!conn->release(st)) {
      co_await drain_stream(*conn, *st);
    }
  }
  if (--count.active == 0) count.done.notify();
}

// A released stream whose last bytes the peer's windows held back after all (H2Connection::release).
net::awaitable<void> drain_released(std::shared_ptr<H2Connection> conn, std::shared_ptr<H2Stream> st,
                                    StreamCount& count) {
  co_await drain_stream(*conn, *st);
  if (--count.active == 0) count.done.notify();
}

}  // namespace

Http2Session::Http2Session(const ProxyConfig& config, HttpSession& http, Report& report,
                           const std::atomic<bool>& draining)
    : config_(config), http_(http), report_(report), draining_(draining) {}

net::awaitable<void> Http2Session::serve(net::Stream& down, ConnEntry& entry, Worker& worker,
                                         const HttpSide& side, std::string first) {
  auto created = http2::ServerSession::create(http2_limits(config_));
  if (!created) {
    log_line("HTTP/2 session for " + side.source + " not created: " + created.error().message);
    co_return;
  }
  auto executor = down.socket().get_executor();
  auto conn = std::make_shared<H2Connection>(down, std::move(*created),
                                             std::chrono::milliseconds(config_.limits.header_timeout_ms));
  auto& server = static_cast<http2::ServerSession&>(conn->session());
  report_.registry()
      .counter("meshguard_http2_connections_total", {{"direction", side.inbound ? "inbound" : "outbound"}})
      .inc();
  StreamCount count(executor);
  const auto idle_timeout = std::chrono::milliseconds(config_.limits.idle_timeout_ms);
  bool ending = false;
  net::Watchdog* dog = nullptr;
  // The connection's idle timeout counts while no stream is open (open ones time out their own):
  // at its end a connection still busy is simply given another period.
  net::Watchdog watchdog(executor, [&] {
    if (ending || (server.open_streams() == 0 && count.active == 0)) {
      down.close();
    } else {
      dog->arm(idle_timeout);
    }
  });
  dog = &watchdog;
  entry.drain = [&] {
    server.shutdown();  // GOAWAY now, even while no frame arrives; the loop ends when streams do
    conn->kick();
  };
  struct Unhook {
    ConnEntry& entry;
    ~Unhook() { entry.drain = nullptr; }
  } unhook{entry};
  std::string in = std::move(first);
  bool goaway = false;
  std::vector<std::shared_ptr<H2Stream>> arrived;  // by the dispatch in progress
  conn->on_request = [&](http2::Event& ev) {
    if (ev.kind == http2::Event::Kind::Refused) {
      (void)server.local_response(ev.stream, ev.refusal.status, ev.refusal.reason);
      return;
    }
    auto st = conn->add_stream(ev.stream);
    st->request = std::move(ev.request);
    ++count.active;
    arrived.push_back(std::move(st));
  };
  conn->on_dispatched = [&] {
    // Each coroutine runs now until its first wait, not posted (a post costs a poll of the
    // reactor before it runs); after the batch, so what came with a head has been delivered.
    std::vector<std::shared_ptr<H2Stream>> starting;
    starting.swap(arrived);
    for (auto& st : starting) {
      asio::co_spawn(executor, run_stream(conn, std::move(st), http_, worker, side, count), asio::detached);
    }
  };
  conn->on_release_stalled = [&](std::shared_ptr<H2Stream> st) {
    ++count.active;
    asio::co_spawn(executor, drain_released(conn, std::move(st), count), asio::detached);
  };
  {
    BufferPool::Lease chunk(worker.buffers);
    while (!conn->dead()) {
      const bool failed = !in.empty() && !conn->receive(in);
      if (failed) {
        report_.registry().counter("meshguard_http2_connection_errors_total").inc();
        log_line("closing HTTP/2 connection from " + side.source + ": " + server.close_reason());
      }
      in.clear();
      conn->dispatch();
      if (draining_ && !goaway) {
        server.shutdown();  // GOAWAY: the streams begun run to their end
        goaway = true;
      }
      conn->kick_if_due();
      if (failed || !server.alive()) break;
      const bool idle = server.open_streams() == 0 && count.active == 0;
      entry.idle = idle;
      if (idle) chunk.release();
      watchdog.arm(idle_timeout);
      std::error_code ec;
      size_t n = co_await down.read_some(chunk.get(), ec);
      entry.idle = false;
      if (ec || n == 0) break;
      in.assign(chunk.data(), n);
    }
  }
  entry.idle = false;
  // A GOAWAY or the last frames may still be going out: bounded by the header timeout.
  ending = true;
  watchdog.arm(std::chrono::milliseconds(config_.limits.header_timeout_ms));
  co_await conn->writer_idle();
  conn->fail();  // wakes every stream still waiting on this connection
  while (count.active > 0) co_await wait_for(count.done);
  co_await conn->writer_idle();
  conn->on_request = nullptr;  // they refer to this frame
  conn->on_dispatched = nullptr;
  conn->on_release_stalled = nullptr;
}

}  // namespace mg::proxy
