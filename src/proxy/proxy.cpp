#include "proxy/proxy.h"

#include <algorithm>
#include <asio/experimental/awaitable_operators.hpp>
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
#include "proxy/jwks_keys.h"
#include "proxy/net.h"
#include "proxy/policy_chain.h"
#include "proxy/policy_watch.h"
#include "telemetry/access_log.h"
#include "telemetry/json_line.h"
#include "tls/tls.h"

namespace mg::proxy {

using namespace std::chrono_literals;
using net::awaitable;
using net::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kIdleRead = 1024;  // first read of a request: a typical head fits
constexpr size_t kMaxIdleUpstreamsPerPort = 64;

auto nothrow(std::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

void log_line(const std::string& message) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  std::fprintf(stderr, "meshguard-proxy: %s\n", message.c_str());
  std::fflush(stderr);
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

nlohmann::json json_or_null(const std::optional<std::string>& s) { return s ? nlohmann::json(*s) : nlohmann::json(); }
nlohmann::json json_or_null(const std::optional<int>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }

// asio::ssl::context owns one reference to the SSL_CTX; the Credentials keep theirs.
std::shared_ptr<asio::ssl::context> wrap_context(SSL_CTX* ctx) {
  SSL_CTX_up_ref(ctx);
  return std::make_shared<asio::ssl::context>(ctx);
}

// Certificates with the asio contexts built from them; swapped as one unit.
struct TlsState {
  std::shared_ptr<const tls::Credentials> creds;
  std::shared_ptr<asio::ssl::context> server;
  std::shared_ptr<asio::ssl::context> client;
};

// An inbound connection spliced to the app: what a policy reload needs to judge it again. A TCP
// port's connection is judged by the connection chain.
struct LiveTcp {
  size_t index = 0;  // config.inbound
  std::string source;
  std::optional<tls::PeerIdentity> peer;
  net::Stream* upstream = nullptr;  // the app side, once connected
  bool closed_by_policy = false;
  uint64_t judged_by = 0;  // the ChainSet generation that admitted it
};

// The upgrade request of a WebSocket, as it arrived (before the chain edited it), with when and
// by which chain it was judged: what an inbound spliced HTTP connection is judged again with.
struct JudgedUpgrade {
  http::Request request;
  int64_t judged_at = 0;
  uint64_t generation = 0;  // ChainSet
};

// An HTTP connection spliced after a WebSocket upgrade is judged by the request chain, with its
// upgrade request: no later request on the connection ever would be.
struct LiveUpgrade : LiveTcp {
  uint16_t listen_port = 0;
  http::Request request;
  int64_t judged_at = 0;
};

// A live downstream connection, registered with its worker so a drain can close idle ones and a
// policy reload can re-judge TCP and upgraded ones.
struct ConnEntry {
  net::Stream* stream = nullptr;
  bool idle = false;
  LiveTcp* tcp = nullptr;
  LiveUpgrade* upgrade = nullptr;             // inbound, while spliced after a WebSocket upgrade
  std::optional<size_t> plaintext_http_port;  // config.inbound index of a plaintext HTTP connection
  bool upgraded = false;                      // spliced after a 101 (WebSocket), either direction
};

// The policy in force: compiled snapshot (null without policyDir), its version and origins, and
// what it makes of each inbound port. Immutable; replaced as a whole by a reload.
struct PolicyState {
  uint64_t version = 0;  // 0: no policyDir; 1: the start-up load; +1 per successful reload
  std::string hash;      // combined content hash of the files (policy_watch.h)
  std::string loaded_at;
  std::vector<PolicyFileDigest> files;
  std::vector<PolicyOrigin> origins;
  std::shared_ptr<const policy::AuthzSnapshot> snapshot;
  size_t resources = 0;
  std::vector<EffectiveMtls> inbound_modes;  // one per config.inbound entry
};

// A connection to where requests go: the local app (plaintext) or, outbound, another proxy (mTLS).
struct UpstreamConn {
  tls::SessionSink session_sink;    // declared first: outlives the SSL that writes into it
  std::unique_ptr<net::Stream> stream;
  std::string buffer;               // bytes read past the last response
  std::string peer_principal;       // outbound: the verified server SPIFFE ID
  std::shared_ptr<const tls::Credentials> creds;  // outbound: the credentials it was made with
  std::optional<net::Watchdog> deadline;          // the upstream timeout; made at first use
};

// 16 KB read buffers, lent per burst of I/O and returned before a connection waits idle: an idle
// keep-alive or spliced connection then holds none (issue 5: 16 KB per idle connection). Only
// the worker's own thread touches its pool, so no lock.
class BufferPool {
 public:
  class Lease {
   public:
    Lease() = default;
    explicit Lease(BufferPool& pool) : pool_(&pool) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { release(); }
    // The whole buffer, taken from the pool on first use.
    asio::mutable_buffer get() {
      if (!buf_) buf_ = pool_->take();
      return asio::buffer(buf_.get(), kReadChunk);
    }
    const char* data() const { return buf_.get(); }
    void release() {
      if (buf_) pool_->give(std::move(buf_));
    }

   private:
    BufferPool* pool_ = nullptr;
    std::unique_ptr<char[]> buf_;
  };

  std::unique_ptr<char[]> take() {
    if (free_.empty()) return std::make_unique_for_overwrite<char[]>(kReadChunk);
    auto b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void give(std::unique_ptr<char[]> b) {
    if (free_.size() < kMaxFree) free_.push_back(std::move(b));
  }

 private:
  static constexpr size_t kMaxFree = 64;  // enough for a burst of concurrent requests per worker
  std::vector<std::unique_ptr<char[]>> free_;
};

struct Worker {
  BufferPool buffers;  // first member: outlives the connection coroutines destroyed with `io`
  // Per-request metric series by label values (Impl::request_series): a request then builds no
  // Labels and renders no label text. Registry series are never removed, so the pointers stay valid.
  struct RequestSeries {
    telemetry::Counter* requests;
    telemetry::Histogram* duration;
  };
  std::unordered_map<std::string, RequestSeries> request_series;
  std::unordered_map<std::string, telemetry::Counter*> decision_series;
  std::string series_key;  // the lookup key, capacity reused
  std::unique_ptr<asio::io_context> io = std::make_unique<asio::io_context>(1);
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
  std::list<ConnEntry*> connections;
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

// Response flags as Envoy names them.
constexpr const char* kNoFlags = "-";
constexpr const char* kUpstreamConnectFailure = "UF";
constexpr const char* kUpstreamReset = "UC";
constexpr const char* kDownstreamReset = "DC";
constexpr const char* kUpstreamTimeout = "UT";

}  // namespace

struct Proxy::Impl {
  ProxyConfig config;
  std::unique_ptr<telemetry::AccessLog> access_log;
  telemetry::Registry registry;
  ChainSet chains;
  std::atomic<std::shared_ptr<const PolicyState>> policy_state;  // never null after create()
  JwksKeys jwks;  // jwksUri keys for the policy in force, fetched off the request path
  http::Limits http_limits;

  // Policy reloads (the 250 ms poll on the main loop, or reload_policies() from any thread) are
  // serialized by this mutex, which also guards the watch state and the last error below.
  mutable std::mutex policy_mutex;
  std::vector<PolicyFileStamp> policy_stamps;
  std::string policy_attempted_hash;  // content hash of the last load attempt ("" = none yet)
  std::string policy_error;           // last failed reload ("" after a success)
  std::string policy_error_at;
  unsigned policy_polls = 0;

  std::atomic<std::shared_ptr<const TlsState>> tls_state;
  mutable std::mutex tls_mutex;  // serializes credential reloads; guards cert_error, tls_stamps
  std::string cert_error;        // last load/reload error
  struct FileStamp {
    time_t mtime = 0;
    off_t size = 0;
    ino_t inode = 0;
    bool operator==(const FileStamp&) const = default;
  };
  std::vector<FileStamp> tls_stamps;
  std::atomic<uint64_t> config_version{1};

  asio::io_context main_io{1};
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<size_t> next_worker{0};
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  struct ListenerInfo {
    std::string kind;  // inbound | outbound | admin
    size_t index = 0;
    std::string address;
  };
  std::vector<ListenerInfo> listeners;
  std::optional<asio::signal_set> signals;
  std::optional<asio::steady_timer> reload_timer;
  std::optional<asio::steady_timer> policy_timer;
  std::optional<asio::steady_timer> drain_timer;

  std::atomic<uint32_t> active_connections{0};
  std::atomic<bool> draining{false};
  std::atomic<bool> started{false};
  Clock::time_point drain_deadline;

  // --- helpers -------------------------------------------------------------------------------

  std::string own_principal() const {
    auto state = tls_state.load();
    return state && state->creds ? state->creds->own_id.str() : std::string("unknown");
  }

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

  static std::vector<FileStamp> stamps_of(const tls::TlsFiles& files) {
    std::vector<FileStamp> out;
    for (const auto* path : {&files.cert_chain, &files.key, &files.trust_bundle}) {
      struct stat st{};
      FileStamp s;
      if (::stat(path->c_str(), &st) == 0) s = {st.st_mtime, st.st_size, st.st_ino};
      out.push_back(s);
    }
    return out;
  }

  Status load_tls() {
    auto creds = tls::load_credentials(*config.tls, std::time(nullptr));
    if (!creds) {
      cert_error = creds.error().to_string();
      registry.counter("meshguard_certificate_load_failures_total").inc();
      return fail(creds.error());
    }
    auto state = std::make_shared<TlsState>();
    state->creds = *creds;
    state->server = wrap_context((*creds)->server_ctx.get());
    state->client = wrap_context((*creds)->client_ctx.get());
    tls_state.store(std::shared_ptr<const TlsState>(std::move(state)));
    cert_error.clear();
    registry.gauge("meshguard_certificate_expiry_timestamp_seconds", {{"identity", (*creds)->own_id.str()}})
        .set(static_cast<int64_t>((*creds)->not_after));
    return {};
  }

  // Re-reads the certificate files if they changed (or always, with `force`); new handshakes
  // use the new credentials, live connections keep theirs. Any thread.
  void reload_tls(bool force) {
    if (!config.tls) return;
    std::lock_guard lock(tls_mutex);
    auto stamps = stamps_of(*config.tls);
    if (!force && stamps == tls_stamps) return;
    tls_stamps = stamps;
    if (auto st = load_tls(); st) {
      config_version.fetch_add(1);
      auto state = tls_state.load();
      log_line("certificate reloaded: " + state->creds->own_id.str() + " serial " + state->creds->serial_hex);
    } else {
      log_line("certificate reload failed, keeping the previous one: " + st.error().to_string());
    }
  }

  // Polls the certificate files once a second.
  void schedule_tls_reload() {
    reload_timer->expires_after(1s);
    reload_timer->async_wait([this](std::error_code ec) {
      if (ec) return;
      reload_tls(false);
      if (!draining) schedule_tls_reload();
    });
  }

  // --- policy reload -------------------------------------------------------------------------

  std::vector<EffectiveMtls> inbound_modes(const policy::AuthzSnapshot* snapshot) const {
    std::vector<EffectiveMtls> out;
    for (const auto& port : config.inbound)
      out.push_back(effective_mtls(port, config.tls.has_value(), snapshot));
    return out;
  }

  MtlsMode port_mode(size_t index) const { return policy_state.load()->inbound_modes[index].mode; }

  // Loads and compiles policyDir; on success publishes it (the next request on every connection
  // and every new connection sees it) and re-judges live TCP connections. On failure the last good
  // state stays in force and the error is logged once, counted and kept for /config_dump.
  // Caller holds policy_mutex.
  Status reload_policies_locked(const std::string& hash, std::vector<PolicyFileDigest> files) {
    policy_attempted_hash = hash;
    auto loaded =
        load_policy_chains(*config.policy_dir, config.workload, jwks.provider(), config.num_trusted_proxies);
    auto previous = policy_state.load();
    if (!loaded) {
      policy_error = loaded.error().to_string();
      policy_error_at = telemetry::now_rfc3339();
      registry.counter("meshguard_config_reload_total", {{"resource", "policy"}, {"result", "error"}}).inc();
      log_line("policy reload failed, keeping version " + std::to_string(previous->version) + ": " +
               policy_error);
      return fail(loaded.error());
    }
    auto state = std::make_shared<PolicyState>();
    state->version = previous->version + 1;
    state->hash = hash;
    state->loaded_at = telemetry::now_rfc3339();
    state->files = std::move(files);
    state->origins = std::move(loaded->origins);
    state->snapshot = loaded->snapshot;
    state->resources = loaded->resources;
    state->inbound_modes = inbound_modes(state->snapshot.get());
    std::shared_ptr<const PolicyState> published = std::move(state);
    jwks.retarget(published->snapshot->jwt_rules());
    policy_state.store(published);
    chains.replace(loaded->request, loaded->connection);
    policy_error.clear();
    policy_error_at.clear();
    config_version.fetch_add(1);
    registry.counter("meshguard_config_reload_total", {{"resource", "policy"}, {"result", "success"}}).inc();
    std::string modes;
    for (size_t i = 0; i < published->inbound_modes.size(); ++i) {
      if (previous->inbound_modes[i].mode != published->inbound_modes[i].mode) {
        modes += "; inbound[" + std::to_string(i) + "] mTLS " +
                 std::string(to_string(previous->inbound_modes[i].mode)) + " -> " +
                 std::string(to_string(published->inbound_modes[i].mode));
      }
    }
    log_line("policy reloaded: version " + std::to_string(published->version) + ", " +
             std::to_string(published->resources) + " resource(s), hash " + published->hash.substr(0, 16) +
             modes);
    rejudge_connections(published, loaded->request, loaded->connection);
    return {};
  }

  // Reads the directory's content hash and reloads when it differs from the last attempt (or
  // always, with `force`).
  Status reload_policies(bool force) {
    if (!config.policy_dir) return {};
    std::lock_guard lock(policy_mutex);
    auto stamps = stat_policy_dir(*config.policy_dir);
    policy_stamps = stamps ? std::move(*stamps) : std::vector<PolicyFileStamp>{};
    auto files = digest_policy_dir(*config.policy_dir);
    if (!files) {
      // Unreadable or missing directory: the last good policy stays; report once per distinct error.
      std::string key = "error:" + files.error().to_string();
      if (!force && key == policy_attempted_hash) return fail(files.error());
      policy_attempted_hash = key;
      policy_error = files.error().to_string();
      policy_error_at = telemetry::now_rfc3339();
      registry.counter("meshguard_config_reload_total", {{"resource", "policy"}, {"result", "error"}}).inc();
      log_line("policy reload failed, keeping version " + std::to_string(policy_state.load()->version) +
               ": " + policy_error);
      return fail(files.error());
    }
    std::string hash = combined_policy_hash(*files);
    if (!force && hash == policy_attempted_hash) return {};
    return reload_policies_locked(hash, std::move(*files));
  }

  // The 250 ms poll: a stat pass each time; the content is hashed when the stat pass changed, and
  // every 16th poll anyway (an in-place rewrite of equal size within one mtime tick).
  void poll_policies() {
    {
      std::lock_guard lock(policy_mutex);
      auto stamps = stat_policy_dir(*config.policy_dir);
      bool changed = !stamps || *stamps != policy_stamps;
      if (!changed && ++policy_polls % 16 != 0) return;
    }
    (void)reload_policies(false);
  }

  void schedule_policy_poll() {
    policy_timer->expires_after(250ms);
    policy_timer->async_wait([this](std::error_code ec) {
      if (ec) return;
      poll_policies();
      if (!draining) schedule_policy_poll();
    });
  }

  // Live TCP connections and WebSocket-upgraded connections no longer allowed by `state`, and
  // idle plaintext HTTP keep-alive connections on ports `state` makes STRICT, are closed (on
  // their own worker thread).
  void rejudge_connections(std::shared_ptr<const PolicyState> state,
                           std::shared_ptr<const RequestChain> request_chain,
                           std::shared_ptr<const ConnectionChain> chain) {
    if (!started) return;  // no connections yet; `workers` is complete once `started` is set
    for (auto& w : workers) {
      asio::post(*w->io, [this, worker = w.get(), state, request_chain, chain] {
        // A newer reload posted its own pass: judging by this one could close what it allows.
        if (policy_state.load()->version != state->version) return;
        for (ConnEntry* c : worker->connections) rejudge(*c, *state, *request_chain, *chain);
      });
    }
  }

  // One registered connection judged again under `state` and its chains; closed when they no
  // longer allow it. On the connection's worker thread.
  void rejudge(ConnEntry& c, const PolicyState& state, const RequestChain& request_chain,
               const ConnectionChain& chain) {
    if (!c.stream || (c.upgrade && c.upgrade->closed_by_policy)) return;  // closed already
    if (c.plaintext_http_port && (c.idle || c.upgraded) &&
        state.inbound_modes[*c.plaintext_http_port].mode == MtlsMode::Strict) {
      // Waiting between requests on a port that now requires mTLS (nothing is in flight), or
      // spliced after a WebSocket upgrade (no next request would check it): closed now.
      const InboundPort& port = config.inbound[*c.plaintext_http_port];
      registry.counter("meshguard_connections_closed_total", {{"reason", "policy_reload"}}).inc();
      log_connection_refused("inbound", net::remote_address(c.stream->socket()), port.port,
                             "plaintext_on_strict_port",
                             std::string("mTLS is now required (STRICT): ") +
                                 (c.upgraded ? "upgraded (WebSocket)" : "idle plaintext keep-alive") +
                                 " connection closed after policy version " + std::to_string(state.version));
      if (c.upgrade) c.upgrade->closed_by_policy = true;
      c.stream->close();
      if (c.upgrade && c.upgrade->upstream) c.upgrade->upstream->close();
      return;
    }
    LiveTcp* live = c.upgrade ? c.upgrade : c.tcp;
    if (!live || live->closed_by_policy) return;
    const InboundPort& port = config.inbound[live->index];
    const MtlsMode mode = state.inbound_modes[live->index].mode;
    Verdict verdict;
    if (c.upgrade) {
      // The upgrade request judged again, as if it arrived on this connection now — but with its
      // JWT checked as of its first judgement (a token that expired since does not end it; one
      // whose keys are gone, or not fetched yet, does: fail closed).
      http::Request request = c.upgrade->request;  // steps may edit what they judge
      RequestContext ctx{request, config.workload, mode, c.upgrade->listen_port, live->source, live->peer, {},
                         {},      port.app_port};
      ctx.judged_at = c.upgrade->judged_at;
      verdict = request_chain.run(ctx);
    } else {
      ConnectionContext ctx{config.workload, mode, port.port, live->source, live->peer, {}, port.app_port};
      verdict = chain.run(ctx);
    }
    if (verdict.allow) return;
    live->closed_by_policy = true;
    log_closed_by_policy(c.upgrade ? "websocket" : "tcp", *live, state, verdict);
    c.stream->close();
    if (live->upstream) live->upstream->close();
  }

  // A spliced connection registers after its decision (and a connect, or the app's 101): a reload
  // in between posted its pass too early to see it. Judged now when the chains changed since.
  void rejudge_if_chains_changed(ConnEntry& c, const LiveTcp& live) {
    auto now = chains.current();
    if (live.judged_by == now->generation) return;
    rejudge(c, *policy_state.load(), *now->request, *now->connection);
  }

  // A connection a policy reload no longer allows: counted, logged and given an access-log event.
  void log_closed_by_policy(std::string_view protocol, const LiveTcp& live, const PolicyState& state,
                            const Verdict& decision) {
    const std::string& source = live.source;
    const auto& peer = live.peer;
    const InboundPort& port = config.inbound[live.index];
    registry.counter("meshguard_connections_closed_total", {{"reason", "policy_reload"}}).inc();
    count_decision(decision, false);
    log_line("closing " + std::string(protocol == "tcp" ? "TCP" : "WebSocket") + " connection from " +
             source + " on inbound[" + std::to_string(live.index) +
             "]: no longer allowed after policy version " + std::to_string(state.version) + ": " +
             decision.reason);
    access_log->write({{"time", telemetry::now_rfc3339()},
                       {"direction", "inbound"},
                       {"protocol", protocol},
                       {"event", "connection_closed_by_policy"},
                       {"source", {{"principal", peer ? peer->id.str() : "unknown"}, {"address", source}}},
                       {"port", port.port},
                       {"policyVersion", state.version},
                       {"action", decision.action},
                       {"policy", json_or_null(decision.policy)},
                       {"rule", json_or_null(decision.rule)},
                       {"reason", decision.reason}});
  }

  std::string cert_state() const {
    if (!config.tls) return "None";
    auto state = tls_state.load();
    if (!state) return "Unavailable";
    return state->creds->not_after < std::time(nullptr) ? "Unavailable" : "Available";
  }

  // Credentials usable for a new handshake right now; nullptr fails the handshake closed.
  std::shared_ptr<const TlsState> usable_tls() const {
    auto state = tls_state.load();
    if (!state || state->creds->not_after < std::time(nullptr)) return nullptr;
    return state;
  }

  void count_refused(const std::string& direction, const std::string& reason) {
    registry.counter("meshguard_connections_refused_total", {{"direction", direction}, {"reason", reason}}).inc();
  }

  void log_connection_refused(const std::string& direction, const std::string& source, uint16_t port,
                              const std::string& reason, const std::string& detail) {
    count_refused(direction, reason);
    access_log->write({{"time", telemetry::now_rfc3339()},
                       {"direction", direction},
                       {"event", "connection_refused"},
                       {"source", {{"address", source}}},
                       {"port", port},
                       {"reason", reason},
                       {"detail", detail}});
  }

  // --- admin ---------------------------------------------------------------------------------

  nlohmann::json config_dump() const {
    auto policy = policy_state.load();
    nlohmann::json j;
    j["version"] = config_version.load();
    j["source"] = config.source;
    j["workload"] = {{"name", config.workload.name},
                     {"namespace", config.workload.ns},
                     {"serviceAccount", config.workload.service_account},
                     {"labels", config.workload.labels}};
    nlohmann::json ls = nlohmann::json::array();
    for (const auto& l : listeners) {
      nlohmann::json e = {{"kind", l.kind}, {"address", l.address}};
      if (l.kind == "inbound") {
        const auto& p = config.inbound[l.index];
        e["appPort"] = p.app_port;
        e["protocol"] = to_string(p.protocol);
        e["mtlsMode"] = to_string(policy->inbound_modes[l.index].mode);
        e["mtlsModeSource"] = policy->inbound_modes[l.index].source;
      } else if (l.kind == "outbound") {
        const auto& r = config.outbound[l.index];
        e["destination"] = r.destination_address + ":" + std::to_string(r.destination_port);
        e["identities"] = r.identities;
      }
      ls.push_back(e);
    }
    j["listeners"] = ls;
    nlohmann::json cert = {{"state", cert_state()}};
    if (auto state = tls_state.load()) {
      cert["spiffeId"] = state->creds->own_id.str();
      cert["serial"] = state->creds->serial_hex;
      cert["fingerprint"] = state->creds->fingerprint;
      cert["notBefore"] = state->creds->not_before;
      cert["notAfter"] = state->creds->not_after;
    }
    {
      std::lock_guard lock(tls_mutex);
      if (!cert_error.empty()) cert["lastError"] = cert_error;
    }
    j["certificate"] = cert;
    if (policy->snapshot) {
      size_t enforced = 0, dry_run = 0;
      for (const auto& p : policy->snapshot->policies()) (p.dry_run ? dry_run : enforced)++;
      nlohmann::json files = nlohmann::json::array();
      for (const auto& f : policy->files) files.push_back({{"name", f.name}, {"sha256", f.sha256}});
      nlohmann::json origins = nlohmann::json::array();
      for (const auto& o : policy->origins) {
        origins.push_back({{"kind", o.kind},
                           {"name", o.name},
                           {"origin", o.source + ":" + std::to_string(o.line)},
                           {"appliesToWorkload", o.applies}});
      }
      nlohmann::json applied = nlohmann::json::array();
      for (const auto& p : policy->snapshot->policies()) {
        applied.push_back({{"name", p.name}, {"action", policy::to_string(p.action)}, {"dryRun", p.dry_run}});
      }
      j["policy"] = {{"dir", json_or_null(config.policy_dir)},
                     {"engine", "policy"},
                     {"version", policy->version},
                     {"hash", policy->hash},
                     {"loadedAt", policy->loaded_at},
                     {"files", files},
                     {"resources", origins},
                     {"resourcesLoaded", policy->resources},
                     {"authorizationPolicies", applied},
                     {"authorizationPoliciesApplied", enforced},
                     {"dryRunPoliciesApplied", dry_run},
                     {"numTrustedProxies", policy->snapshot->mesh().num_trusted_proxies}};
      nlohmann::json uris = nlohmann::json::array();
      for (const auto& u : jwks.status()) {
        uris.push_back({{"uri", u.uri},
                        {"keys", u.has_keys ? "Available" : "Unavailable"},
                        {"fetches", u.fetches},
                        {"lastError", u.last_error.empty() ? nlohmann::json() : nlohmann::json(u.last_error)}});
      }
      j["policy"]["jwksUri"] = uris;
      std::lock_guard lock(policy_mutex);
      j["policy"]["lastError"] = policy_error.empty() ? nlohmann::json() : nlohmann::json(policy_error);
      if (!policy_error_at.empty()) j["policy"]["lastErrorAt"] = policy_error_at;
    } else {
      j["policy"] = {{"dir", json_or_null(config.policy_dir)}, {"engine", "none: no AuthorizationPolicy applies"}};
    }
    j["draining"] = draining.load();
    j["activeConnections"] = active_connections.load();
    return j;
  }

  awaitable<void> serve_admin(tcp::socket socket) {
    net::PlainStream stream(std::move(socket));
    net::Watchdog watchdog(co_await asio::this_coro::executor, [&stream] { stream.close(); });
    watchdog.arm(std::chrono::milliseconds(config.limits.header_timeout_ms));
    std::string buffer;
    http::HeadScanner scanner;
    char chunk[4096];
    while (true) {
      auto scan = scanner.scan(buffer, 16 * 1024);
      if (scan.state == http::HeadScan::State::Complete) {
        auto req = http::parse_request_head(std::string_view(buffer).substr(0, scan.length), http_limits);
        std::string response;
        if (!req) {
          response = http::make_response(req.error().status, "text/plain", req.error().reason + "\n", false);
        } else if (req->method != "GET" && req->method != "HEAD") {
          response = http::make_response(405, "text/plain", "method not allowed\n", false);
        } else if (req->path == "/healthz/ready") {
          bool ready = started && !draining && (!config.tls || cert_state() == "Available");
          response = http::make_response(ready ? 200 : 503, "text/plain", ready ? "ready\n" : "not ready\n", false);
        } else if (req->path == "/metrics") {
          // The certificate state machine as a gauge per state (1 = current), read at scrape time.
          const std::string state = cert_state();
          for (const char* st : {"Available", "Unavailable", "None"})
            registry.gauge("meshguard_certificate_state", {{"state", st}}).set(state == st ? 1 : 0);
          response = http::make_response(200, "text/plain; version=0.0.4", registry.render_prometheus(), false);
        } else if (req->path == "/config_dump") {
          response = http::make_response(200, "application/json", config_dump().dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", false);
        } else {
          response = http::make_response(404, "text/plain", "not found\n", false);
        }
        std::error_code ec;
        co_await stream.write_all(asio::buffer(response), ec);
        stream.shutdown_send();
        co_return;
      }
      if (scan.state != http::HeadScan::State::Incomplete) co_return;
      std::error_code ec;
      size_t n = co_await stream.read_some(asio::buffer(chunk), ec);
      if (ec) co_return;
      buffer.append(chunk, n);
    }
  }

  // --- accept loops --------------------------------------------------------------------------

  awaitable<void> accept_loop(tcp::acceptor& acceptor, ListenerInfo info) {
    while (acceptor.is_open()) {
      std::error_code ec;
      if (info.kind == "admin") {
        tcp::socket socket = co_await acceptor.async_accept(nothrow(ec));
        if (ec) {
          if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
          continue;
        }
        spawn(main_io, serve_admin(std::move(socket)));
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
      if (active_connections.load() >= config.limits.max_connections) {
        count_refused(info.kind, "max_connections");
        std::error_code ignored;
        socket.close(ignored);
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      active_connections.fetch_add(1);
      if (info.kind == "inbound") {
        spawn(*worker.io, serve_inbound(std::move(socket), worker, info.index));
      } else {
        spawn(*worker.io, serve_outbound(std::move(socket), worker, info.index));
      }
    }
  }

  // Keeps the connection count and the worker's registry right however the coroutine exits.
  struct ConnGuard {
    ConnGuard(Impl& impl, Worker& worker) : impl(impl), worker(worker) {
      worker.connections.push_back(&entry);
      it = std::prev(worker.connections.end());
    }
    ~ConnGuard() {
      worker.connections.erase(it);
      impl.active_connections.fetch_sub(1);
    }
    Impl& impl;
    Worker& worker;
    ConnEntry entry;
    std::list<ConnEntry*>::iterator it;
  };

  // --- inbound -------------------------------------------------------------------------------

  // The connection's stream once it is known to be plaintext or (handshake done, client SVID
  // verified into `peer`) mTLS; null when it was refused (logged) or went away. Its own coroutine,
  // so the detection and handshake state is not kept in the frame of a connection that lives on.
  awaitable<std::unique_ptr<net::Stream>> open_inbound(tcp::socket& socket, size_t index, MtlsMode mode,
                                                       const std::string& source,
                                                       std::optional<tls::PeerIdentity>& peer) {
    const InboundPort& port = config.inbound[index];
    // Decide plaintext vs TLS before a single byte is forwarded anywhere.
    bool use_tls = false;
    if (mode != MtlsMode::Disable) {
      net::Watchdog detect_deadline(socket.get_executor(), [&socket] {
        std::error_code ignored;
        socket.close(ignored);
      });
      detect_deadline.arm(std::chrono::milliseconds(config.limits.header_timeout_ms));
      unsigned char first[2] = {0, 0};
      size_t n = 0;
      for (int attempt = 0; attempt < 1000 && n < 2; ++attempt) {
        std::error_code ec;
        n = co_await socket.async_receive(asio::buffer(first), tcp::socket::message_peek, nothrow(ec));
        if (ec || n == 0) co_return nullptr;    // closed (or timed out) before saying anything
        if (n == 1 && first[0] != 0x16) break;  // cannot be TLS
        if (n < 2) {
          asio::steady_timer wait(socket.get_executor(), 5ms);
          co_await wait.async_wait(nothrow(ec));
        }
      }
      use_tls = tls::looks_like_tls(std::string_view(reinterpret_cast<const char*>(first), n));
      if (!use_tls && mode == MtlsMode::Strict) {
        log_connection_refused("inbound", source, port.port, "plaintext_on_strict_port",
                               "mTLS is required (STRICT); the connection was closed before reading it");
        co_return nullptr;
      }
    }

    if (use_tls) {
      auto state = usable_tls();
      if (!state) {
        log_connection_refused("inbound", source, port.port, "no_certificate",
                               "no valid certificate: mTLS service unavailable");
        co_return nullptr;
      }
      auto tls_stream = std::make_unique<net::TlsStream>(std::move(socket), state->server);
      net::Watchdog deadline(tls_stream->socket().get_executor(), [s = tls_stream.get()] { s->close(); });
      deadline.arm(std::chrono::milliseconds(config.limits.header_timeout_ms));
      std::error_code ec;
      co_await tls_stream->handshake(asio::ssl::stream_base::server, ec);
      deadline.disarm();
      if (ec) {
        log_connection_refused("inbound", source, port.port, "tls_handshake_failed", ec.message());
        co_return nullptr;
      }
      registry
          .counter("meshguard_tls_handshakes_total",
                   {{"side", "server"}, {"resumed", SSL_session_reused(tls_stream->ssl()) == 1 ? "true" : "false"}})
          .inc();
      auto verified = tls::verify_peer(tls_stream->ssl(), *state->creds, std::time(nullptr));
      if (!verified) {
        log_connection_refused("inbound", source, port.port, "peer_certificate_rejected",
                               verified.error().to_string());
        co_return nullptr;
      }
      peer = std::move(*verified);
      co_return tls_stream;
    }
    co_return std::make_unique<net::PlainStream>(std::move(socket));
  }

  awaitable<void> serve_inbound(tcp::socket socket, Worker& worker, size_t index) {
    ConnGuard guard(*this, worker);
    const InboundPort& port = config.inbound[index];
    std::string source = net::remote_address(socket);
    auto start = Clock::now();
    // The mode in force when the connection arrives (a later reload is checked per request).
    const MtlsMode mode = port_mode(index);

    std::optional<tls::PeerIdentity> peer;
    std::unique_ptr<net::Stream> stream = co_await open_inbound(socket, index, mode, source, peer);
    if (!stream) co_return;  // refused (logged) or gone
    guard.entry.stream = stream.get();

    if (port.protocol == Protocol::Tcp) {
      co_await serve_inbound_tcp(*stream, guard.entry, worker, index, source, peer, start);
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

  awaitable<void> serve_inbound_tcp(net::Stream& down, ConnEntry& entry, Worker& worker, size_t index,
                                    const std::string& source, const std::optional<tls::PeerIdentity>& peer,
                                    Clock::time_point start) {
    const InboundPort& port = config.inbound[index];
    ConnectionContext ctx{config.workload, port_mode(index), port.port, source, peer, {}, port.app_port};
    auto judging = chains.current();
    Verdict verdict = judging->connection->run(ctx);
    const Verdict& decision = verdict.allow ? ctx.decision : verdict;
    std::string source_principal = peer ? peer->id.str() : "unknown";
    telemetry::Labels labels = {{"reporter", "destination"},
                                {"source_principal", source_principal},
                                {"destination_principal", own_principal()},
                                {"destination_workload", config.workload.name},
                                {"destination_workload_namespace", config.workload.ns},
                                {"connection_security_policy", peer ? "mutual_tls" : "none"}};
    count_decision(decision, verdict.allow);
    if (!verdict.allow) {
      log_tcp(source, source_principal, port, 0, 0, start, "denied", decision);
      count_refused("inbound", "denied");
      co_return;
    }
    tcp::socket app(down.socket().get_executor());
    std::error_code ec;
    co_await app.async_connect({asio::ip::address_v4::loopback(), port.app_port}, nothrow(ec));
    if (ec) {
      log_tcp(source, source_principal, port, 0, 0, start, kUpstreamConnectFailure, decision);
      co_return;
    }
    registry.counter("istio_tcp_connections_opened_total", labels).inc();
    net::PlainStream up(std::move(app));
    // Registered for policy reloads while spliced (all on this worker's thread).
    LiveTcp live{index, source, peer, &up, false, judging->generation};
    entry.tcp = &live;
    struct Unregister {
      ConnEntry& entry;
      ~Unregister() { entry.tcp = nullptr; }
    } unregister{entry};
    rejudge_if_chains_changed(entry, live);
    auto [received, sent] = co_await splice(down, up, worker.buffers);
    registry.counter("istio_tcp_connections_closed_total", labels).inc();
    registry.counter("istio_tcp_received_bytes_total", labels).inc(received);
    registry.counter("istio_tcp_sent_bytes_total", labels).inc(sent);
    log_tcp(source, source_principal, port, received, sent, start, kNoFlags,
            live.closed_by_policy ? Verdict::deny(0, "", "closed: no longer allowed after a policy reload")
                                  : decision);
  }

  void log_tcp(const std::string& source, const std::string& source_principal, const InboundPort& port,
               uint64_t received, uint64_t sent, Clock::time_point start, const char* flags,
               const Verdict& decision) {
    std::array<char, 64> time;
    telemetry::JsonLine line(telemetry::AccessLog::scratch());
    line.str("time", telemetry::now_rfc3339(time))
        .str("direction", "inbound")
        .str("protocol", "tcp")
        .open("source")
        .str("principal", source_principal)
        .str("address", source)
        .close()
        .open("destination")
        .str("principal", own_principal())
        .num("port", port.port)
        .num("appPort", port.app_port)
        .close()
        .str("response_flags", flags);
    write_decision(line, &decision, "");
    line.millis("duration_ms", ms_since(start)).num("bytes_received", received).num("bytes_sent", sent);
    access_log->write_line(line.finish());
  }

  // The decision's fields of an access-log line, in the order the line has always had them.
  static void write_decision(telemetry::JsonLine& line, const Verdict* decision, std::string_view no_reason) {
    if (decision && !decision->action.empty()) {
      line.str("action", decision->action);
    } else {
      line.null("action");
    }
    if (!decision) {
      line.null("policy").null("rule").boolean("audit", false).null("dry_run").null("dry_run_policy");
      line.str("reason", no_reason);
      return;
    }
    line.str_or_null("policy", decision->policy)
        .num_or_null("rule", decision->rule)
        .boolean("audit", decision->audit)
        .boolean_or_null("dry_run", decision->dry_run_allow)
        .str_or_null("dry_run_policy", decision->dry_run_policy)
        .str("reason", decision->reason);
    write_opa_outcomes(line, *decision);
  }

  static constexpr size_t kMaxCachedSeries = 4096;  // per worker; past it the cache starts over

  static telemetry::Labels decision_labels(const Verdict& decision, bool allowed) {
    return {{"action", decision.action.empty() ? "NONE" : decision.action},
            {"policy", decision.policy.value_or("none")},
            {"result", allowed ? "allowed" : "denied"},
            {"dry_run", "false"}};
  }

  // The request path's form: the series found in the worker's cache.
  void count_decision(Worker& worker, const Verdict& decision, bool allowed) {
    std::string& key = worker.series_key;
    key.clear();
    key += allowed ? 'a' : 'd';
    key += decision.action;
    key += '\0';
    if (decision.policy) key += *decision.policy;
    auto it = worker.decision_series.find(key);
    if (it == worker.decision_series.end()) {
      if (worker.decision_series.size() >= kMaxCachedSeries) worker.decision_series.clear();
      auto* counter = &registry.counter("meshguard_authz_decisions_total", decision_labels(decision, allowed));
      it = worker.decision_series.emplace(key, counter).first;
    }
    it->second->inc();
    count_dry_run(decision);
  }

  void count_decision(const Verdict& decision, bool allowed) {
    registry.counter("meshguard_authz_decisions_total", decision_labels(decision, allowed)).inc();
    count_dry_run(decision);
  }

  void count_dry_run(const Verdict& decision) {
    count_opa_outcomes(registry, decision);
    if (decision.dry_run_allow) {
      // The shadow outcome: what enforcing the dry-run policies would have done.
      registry
          .counter("meshguard_authz_decisions_total",
                   {{"action", "DRY_RUN"},
                    {"policy", decision.dry_run_policy.value_or("none")},
                    {"result", *decision.dry_run_allow ? "allowed" : "denied"},
                    {"dry_run", "true"}})
          .inc();
    }
  }

  // Copies bytes both ways until both directions end (or nothing moves for the idle timeout);
  // returns {a→b bytes, b→a bytes}.
  awaitable<std::pair<uint64_t, uint64_t>> splice(net::Stream& a, net::Stream& b, BufferPool& pool) {
    using namespace asio::experimental::awaitable_operators;
    uint64_t a_to_b = 0, b_to_a = 0;
    auto idle = std::chrono::milliseconds(config.limits.idle_timeout_ms);
    net::Watchdog watchdog(a.socket().get_executor(), [&a, &b] {
      a.close();
      b.close();
    });
    watchdog.arm(idle);
    co_await (pump(a, b, pool, a_to_b, watchdog, idle) && pump(b, a, pool, b_to_a, watchdog, idle));
    co_return std::pair{a_to_b, b_to_a};
  }

  // Waits in a 1 KB buffer; only a read that fills it borrows a 16 KB one from the pool, kept
  // while reads keep filling it (a bulk transfer), so an idle spliced connection holds 2 × 1 KB.
  static awaitable<void> pump(net::Stream& from, net::Stream& to, BufferPool& pool, uint64_t& bytes,
                              net::Watchdog& idle_watchdog, std::chrono::milliseconds idle) {
    char small[kIdleRead];
    BufferPool::Lease big(pool);
    bool burst = false;
    while (true) {
      std::error_code ec;
      asio::mutable_buffer buf = burst ? big.get() : asio::buffer(small);
      size_t n = co_await from.read_some(buf, ec);
      if (ec || n == 0) break;
      idle_watchdog.arm(idle);
      co_await to.write_all(asio::buffer(buf.data(), n), ec);
      if (ec) {
        from.close();
        break;
      }
      bytes += n;
      burst = n == buf.size();
      if (!burst) big.release();
    }
    to.shutdown_send();
  }

  // --- inbound HTTP ----------------------------------------------------------------------------

  struct Exchange {
    std::string method, host, path;
    int status = 0;
    const char* flags = kNoFlags;
    std::string details = "via_upstream";  // Envoy's %RESPONSE_CODE_DETAILS% vocabulary where it fits
    std::string upstream_principal;         // outbound: the server's verified SPIFFE ID
    uint64_t bytes_received = 0, bytes_sent = 0;
    Clock::time_point start = Clock::now();
    std::vector<http::Header> add_response_headers;  // an allowing OPAPolicy's response_headers_to_add
  };

  // One side of an HTTP proxying connection: inbound (a listener port → the local app, with the
  // enforcement chain) or outbound (the local app → a route's destination proxy over mTLS).
  struct HttpSide {
    const InboundPort* inbound = nullptr;
    size_t inbound_index = 0;
    std::optional<size_t> route;
    std::string source;                       // downstream "ip:port"
    std::optional<tls::PeerIdentity> peer;    // inbound mTLS peer
    uint16_t listen_port = 0;
    ConnEntry* entry = nullptr;  // the connection's registration with its worker
    std::string source_principal() const { return peer ? peer->id.str() : "unknown"; }
  };

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
        log_connection_refused("inbound", source, side.listen_port, "plaintext_on_strict_port",
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
      count_decision(worker, *decision, verdict.allow);
    }
    if (!verdict.allow) {
      ex.details = verdict.status == 403   ? "rbac_access_denied"
                   : verdict.status == 401 ? "jwt_authn_access_denied"
                                           : "local_deny";
      // The request body (if any) was not read: close rather than guess where the next request starts.
      bool keep = req.keep_alive && req.framing == http::BodyFraming::None && !draining;
      co_await local_reply(down, ex, verdict.status, verdict.body, keep, verdict.response_headers);
      finish_request(worker, ex, side, decision);
      co_return keep;
    }

    // 3. Forward.
    if (decision) ex.add_response_headers = decision->response_headers;
    bool keep = co_await forward(down, in, chunk, watchdog, worker, side, req, upgrade, as_received, ex);
    finish_request(worker, ex, side, decision);
    co_return keep;
  }

  awaitable<void> local_reply(net::Stream& down, Exchange& ex, int status, const std::string& body, bool keep_alive,
                              const std::vector<http::Header>& extra = {}) {
    if (ex.details == "via_upstream") ex.details = "local_reply";
    // A denying OPAPolicy's headers may name the body's type itself.
    const bool typed = std::any_of(extra.begin(), extra.end(), [](const auto& h) { return h.name == "content-type"; });
    std::string response = http::make_response(status, typed ? "" : "text/plain", body, keep_alive, extra);
    std::error_code ec;
    co_await down.write_all(asio::buffer(response), ec);
    ex.status = status;
    ex.bytes_sent += response.size();
    if (!keep_alive) down.shutdown_send();
  }

  // istio_requests_total and istio_request_duration_milliseconds for these label values.
  Worker::RequestSeries& request_series(Worker& worker, bool inbound, bool mtls, int status, std::string_view flags,
                                        std::string_view source_principal, std::string_view destination_principal) {
    char code[16];
    auto code_end = std::to_chars(code, code + sizeof code, status).ptr;
    std::string& key = worker.series_key;
    key.clear();
    key += inbound ? 'i' : 'o';
    key += mtls ? 'm' : 'n';
    key.append(code, code_end);
    key += '\0';
    key += flags;
    key += '\0';
    key += source_principal;
    key += '\0';
    key += destination_principal;
    auto it = worker.request_series.find(key);
    if (it != worker.request_series.end()) return it->second;
    if (worker.request_series.size() >= kMaxCachedSeries) worker.request_series.clear();
    telemetry::Labels labels = {{"reporter", inbound ? "destination" : "source"},
                                {"source_principal", std::string(source_principal)},
                                {"destination_principal", std::string(destination_principal)},
                                {inbound ? "destination_workload" : "source_workload", config.workload.name},
                                {inbound ? "destination_workload_namespace" : "source_workload_namespace", config.workload.ns},
                                {"request_protocol", "http"},
                                {"response_code", std::string(code, code_end)},
                                {"response_flags", std::string(flags)},
                                {"connection_security_policy", mtls ? "mutual_tls" : "none"}};
    Worker::RequestSeries series{&registry.counter("istio_requests_total", labels),
                                 &registry.histogram("istio_request_duration_milliseconds", labels)};
    return worker.request_series.emplace(key, series).first->second;
  }

  void finish_request(Worker& worker, const Exchange& ex, const HttpSide& side, const Verdict* decision) {
    double duration = ms_since(ex.start);
    bool inbound = side.inbound != nullptr;
    auto tls = tls_state.load();  // keeps the own SPIFFE ID's string alive for the views below
    std::string_view own = tls && tls->creds ? std::string_view(tls->creds->own_id.str()) : "unknown";
    std::string_view source_principal =
        !inbound ? own : side.peer ? std::string_view(side.peer->id.str()) : std::string_view("unknown");
    std::string_view destination_principal =
        inbound ? own : ex.upstream_principal.empty() ? std::string_view("unknown") : ex.upstream_principal;
    auto& series = request_series(worker, inbound, !inbound || side.peer, ex.status, ex.flags, source_principal,
                                  destination_principal);
    series.requests->inc();
    series.duration->observe_ms(duration);
    std::array<char, 64> time;
    telemetry::JsonLine line(telemetry::AccessLog::scratch());
    line.str("time", telemetry::now_rfc3339(time))
        .str("direction", inbound ? "inbound" : "outbound")
        .str("protocol", "http")
        .open("source")
        .str("principal", source_principal)
        .str("address", side.source)
        .close()
        .open("destination")
        .str("principal", destination_principal);
    if (inbound) {
      line.num("port", side.listen_port).num("appPort", side.inbound->app_port);
    } else {
      const auto& r = config.outbound[*side.route];
      line.str("address", r.destination_address + ":" + std::to_string(r.destination_port));
    }
    line.close()
        .str("method", ex.method)
        .str("host", ex.host)
        .str("path", ex.path)
        .num("status", ex.status)
        .str("response_flags", ex.flags)
        .str("response_code_details", ex.details);
    write_decision(line, decision, inbound ? "malformed request" : "");
    line.millis("duration_ms", duration)
        .num("bytes_received", ex.bytes_received)
        .num("bytes_sent", ex.bytes_sent);
    access_log->write_line(line.finish());
  }

  // Inbound ports to the same app port share a pool; each outbound route has its own.
  static uint64_t pool_key(const HttpSide& side) {
    return side.inbound ? side.inbound->app_port : (uint64_t{1} << 32) + *side.route;
  }

  // A pooled connection for `side`, or a new one: a plaintext connection to the local app, or
  // (outbound) an mTLS connection to the route's destination with the server's identity verified.
  // A pooled connection with anything to read is never handed to a request (Envoy's premature
  // response rule): no request is outstanding on it, so those bytes — a stray response from a
  // faulty app, a close, a TLS alert — would be read as this request's answer. It is closed.
  // Checked at reuse rather than watched while idle: cheaper per reuse (docs/BENCHMARKS.md).
  awaitable<std::unique_ptr<UpstreamConn>> acquire_upstream(Worker& worker, const HttpSide& side,
                                                            bool& reused, std::string& reason,
                                                            std::string& detail) {
    auto& idle = worker.idle_upstreams[pool_key(side)];
    while (!idle.empty()) {
      auto conn = std::move(idle.back());
      idle.pop_back();
      if (!net::nothing_to_read(*conn->stream)) continue;  // closed as it goes out of scope
      reused = true;
      co_return conn;
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
      up = co_await acquire_upstream(worker, side, reused, reason, detail);
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
    for (const auto& h : ex.add_response_headers) down_resp.headers.add(h.name, h.value);
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
    if (upstream_keep && up->buffer.empty()) release_upstream(worker, side, std::move(up));
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
    const auto& route = config.outbound[*side.route];
    std::string destination = route.destination_address + ":" + std::to_string(route.destination_port);
    count_refused("outbound", reason);
    log_line("outbound to " + destination + " refused: " + reason + ": " + detail);
    access_log->write({{"time", telemetry::now_rfc3339()},
                       {"direction", "outbound"},
                       {"event", "connection_refused"},
                       {"source", {{"address", side.source}}},
                       {"destination", {{"address", destination}}},
                       {"reason", reason},
                       {"detail", detail}});
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
    ConnGuard guard(*this, worker);
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
    std::string destination = route.destination_address + ":" + std::to_string(route.destination_port);
    std::string own = up->creds->own_id.str();
    telemetry::Labels labels = {{"reporter", "source"},
                                {"source_principal", own},
                                {"destination_principal", up->peer_principal},
                                {"source_workload", config.workload.name},
                                {"source_workload_namespace", config.workload.ns},
                                {"connection_security_policy", "mutual_tls"}};
    registry.counter("istio_tcp_connections_opened_total", labels).inc();
    auto [sent, received] = co_await splice(down, *up->stream, worker.buffers);
    remember_session(worker, index, *up);
    registry.counter("istio_tcp_connections_closed_total", labels).inc();
    registry.counter("istio_tcp_sent_bytes_total", labels).inc(sent);
    registry.counter("istio_tcp_received_bytes_total", labels).inc(received);
    access_log->write({{"time", telemetry::now_rfc3339()},
                       {"direction", "outbound"},
                       {"protocol", "tcp"},
                       {"source", {{"principal", own}, {"address", side.source}}},
                       {"destination", {{"principal", up->peer_principal}, {"address", destination}}},
                       {"response_flags", kNoFlags},
                       {"policy", nullptr},
                       {"rule", nullptr},
                       {"duration_ms", ms_since(start)},
                       {"bytes_received", received},
                       {"bytes_sent", sent}});
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
    if (reload_timer) reload_timer->cancel();
    if (policy_timer) policy_timer->cancel();
    for (auto& w : workers) {
      asio::post(*w->io, [worker = w.get()] {
        for (ConnEntry* c : worker->connections) {
          if (c->idle && c->stream) c->stream->close();
        }
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
      if (active_connections.load() == 0 || Clock::now() >= drain_deadline) {
        if (active_connections.load() != 0) {
          log_line("drain timeout: closing " + std::to_string(active_connections.load()) + " connection(s)");
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

ChainSet& Proxy::chains() { return impl_->chains; }

Status Proxy::reload_policies() {
  if (!impl_->config.policy_dir) return fail("proxy.no_policy_dir", "no policyDir is configured");
  return impl_->reload_policies(true);
}

void Proxy::reload_credentials() { impl_->reload_tls(true); }

std::vector<Proxy::Listener> Proxy::listeners() const {
  std::vector<Listener> out;
  for (const auto& l : impl_->listeners) {
    out.push_back({l.kind == "admin" ? l.kind : l.kind + "[" + std::to_string(l.index) + "]", l.address});
  }
  return out;
}
telemetry::Registry& Proxy::metrics() { return impl_->registry; }

Result<std::unique_ptr<Proxy>> Proxy::create(ProxyConfig config) {
  auto impl = std::make_unique<Impl>();
  impl->config = std::move(config);
  auto initial = std::make_shared<PolicyState>();
  initial->inbound_modes = impl->inbound_modes(nullptr);
  impl->policy_state.store(std::move(initial));
  if (impl->config.policy_dir) {
    // Fail closed: a policy directory that does not load or compile refuses start-up (later
    // reloads keep the last good version instead).
    std::lock_guard lock(impl->policy_mutex);
    if (auto stamps = stat_policy_dir(*impl->config.policy_dir)) impl->policy_stamps = std::move(*stamps);
    auto files = digest_policy_dir(*impl->config.policy_dir);
    if (!files) return fail(files.error());
    auto loaded = load_policy_chains(*impl->config.policy_dir, impl->config.workload, impl->jwks.provider(),
                                     impl->config.num_trusted_proxies);
    if (!loaded) return fail(loaded.error());
    impl->jwks.retarget(loaded->snapshot->jwt_rules());
    auto state = std::make_shared<PolicyState>();
    state->version = 1;
    state->hash = combined_policy_hash(*files);
    state->loaded_at = telemetry::now_rfc3339();
    state->files = std::move(*files);
    state->origins = std::move(loaded->origins);
    state->snapshot = loaded->snapshot;
    state->resources = loaded->resources;
    state->inbound_modes = impl->inbound_modes(state->snapshot.get());
    impl->policy_attempted_hash = state->hash;
    impl->policy_state.store(std::move(state));
    impl->chains.replace(loaded->request, loaded->connection);
  }
  impl->http_limits.max_head_bytes = impl->config.limits.max_head_bytes;
  impl->http_limits.max_headers = impl->config.limits.max_headers;
  auto log = telemetry::AccessLog::open(impl->config.access_log);
  if (!log) return fail(log.error());
  impl->access_log = std::move(*log);
  impl->registry.describe("istio_requests_total", "Requests handled by the proxy.");
  impl->registry.describe("istio_request_duration_milliseconds", "Request duration.");
  impl->registry.describe("istio_tcp_connections_opened_total", "TCP connections opened.");
  impl->registry.describe("meshguard_authz_decisions_total", "Authorization decisions by policy and result.");
  impl->registry.describe("meshguard_connections_refused_total", "Connections refused before reaching the app.");
  impl->registry.describe("meshguard_certificate_expiry_timestamp_seconds", "Workload certificate notAfter (unix seconds).");
  impl->registry.describe("meshguard_certificate_state",
                          "1 for the workload certificate's current state (Available, Unavailable, None = no tls).");
  impl->registry.describe("meshguard_config_reload_total", "policyDir reload attempts by result.");
  impl->registry.describe(
      "meshguard_connections_closed_total",
      "Live connections closed by the proxy (e.g. no longer allowed after a policy reload).");
  if (impl->config.tls) {
    impl->tls_stamps = Impl::stamps_of(*impl->config.tls);
    if (auto st = impl->load_tls(); !st) {
      // Fail closed but stay up: mTLS ports refuse until a valid certificate appears (hot reload).
      log_line("no usable certificate, mTLS is unavailable until it is fixed: " + st.error().to_string());
    }
  }
  return std::unique_ptr<Proxy>(new Proxy(std::move(impl)));
}

Status Proxy::start() {
  Impl& d = *impl_;
  unsigned count = d.config.workers ? d.config.workers : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < count; ++i) {
    auto w = std::make_unique<Worker>();
    w->guard.emplace(w->io->get_executor());
    d.workers.push_back(std::move(w));
  }
  auto bind = [&](const std::string& address, uint16_t port, const std::string& kind, size_t index) -> Status {
    std::error_code ec;
    auto addr = asio::ip::make_address(address, ec);
    if (ec) return fail("proxy.bad_address", kind + ": bad address '" + address + "'");
    auto acceptor = std::make_unique<tcp::acceptor>(d.main_io);
    tcp::endpoint ep(addr, port);
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("proxy.listen", kind + " " + address + ":" + std::to_string(port) + ": " + ec.message());
    auto local = acceptor->local_endpoint(ec);
    std::string where = local.address().to_string() + ":" + std::to_string(local.port());
    // Port 0 in the config: from now on the port is the one the kernel chose.
    if (kind == "inbound") d.config.inbound[index].port = local.port();
    if (kind == "outbound") d.config.outbound[index].listen_port = local.port();
    Impl::ListenerInfo info{kind, index, where};
    d.listeners.push_back(info);
    std::printf("listening %s %s\n", (kind == "admin" ? kind : kind + "[" + std::to_string(index) + "]").c_str(),
                where.c_str());
    d.acceptors.push_back(std::move(acceptor));
    return {};
  };
  for (size_t i = 0; i < d.config.inbound.size(); ++i) {
    if (auto st = bind(d.config.inbound[i].address, d.config.inbound[i].port, "inbound", i); !st) return st;
  }
  for (size_t i = 0; i < d.config.outbound.size(); ++i) {
    if (auto st = bind(d.config.outbound[i].listen_address, d.config.outbound[i].listen_port, "outbound", i); !st) return st;
  }
  if (d.config.admin_port) {
    if (auto st = bind(d.config.admin_address, *d.config.admin_port, "admin", 0); !st) return st;
  }
  std::fflush(stdout);
  for (size_t i = 0; i < d.acceptors.size(); ++i) {
    d.spawn(d.main_io, d.accept_loop(*d.acceptors[i], d.listeners[i]));
  }
  d.signals.emplace(d.main_io, SIGTERM, SIGINT);
  d.signals->async_wait([&d](std::error_code ec, int) {
    if (!ec) d.begin_drain();
  });
  if (d.config.tls) {
    d.reload_timer.emplace(d.main_io);
    d.schedule_tls_reload();
  }
  if (d.config.policy_dir) {
    d.policy_timer.emplace(d.main_io);
    d.schedule_policy_poll();
  }
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
