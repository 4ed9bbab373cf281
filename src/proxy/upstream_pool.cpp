#include "proxy/upstream_pool.h"

#include <ctime>

#include "proxy/credentials.h"
#include "proxy/report.h"

namespace mg::proxy {

using net::nothrow;
using net::tcp;

namespace {

constexpr size_t kMaxIdleUpstreamsPerPort = 64;

// Inbound ports to the same app port share a pool; each outbound route has its own.
uint64_t pool_key(const HttpSide& side) {
  return side.inbound ? side.inbound->app_port : (uint64_t{1} << 32) + *side.route;
}

}  // namespace

UpstreamPool::UpstreamPool(asio::io_context& io, const ProxyConfig& config, const Credentials& credentials,
                           Report& report, const std::atomic<bool>& draining)
    : io_(io), config_(config), credentials_(credentials), report_(report), draining_(draining) {}

void UpstreamPool::clear() {
  sessions_.clear();
  idle_.clear();
}

net::awaitable<std::unique_ptr<UpstreamConn>> UpstreamPool::acquire(const HttpSide& side, bool& reused,
                                                                    std::string& reason,
                                                                    std::string& detail) {
  auto& idle = idle_[pool_key(side)];
  while (!idle.empty()) {
    auto conn = std::move(idle.back());
    idle.pop_back();
    if (!net::nothing_to_read(*conn->stream)) continue;  // closed as it goes out of scope
    reused = true;
    co_return conn;
  }
  reused = false;
  if (side.route) co_return co_await connect_route(*side.route, reason, detail);
  tcp::socket socket(io_);
  std::error_code ec;
  co_await socket.async_connect({asio::ip::address_v4::loopback(), side.inbound->app_port}, nothrow(ec));
  if (ec) {
    reason = "upstream_connect_failed";
    detail = ec.message();
    co_return nullptr;
  }
  socket.set_option(tcp::no_delay(true), ec);
  auto conn = std::make_unique<UpstreamConn>();
  conn->stream = std::make_unique<net::PlainStream>(std::move(socket));
  co_return conn;
}

void UpstreamPool::release(const HttpSide& side, std::unique_ptr<UpstreamConn> conn) {
  if (side.route) remember_session(*side.route, *conn);
  auto& idle = idle_[pool_key(side)];
  if (idle.size() < kMaxIdleUpstreamsPerPort && !draining_) idle.push_back(std::move(conn));
}

void UpstreamPool::remember_session(size_t route, UpstreamConn& conn) {
  auto& latest = conn.session_sink.latest;
  if (latest && SSL_SESSION_is_resumable(latest.get())) {
    sessions_[route] = CachedSession{conn.creds, std::move(latest)};
  }
}

net::awaitable<std::unique_ptr<UpstreamConn>> UpstreamPool::connect_route(size_t index, std::string& reason,
                                                                          std::string& detail) {
  const OutboundRoute& route = config_.outbound[index];
  auto state = credentials_.usable();
  if (!state) {
    reason = "no_certificate";
    detail = "no valid certificate: cannot originate mTLS";
    co_return nullptr;
  }
  std::error_code ec;
  auto address = asio::ip::make_address(route.destination_address, ec);
  if (ec) {
    reason = "bad_destination";
    detail = route.destination_address;
    co_return nullptr;
  }
  tcp::socket socket(io_);
  net::Watchdog deadline(io_.get_executor(), [&socket] {
    std::error_code ignored;
    socket.close(ignored);
  });
  deadline.arm(std::chrono::milliseconds(config_.limits.header_timeout_ms));
  co_await socket.async_connect({address, route.destination_port}, nothrow(ec));
  deadline.disarm();
  if (ec) {
    reason = "upstream_connect_failed";
    detail = ec.message();
    co_return nullptr;
  }
  socket.set_option(tcp::no_delay(true), ec);
  auto conn = std::make_unique<UpstreamConn>();
  conn->creds = state->creds;
  auto tls_stream = std::make_unique<net::TlsStream>(std::move(socket), state->client);
  net::TlsStream& up = *tls_stream;
  conn->stream = std::move(tls_stream);
  tls::attach_session_sink(up.ssl(), &conn->session_sink);
  auto cached = sessions_.find(index);
  if (cached != sessions_.end()) {
    // TLS 1.3 sessions are single-use: take it out; this connection brings fresh tickets.
    if (cached->second.creds == state->creds) SSL_set_session(up.ssl(), cached->second.session.get());
    sessions_.erase(cached);
  }
  net::Watchdog handshake_deadline(io_.get_executor(), [&up] { up.close(); });
  handshake_deadline.arm(std::chrono::milliseconds(config_.limits.header_timeout_ms));
  co_await up.handshake(asio::ssl::stream_base::client, ec);
  handshake_deadline.disarm();
  if (ec) {
    reason = "tls_handshake_failed";
    detail = ec.message();
    co_return nullptr;
  }
  bool resumed = SSL_session_reused(up.ssl()) == 1;
  report_.registry()
      .counter("meshguard_tls_handshakes_total",
               {{"side", "client"}, {"resumed", resumed ? "true" : "false"}})
      .inc();
  auto server = tls::verify_peer(up.ssl(), *state->creds, std::time(nullptr));
  if (!server) {
    reason = "server_certificate_rejected";
    detail = server.error().to_string();
    co_return nullptr;
  }
  if (auto named = tls::check_secure_naming(server->id, route.identities); !named) {
    reason = "secure_naming_mismatch";
    detail = named.error().message;
    co_return nullptr;
  }
  conn->peer_principal = server->id.str();
  co_return conn;
}

}  // namespace mg::proxy
