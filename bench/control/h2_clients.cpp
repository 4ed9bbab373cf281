// bench/control h2 clients — see h2_clients.h.
#include "h2_clients.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <openssl/err.h>

#include "crypto/openssl.h"
#include "http2/client.h"

namespace control_bench {

namespace {

constexpr std::string_view kWatchPath = "/meshguard.v1.ConfigService/Watch";
constexpr size_t kGrpcPrefix = 5;  // gRPC message: compressed flag (1 byte), length (4, big-endian)
constexpr int kReadsPerWake = 256;
constexpr uint32_t kHttp2Cancel = 0x8;    // RFC 9113 §7: CANCEL, what gRPC's TryCancel resets with
constexpr size_t kReadChunk = 16 * 1024;  // one TLS record's plaintext at most

// SSL_get_error needs an empty error queue; it almost always is, and looking costs less than
// clearing (proxy/net.cpp measured the same).
void clear_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

void put_grpc_message(const google::protobuf::MessageLite& m, std::string& out) {
  const size_t n = m.ByteSizeLong();
  const size_t at = out.size();
  out.resize(at + kGrpcPrefix + n);
  out[at] = 0;  // not compressed
  const uint32_t be = htonl(static_cast<uint32_t>(n));
  std::memcpy(&out[at + 1], &be, 4);
  m.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(&out[at + kGrpcPrefix]));
}

// One client context for every connection: TLS 1.2–1.3 as gRPC's client offers, the server's
// chain verified against the trust bundle and its name checked (per SSL, SSL_set1_host) against
// the control plane's TLS host name, as make_channel's target-name override does. Each SSL
// presents its own proxy's SVID.
mg::crypto::SslCtxPtr client_context(const std::string& bundle_pem) {
  mg::crypto::SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) die("SSL_CTX_new: " + mg::crypto::last_error());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  auto roots = mg::crypto::parse_cert_chain_pem(bundle_pem);
  if (!roots) die("trust bundle: " + roots.error().to_string());
  for (const auto& c : *roots)
    if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), c.get()) != 1)
      die("trust bundle: " + mg::crypto::last_error());
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  if (SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof kAlpn) != 0) die("ALPN: " + mg::crypto::last_error());
  // Read ahead: a record's header and body (and the records behind it) in one read(2); the loop
  // then stops reading once nothing is left buffered (SSL_has_pending), not at an EAGAIN.
  SSL_CTX_set_read_ahead(ctx.get(), 1);
  SSL_CTX_set_default_read_buffer_len(ctx.get(), kReadChunk + 1024);
  // Partial writes and a moving buffer: the pending output is one string that grows at its end.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
  return ctx;
}

struct Identity {
  std::vector<mg::crypto::X509Ptr> chain;  // leaf first
  mg::crypto::PKeyPtr key;
};

Identity parse_identity(const mg::api::SvidFiles& id) {
  Identity out;
  auto chain = mg::crypto::parse_cert_chain_pem(id.cert_chain_pem);
  if (!chain) die("SVID: " + chain.error().to_string());
  auto key = mg::crypto::parse_private_key_pem(id.key_pem);
  if (!key) die("SVID key: " + key.error().to_string());
  out.chain = std::move(*chain);
  out.key = std::move(*key);
  return out;
}

}  // namespace

// One proxy's connection and Watch stream, owned and driven by one Loop.
struct Conn {
  enum class State { Connecting, Handshaking, Open, Done };
  int index = 0;
  int fd = -1;
  State state = State::Connecting;
  mg::crypto::SslPtr ssl;
  std::unique_ptr<mg::http2::ClientSession> h2;
  int32_t stream = 0;
  std::string in;   // gRPC message bytes received and not yet a whole message
  std::string out;  // TLS plaintext to write, from out_at on
  size_t out_at = 0;
  size_t retry_len = 0;        // a write that wanted to be retried: OpenSSL wants the same length again
  uint32_t interest = 0;       // the epoll events registered
  uint64_t queued = 0;         // bytes ever put in `out`
  uint64_t written = 0;        // bytes ever taken by SSL_write
  uint64_t body_appended = 0;  // request body bytes handed to the session (Hello, ACKs)
  struct PendingAck {
    uint64_t body_end;  // where its message ends in the request body
    uint64_t wire_end;  // where its DATA frame ends in `queued` (0: not yet taken from the session)
    int64_t revision;
  };
  std::deque<PendingAck> acks;
  bool first_acked = false;
  int64_t counted_target = -1;
  std::vector<double> latencies_ms;
};

// One epoll loop and the connections it drives; connections are handed over through `inbox`.
struct H2Proxies::Loop {
  struct Start {
    int index;
    std::string address;
    Identity id;
  };

  Loop(Round& r, SSL_CTX* c) : round(r), ctx(c) {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epfd < 0 || wake < 0) die(std::string("epoll/eventfd: ") + std::strerror(errno));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, wake, &ev) != 0)
      die(std::string("epoll_ctl: ") + std::strerror(errno));
    thread = std::thread([this] { run(); });
  }
  ~Loop() {
    stop();
    ::close(epfd);
    ::close(wake);
  }

  void post(Start s) {
    {
      std::lock_guard lock(mutex);
      inbox.push_back(std::move(s));
    }
    poke();
  }

  void stop() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    poke();
    if (thread.joinable()) thread.join();
  }

  std::string first_error() {
    std::lock_guard lock(mutex);
    return error;
  }

  Round& round;
  SSL_CTX* ctx;
  // Every connection this loop started, in the order it started them (never removed: their
  // latencies are read after the run); the loop thread's alone, but for those reads.
  std::vector<std::unique_ptr<Conn>> all;

 private:
  void poke() {
    const uint64_t one = 1;
    // Fails only when the counter is saturated: the loop is then awake anyway.
    [[maybe_unused]] const ssize_t n = ::write(wake, &one, sizeof one);
  }

  void run() {
    epoll_event ready[256];
    while (true) {
      // Bounded: every wait ends within 100 ms, and the loop ends when stop() asks.
      const int n = epoll_wait(epfd, ready, 256, 100);
      for (int i = 0; i < n; ++i) {
        if (ready[i].data.fd == wake) {
          uint64_t count;
          [[maybe_unused]] const ssize_t r = ::read(wake, &count, sizeof count);
          continue;
        }
        auto it = by_fd.find(ready[i].data.fd);
        if (it != by_fd.end()) on_ready(*it->second, ready[i].events);
      }
      std::vector<Start> starts;
      bool stop_now = false;
      {
        std::lock_guard lock(mutex);
        starts.swap(inbox);
        stop_now = stopping;
      }
      if (stop_now) break;
      for (auto& s : starts) begin(std::move(s));
    }
    for (auto& c : all) cancel(*c);
    by_fd.clear();
  }

  void fail(Conn& c, const std::string& why) {
    if (c.state == Conn::State::Done) return;
    c.state = Conn::State::Done;
    {
      std::lock_guard lock(mutex);
      if (error.empty()) error = "proxy-" + std::to_string(c.index) + ": " + why;
    }
    close_conn(c);
    round.bump(round.ended);
  }

  void close_conn(Conn& c) {
    if (c.fd < 0) return;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c.fd, nullptr);
    by_fd.erase(c.fd);
    ::close(c.fd);
    c.fd = -1;
  }

  // What gRPC's TryCancel sends: RST_STREAM(CANCEL) on the stream; then the connection closes.
  void cancel(Conn& c) {
    if (c.state == Conn::State::Open) {
      c.h2->reset(c.stream, kHttp2Cancel);
      c.queued += c.h2->take_output(c.out);
      write_out(c);
    }
    c.state = Conn::State::Done;
    close_conn(c);
  }

  void set_interest(Conn& c, uint32_t events) {
    if (c.fd < 0 || events == c.interest) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = c.fd;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev);
    c.interest = events;
  }

  void begin(Start s) {
    all.push_back(std::make_unique<Conn>());
    Conn& c = *all.back();
    c.index = s.index;
    const auto colon = s.address.rfind(':');
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::atoi(s.address.c_str() + colon + 1)));
    if (colon == std::string::npos ||
        inet_pton(AF_INET, s.address.substr(0, colon).c_str(), &addr.sin_addr) != 1)
      return fail(c, "bad address " + s.address);
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) return fail(c, std::string("socket: ") + std::strerror(errno));
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // as gRPC sets it
    c.ssl.reset(SSL_new(ctx));
    if (!c.ssl || SSL_set_fd(c.ssl.get(), c.fd) != 1 ||
        SSL_set_tlsext_host_name(c.ssl.get(), mg::api::kControlPlaneHost) != 1 ||
        SSL_set1_host(c.ssl.get(), mg::api::kControlPlaneHost) != 1 ||
        SSL_use_certificate(c.ssl.get(), s.id.chain.front().get()) != 1 ||
        SSL_use_PrivateKey(c.ssl.get(), s.id.key.get()) != 1)
      return fail(c, "TLS setup: " + mg::crypto::last_error());
    for (size_t i = 1; i < s.id.chain.size(); ++i)
      if (SSL_add1_chain_cert(c.ssl.get(), s.id.chain[i].get()) != 1)
        return fail(c, "TLS chain: " + mg::crypto::last_error());
    SSL_set_connect_state(c.ssl.get());
    epoll_event ev{};
    ev.events = EPOLLOUT;  // writable: the connect completed (or failed: SO_ERROR says)
    ev.data.fd = c.fd;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c.fd, &ev) != 0)
      return fail(c, std::string("epoll_ctl: ") + std::strerror(errno));
    c.interest = EPOLLOUT;
    by_fd[c.fd] = &c;
    if (::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS)
      return fail(c, std::string("connect: ") + std::strerror(errno));
  }

  void on_ready(Conn& c, uint32_t events) {
    switch (c.state) {
      case Conn::State::Connecting: {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
          return fail(c, std::string("connect: ") + std::strerror(err != 0 ? err : errno));
        c.state = Conn::State::Handshaking;
        return handshake(c);
      }
      case Conn::State::Handshaking:
        return handshake(c);
      case Conn::State::Open:
        if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) return read_tls(c);
        if ((events & EPOLLOUT) != 0) return flush(c);
        return;
      case Conn::State::Done:
        return;
    }
  }

  void handshake(Conn& c) {
    clear_errors();
    const int r = SSL_do_handshake(c.ssl.get());
    if (r == 1) {
      const unsigned char* alpn = nullptr;
      unsigned int alpn_len = 0;
      SSL_get0_alpn_selected(c.ssl.get(), &alpn, &alpn_len);
      if (std::string_view(reinterpret_cast<const char*>(alpn), alpn_len) != "h2")
        return fail(c, "the control plane did not select ALPN h2");
      return open_stream(c);
    }
    const int err = SSL_get_error(c.ssl.get(), r);
    if (err == SSL_ERROR_WANT_READ) return set_interest(c, EPOLLIN);
    if (err == SSL_ERROR_WANT_WRITE) return set_interest(c, EPOLLOUT);
    const long verify = SSL_get_verify_result(c.ssl.get());
    fail(c, "TLS handshake: " + mg::crypto::last_error() +
                (verify != X509_V_OK ? std::string(" (") + X509_verify_cert_error_string(verify) + ")" : ""));
  }

  // The Watch call as gRPC's client starts it: POST with gRPC's headers, then the Hello message.
  void open_stream(Conn& c) {
    auto session = mg::http2::ClientSession::create(mg::http2::Limits{});
    if (!session) return fail(c, session.error().to_string());
    c.h2 = std::move(*session);
    mg::http::Request req;
    req.method = "POST";
    req.target = std::string(kWatchPath);
    req.host = mg::api::kControlPlaneHost;
    req.headers.add("content-type", "application/grpc");
    req.headers.add("te", "trailers");
    req.headers.add(
        "grpc-timeout",
        std::to_string(std::chrono::duration_cast<std::chrono::minutes>(kStreamDeadline).count()) + "M");
    req.headers.add("user-agent", "control_bench-h2");
    auto id = c.h2->submit(req, "https", false);
    if (!id) return fail(c, id.error().to_string());
    c.stream = *id;
    pb::WatchRequest hello;
    hello.mutable_hello()->set_workload("proxy-" + std::to_string(c.index));
    (*hello.mutable_hello()->mutable_labels())["app"] = "bench";
    hello.mutable_hello()->set_cert_state("Available");
    scratch.clear();
    put_grpc_message(hello, scratch);
    if (auto st = c.h2->append_body(c.stream, scratch); !st) return fail(c, st.error().to_string());
    c.body_appended += scratch.size();
    c.state = Conn::State::Open;
    set_interest(c, EPOLLIN);
    flush(c);
  }

  void read_tls(Conn& c) {
    for (int i = 0; i < kReadsPerWake; ++i) {
      size_t n = 0;
      clear_errors();
      const int r = SSL_read_ex(c.ssl.get(), read_buf.data(), read_buf.size(), &n);
      if (r == 1) {
        if (auto st = c.h2->receive(std::string_view(read_buf.data(), n)); !st)
          return fail(c, st.error().to_string());
        if (!SSL_has_pending(c.ssl.get())) break;  // more on the socket: epoll says so again
        continue;
      }
      const int err = SSL_get_error(c.ssl.get(), r);
      if (err == SSL_ERROR_WANT_READ) break;
      if (err == SSL_ERROR_WANT_WRITE) {
        set_interest(c, EPOLLIN | EPOLLOUT);
        break;
      }
      if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
        return fail(c, "the control plane closed the connection");
      return fail(c, "TLS read: " + mg::crypto::last_error());
    }
    handle_events(c);
    if (c.state != Conn::State::Open) return;
    flush(c);
  }

  void handle_events(Conn& c) {
    // Bounded: each round takes what the bytes already received produced.
    for (int round_trip = 0; round_trip < 64 && c.h2->take_events(events); ++round_trip) {
      for (auto& ev : events) {
        if (ev.stream != c.stream) continue;
        switch (ev.kind) {
          case mg::http2::Event::Kind::Head: {
            const auto type = ev.response.headers.get("content-type");
            if (ev.response.status != 200 || !type || type->rfind("application/grpc", 0) != 0)
              return fail(c, "the Watch call was answered HTTP " + std::to_string(ev.response.status));
            if (ev.end_stream) {  // trailers-only: the call ended at once
              return fail(c, "the Watch call ended: grpc-status " +
                                 std::string(ev.response.headers.get("grpc-status").value_or("?")) + " " +
                                 std::string(ev.response.headers.get("grpc-message").value_or("")));
            }
            break;
          }
          case mg::http2::Event::Kind::Data:
            c.in.append(ev.data);
            c.h2->consume(c.stream, ev.data.size());
            read_messages(c);
            break;
          case mg::http2::Event::Kind::End:
            return fail(c, "the Watch call ended: grpc-status " +
                               std::string(ev.trailers.get("grpc-status").value_or("?")) + " " +
                               std::string(ev.trailers.get("grpc-message").value_or("")));
          case mg::http2::Event::Kind::Closed:
            return fail(c, "the Watch stream was reset (HTTP/2 error " + std::to_string(ev.error_code) + ")");
          case mg::http2::Event::Kind::Refused:
            break;
        }
        if (c.state != Conn::State::Open) return;
      }
    }
    if (!c.h2->alive()) fail(c, "the HTTP/2 session ended: " + c.h2->close_reason());
  }

  // Every whole gRPC message received: a ConfigSnapshot each, answered with its ACK.
  void read_messages(Conn& c) {
    size_t at = 0;
    while (c.in.size() - at >= kGrpcPrefix) {
      uint32_t len = 0;
      std::memcpy(&len, c.in.data() + at + 1, 4);
      len = ntohl(len);
      if (c.in[at] != 0) return fail(c, "a compressed message (no compression was offered)");
      if (len > mg::api::kMaxMessageBytes) return fail(c, "a message of " + std::to_string(len) + " bytes");
      if (c.in.size() - at - kGrpcPrefix < len) break;
      if (!snapshot.ParseFromArray(c.in.data() + at + kGrpcPrefix, static_cast<int>(len)))
        return fail(c, "a ConfigSnapshot that does not parse");
      at += kGrpcPrefix + len;
      pb::WatchRequest ack;
      ack.mutable_ack()->set_version(snapshot.version());
      ack.mutable_ack()->set_accepted(true);
      scratch.clear();
      put_grpc_message(ack, scratch);
      if (auto st = c.h2->append_body(c.stream, scratch); !st) return fail(c, st.error().to_string());
      c.body_appended += scratch.size();
      c.acks.push_back({c.body_appended, 0, snapshot.revision()});
    }
    c.in.erase(0, at);
  }

  // The session's frames to the socket; ACKs whose frames were written are counted.
  void flush(Conn& c) {
    c.queued += c.h2->take_output(c.out);
    // The request body the session has framed so far: what was appended minus what still waits.
    const uint64_t body_framed = c.body_appended - c.h2->pending(c.stream);
    for (auto& a : c.acks)
      if (a.wire_end == 0 && a.body_end <= body_framed) a.wire_end = c.queued;
    if (!write_out(c)) return;
    const auto now = Clock::now();
    while (!c.acks.empty() && c.acks.front().wire_end != 0 && c.acks.front().wire_end <= c.written) {
      on_acked(c, c.acks.front().revision, now);
      c.acks.pop_front();
    }
  }

  bool write_out(Conn& c) {
    while (c.out_at < c.out.size()) {
      // A retry after WANT_WRITE repeats the same length, as OpenSSL requires.
      const size_t len = c.retry_len != 0 ? c.retry_len : c.out.size() - c.out_at;
      size_t n = 0;
      clear_errors();
      if (SSL_write_ex(c.ssl.get(), c.out.data() + c.out_at, len, &n) == 1) {
        c.retry_len = 0;
        c.out_at += n;
        c.written += n;
        continue;
      }
      const int err = SSL_get_error(c.ssl.get(), 0);
      if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
        c.retry_len = len;
        if (err == SSL_ERROR_WANT_WRITE) set_interest(c, EPOLLIN | EPOLLOUT);
        return true;
      }
      fail(c, "TLS write: " + mg::crypto::last_error());
      return false;
    }
    c.out.clear();
    c.out_at = 0;
    set_interest(c, EPOLLIN);
    return true;
  }

  // As SimProxy::on_acked: the first ACK makes the proxy ready; one latency per measured change.
  void on_acked(Conn& c, int64_t revision, Clock::time_point now) {
    if (!c.first_acked) {
      c.first_acked = true;
      round.bump(round.ready);
    }
    const int64_t target = round.target_revision.load();
    if (revision >= target && c.counted_target != target) {
      c.counted_target = target;
      c.latencies_ms.push_back(ms(now - round.applied_at));
      round.bump(round.acked);
    }
  }

  int epfd = -1, wake = -1;
  std::thread thread;
  std::mutex mutex;  // guards inbox, stopping, error
  std::vector<Start> inbox;
  bool stopping = false;
  std::string error;
  std::unordered_map<int, Conn*> by_fd;  // the open connections
  pb::ConfigSnapshot snapshot;           // reused for every message parsed
  std::vector<mg::http2::Event> events;
  std::string read_buf = std::string(kReadChunk, '\0');
  std::string scratch;  // one message being framed
};

H2Proxies::H2Proxies(Round& round, const std::string& bundle_pem, int threads)
    : round_(round), ctx_(client_context(bundle_pem)) {
  if (threads < 1 || threads > 8) die("--client-threads must be 1..8");
  for (int i = 0; i < threads; ++i) loops_.push_back(std::make_unique<Loop>(round, ctx_.get()));
}

H2Proxies::~H2Proxies() { stop(); }

void H2Proxies::connect(const Harness& h, std::vector<mg::api::SvidFiles>& ids) {
  const int n = static_cast<int>(ids.size());
  for (int i = 0; i < n; ++i) {
    loops_[static_cast<size_t>(i) % loops_.size()]->post({i, h.address_for(i), parse_identity(ids[i])});
    // Keep the handshake backlog small, as connect_proxies does: the machine has two cores.
    if (i % 50 == 49) wait_count(round_, round_.ready, i + 1 - 50, kConnectTimeout);
  }
  ids.clear();
  if (!wait_count(round_, round_.ready, n, kConnectTimeout))
    die("only " + std::to_string(round_.ready.load()) + " of " + std::to_string(n) +
        " h2 proxies got a first snapshot (" + std::to_string(round_.ended.load()) +
        " streams ended; first: " + first_error() + ")");
  // Every loop started its connections before they ACKed (ready, under Round's mutex): `all` is
  // complete and no longer changes.
  std::vector<const std::vector<double>*> by_index(static_cast<size_t>(n), nullptr);
  for (const auto& loop : loops_)
    for (const auto& c : loop->all) by_index[static_cast<size_t>(c->index)] = &c->latencies_ms;
  latencies_ = std::move(by_index);
}

LatencyViews H2Proxies::latencies() const { return latencies_; }

void H2Proxies::stop() {
  for (auto& loop : loops_) loop->stop();
}

std::string H2Proxies::first_error() const {
  for (const auto& loop : loops_)
    if (auto e = loop->first_error(); !e.empty()) return e;
  return "";
}

}  // namespace control_bench
