// proxy/upstream_pool.h — connections to where requests go, per worker: plaintext to the local
// app (inbound) or mTLS to a route's destination proxy (outbound: the mTLS client, with the
// server's SVID verified and its SPIFFE ID checked against the route's identities — secure
// naming — and TLS sessions resumed). Kept-alive connections wait in the pool for the next
// request; one holding anything to read is never handed out. Only the worker's own thread
// touches its pool, so no lock.
// Registry endpoints (HttpSide::target) are pooled per endpoint, checked against their service's
// identities.
// Owns: the worker's idle upstream connections and its outbound TLS session cache.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/config.h"
#include "proxy/exchange.h"
#include "proxy/net.h"
#include "tls/tls.h"

namespace mg::proxy {

class Credentials;
struct OriginTls;
class H2Upstream;
class Registry;
class Report;

// What an mTLS connection to another proxy offers in ALPN: nothing, HTTP (h2 and http/1.1), or
// the TCP metadata exchange (istio-peer-exchange: a TCP route, proxy/peer_exchange.h).
enum class AlpnOffer { None, Http, PeerExchange };

// A connection to where requests go: the local app (plaintext) or, outbound, another proxy (mTLS).
struct UpstreamConn {
  tls::SessionSink session_sink;  // declared first: outlives the SSL that writes into it
  std::unique_ptr<net::Stream> stream;
  std::string buffer;                             // bytes read past the last response
  std::string peer_principal;                     // outbound: the verified server SPIFFE ID
  std::shared_ptr<const tls::Credentials> creds;  // outbound: the credentials it was made with
  std::optional<net::Watchdog> deadline;          // the upstream timeout; made at first use
};

class UpstreamPool {
 public:
  // `draining`: while set, released connections are closed rather than kept.
  UpstreamPool(asio::io_context& io, const ProxyConfig& config, const Credentials& credentials,
               Report& report, const std::atomic<bool>& draining);
  ~UpstreamPool() { clear(); }
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // A pooled connection for `side`, or a new one: a plaintext connection to the local app, or
  // (outbound) an mTLS connection to the route's destination (connect_route). nullptr + reason on
  // failure. A pooled connection with anything to read is never handed to a request (Envoy's
  // premature response rule): no request is outstanding on it, so those bytes — a stray response
  // from a faulty app, a close, a TLS alert — would be read as this request's answer. It is
  // closed. Known by a read left waiting on each idle connection (net::Stream::watch_idle), which
  // then receives the next response: no system call at reuse (docs/BENCHMARKS.md).
  net::awaitable<std::unique_ptr<UpstreamConn>> acquire(const HttpSide& side, bool& reused,
                                                        std::string& reason, std::string& detail);
  // Back to the pool after a complete response on a kept-alive connection.
  void release(const HttpSide& side, std::unique_ptr<UpstreamConn> conn);

  // An mTLS connection to route `index`'s destination, the server's SVID verified and its SPIFFE
  // ID checked against the route's identities (secure naming); `alpn`: what it offers. nullptr +
  // reason on failure.
  net::awaitable<std::unique_ptr<UpstreamConn>> connect_route(size_t index, std::string& reason,
                                                              std::string& detail,
                                                              AlpnOffer alpn = AlpnOffer::None);

  // Whether requests for `side` go over HTTP/2: an inbound port whose app speaks it (http2, grpc),
  // or an HTTP route whose destination has not answered an ALPN offer with http/1.1 (Istio's
  // behaviour between proxies: HTTP/2 when both sides offer it).
  bool may_use_h2(const HttpSide& side) const;
  // A shared HTTP/2 connection for `side` with room for one more stream: a kept one, or a new one
  // (requests arriving while it connects wait for it rather than each opening their own). A
  // destination proxy that selects http/1.1 instead yields that connection in `http1` (nullptr
  // returned, the route remembered as HTTP/1.1 on this worker). nullptr + reason on failure.
  net::awaitable<std::shared_ptr<H2Upstream>> acquire_h2(const HttpSide& side, std::unique_ptr<UpstreamConn>& http1,
                                                         std::string& reason, std::string& detail);
  // A registry endpoint: an mTLS connection to it, the server's SPIFFE ID checked against its
  // service's identities (secure naming is per service). nullptr + reason on failure.
  net::awaitable<std::unique_ptr<UpstreamConn>> connect_target(const UpstreamTarget& target,
                                                               std::string& reason, std::string& detail,
                                                               AlpnOffer alpn = AlpnOffer::None);
  // TLS originated to a server outside the mesh (a DestinationRule with tls.mode SIMPLE,
  // proxy/destination_rules.h): `origin`'s SNI sent, the server's chain verified against the rule's
  // CA and its name checked. No client certificate. nullptr + reason on failure.
  net::awaitable<std::unique_ptr<UpstreamConn>> connect_origin(const std::string& address, uint16_t port,
                                                               const OriginTls& origin, std::string& reason,
                                                               std::string& detail);
  // A host outside the mesh (proxy/egress.h): its addresses tried in order, plaintext or with TLS
  // originated (connect_origin). nullptr + reason on failure.
  net::awaitable<std::unique_ptr<UpstreamConn>> connect_external(const ExternalTarget& target, std::string& reason,
                                                                 std::string& detail);
  // Keeps the newest TLS session of `side`'s connection for the next full connect to resume.
  void remember_session(const HttpSide& side, UpstreamConn& conn);

  // After a publish: forgets the pooled connections, TLS sessions and HTTP/1.1 memory of registry
  // endpoints that are not in `registry` any more, nor in `also` (a gateway's ServiceEntry
  // services, proxy/gateway_mode.h).
  void retain_endpoints(const Registry& registry, const std::vector<RegistryService>* also = nullptr);
  // A drain: drops the idle connections (released ones are closed from now on).
  void close_idle() {
    idle_.clear();
    h2_.clear();
  }
  // Drops every idle connection and cached session (before the worker's loop goes).
  void clear();
  // The workload's certificate this pool connects with.
  const Credentials& credentials() const { return credentials_; }

 private:
  // Where an mTLS connection goes and whom it must reach.
  struct Destination {
    const std::string& address;
    uint16_t port;
    const std::vector<std::string>& identities;
    uint64_t key;  // pool key: its TLS sessions and HTTP/1.1 memory
    std::string_view sni = {};  // sent when not empty (a DestinationRule's ISTIO_MUTUAL sni)
  };
  // A TCP connection to `address`:`port` within the header timeout (a name is resolved first, its
  // addresses tried in order); nullopt + reason on failure.
  net::awaitable<std::optional<net::tcp::socket>> connect_socket(const std::string& address, uint16_t port,
                                                                 std::string& reason, std::string& detail);
  net::awaitable<std::unique_ptr<UpstreamConn>> connect_tls(Destination to, std::string& reason,
                                                            std::string& detail, AlpnOffer alpn);
  net::awaitable<std::unique_ptr<UpstreamConn>> connect_side(const HttpSide& side, std::string& reason,
                                                             std::string& detail, AlpnOffer alpn);
  // A new plaintext connection to the inbound port's app.
  net::awaitable<std::unique_ptr<UpstreamConn>> acquire_plain(const HttpSide& side, bool& reused,
                                                              std::string& reason, std::string& detail);

  struct CachedSession {
    std::shared_ptr<const tls::Credentials> creds;
    tls::SslSessionPtr session;
  };

  asio::io_context& io_;
  const ProxyConfig& config_;
  const Credentials& credentials_;
  Report& report_;
  const std::atomic<bool>& draining_;
  std::unordered_map<uint64_t, std::vector<std::unique_ptr<UpstreamConn>>> idle_;  // by pool key
  // Outbound TLS sessions to resume, per pool key, valid only with the credentials that made them.
  std::unordered_map<uint64_t, CachedSession> sessions_;
  struct H2Slot {
    std::vector<std::shared_ptr<H2Upstream>> conns;
    bool connecting = false;
    std::unique_ptr<asio::steady_timer> connected;  // cancelled when a connect ends: waiters look again
  };
  std::unordered_map<uint64_t, H2Slot> h2_;  // by pool key
  std::unordered_map<uint64_t, bool> http1_routes_;  // pool keys whose destination selected http/1.1
};

}  // namespace mg::proxy
