// proxy/net.h — the proxy's I/O vocabulary over Asio: a Stream (plaintext or TLS, same
// interface, so the HTTP and splice code is written once) and a Watchdog (closes a stream when
// a deadline passes: header timeout, idle timeout, upstream timeout).
// Everything here runs on one worker's io_context thread; nothing is shared across threads.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <system_error>

#include "common/result.h"
#include "http/proxy_protocol.h"
#include "tls/client_hello.h"

namespace mg::proxy::net {

using asio::ip::tcp;
template <class T = void>
using awaitable = asio::awaitable<T>;

// A completion token for `co_await op(..., nothrow(ec))`: the error lands in `ec`, no exception.
inline auto nothrow(std::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

class Stream {
 public:
  virtual ~Stream() = default;
  virtual awaitable<size_t> read_some(asio::mutable_buffer buf, std::error_code& ec) = 0;
  virtual awaitable<void> write_all(asio::const_buffer buf, std::error_code& ec) = 0;
  // Writes what the socket takes now, without waiting and without a coroutine: the number of bytes
  // written, all of `buf` unless the socket's buffer filled. The rest then goes with write_all from
  // the same memory (a TLS stream's OpenSSL must be given a write it could not finish again with
  // the same arguments). A stream that cannot write this way writes nothing (0, no error).
  virtual size_t try_write(asio::const_buffer buf, std::error_code& ec) {
    (void)buf;
    ec.clear();
    return 0;
  }
  // Immediate close: pending operations complete with an error. Idempotent.
  virtual void close() = 0;
  // No more data will be sent: a FIN for plaintext; TLS cannot half-close cleanly, so it closes.
  virtual void shutdown_send() = 0;
  virtual tcp::socket& socket() = 0;
  virtual SSL* ssl() { return nullptr; }
  // One HTTP/2 stream seen as a connection (proxy/http2_session.h): close() resets the stream.
  virtual bool is_h2_stream() const { return false; }
  // A pooled connection between requests (proxy/upstream_pool.h): a read is left waiting on it, so
  // that a close or stray bytes are known without a system call when it is taken again
  // (nothing_to_read), and the next response is received by that same read instead of a new one —
  // one receive fewer per request than a peek at reuse. Envoy reads its idle pooled connections
  // for the same reason. Nothing happens on a stream that already holds something to read.
  virtual void watch_idle() {}
  // What a watched stream knows without looking at the socket: Unwatched (never watched, or its
  // read has been taken), Quiet (the read is still waiting), Noisy (it found bytes, an end or an
  // error, not yet taken).
  enum class Watch { Unwatched, Quiet, Noisy };
  virtual Watch watch_state() const { return Watch::Unwatched; }
};

namespace detail {
// The read a watched stream leaves waiting (Stream::watch_idle). Owned by the pending Asio
// operation, not by the stream: a coroutine waiting for it (`joiner`) is released with that
// operation when the loop goes, never kept alive by the stream it is itself keeping alive.
struct IdleRead {
  struct Joiner {
    virtual ~Joiner() = default;
    virtual void resume() = 0;
  };
  bool owner_alive = true;  // cleared when the stream goes first: its completion then tells nobody
  std::unique_ptr<Joiner> joiner;
};

// A stream's side of its idle read: whether one is waiting, a coroutine's wait for it, and the
// unlink when the stream goes before it completes.
class IdleWatch {
 public:
  IdleWatch() = default;
  ~IdleWatch() {
    if (auto read = read_.lock()) read->owner_alive = false;
  }
  IdleWatch(const IdleWatch&) = delete;
  IdleWatch& operator=(const IdleWatch&) = delete;

  // Starts the idle read from `socket` into `into`. When it completes, pending() turns false and
  // `done(ec, n)` runs, unless the stream went first; then a joined coroutine resumes.
  template <class Done>
  void start(tcp::socket& socket, asio::mutable_buffer into, Done done) {
    auto read = std::make_shared<IdleRead>();
    read_ = read;
    pending_ = true;
    socket.async_read_some(into, [this, read, done](std::error_code ec, size_t n) {
      if (read->owner_alive) {
        pending_ = false;
        done(ec, n);
      }
      if (read->joiner) {
        auto joiner = std::move(read->joiner);
        joiner->resume();
      }
    });
  }
  bool pending() const { return pending_; }
  // A coroutine already waits for the pending read: a second one must not take its place.
  bool joined() const;
  // Waits until the pending read completes (the caller knows it is pending and not joined).
  // Nothing but the read's completion resumes it: no timer, no system call.
  awaitable<void> join();

 private:
  std::weak_ptr<IdleRead> read_;
  bool pending_ = false;
};
}  // namespace detail

class PlainStream final : public Stream {
 public:
  explicit PlainStream(tcp::socket s) : socket_(std::move(s)) {}
  PlainStream(const PlainStream&) = delete;
  PlainStream& operator=(const PlainStream&) = delete;
  awaitable<size_t> read_some(asio::mutable_buffer buf, std::error_code& ec) override;
  awaitable<void> write_all(asio::const_buffer buf, std::error_code& ec) override;
  size_t try_write(asio::const_buffer buf, std::error_code& ec) override;
  void close() override;
  void shutdown_send() override;
  tcp::socket& socket() override { return socket_; }
  void watch_idle() override;
  Watch watch_state() const override;

 private:
  static constexpr size_t kHeld = 4096;  // a response head and a small body in one read
  void idle_read_done(std::error_code ec, size_t n);

  tcp::socket socket_;
  // The idle read (watch_idle): what it received, [held_begin_, held_end_) of held_ not yet
  // taken, or how it ended.
  detail::IdleWatch idle_;
  std::unique_ptr<char[]> held_;
  size_t held_begin_ = 0;
  size_t held_end_ = 0;
  std::error_code held_error_;
};

// TLS straight on the socket (non-blocking) rather than asio::ssl::stream: that one keeps two 17 KB
// buffers and a 2 × 17 KB BIO pair per connection for its whole life, while OpenSSL's own record
// buffers are released whenever the connection is idle (SSL_MODE_RELEASE_BUFFERS, set by tls::).
// Issue 5: ≈ 99 KB per idle mTLS connection. Writes go to the socket; reads come through a 2 KB
// receive buffer of the stream's own, filled with async_read_some (net.cpp says why: a readiness
// wait costs an epoll_ctl per TLS read).
// One read and one write may be in progress at once (splice), as with asio::ssl::stream.
class TlsStream final : public Stream {
 public:
  enum class Role { Client, Server };
  // `ctx` is kept alive as long as the stream: a credential swap never frees a context in use.
  TlsStream(tcp::socket s, std::shared_ptr<asio::ssl::context> ctx);
  ~TlsStream() override;
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;
  awaitable<void> handshake(asio::ssl::stream_base::handshake_type type, std::error_code& ec);
  // The handshake, bounded: the stream is closed (ec set) if it has not completed within `timeout`.
  awaitable<void> handshake_within(asio::ssl::stream_base::handshake_type type, std::chrono::milliseconds timeout,
                                   std::error_code& ec);
  awaitable<size_t> read_some(asio::mutable_buffer buf, std::error_code& ec) override;
  awaitable<void> write_all(asio::const_buffer buf, std::error_code& ec) override;
  size_t try_write(asio::const_buffer buf, std::error_code& ec) override;
  void close() override;
  void shutdown_send() override { close(); }
  tcp::socket& socket() override { return socket_; }
  SSL* ssl() override { return ssl_; }
  void watch_idle() override;
  Watch watch_state() const override;

 private:
  void idle_read_done(std::error_code ec, size_t n);

  // Runs `op` (an SSL call returning 1 / >0 on success) until it succeeds, waiting for the socket
  // as OpenSSL asks. Returns false with `ec` set on failure or when the stream is closed.
  template <class Op>
  awaitable<bool> run(Op op, std::error_code& ec);
  // Whether the stream can take an SSL call now (false, `ec` set, when closed); clears a stale
  // error queue, as SSL_get_error needs.
  bool ready_for_call(std::error_code& ec) const;
  // How an SSL call that failed with SSL_get_error's `err` (not a WANT_*) ended.
  static std::error_code failure(int err);

  std::shared_ptr<asio::ssl::context> ctx_;
  tcp::socket socket_;
  SSL* ssl_ = nullptr;
  // The idle read (watch_idle) receives into the receive buffer, as a read's own would; an error
  // it ends with is kept for the next read.
  detail::IdleWatch idle_;
  std::error_code idle_error_;
};

// Closes a stream when a deadline passes. Deadlines move on every request (idle → header →
// upstream), so arm() and disarm() only record the deadline: the one Asio timer is started or
// moved only when the new deadline is earlier than the wait already pending, and a wait that ends
// before the current deadline simply waits again. A request therefore costs no timer operation
// (no timerfd_settime, no cancelled handler through the queue), only a clock read.
class Watchdog {
 public:
  using Clock = std::chrono::steady_clock;
  Watchdog(const asio::any_io_executor& ex, std::function<void()> on_expire);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void arm(std::chrono::milliseconds timeout);  // replaces any earlier deadline; clears fired()
  void arm_at(Clock::time_point deadline);       // the same, at a point in time
  void disarm() { state_->deadline = Clock::time_point::max(); }
  bool fired() const { return state_->fired; }

 private:
  struct State {
    explicit State(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    Clock::time_point deadline = Clock::time_point::max();   // max: disarmed
    Clock::time_point wait_ends = Clock::time_point::max();  // of the pending wait; max: none
    uint64_t generation = 0;  // of the pending wait; a wait moved earlier is stale
    bool fired = false;
    std::function<void()> on_expire;
  };
  static void wait_until(const std::shared_ptr<State>& state, Clock::time_point when);
  std::shared_ptr<State> state_;
};

// True when nothing can be read from `stream` right now and it is still open: no bytes held by
// a TLS stream (received and not yet handed to OpenSSL, read ahead, or decrypted and not yet
// taken), and the socket neither readable nor closed — a watched stream's idle read still
// waiting (Stream::watch_idle), otherwise one recv(MSG_PEEK | MSG_DONTWAIT), which finds EAGAIN.
// How a connection with no request outstanding is known to hold no stray response.
bool nothing_to_read(Stream& stream);

// Reads the PROXY protocol header a balancer writes before the client's bytes
// (http/proxy_protocol.h) and consumes exactly its bytes, so what follows — a TLS ClientHello,
// an HTTP head — is read as if it came first. Bounded: at most kProxyHeaderMaxBytes are looked
// at, within `timeout` (the socket is closed when it passes). A missing or malformed header, or
// a connection that ends first, is an error: the caller closes the connection.
awaitable<Result<http::ProxyHeader>> read_proxy_header(tcp::socket& socket, std::chrono::milliseconds timeout);

// A TLS ClientHello's server name, without taking part in the handshake (TLS passthrough,
// tls/client_hello.h). peek_client_hello leaves every byte in the socket (what is relayed
// afterwards starts with the ClientHello itself); read_client_hello reads from a stream that cannot
// be peeked (the inside of the mesh's mTLS) into `buffered`, which the caller relays first. Both
// are bounded: at most tls::kClientHelloMaxBytes within `timeout` (the socket is closed when it
// passes). A connection that is not TLS, a malformed ClientHello, or one that ends first is an
// error ("tls.client_hello.<what>").
awaitable<Result<tls::ClientHelloParse>> peek_client_hello(tcp::socket& socket, std::chrono::milliseconds timeout);
awaitable<Result<tls::ClientHelloParse>> read_client_hello(Stream& stream, std::string& buffered,
                                                          std::chrono::milliseconds timeout);

// "ip:port" ("[v6]:port" for IPv6, as in a URL authority, so the port can be split off the end).
std::string endpoint_string(const tcp::endpoint& ep);
// endpoint_string of the peer / local end; "" when the socket has none.
std::string remote_address(const tcp::socket& s);
std::string local_address(const tcp::socket& s);

}  // namespace mg::proxy::net
