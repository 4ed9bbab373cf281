#include "proxy/proxy.h"

#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unordered_map>

#include "http/body.h"
#include "http/parser.h"
#include "proxy/admin.h"
#include "proxy/connection_manager.h"
#include "proxy/credentials.h"
#include "proxy/enforcement.h"
#include "proxy/inbound.h"
#include "proxy/net.h"
#include "proxy/policy_chain.h"
#include "proxy/policy_state.h"
#include "proxy/report.h"
#include "proxy/splice.h"
#include "telemetry/access_log.h"
#include "tls/tls.h"

namespace mg::proxy {

using namespace std::chrono_literals;
using net::awaitable;
using net::nothrow;
using net::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxIdleUpstreamsPerPort = 64;

// A connection to where requests go: the local app (plaintext) or, outbound, another proxy (mTLS).
struct UpstreamConn {
  tls::SessionSink session_sink;    // declared first: outlives the SSL that writes into it
  std::unique_ptr<net::Stream> stream;
  std::string buffer;               // bytes read past the last response
  std::string peer_principal;       // outbound: the verified server SPIFFE ID
  std::shared_ptr<const tls::Credentials> creds;  // outbound: the credentials it was made with
  std::optional<net::Watchdog> deadline;          // the upstream timeout; made at first use
  Clock::time_point idle_since;                   // when it last went back to the pool
  bool check_before_reuse = false;                // its last response had no body (HEAD, 204, 304…)
};

struct Worker {
  BufferPool buffers;  // first member: outlives the connection coroutines destroyed with `io`
  SeriesCache series;  // the report's metric series this worker counts into
  std::unique_ptr<asio::io_context> io = std::make_unique<asio::io_context>(1);
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
  ConnectionList connections;
  std::unordered_map<uint64_t, std::vector<std::unique_ptr<UpstreamConn>>> idle_upstreams;  // by pool_key
  // Outbound TLS sessions to resume, per route, valid only with the credentials that made them.
  struct CachedSession {
    std::shared_ptr<const tls::Credentials> creds;
    tls::SslSessionPtr session;
  };
  std::unordered_map<size_t, CachedSession> tls_sessions;

  // Pooled sockets first, then the loop: destroying it destroys suspended connection coroutines,
  // whose guards still need `connections` (the thread must have been joined before).
  ~Worker() {
    tls_sessions.clear();
    idle_upstreams.clear();
    io.reset();
  }
};

constexpr ResponseFlag kUpstreamConnectFailure = ResponseFlag::UpstreamConnectFailure;
constexpr ResponseFlag kUpstreamReset = ResponseFlag::UpstreamReset;
constexpr ResponseFlag kDownstreamReset = ResponseFlag::DownstreamReset;
constexpr ResponseFlag kUpstreamTimeout = ResponseFlag::UpstreamTimeout;

}  // namespace

struct Proxy::Impl {
  explicit Impl(ProxyConfig c) : config(std::move(c)) {}

  ProxyConfig config;
  std::atomic<uint64_t> config_version{1};
  Report report{config};
  telemetry::Registry& registry = report.registry();
  PolicyState policy{config, report, config_version};
  ChainSet& chains = policy.chains();
  http::Limits http_limits;

  Credentials credentials{config.tls, registry, config_version};
  ConnectionManager connections{config, policy, report};
  Enforcement enforcement{config, policy, report};
  Inbound inbound{config, credentials, enforcement, connections, report};

  asio::io_context main_io{1};
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<size_t> next_worker{0};
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<ListenerInfo> listeners;
  std::optional<asio::signal_set> signals;
  std::optional<asio::steady_timer> drain_timer;

  std::atomic<bool> draining{false};
  std::atomic<bool> started{false};
  Clock::time_point drain_deadline;

  Admin admin{config, http_limits, report, credentials, policy, connections,
              Admin::Runtime{started, draining, config_version, listeners}};

  // --- helpers -------------------------------------------------------------------------------

  std::string own_principal() const { return credentials.own_principal(); }

  Worker& pick_worker() { return *workers[next_worker.fetch_add(1, std::memory_order_relaxed) % workers.size()]; }

  void spawn(asio::io_context& io, awaitable<void> task) {
    asio::co_spawn(io, std::move(task), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log_line(std::string("connection task failed: ") + ex.what());
      }
    });
  }

  // --- policy reload -------------------------------------------------------------------------

  MtlsMode port_mode(size_t index) const { return policy.port_mode(index); }

  void rejudge_if_chains_changed(ConnEntry& c, const LiveTcp& live) { connections.rejudge_if_chains_changed(c, live); }

  std::shared_ptr<const TlsState> usable_tls() const { return credentials.usable(); }

  // The credentials in force (tls_state.load()).
  struct {
    const Credentials& credentials;
    std::shared_ptr<const TlsState> load() const { return credentials.current(); }
  } tls_state{credentials};

  // --- accept loops --------------------------------------------------------------------------

  awaitable<void> accept_loop(tcp::acceptor& acceptor, ListenerInfo info) {
    while (acceptor.is_open()) {
      std::error_code ec;
      if (info.kind == ListenerKind::Admin) {
        tcp::socket socket = co_await acceptor.async_accept(nothrow(ec));
        if (ec) {
          if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
          continue;
        }
        spawn(main_io, admin.serve(std::move(socket)));
        continue;
      }
      Worker& worker = pick_worker();
      tcp::socket socket = co_await acceptor.async_accept(*worker.io, nothrow(ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        // EMFILE and friends: back off briefly instead of spinning.
        asio::steady_timer pause(main_io, 50ms);
        co_await pause.async_wait(nothrow(ec));
        continue;
      }
      if (draining) {
        std::error_code ignored;
        socket.close(ignored);
        continue;
      }
      if (connections.at_capacity()) {
        report.count_refused(std::string(to_string(info.kind)), "max_connections");
        std::error_code ignored;
        socket.close(ignored);
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      connections.admitted();
      if (info.kind == ListenerKind::Inbound) {
        spawn(*worker.io, serve_inbound(std::move(socket), worker, info.index));
      } else {
        spawn(*worker.io, serve_outbound(std::move(socket), worker, info.index));
      }
    }
  }

  // --- inbound -------------------------------------------------------------------------------

  awaitable<void> serve_inbound(tcp::socket socket, Worker& worker, size_t index) {
    ConnectionManager::Registration guard(connections, worker.connections);
    const InboundPort& port = config.inbound[index];
    std::string source = net::remote_address(socket);
    auto start = Clock::now();
    // The mode in force when the connection arrives (a later reload is checked per request).
    const MtlsMode mode = port_mode(index);

    std::optional<tls::PeerIdentity> peer;
    std::unique_ptr<net::Stream> stream = co_await inbound.open(socket, index, mode, source, peer);
    if (!stream) co_return;  // refused (logged) or gone
    guard.entry.stream = stream.get();

    if (port.protocol == Protocol::Tcp) {
      co_await inbound.serve_tcp(*stream, guard.entry, worker.buffers, index, source, peer, start);
    } else {
      if (!peer) guard.entry.plaintext_http_port = index;
      HttpSide side;
      side.entry = &guard.entry;
      side.inbound = &port;
      side.inbound_index = index;
      side.source = std::move(source);
      side.peer = std::move(peer);
      side.listen_port = port.port;
      co_await serve_http(*stream, guard.entry, worker, side);
    }
    stream->close();
  }

  awaitable<std::pair<uint64_t, uint64_t>> splice(net::Stream& a, net::Stream& b, BufferPool& pool) {
    return proxy::splice(a, b, pool, idle_timeout());
  }

  std::chrono::milliseconds idle_timeout() const { return std::chrono::milliseconds(config.limits.idle_timeout_ms); }

  // --- inbound HTTP ----------------------------------------------------------------------------

  awaitable<void> serve_http(net::Stream& down, ConnEntry& entry, Worker& worker, const HttpSide& side) {
    std::string in;
    http::HeadScanner scanner;
    BufferPool::Lease chunk(worker.buffers);
    net::Watchdog watchdog(down.socket().get_executor(), [&down] { down.close(); });
    const std::string& source = side.source;

    while (!draining) {
      // 1. The head: idle timeout until its first byte, then the header timeout for all of it.
      scanner.reset();
      watchdog.arm(std::chrono::milliseconds(in.empty() ? config.limits.idle_timeout_ms : config.limits.header_timeout_ms));
      entry.idle = in.empty();
      http::HeadScan scan;
      bool got_head = false;
      bool header_deadline = !in.empty();
      while (true) {
        scan = scanner.scan(in, http_limits.max_head_bytes);
        if (scan.state != http::HeadScan::State::Incomplete) {
          got_head = true;
          break;
        }
        if (!header_deadline && !in.empty()) {
          // Part of a head arrived: the rest must follow within the header timeout. (A head that
          // arrives whole, the usual case, never moves the deadline.)
          watchdog.arm(std::chrono::milliseconds(config.limits.header_timeout_ms));
          header_deadline = true;
        }
        std::error_code ec;
        size_t n = 0;
        const bool first = in.empty();
        if (first) {
          // Waiting for the next request: its first bytes go straight into `in` (usually the
          // whole head), so the connection holds no 16 KB buffer while idle.
          chunk.release();
          if (in.capacity() > 4 * kIdleRead) in = std::string();  // a big body grew it: give it back
          in.resize(kIdleRead);
          n = co_await down.read_some(asio::buffer(in), ec);
          in.resize(ec ? 0 : n);
        } else {
          n = co_await down.read_some(chunk.get(), ec);
          if (!ec) in.append(chunk.data(), n);
        }
        if (ec || n == 0) break;
        if (first) entry.idle = false;
      }
      entry.idle = false;
      if (!got_head) {
        if (watchdog.fired() && !in.empty()) {
          registry.counter("meshguard_request_header_timeouts_total").inc();
          log_line("closing " + source + ": request head not received within " +
                   std::to_string(config.limits.header_timeout_ms) + " ms");
        }
        co_return;
      }
      watchdog.disarm();

      if (!co_await handle_request(down, worker, side, in, chunk, watchdog, scan)) co_return;
    }
  }

  // One request whose head is the first `scan.length` bytes of `in`: refused, answered locally
  // or forwarded, then logged. Returns whether the connection stays open for the next request.
  // A coroutine of its own so that an idle keep-alive connection's frame holds only the reading
  // state of serve_http, not a request's (issue 5: memory per idle connection).
  awaitable<bool> handle_request(net::Stream& down, Worker& worker, const HttpSide& side, std::string& in,
                                 BufferPool::Lease& chunk, net::Watchdog& watchdog, http::HeadScan scan) {
    const std::string& source = side.source;
    Exchange ex;
    if (scan.state != http::HeadScan::State::Complete) {
      int status = scan.state == http::HeadScan::State::TooLarge ? 431 : 400;
      co_await local_reply(down, ex, status, std::string(http::reason_phrase(status)), false);
      finish_request(worker, ex, side, nullptr);
      co_return false;
    }
    auto parsed = http::parse_request_head(std::string_view(in).substr(0, scan.length), http_limits);
    ex.bytes_received += scan.length;
    in.erase(0, scan.length);
    if (!parsed) {
      co_await local_reply(down, ex, parsed.error().status,
                           std::string(http::reason_phrase(parsed.error().status)), false);
      finish_request(worker, ex, side, nullptr);
      co_return false;
    }
    http::Request& req = *parsed;
    ex.method = req.method;
    ex.host = req.host;
    ex.path = req.path;

    // A WebSocket upgrade keeps its request as received: once spliced, only a policy reload
    // judges the connection again (rejudge_connections), with this request.
    std::optional<std::string> upgrade = relayed_upgrade(req);
    std::optional<JudgedUpgrade> as_received;
    if (upgrade && side.inbound) as_received.emplace(JudgedUpgrade{req, std::time(nullptr), 0});

    // 2. The chain (inbound): peer authn → request authn → authz.
    Verdict verdict = Verdict::pass();
    Verdict decision_storage;
    const Verdict* decision = nullptr;
    if (side.inbound) {
      const MtlsMode mode = port_mode(side.inbound_index);
      if (mode == MtlsMode::Strict && !side.peer) {
        // A reload made this port STRICT while this plaintext keep-alive connection was open.
        report.connection_refused("inbound", source, side.listen_port, "plaintext_on_strict_port",
                               "mTLS is now required (STRICT): plaintext keep-alive connection closed at its "
                               "next request, which was not forwarded");
        co_return false;
      }
      RequestContext ctx{req, config.workload,       mode, side.listen_port, source, side.peer, {},
                         {},  side.inbound->app_port};
      auto judging = chains.current();
      if (as_received) {
        as_received->generation = judging->generation;
        ctx.judged_at = as_received->judged_at;  // the time a re-judge checks its JWT as of
      }
      verdict = judging->request->run(ctx);
      decision_storage = verdict.allow ? std::move(ctx.decision) : verdict;
      decision = &decision_storage;
      report.count_decision(worker.series, *decision, verdict.allow);
    }
    if (!verdict.allow) {
      ex.details = verdict.status == 403   ? "rbac_access_denied"
                   : verdict.status == 401 ? "jwt_authn_access_denied"
                                           : "local_deny";
      // The request body (if any) was not read: close rather than guess where the next request starts.
      bool keep = req.keep_alive && req.framing == http::BodyFraming::None && !draining;
      co_await local_reply(down, ex, verdict.status, verdict.body, keep);
      finish_request(worker, ex, side, decision);
      co_return keep;
    }

    // 3. Forward.
    bool keep = co_await forward(down, in, chunk, watchdog, worker, side, req, upgrade, as_received, ex);
    finish_request(worker, ex, side, decision);
    co_return keep;
  }

  awaitable<void> local_reply(net::Stream& down, Exchange& ex, int status, const std::string& body, bool keep_alive) {
    if (ex.details == "via_upstream") ex.details = "local_reply";
    std::string response = http::make_response(status, "text/plain", body, keep_alive);
    std::error_code ec;
    co_await down.write_all(asio::buffer(response), ec);
    ex.status = status;
    ex.bytes_sent += response.size();
    if (!keep_alive) down.shutdown_send();
  }

  void finish_request(Worker& worker, const Exchange& ex, const HttpSide& side, const Verdict* decision) {
    auto tls = credentials.current();  // keeps the own SPIFFE ID's string alive for the view below
    report.http_exchange(worker.series, ex, side, decision,
                         tls && tls->creds ? std::string_view(tls->creds->own_id.str()) : "unknown");
  }

  // Inbound ports to the same app port share a pool; each outbound route has its own.
  static uint64_t pool_key(const HttpSide& side) {
    return side.inbound ? side.inbound->app_port : (uint64_t{1} << 32) + *side.route;
  }

  // A pooled connection is checked for a close or for anything unread (MSG_PEEK, one system
  // call) before reuse when: it has been idle this long; or the request has a body (it is not
  // retried); or the last response on it had no body — where a faulty app most often sends bytes
  // anyway (a body after HEAD or 204), which must never be read as another client's response.
  // Otherwise — a keep-alive connection reused within a moment of a response with a framed
  // body — nobody closes it on purpose that soon, and a bodiless request on one that was closed
  // is retried on a fresh connection. Bytes already read ahead by OpenSSL (an alert or
  // close_notify that came with the last response) are always checked, without a system call.
  static constexpr auto kProbeAfterIdle = std::chrono::milliseconds(250);

  // A pooled connection for `side`; an idle one with anything to read (the peer closed it, or a
  // TLS alert) is stale and dropped. New: a plaintext connection to the local app, or (outbound)
  // an mTLS connection to the route's destination with the server's identity verified.
  awaitable<std::unique_ptr<UpstreamConn>> acquire_upstream(Worker& worker, const HttpSide& side,
                                                            bool has_body, bool& reused, std::string& reason,
                                                            std::string& detail) {
    auto& idle = worker.idle_upstreams[pool_key(side)];
    while (!idle.empty()) {
      auto conn = std::move(idle.back());
      idle.pop_back();
      if (SSL* ssl = conn->stream->ssl(); ssl && SSL_has_pending(ssl)) continue;  // stale
      if (!has_body && !conn->check_before_reuse && Clock::now() - conn->idle_since < kProbeAfterIdle) {
        reused = true;
        co_return conn;
      }
      char probe;
      ssize_t r = ::recv(conn->stream->socket().native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        reused = true;
        co_return conn;
      }
    }
    reused = false;
    if (side.route) co_return co_await connect_route(worker, *side.route, reason, detail);
    tcp::socket socket(*worker.io);
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

  void release_upstream(Worker& worker, const HttpSide& side, std::unique_ptr<UpstreamConn> conn) {
    if (side.route) remember_session(worker, *side.route, *conn);
    auto& idle = worker.idle_upstreams[pool_key(side)];
    conn->idle_since = Clock::now();
    if (idle.size() < kMaxIdleUpstreamsPerPort && !draining) idle.push_back(std::move(conn));
  }

  // Keeps the newest TLS session of a route's connection for the next full connect to resume.
  static void remember_session(Worker& worker, size_t route, UpstreamConn& conn) {
    auto& latest = conn.session_sink.latest;
    if (latest && SSL_SESSION_is_resumable(latest.get())) {
      worker.tls_sessions[route] = Worker::CachedSession{conn.creds, std::move(latest)};
    }
  }

  // The protocol a request asks to switch to, when this proxy relays the switch: a WebSocket
  // upgrade of a bodiless HTTP/1.1 request. Only "websocket", as Envoy and Istio by default: an
  // h2c upgrade would open an HTTP/2 connection to the app whose requests this proxy never sees
  // (request smuggling past authorization), so any other Upgrade is dropped like any hop-by-hop
  // field and the app answers the request as it is.
  static std::optional<std::string> relayed_upgrade(const http::Request& req) {
    if (req.version_minor != 1 || req.framing != http::BodyFraming::None) return std::nullopt;
    auto upgrade = http::upgrade_protocol(req.headers);
    if (upgrade && !http::iequals(*upgrade, "websocket")) return std::nullopt;
    return upgrade;
  }

  // Forwards one request and relays its response. Returns whether the downstream connection
  // stays open for the next request. `upgrade` (relayed_upgrade) is restated for the next hop,
  // its two fields being hop-by-hop; a 101 answer splices the two connections, `as_received`
  // (inbound) staying with them for policy reloads to judge.
  awaitable<bool> forward(net::Stream& down, std::string& in, BufferPool::Lease& chunk,
                          net::Watchdog& watchdog, Worker& worker, const HttpSide& side, http::Request& req,
                          const std::optional<std::string>& upgrade,
                          std::optional<JudgedUpgrade>& as_received, Exchange& ex) {
    // Headers the next hop sees: hop-by-hop removed, framing re-stated; inbound, XFCC sanitized
    // and set (only this proxy vouches for the client certificate).
    // serialize_request_head reads only these; nothing reads req's target or headers after
    // this point, so they are moved rather than copied.
    http::Request forwarded;
    forwarded.method = req.method;
    forwarded.target = std::move(req.target);
    forwarded.headers = std::move(req.headers);
    http::remove_hop_by_hop(forwarded.headers);
    if (upgrade) {
      forwarded.headers.add("connection", "upgrade");
      forwarded.headers.add("upgrade", *upgrade);
    }
    forwarded.headers.remove("content-length");
    forwarded.headers.remove("expect");
    if (side.inbound) {
      forwarded.headers.remove("x-forwarded-client-cert");
      if (side.peer) {
        if (auto state = tls_state.load()) {
          forwarded.headers.add("x-forwarded-client-cert", tls::xfcc_value(state->creds->own_id, *side.peer));
        }
      }
      forwarded.headers.set("x-forwarded-proto", side.peer ? "https" : "http");
    }
    if (req.framing == http::BodyFraming::ContentLength) {
      forwarded.headers.add("content-length", std::to_string(req.content_length));
    } else if (req.framing == http::BodyFraming::Chunked) {
      forwarded.headers.add("transfer-encoding", "chunked");
    }
    forwarded.version_minor = 1;
    std::string head = http::serialize_request_head(forwarded);

    std::error_code ec;
    if (req.expect_continue) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await down.write_all(asio::buffer(kContinue), ec);
      if (ec) co_return false;
    }

    // Send head (+ body). A reused idle connection may have been closed by the app just now:
    // for a bodiless request, retry once on a fresh connection.
    std::unique_ptr<UpstreamConn> up;
    bool response_started = false;
    std::optional<http::Response> resp;
    for (int attempt = 0; attempt < 2 && !resp; ++attempt) {
      bool reused = false;
      std::string reason, detail;
      up = co_await acquire_upstream(worker, side, req.framing != http::BodyFraming::None, reused, reason,
                                     detail);
      if (!up) {
        if (side.route) log_outbound_refusal(side, reason, detail);
        ex.flags = kUpstreamConnectFailure;
        co_await local_reply(down, ex, 503,
                             "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
                             false);
        co_return false;
      }
      ex.upstream_principal = up->peer_principal;
      co_await up->stream->write_all(asio::buffer(head), ec);
      bool retryable = reused && req.framing == http::BodyFraming::None;
      if (ec) {
        if (retryable) continue;
        ex.flags = kUpstreamReset;
        co_await local_reply(down, ex, 503, "upstream connect error or disconnect/reset before headers. reset reason: connection termination", false);
        co_return false;
      }
      if (req.framing != http::BodyFraming::None) {
        bool ok = co_await forward_request_body(down, in, chunk, watchdog, *up, req, ex);
        if (!ok) co_return false;  // already answered (or the client is gone)
      }
      // Response head, with the upstream timeout.
      if (!up->deadline)
        up->deadline.emplace(worker.io->get_executor(), [c = up.get()] { c->stream->close(); });
      up->deadline->arm(std::chrono::milliseconds(config.limits.upstream_timeout_ms));
      auto result = co_await read_response_head(*up, chunk, req.method, upgrade, response_started);
      up->deadline->disarm();
      if (!result) {
        if (up->deadline->fired()) {
          ex.flags = kUpstreamTimeout;
          co_await local_reply(down, ex, 504, "upstream request timeout", false);
          co_return false;
        }
        if (retryable && !response_started && result.error().status == 0) continue;
        ex.flags = kUpstreamReset;
        int status = result.error().status == 0 ? 503 : 502;
        co_await local_reply(down, ex, status,
                             status == 503 ? "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
                                           : "upstream sent a malformed response",
                             false);
        co_return false;
      }
      resp = std::move(*result);
    }
    if (!resp) {
      ex.flags = kUpstreamReset;
      co_await local_reply(down, ex, 503, "upstream connect error or disconnect/reset before headers. reset reason: connection termination", false);
      co_return false;
    }

    // read_response_head let a 101 through only as the switch to the protocol asked for.
    if (resp->status == 101)
      co_return co_await relay_upgrade(down, in, worker, side, std::move(up), *resp, *upgrade, as_received,
                                       ex);

    // Relay the response. Head and body go out in as few writes as possible: what is ready is
    // gathered in `out` and written only before waiting for more of the body, and at the end —
    // a small response is one write (one TLS record), not one per piece.
    const bool upstream_keep = resp->keep_alive && resp->framing != http::BodyFraming::UntilClose;
    const http::BodyFraming framing = resp->framing;
    const uint64_t content_length = resp->content_length;
    bool client_keep = req.keep_alive && !draining;
    bool streamed = framing == http::BodyFraming::Chunked || framing == http::BodyFraming::UntilClose;
    bool chunk_out = streamed && req.version_minor == 1;
    if (streamed && !chunk_out) client_keep = false;  // HTTP/1.0 client: the end of the body is our close
    http::Response& down_resp = *resp;                // not used as the upstream's any more: edited in place
    down_resp.version_minor = 1;
    http::remove_hop_by_hop(down_resp.headers);
    if (chunk_out) {
      down_resp.headers.remove("content-length");
      down_resp.headers.add("transfer-encoding", "chunked");
    }
    if (!client_keep) down_resp.headers.add("connection", "close");
    else if (req.version_minor == 0) down_resp.headers.add("connection", "keep-alive");
    std::string out = http::serialize_response_head(down_resp);
    ex.status = resp->status;
    auto flush = [&]() -> awaitable<bool> {
      if (out.empty()) co_return true;
      std::error_code write_ec;
      co_await down.write_all(asio::buffer(out), write_ec);
      ex.bytes_sent += out.size();
      out.clear();
      if (write_ec) ex.flags = kDownstreamReset;
      co_return !write_ec;
    };

    http::BodyDecoder decoder(framing, content_length);
    std::string payload;
    while (!decoder.done()) {
      if (up->buffer.empty()) {
        if (!co_await flush()) co_return false;
        up->deadline->arm(std::chrono::milliseconds(config.limits.upstream_timeout_ms));
        size_t n = co_await up->stream->read_some(chunk.get(), ec);
        up->deadline->disarm();
        if (ec || n == 0) {
          if (decoder.accept_eof()) break;
          co_await flush();  // what arrived; the client sees the connection end mid-body
          ex.flags = kUpstreamReset;
          co_return false;
        }
        up->buffer.append(chunk.data(), n);
      }
      auto used = decoder.feed(up->buffer, payload);
      if (!used) {
        co_await flush();
        ex.flags = kUpstreamReset;
        co_return false;
      }
      up->buffer.erase(0, *used);
      if (!payload.empty()) {
        if (chunk_out) {
          http::append_chunk(out, payload);
        } else {
          out += payload;
        }
        payload.clear();
        // Big bodies go out as they come rather than piling up.
        if (out.size() >= kReadChunk && !co_await flush()) co_return false;
      }
    }
    if (chunk_out) out.append(http::kLastChunk.data(), http::kLastChunk.size());
    if (!co_await flush()) co_return false;
    if (upstream_keep && up->buffer.empty()) {
      up->check_before_reuse = framing == http::BodyFraming::None;
      release_upstream(worker, side, std::move(up));
    }
    if (!client_keep) down.shutdown_send();
    co_return client_keep;
  }

  awaitable<bool> forward_request_body(net::Stream& down, std::string& in, BufferPool::Lease& chunk,
                                       net::Watchdog& watchdog, UpstreamConn& up, const http::Request& req,
                                       Exchange& ex) {
    http::BodyDecoder decoder(req.framing, req.content_length);
    std::string payload;
    std::error_code ec;
    while (!decoder.done()) {
      if (in.empty()) {
        watchdog.arm(std::chrono::milliseconds(config.limits.idle_timeout_ms));
        size_t n = co_await down.read_some(chunk.get(), ec);
        watchdog.disarm();
        if (ec || n == 0) {
          ex.flags = kDownstreamReset;
          co_return false;
        }
        in.append(chunk.data(), n);
      }
      auto used = decoder.feed(in, payload);
      if (!used) {
        co_await local_reply(down, ex, 400, "Bad Request", false);
        co_return false;
      }
      ex.bytes_received += *used;
      in.erase(0, *used);
      if (!payload.empty()) {
        std::string piece = req.framing == http::BodyFraming::Chunked ? http::encode_chunk(payload) : payload;
        payload.clear();
        co_await up.stream->write_all(asio::buffer(piece), ec);
        if (ec) {
          ex.flags = kUpstreamReset;
          co_await local_reply(down, ex, 503, "upstream connect error or disconnect/reset before headers. reset reason: connection termination", false);
          co_return false;
        }
      }
    }
    if (req.framing == http::BodyFraming::Chunked) {
      co_await up.stream->write_all(asio::buffer(http::kLastChunk.data(), http::kLastChunk.size()), ec);
      if (ec) {
        ex.flags = kUpstreamReset;
        co_await local_reply(down, ex, 503, "upstream connect error or disconnect/reset before headers. reset reason: connection termination", false);
        co_return false;
      }
    }
    co_return true;
  }

  // Reads a final (non-1xx) response head. Error status 0: the connection ended before any byte.
  // The app (or the next proxy) switched protocols: the 101 goes to the client with the bytes
  // that followed it, the client's bytes past its request head go up, and from then on the two
  // connections are spliced until both directions end (or the idle timeout). The connection is
  // not reused afterwards, nor is the upstream one pooled.
  awaitable<bool> relay_upgrade(net::Stream& down, std::string& in, Worker& worker, const HttpSide& side,
                                std::unique_ptr<UpstreamConn> up, http::Response& resp,
                                const std::string& protocol, std::optional<JudgedUpgrade>& as_received,
                                Exchange& ex) {
    // Registered for policy reloads while spliced (all on this worker's thread): a reload to
    // STRICT closes a plaintext one; one whose upgrade request the new policy denies is closed.
    std::optional<LiveUpgrade> live;
    if (side.entry) {
      side.entry->upgraded = true;
      if (side.inbound && as_received) {
        live.emplace(LiveUpgrade{
            {side.inbound_index, side.source, side.peer, up->stream.get(), false, as_received->generation},
            side.listen_port,
            std::move(as_received->request),
            as_received->judged_at});
        side.entry->upgrade = &*live;
      }
    }
    struct Unregister {
      ConnEntry* entry;
      ~Unregister() {
        if (entry) entry->upgrade = nullptr;
      }
    } unregister{live ? side.entry : nullptr};
    if (live) {
      rejudge_if_chains_changed(*side.entry, *live);
      if (live->closed_by_policy) {  // by a reload while the app was answering: no 101 goes out
        ex.details = "upgrade_closed_by_policy_reload";
        co_return false;
      }
    }
    http::remove_hop_by_hop(resp.headers);
    resp.version_minor = 1;
    resp.headers.add("connection", "upgrade");
    resp.headers.add("upgrade", protocol);
    std::string out = http::serialize_response_head(resp);
    out += up->buffer;
    up->buffer.clear();
    ex.status = 101;
    ex.details = "upgrade";
    std::error_code ec;
    co_await down.write_all(asio::buffer(out), ec);
    ex.bytes_sent += out.size();
    if (ec) {
      ex.flags = kDownstreamReset;
      co_return false;
    }
    if (!in.empty()) {
      co_await up->stream->write_all(asio::buffer(in), ec);
      ex.bytes_received += in.size();
      in.clear();
      if (ec) {
        ex.flags = kUpstreamReset;
        co_return false;
      }
    }
    auto [down_to_up, up_to_down] = co_await splice(down, *up->stream, worker.buffers);
    ex.bytes_received += down_to_up;
    ex.bytes_sent += up_to_down;
    if (live && live->closed_by_policy) ex.details = "upgrade_closed_by_policy_reload";
    co_return false;
  }

  awaitable<Result<http::Response, http::ParseError>> read_response_head(
      UpstreamConn& up, BufferPool::Lease& chunk, const std::string& method,
      const std::optional<std::string>& upgrade, bool& response_started) {
    while (true) {
      http::HeadScanner scanner;
      http::HeadScan scan;
      while (true) {
        scan = scanner.scan(up.buffer, http_limits.max_head_bytes);
        if (scan.state != http::HeadScan::State::Incomplete) break;
        std::error_code ec;
        size_t n = co_await up.stream->read_some(chunk.get(), ec);
        if (ec || n == 0) {
          co_return fail(http::ParseError{response_started || !up.buffer.empty() ? 502 : 0, "upstream closed"});
        }
        response_started = true;
        up.buffer.append(chunk.data(), n);
      }
      if (scan.state != http::HeadScan::State::Complete) co_return fail(http::ParseError{502, "malformed response head"});
      auto resp = http::parse_response_head(std::string_view(up.buffer).substr(0, scan.length), http_limits, method);
      up.buffer.erase(0, scan.length);
      if (!resp) co_return fail(resp.error());
      if (resp->status >= 100 && resp->status < 200) {
        // 101 only answers a request that asked for an upgrade, to the protocol it asked for.
        if (resp->status == 101) {
          auto switched = http::upgrade_protocol(resp->headers);
          if (upgrade && switched && http::iequals(*switched, *upgrade)) co_return std::move(*resp);
          co_return fail(http::ParseError{502, "switching protocols without a matching upgrade request"});
        }
        continue;  // interim responses are not relayed (Expect was answered by the proxy)
      }
      co_return std::move(*resp);
    }
  }

  // --- outbound ------------------------------------------------------------------------------

  void log_outbound_refusal(const HttpSide& side, const std::string& reason, const std::string& detail) {
    report.outbound_refused(side.source, destination_of(config.outbound[*side.route]), reason, detail);
  }

  // An mTLS connection to route `index`'s destination, the server's SVID verified and its SPIFFE
  // ID checked against the route's identities (secure naming). nullptr + reason on failure.
  awaitable<std::unique_ptr<UpstreamConn>> connect_route(Worker& worker, size_t index, std::string& reason,
                                                         std::string& detail) {
    const OutboundRoute& route = config.outbound[index];
    auto state = usable_tls();
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
    tcp::socket socket(*worker.io);
    net::Watchdog deadline(worker.io->get_executor(), [&socket] {
      std::error_code ignored;
      socket.close(ignored);
    });
    deadline.arm(std::chrono::milliseconds(config.limits.header_timeout_ms));
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
    auto cached = worker.tls_sessions.find(index);
    if (cached != worker.tls_sessions.end()) {
      // TLS 1.3 sessions are single-use: take it out; this connection brings fresh tickets.
      if (cached->second.creds == state->creds) SSL_set_session(up.ssl(), cached->second.session.get());
      worker.tls_sessions.erase(cached);
    }
    net::Watchdog handshake_deadline(worker.io->get_executor(), [&up] { up.close(); });
    handshake_deadline.arm(std::chrono::milliseconds(config.limits.header_timeout_ms));
    co_await up.handshake(asio::ssl::stream_base::client, ec);
    handshake_deadline.disarm();
    if (ec) {
      reason = "tls_handshake_failed";
      detail = ec.message();
      co_return nullptr;
    }
    bool resumed = SSL_session_reused(up.ssl()) == 1;
    registry.counter("meshguard_tls_handshakes_total", {{"side", "client"}, {"resumed", resumed ? "true" : "false"}}).inc();
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

  awaitable<void> serve_outbound(tcp::socket socket, Worker& worker, size_t index) {
    ConnectionManager::Registration guard(connections, worker.connections);
    const OutboundRoute& route = config.outbound[index];
    HttpSide side;
    side.entry = &guard.entry;
    side.route = index;
    side.source = net::remote_address(socket);
    side.listen_port = route.listen_port;
    auto start = Clock::now();
    net::PlainStream down(std::move(socket));
    guard.entry.stream = &down;

    if (route.protocol == Protocol::Http) {
      co_await serve_http(down, guard.entry, worker, side);
      down.close();
      co_return;
    }

    std::string reason, detail;
    auto up = co_await connect_route(worker, index, reason, detail);
    if (!up) {
      log_outbound_refusal(side, reason, detail);
      co_return;
    }
    std::string destination = destination_of(route);
    std::string own = up->creds->own_id.str();
    telemetry::Labels labels = report.tcp_labels(false, own, up->peer_principal, true);
    report.tcp_opened(labels);
    auto [sent, received] = co_await splice(down, *up->stream, worker.buffers);
    remember_session(worker, index, *up);
    report.tcp_closed(labels, received, sent);
    report.outbound_tcp(own, side.source, up->peer_principal, destination, start, received, sent);
    up->stream->close();
  }

  // --- drain ---------------------------------------------------------------------------------

  void begin_drain() {
    if (draining.exchange(true)) return;
    log_line("draining: no new connections; finishing in-flight requests");
    for (auto& a : acceptors) {
      std::error_code ignored;
      a->close(ignored);
    }
    credentials.stop_polling();
    policy.stop_polling();
    for (auto& w : workers) {
      asio::post(*w->io, [worker = w.get()] {
        ConnectionManager::close_idle(worker->connections);
        worker->idle_upstreams.clear();
      });
    }
    drain_deadline = Clock::now() + std::chrono::milliseconds(config.limits.drain_timeout_ms);
    drain_timer.emplace(main_io);
    poll_drain();
  }

  void poll_drain() {
    drain_timer->expires_after(20ms);
    drain_timer->async_wait([this](std::error_code ec) {
      if (ec) return;
      if (connections.active() == 0 || Clock::now() >= drain_deadline) {
        if (connections.active() != 0) {
          log_line("drain timeout: closing " + std::to_string(connections.active()) + " connection(s)");
        } else {
          log_line("drained");
        }
        for (auto& w : workers) w->io->stop();
        main_io.stop();
        return;
      }
      poll_drain();
    });
  }
};

Proxy::Proxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Proxy::~Proxy() {
  if (!impl_) return;
  for (auto& w : impl_->workers) {
    w->guard.reset();
    w->io->stop();
    if (w->thread.joinable()) w->thread.join();
  }
  // Connection coroutines that outlived a drain timeout are destroyed here, while the rest of
  // the runtime (counters, config) still exists.
  impl_->workers.clear();
}

ChainSet& Proxy::chains() { return impl_->policy.chains(); }

Status Proxy::reload_policies() {
  if (!impl_->config.policy_dir) return fail("proxy.no_policy_dir", "no policyDir is configured");
  return impl_->policy.reload(true);
}

void Proxy::reload_credentials() { impl_->credentials.reload(true); }

std::vector<Proxy::Listener> Proxy::listeners() const {
  std::vector<Listener> out;
  for (const auto& l : impl_->listeners) {
    out.push_back({l.name(), l.address});
  }
  return out;
}
telemetry::Registry& Proxy::metrics() { return impl_->registry; }

Result<std::unique_ptr<Proxy>> Proxy::create(ProxyConfig config) {
  auto impl = std::make_unique<Impl>(std::move(config));
  if (auto st = impl->policy.load_initial(); !st) return fail(st.error());
  impl->policy.on_publish([d = impl.get()](const std::shared_ptr<const PublishedPolicy>& state,
                                           const std::shared_ptr<const RequestChain>& request_chain,
                                           const std::shared_ptr<const ConnectionChain>& connection_chain) {
    // No connections before start(); the workers' lists are complete once `started` is set.
    if (d->started) d->connections.rejudge_all(state, request_chain, connection_chain);
  });
  impl->http_limits.max_head_bytes = impl->config.limits.max_head_bytes;
  impl->http_limits.max_headers = impl->config.limits.max_headers;
  if (auto st = impl->report.open_access_log(impl->config.access_log); !st) return fail(st.error());
  impl->credentials.load_initial();
  return std::unique_ptr<Proxy>(new Proxy(std::move(impl)));
}

Status Proxy::start() {
  Impl& d = *impl_;
  unsigned count = d.config.workers ? d.config.workers : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < count; ++i) {
    auto w = std::make_unique<Worker>();
    w->guard.emplace(w->io->get_executor());
    w->connections.io = w->io.get();
    d.connections.add_worker(w->connections);
    d.workers.push_back(std::move(w));
  }
  auto bind = [&](const std::string& address, uint16_t port, ListenerKind kind, size_t index) -> Status {
    const std::string kind_name(to_string(kind));
    std::error_code ec;
    auto addr = asio::ip::make_address(address, ec);
    if (ec) return fail("proxy.bad_address", kind_name + ": bad address '" + address + "'");
    auto acceptor = std::make_unique<tcp::acceptor>(d.main_io);
    tcp::endpoint ep(addr, port);
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("proxy.listen", kind_name + " " + address + ":" + std::to_string(port) + ": " + ec.message());
    auto local = acceptor->local_endpoint(ec);
    std::string where = local.address().to_string() + ":" + std::to_string(local.port());
    // Port 0 in the config: from now on the port is the one the kernel chose.
    if (kind == ListenerKind::Inbound) d.config.inbound[index].port = local.port();
    if (kind == ListenerKind::Outbound) d.config.outbound[index].listen_port = local.port();
    ListenerInfo info{kind, index, where};
    d.listeners.push_back(info);
    std::printf("listening %s %s\n", info.name().c_str(), where.c_str());
    d.acceptors.push_back(std::move(acceptor));
    return {};
  };
  for (size_t i = 0; i < d.config.inbound.size(); ++i) {
    if (auto st = bind(d.config.inbound[i].address, d.config.inbound[i].port, ListenerKind::Inbound, i); !st) return st;
  }
  for (size_t i = 0; i < d.config.outbound.size(); ++i) {
    if (auto st = bind(d.config.outbound[i].listen_address, d.config.outbound[i].listen_port, ListenerKind::Outbound, i); !st) return st;
  }
  if (d.config.admin_port) {
    if (auto st = bind(d.config.admin_address, *d.config.admin_port, ListenerKind::Admin, 0); !st) return st;
  }
  std::fflush(stdout);
  for (size_t i = 0; i < d.acceptors.size(); ++i) {
    d.spawn(d.main_io, d.accept_loop(*d.acceptors[i], d.listeners[i]));
  }
  d.signals.emplace(d.main_io, SIGTERM, SIGINT);
  d.signals->async_wait([&d](std::error_code ec, int) {
    if (!ec) d.begin_drain();
  });
  d.credentials.start_polling(d.main_io);
  d.policy.start_polling(d.main_io);
  for (auto& w : d.workers) {
    w->thread = std::thread([worker = w.get(), &registry = d.registry] {
      // Metric series this worker used before are found without the registry's lock.
      auto series_cache = registry.bind_thread_cache();
      worker->io->run();
    });
  }
  d.started = true;
  return {};
}

void Proxy::request_drain() {
  asio::post(impl_->main_io, [d = impl_.get()] { d->begin_drain(); });
}

int Proxy::run() {
  impl_->main_io.run();
  for (auto& w : impl_->workers) {
    w->guard.reset();
    w->io->stop();
    if (w->thread.joinable()) w->thread.join();
  }
  return 0;
}

}  // namespace mg::proxy
