#include "proxy/upstream_pool.h"

#include <algorithm>
#include <ctime>
#include <unordered_set>

#include "proxy/balancer.h"
#include "proxy/destination_rules.h"
#include "proxy/egress.h"
#include "proxy/credentials.h"
#include "proxy/h2_upstream.h"
#include "proxy/http2_session.h"
#include "proxy/report.h"
#include "tls/origination.h"

namespace mg::proxy {

using net::nothrow;
using net::tcp;

namespace {

constexpr size_t kMaxIdleUpstreamsPerPort = 64;

// Inbound ports to the same app port share a pool; each outbound route has its own, and each
// registry endpoint (of one service port) its own — also when a gateway listener (an inbound
// port) routed the request there: the target decides first.
constexpr uint64_t kTargetKeys = uint64_t{1} << 40;
uint64_t route_key(size_t route) { return (uint64_t{1} << 32) + route; }
// Plaintext connections to an endpoint (DestinationRule DISABLE) pool apart from its mTLS ones.
constexpr uint64_t kPlainTargetKeys = uint64_t{1} << 41;
uint64_t target_key(const UpstreamTarget& t) {
  return kTargetKeys + (t.plaintext ? kPlainTargetKeys : 0) + t.endpoint->health->id;
}
// External destinations: the top bit, then the target's own key.
constexpr uint64_t kExternalKeys = uint64_t{1} << 63;
uint64_t pool_key(const HttpSide& side) {
  if (side.external) return kExternalKeys | side.external->key;
  if (side.target) return target_key(*side.target);
  if (side.inbound) return side.inbound->app_port;
  return route_key(*side.route);
}

// Requests for `side` go to another proxy over mTLS (an outbound route, or a routed target),
// not to the local app.
bool to_proxy(const HttpSide& side) { return side.route || side.target; }

// A pooled connection to a registry endpoint was checked against the identities its service had
// then; a publish may have taken the server's away (a service account no longer backing it).
bool still_named(const HttpSide& side, const std::string& principal) {
  if (!side.target || side.target->plaintext) return true;  // plaintext: no identity to check
  const auto& ids = side.target->service->identities;
  return std::find(ids.begin(), ids.end(), principal) != ids.end();
}

}  // namespace

UpstreamPool::UpstreamPool(asio::io_context& io, const ProxyConfig& config, const Credentials& credentials,
                           Report& report, const std::atomic<bool>& draining)
    : io_(io), config_(config), credentials_(credentials), report_(report), draining_(draining) {}

void UpstreamPool::clear() {
  sessions_.clear();
  idle_.clear();
  h2_.clear();
}

void UpstreamPool::retain_endpoints(const Registry& registry, const std::vector<RegistryService>* also) {
  std::unordered_set<uint64_t> live;
  auto keep = [&](const std::vector<RegistryService>& services) {
    for (const auto& s : services)
      for (const auto& p : s.ports)
        for (const auto& e : p.endpoints) {
          live.insert(kTargetKeys + e.health->id);
          live.insert(kTargetKeys + kPlainTargetKeys + e.health->id);
        }
  };
  keep(registry.services());
  if (also) keep(*also);
  auto gone = [&](uint64_t key) { return key >= kTargetKeys && !live.contains(key); };
  std::erase_if(idle_, [&](const auto& kv) { return gone(kv.first); });
  std::erase_if(sessions_, [&](const auto& kv) { return gone(kv.first); });
  std::erase_if(http1_routes_, [&](const auto& kv) { return gone(kv.first); });
  // A slot with a connect in progress stays (its waiters are woken by that connect).
  std::erase_if(h2_, [&](const auto& kv) { return gone(kv.first) && !kv.second.connecting; });
}

bool UpstreamPool::may_use_h2(const HttpSide& side) const {
  if (side.external) return false;  // HTTP/1.1 to hosts outside the mesh
  if (side.target && side.target->plaintext) return false;  // DISABLE: plaintext HTTP/1.1
  if (!to_proxy(side)) return side.inbound && app_speaks_h2(side.inbound->protocol);
  return !http1_routes_.contains(pool_key(side));
}

net::awaitable<std::shared_ptr<H2Upstream>> UpstreamPool::acquire_h2(const HttpSide& side,
                                                                     std::unique_ptr<UpstreamConn>& http1,
                                                                     std::string& reason, std::string& detail) {
  while (true) {
    H2Slot& slot = h2_[pool_key(side)];  // looked up each time: the map may rehash while we wait
    if (!slot.connected) {
      // Its expiry never changes (moving it would cancel the other waiters): only cancel() wakes.
      slot.connected = std::make_unique<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
    }
    std::erase_if(slot.conns, [&](const auto& c) {
      return (!c->usable() || !still_named(side, c->peer_principal())) && c->open_streams() == 0;
    });
    std::shared_ptr<H2Upstream> best;
    for (const auto& c : slot.conns) {
      if (c->usable() && still_named(side, c->peer_principal()) &&
          (!best || c->open_streams() < best->open_streams()))
        best = c;
    }
    if (best) co_return best;
    if (!slot.connecting) break;
    // Another request is connecting: wait for it (bounded by its connect and handshake timeouts).
    std::error_code ec;
    co_await slot.connected->async_wait(nothrow(ec));
    if (!may_use_h2(side)) co_return nullptr;  // the destination turned out to speak HTTP/1.1
  }
  h2_[pool_key(side)].connecting = true;
  std::unique_ptr<UpstreamConn> conn;
  if (to_proxy(side)) {
    conn = co_await connect_side(side, reason, detail, AlpnOffer::Http);
  } else {
    bool reused = false;
    HttpSide fresh = side;
    conn = co_await acquire_plain(fresh, reused, reason, detail);
  }
  // h2_ may have been rehashed meanwhile (another key's slot added): look the slot up again.
  H2Slot& now = h2_[pool_key(side)];
  now.connecting = false;
  if (now.connected) now.connected->cancel();
  if (!conn) co_return nullptr;
  if (to_proxy(side) && (!conn->stream->ssl() || tls::negotiated_alpn(conn->stream->ssl()) != tls::kAlpnH2)) {
    http1_routes_[pool_key(side)] = true;
    http1 = std::move(conn);
    co_return nullptr;
  }
  auto started = H2Upstream::start(std::move(conn), http2_limits(config_),
                                   std::chrono::milliseconds(config_.limits.header_timeout_ms),
                                   std::chrono::milliseconds(config_.limits.idle_timeout_ms));
  if (!started) {
    reason = "http2_session_failed";
    detail = started.error().message;
    co_return nullptr;
  }
  now.conns.push_back(*started);
  co_return *started;
}

net::awaitable<std::unique_ptr<UpstreamConn>> UpstreamPool::acquire(const HttpSide& side, bool& reused,
                                                                    std::string& reason,
                                                                    std::string& detail) {
  auto& idle = idle_[pool_key(side)];
  while (!idle.empty()) {
    auto conn = std::move(idle.back());
    idle.pop_back();
    if (!net::nothing_to_read(*conn->stream)) continue;  // closed as it goes out of scope
    if (!still_named(side, conn->peer_principal)) continue;
    reused = true;
    co_return conn;
  }
  reused = false;
  if (side.external) co_return co_await connect_external(*side.external, reason, detail);
  if (to_proxy(side)) co_return co_await connect_side(side, reason, detail, AlpnOffer::None);
  co_return co_await acquire_plain(side, reused, reason, detail);
}

net::awaitable<std::unique_ptr<UpstreamConn>> UpstreamPool::acquire_plain(const HttpSide& side, bool&,
                                                                          std::string& reason,
                                                                          std::string& detail) {
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
  if (to_proxy(side)) remember_session(side, *conn);
  auto& idle = idle_[pool_key(side)];
  if (idle.size() < kMaxIdleUpstreamsPerPort && !draining_) {
    conn->stream->watch_idle();  // nothing_to_read at reuse then needs no system call
    idle.push_back(std::move(conn));
  }
}

void UpstreamPool::remember_session(const HttpSide& side, UpstreamConn& conn) {
  auto& latest = conn.session_sink.latest;
  if (latest && SSL_SESSION_is_resumable(latest.get())) {
    sessions_[pool_key(side)] = CachedSession{conn.creds, std::move(latest)};
  }
}

net::awaitable<std::unique_ptr<UpstreamConn>> UpstreamPool::connect_side(const HttpSide& side,
                                                                         std::string& reason,
                                                                         std::string& detail,
                                                                         AlpnOffer alpn) {
  if (side.target) co_return co_await connect_target(*side.target, reason, detail, alpn);
  co_return co_await connect_route(*side.route, reason, detail, alpn);
}

net::awaitable<std::unique_ptr<UpstreamConn>> UpstreamPool::connect_route(size_t index, std::string& reason,
                                                                          std::string& detail,
                                                                          AlpnOffer alpn) {
  const OutboundRoute& route = config_.outbound[index];
  co_return co_await connect_tls(
      {route.destination_address, route.destination_port, route.identities, route_key(index)}, reason, detail,
      alpn);
}

net::awaitable<std::unique_ptr<UpstreamConn>> UpstreamPool::connect_target(const UpstreamTarget& target,
                                                                           std::string& reason,
                                                                           std::string& detail,
                                                                           AlpnOffer alpn) {
  if (target.plaintext) {
    // A DestinationRule's tls.mode DISABLE: no TLS, so no identity is presented or checked.
    std::optional<tcp::socket> socket =
        co_await connect_socket(target.endpoint->address, target.endpoint->port, reason, detail);
    if (!socket) co_return nullptr;
    auto conn = std::make_unique<UpstreamConn>();
    conn->stream = std::make_unique<net::PlainStream>(std::move(*socket));
    co_return conn;
  }
  co_return co_await connect_tls({target.endpoint->address, target.endpoint->port, target.service->identities,
                                  target_key(target), target.sni},
                                 reason, detail, alpn);
}

net::awaitable<std::unique_ptr<UpstreamConn>> UpstreamPool::connect_tls(Destination to, std::string& reason,
                                                                        std::string& detail, AlpnOffer alpn) {
  auto state = credentials_.usable();
  if (!state) {
    reason = "no_certificate";
    detail = "no valid certificate: cannot originate mTLS";
    co_return nullptr;
  }
  std::optional<tcp::socket> socket = co_await connect_socket(to.address, to.port, reason, detail);
  if (!socket) co_return nullptr;
  std::error_code ec;
  auto conn = std::make_unique<UpstreamConn>();
  conn->creds = state->creds;
  auto tls_stream = std::make_unique<net::TlsStream>(std::move(*socket), state->client);
  net::TlsStream& up = *tls_stream;
  conn->stream = std::move(tls_stream);
  tls::attach_session_sink(up.ssl(), &conn->session_sink);
  if (!to.sni.empty() && SSL_set_tlsext_host_name(up.ssl(), std::string(to.sni).c_str()) != 1) {
    reason = "tls_sni_failed";
    detail = "cannot set SNI " + std::string(to.sni);
    co_return nullptr;
  }
  if ((alpn == AlpnOffer::Http && !tls::offer_http_alpn(up.ssl())) ||
      (alpn == AlpnOffer::PeerExchange && !tls::offer_peer_exchange_alpn(up.ssl()))) {
    reason = "tls_alpn_failed";
    detail = "cannot offer ALPN";
    co_return nullptr;
  }
  auto cached = sessions_.find(to.key);
  if (cached != sessions_.end()) {
    // TLS 1.3 sessions are single-use: take it out; this connection brings fresh tickets.
    if (cached->second.creds == state->creds) SSL_set_session(up.ssl(), cached->second.session.get());
    sessions_.erase(cached);
  }
  co_await up.handshake_within(asio::ssl::stream_base::client,
                               std::chrono::milliseconds(config_.limits.header_timeout_ms), ec);
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
  if (auto named = tls::check_secure_naming(server->id, to.identities); !named) {
    reason = "secure_naming_mismatch";
    detail = named.error().message;
    co_return nullptr;
  }
  conn->peer_principal = server->id.str();
  co_return conn;
}

net::awaitable<std::optional<tcp::socket>> UpstreamPool::connect_socket(const std::string& to, uint16_t port,
                                                                      std::string& reason, std::string& detail) {
  std::error_code ec;
  std::vector<asio::ip::address> addresses;
  if (auto ip = asio::ip::make_address(to, ec); !ec) {
    addresses.push_back(ip);
  } else {
    // A name (a ServiceEntry with resolution DNS): resolved within the same timeout.
    tcp::resolver resolver(io_);
    net::Watchdog deadline(io_.get_executor(), [&resolver] { resolver.cancel(); });
    deadline.arm(std::chrono::milliseconds(config_.limits.header_timeout_ms));
    auto results = co_await resolver.async_resolve(to, std::to_string(port), nothrow(ec));
    deadline.disarm();
    if (ec || results.empty()) {
      reason = "dns_resolution_failed";
      detail = to + ": " + (ec ? ec.message() : std::string("no address"));
      co_return std::nullopt;
    }
    for (const auto& r : results) addresses.push_back(r.endpoint().address());
  }
  for (const auto& address : addresses) {
    tcp::socket socket(io_);
    net::Watchdog deadline(io_.get_executor(), [&socket] {
      std::error_code ignored;
      socket.close(ignored);
    });
    deadline.arm(std::chrono::milliseconds(config_.limits.header_timeout_ms));
    co_await socket.async_connect({address, port}, nothrow(ec));
    deadline.disarm();
    if (ec) continue;
    socket.set_option(tcp::no_delay(true), ec);
    co_return std::move(socket);
  }
  reason = "upstream_connect_failed";
  detail = ec.message();
  co_return std::nullopt;
}

net::awaitable<std::unique_ptr<UpstreamConn>> UpstreamPool::connect_external(const ExternalTarget& target,
                                                                            std::string& reason,
                                                                            std::string& detail) {
  for (const auto& address : target.addresses) {
    if (target.origin) {
      if (auto conn = co_await connect_origin(address, target.port, *target.origin, reason, detail)) co_return conn;
      continue;
    }
    std::optional<tcp::socket> socket = co_await connect_socket(address, target.port, reason, detail);
    if (!socket) continue;
    auto conn = std::make_unique<UpstreamConn>();
    conn->stream = std::make_unique<net::PlainStream>(std::move(*socket));
    co_return conn;
  }
  co_return nullptr;
}

net::awaitable<std::unique_ptr<UpstreamConn>> UpstreamPool::connect_origin(const std::string& address, uint16_t port,
                                                                          const OriginTls& origin, std::string& reason,
                                                                          std::string& detail) {
  std::optional<tcp::socket> socket = co_await connect_socket(address, port, reason, detail);
  if (!socket) co_return nullptr;
  auto conn = std::make_unique<UpstreamConn>();
  auto tls_stream = std::make_unique<net::TlsStream>(std::move(*socket), origin.context);
  net::TlsStream& up = *tls_stream;
  conn->stream = std::move(tls_stream);
  if (auto prepared = tls::prepare_origination(up.ssl(), origin.server_name); !prepared) {
    reason = "tls_origination_failed";
    detail = prepared.error().to_string();
    co_return nullptr;
  }
  std::error_code ec;
  co_await up.handshake_within(asio::ssl::stream_base::client,
                               std::chrono::milliseconds(config_.limits.header_timeout_ms), ec);
  if (ec) {
    reason = "tls_handshake_failed";
    const long verify = SSL_get_verify_result(up.ssl());
    detail = verify != X509_V_OK ? std::string(X509_verify_cert_error_string(verify)) : ec.message();
    co_return nullptr;
  }
  if (auto checked = tls::check_origination(up.ssl()); !checked) {
    reason = "server_certificate_rejected";
    detail = checked.error().to_string();
    co_return nullptr;
  }
  report_.registry().counter("meshguard_tls_handshakes_total", {{"side", "origination"}, {"resumed", "false"}}).inc();
  co_return conn;
}

}  // namespace mg::proxy
