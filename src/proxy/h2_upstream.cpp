#include "proxy/h2_upstream.h"

#include "proxy/buffer_pool.h"
#include "proxy/upstream_pool.h"

namespace mg::proxy {

namespace {
// Streams one upstream connection carries before the pool opens another (the server may allow
// fewer: nghttp2 then queues the rest until a slot frees).
constexpr size_t kMaxStreamsPerConnection = 100;
}  // namespace

H2Upstream::H2Upstream(std::unique_ptr<UpstreamConn> conn, std::unique_ptr<http2::Session> session,
                       std::chrono::milliseconds stall_timeout)
    : H2Connection(*conn->stream, std::move(session), stall_timeout), conn_(std::move(conn)) {}

H2Upstream::~H2Upstream() = default;

Result<std::shared_ptr<H2Upstream>> H2Upstream::start(std::unique_ptr<UpstreamConn> conn,
                                                      const http2::Limits& limits,
                                                      std::chrono::milliseconds stall_timeout,
                                                      std::chrono::milliseconds idle_timeout) {
  auto session = http2::ClientSession::create(limits);
  if (!session) return mg::fail(session.error());
  std::shared_ptr<H2Upstream> up(new H2Upstream(std::move(conn), std::move(*session), stall_timeout));
  up->kick();  // the connection preface and our SETTINGS
  asio::co_spawn(up->stream_.socket().get_executor(), up->read_loop(up, idle_timeout), asio::detached);
  return up;
}

bool H2Upstream::usable() const {
  return !dead_ && session_->alive() && !session_->going_away() && streams_.size() < kMaxStreamsPerConnection;
}

const std::string& H2Upstream::peer_principal() const { return conn_->peer_principal; }
bool H2Upstream::tls() const { return conn_->stream->ssl() != nullptr; }

Result<std::shared_ptr<H2Stream>> H2Upstream::submit(const http::Request& req, bool end_stream) {
  if (dead_) return mg::fail("http2.connection", "the upstream connection is gone");
  auto id = client().submit(req, tls() ? "https" : "http", end_stream);
  if (!id) return mg::fail(id.error());
  auto st = add_stream(*id);
  if (end_stream) st->room_wake.notify();
  if (end_stream && streams_.size() == 1) {
    // A whole request, alone on the connection: nothing could join its write later in the turn
    // (at a low rate, the turn-end pass would cost a poll of the reactor for this one write).
    write_now();
  } else {
    kick();
  }
  return st;
}

void H2Upstream::end(H2Stream& st, const http::Headers& trailers) {
  if (st.closed || dead_) return;
  (void)session_->end_body(st.id, trailers);
  kick();
}

net::awaitable<void> H2Upstream::read_loop(std::shared_ptr<H2Upstream> self,
                                           std::chrono::milliseconds idle_timeout) {
  (void)self;  // holds the connection while the reader runs
  net::Watchdog watchdog(stream_.socket().get_executor(), [this] { stream_.close(); });
  // Sized once: resizing it back up after every read wrote kReadChunk zero bytes per read
  // (16,000 instructions a request, issue 15's profile).
  std::string buf(kReadChunk, '\0');
  while (!dead_) {
    // Idle (no stream open): closed after the idle timeout; the pool drops it at its next look.
    if (streams_.empty()) {
      watchdog.arm(idle_timeout);
    } else {
      watchdog.disarm();
    }
    std::error_code ec;
    size_t n = co_await stream_.read_some(asio::buffer(buf), ec);
    if (ec || n == 0) break;
    const bool ok = receive(std::string_view(buf.data(), n));
    dispatch();
    kick_if_due();
    if (!ok || !session_->alive()) break;
  }
  co_await writer_idle();
  fail();
}

}  // namespace mg::proxy
