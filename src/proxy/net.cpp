#include "proxy/net.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <utility>

namespace mg::proxy::net {

std::string endpoint_string(const tcp::endpoint& ep) {
  const std::string address = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + address + "]" : address) + ":" + std::to_string(ep.port());
}

namespace {
// How a TlsStream reads (issue 13). OpenSSL's read side is a BIO of ours, whose state (below) has
// a small receive buffer: when OpenSSL needs bytes and the buffer holds none, the stream receives
// into it with Asio's async_read_some (fill), which tries the socket at once and otherwise waits
// on the descriptor Asio registered once, edge-triggered. Waiting for readiness instead
// (async_wait, as a socket BIO's "retry" needs) makes Asio re-arm the descriptor with epoll_ctl at
// every wait: one system call more per TLS read. When a receive filled the buffer, more may be
// waiting: OpenSSL's next read then takes it straight into its own record buffer (one
// non-blocking recv) before anything waits. The end of the stream is reported as a socket BIO
// reports it (a read of 0, then BIO_eof), so OpenSSL judges a close without close_notify as it
// did on the socket. Writes stay on a socket BIO.
struct Receive {
  static constexpr size_t kBuffer = 2048;  // a request or response head in one record fits
  explicit Receive(int fd) : fd(fd) {}
  int fd;
  std::unique_ptr<char[]> buffer;  // kBuffer bytes once the first read needs them
  size_t begin = 0;                // [begin, end): received, not yet handed to OpenSSL
  size_t end = 0;
  bool drained = true;       // the last receive took less than it asked for: wait before the next
  bool peer_closed = false;  // the socket reported the end of the stream
  bool receiving = false;    // a fill() is waiting
};

int receive_read(BIO* bio, char* out, int len) {
  auto* r = static_cast<Receive*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (len <= 0) return 0;
  const size_t want = static_cast<size_t>(len);
  if (r->begin < r->end) {
    const size_t n = std::min(want, r->end - r->begin);
    std::memcpy(out, r->buffer.get() + r->begin, n);
    r->begin += n;
    return static_cast<int>(n);
  }
  if (r->peer_closed) return 0;
  if (r->drained) {
    BIO_set_retry_read(bio);
    return -1;
  }
  while (true) {
    const ssize_t n = ::recv(r->fd, out, want, MSG_DONTWAIT);
    if (n > 0) {
      r->drained = static_cast<size_t>(n) < want;
      return static_cast<int>(n);
    }
    if (n == 0) {
      r->peer_closed = true;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      r->drained = true;
      BIO_set_retry_read(bio);
    }
    return -1;  // otherwise errno says why (SSL_ERROR_SYSCALL)
  }
}

long receive_ctrl(BIO* bio, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_EOF:
      return static_cast<Receive*>(BIO_get_data(bio))->peer_closed ? 1 : 0;
    case BIO_CTRL_FLUSH:
      return 1;
    default:
      return 0;
  }
}

int receive_destroy(BIO* bio) {
  delete static_cast<Receive*>(BIO_get_data(bio));
  BIO_set_data(bio, nullptr);
  return 1;
}

struct ReceiveMethod {
  int type = BIO_get_new_index() | BIO_TYPE_SOURCE_SINK;
  BIO_METHOD* method = BIO_meth_new(type, "meshguard TLS receive");
  ReceiveMethod() {
    if (method == nullptr) return;
    BIO_meth_set_read(method, receive_read);
    BIO_meth_set_ctrl(method, receive_ctrl);
    BIO_meth_set_destroy(method, receive_destroy);
  }
};
const ReceiveMethod& receive_method() {
  static const ReceiveMethod m;
  return m;
}

BIO* new_receive_bio(int fd) {
  const BIO_METHOD* method = receive_method().method;
  BIO* bio = method != nullptr ? BIO_new(method) : nullptr;
  if (bio != nullptr) {
    BIO_set_data(bio, new Receive(fd));
    BIO_set_init(bio, 1);
  }
  return bio;
}

// The receive state of a TlsStream's SSL (nullptr for any other SSL).
Receive* receive_of(SSL* ssl) {
  BIO* bio = ssl != nullptr ? SSL_get_rbio(ssl) : nullptr;
  if (bio == nullptr || BIO_method_type(bio) != receive_method().type) return nullptr;
  return static_cast<Receive*>(BIO_get_data(bio));
}

// Fills r's buffer from the socket (or learns the end of the stream); false with `ec` set on an
// error, including the socket's close while waiting.
awaitable<bool> fill(tcp::socket& socket, Receive& r, std::error_code& ec) {
  if (!r.buffer) r.buffer = std::make_unique_for_overwrite<char[]>(Receive::kBuffer);
  r.receiving = true;
  const size_t n = co_await socket.async_read_some(asio::buffer(r.buffer.get(), Receive::kBuffer), nothrow(ec));
  r.receiving = false;
  if (ec == asio::error::eof) {
    ec.clear();
    r.peer_closed = true;  // OpenSSL reads the end next (receive_read)
    co_return true;
  }
  if (ec) co_return false;
  r.begin = 0;
  r.end = n;
  r.drained = n < Receive::kBuffer;
  co_return true;
}
// A coroutine waiting for a stream's idle read: resumed by the read's completion.
template <class Handler>
struct JoinerOf final : detail::IdleRead::Joiner {
  explicit JoinerOf(Handler h) : handler(std::move(h)) {}
  void resume() override { std::move(handler)(); }
  Handler handler;
};
}  // namespace

namespace detail {
bool IdleWatch::joined() const {
  const auto read = read_.lock();
  return read != nullptr && read->joiner != nullptr;
}

awaitable<void> IdleWatch::join() {
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [this](auto handler) {
        if (auto read = read_.lock()) {
          read->joiner = std::make_unique<JoinerOf<decltype(handler)>>(std::move(handler));
        } else {
          asio::post(std::move(handler));  // already over: never leave the caller waiting
        }
      },
      asio::use_awaitable);
}
}  // namespace detail

void PlainStream::watch_idle() {
  if (idle_.pending() || held_begin_ < held_end_ || held_error_ || !socket_.is_open()) return;
  if (!held_) held_ = std::make_unique_for_overwrite<char[]>(kHeld);
  idle_.start(socket_, asio::buffer(held_.get(), kHeld),
              [this](std::error_code ec, size_t n) { idle_read_done(ec, n); });
}

void PlainStream::idle_read_done(std::error_code ec, size_t n) {
  held_begin_ = 0;
  held_end_ = ec ? 0 : n;
  held_error_ = ec;
}

Stream::Watch PlainStream::watch_state() const {
  if (idle_.pending()) return Watch::Quiet;
  if (held_begin_ < held_end_ || held_error_) return Watch::Noisy;
  return Watch::Unwatched;
}

awaitable<size_t> PlainStream::read_some(asio::mutable_buffer buf, std::error_code& ec) {
  ec.clear();
  if (idle_.pending()) co_await idle_.join();  // a pooled connection's next response: the idle read has it
  if (held_begin_ < held_end_) {
    const size_t n = std::min(buf.size(), held_end_ - held_begin_);
    std::memcpy(buf.data(), held_.get() + held_begin_, n);
    held_begin_ += n;
    co_return n;
  }
  if (held_error_) {
    ec = std::exchange(held_error_, {});
    co_return 0;
  }
  size_t n = co_await socket_.async_read_some(buf, nothrow(ec));
  co_return n;
}

awaitable<void> PlainStream::write_all(asio::const_buffer buf, std::error_code& ec) {
  // Straight to the socket: a small write almost always fits the socket buffer, and done this way
  // it completes without an operation queued through Asio's scheduler. Only a full buffer waits.
  const size_t written = try_write(buf, ec);
  if (ec || written == buf.size()) co_return;
  co_await asio::async_write(socket_, asio::buffer(buf + written), nothrow(ec));
}

size_t PlainStream::try_write(asio::const_buffer buf, std::error_code& ec) {
  ec.clear();
  const char* p = static_cast<const char*>(buf.data());
  size_t written = 0;
  while (written < buf.size()) {
    if (!socket_.is_open()) {
      ec = asio::error::bad_descriptor;
      return written;
    }
    ssize_t n =
        ::send(socket_.native_handle(), p + written, buf.size() - written, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      written += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return written;
    } else {
      ec = std::error_code(n < 0 ? errno : EPIPE, std::system_category());
      return written;
    }
  }
  return written;
}

void PlainStream::close() {
  std::error_code ignored;
  socket_.close(ignored);
}

void PlainStream::shutdown_send() {
  std::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
}

TlsStream::TlsStream(tcp::socket s, std::shared_ptr<asio::ssl::context> ctx)
    : ctx_(std::move(ctx)), socket_(std::move(s)), ssl_(SSL_new(ctx_->native_handle())) {
  // OpenSSL writes to the socket with write(2), which raises SIGPIPE on a connection the peer
  // reset (Asio's own writes pass MSG_NOSIGNAL): a reset must be an error, not the process's end.
  static const bool sigpipe_ignored = [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL)
      std::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)sigpipe_ignored;
  std::error_code ignored;
  socket_.non_blocking(true, ignored);
  // A failed SSL_new or BIO_new leaves the stream unusable: every operation then fails.
  if (ssl_) {
    const int fd = static_cast<int>(socket_.native_handle());
    BIO* receive = new_receive_bio(fd);
    BIO* send = BIO_new_socket(fd, BIO_NOCLOSE);
    if (receive && send) {
      SSL_set_bio(ssl_, receive, send);  // ssl_ owns both from here
    } else {
      BIO_free(receive);
      BIO_free(send);
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
  }
  if (ssl_) {
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE);
    // One read(2) takes whatever has arrived (usually a whole record, often several) instead of
    // a 5-byte record header and then its body: one system call less per record. The buffer is
    // still released while the connection is idle (SSL_MODE_RELEASE_BUFFERS, set by tls::).
    SSL_set_read_ahead(ssl_, 1);
  }
}

TlsStream::~TlsStream() {
  if (ssl_) SSL_free(ssl_);  // the fd is the socket's (BIO_NOCLOSE); it closes it
}

bool TlsStream::ready_for_call(std::error_code& ec) const {
  // Once closed, the descriptor number may already belong to another connection: never hand
  // it to OpenSSL again.
  if (!ssl_ || !socket_.is_open()) {
    ec = asio::error::bad_descriptor;
    return false;
  }
  // SSL_get_error needs an empty error queue. Clearing it costs a walk over every slot (≈ 4% of
  // a hop's instructions when done before every call); looking costs far less, and the queue is
  // almost always empty: failures leave it so.
  if (ERR_peek_error() != 0) ERR_clear_error();
  errno = 0;
  return true;
}

std::error_code TlsStream::failure(int err) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && e == 0 && errno == 0))
    return asio::error::eof;  // close_notify, or the peer closed the TCP connection
  if (e != 0) return std::error_code(static_cast<int>(e), asio::error::get_ssl_category());
  if (err == SSL_ERROR_SYSCALL && errno != 0) return std::error_code(errno, std::system_category());
  return asio::error::connection_aborted;
}

template <class Op>
awaitable<bool> TlsStream::run(Op op, std::error_code& ec) {
  while (true) {
    if (!ready_for_call(ec)) co_return false;
    int r = op();
    if (r > 0) co_return true;
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ && idle_error_) {
      ec = std::exchange(idle_error_, {});  // how the idle read ended
      co_return false;
    }
    if (err == SSL_ERROR_WANT_READ && idle_.pending() && !idle_.joined()) {
      // The idle read of a pooled connection receives what OpenSSL needs.
      co_await idle_.join();
      continue;
    }
    if (err == SSL_ERROR_WANT_READ) {
      if (Receive* r = receive_of(ssl_); r != nullptr && !r->receiving) {
        if (!co_await fill(socket_, *r, ec)) co_return false;
        continue;
      }
    }
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      // Waiting to send; or a write that needs bytes while the reader is receiving them.
      co_await socket_.async_wait(
          err == SSL_ERROR_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write, nothrow(ec));
      if (ec) co_return false;
      continue;
    }
    ec = failure(err);
    co_return false;
  }
}

awaitable<void> TlsStream::handshake_within(asio::ssl::stream_base::handshake_type type,
                                            std::chrono::milliseconds timeout, std::error_code& ec) {
  Watchdog deadline(socket().get_executor(), [this] { close(); });
  deadline.arm(timeout);
  co_await handshake(type, ec);
  deadline.disarm();
}

awaitable<void> TlsStream::handshake(asio::ssl::stream_base::handshake_type type, std::error_code& ec) {
  ec.clear();
  if (ssl_) {
    if (type == asio::ssl::stream_base::client) {
      SSL_set_connect_state(ssl_);
    } else {
      SSL_set_accept_state(ssl_);
    }
  }
  co_await run([this] { return SSL_do_handshake(ssl_); }, ec);
}

awaitable<size_t> TlsStream::read_some(asio::mutable_buffer buf, std::error_code& ec) {
  ec.clear();
  size_t n = 0;
  if (buf.size() == 0) co_return 0;
  co_await run([&] { return SSL_read_ex(ssl_, buf.data(), buf.size(), &n); }, ec);
  co_return ec ? 0 : n;
}

awaitable<void> TlsStream::write_all(asio::const_buffer buf, std::error_code& ec) {
  ec.clear();
  const char* p = static_cast<const char*>(buf.data());
  size_t left = buf.size();
  while (left > 0) {
    size_t n = 0;
    // A retry after WANT_* repeats the same call with the same arguments, as OpenSSL requires.
    if (!co_await run([&] { return SSL_write_ex(ssl_, p, left, &n); }, ec)) co_return;
    p += n;
    left -= n;
  }
}

size_t TlsStream::try_write(asio::const_buffer buf, std::error_code& ec) {
  ec.clear();
  const char* p = static_cast<const char*>(buf.data());
  size_t written = 0;
  while (written < buf.size()) {
    if (!ready_for_call(ec)) return written;
    size_t n = 0;
    if (SSL_write_ex(ssl_, p + written, buf.size() - written, &n) == 1) {
      written += n;
      continue;
    }
    const int err = SSL_get_error(ssl_, 0);
    // The socket is full (or OpenSSL wants to read first): write_all goes on from here.
    if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) ec = failure(err);
    return written;
  }
  return written;
}

void TlsStream::close() {
  std::error_code ignored;
  socket_.close(ignored);
}

void TlsStream::watch_idle() {
  Receive* r = receive_of(ssl_);
  if (r == nullptr || idle_.pending() || r->receiving || r->begin < r->end || r->peer_closed || idle_error_ ||
      !socket_.is_open() || SSL_has_pending(ssl_))
    return;
  if (!r->buffer) r->buffer = std::make_unique_for_overwrite<char[]>(Receive::kBuffer);
  r->receiving = true;
  idle_.start(socket_, asio::buffer(r->buffer.get(), Receive::kBuffer),
              [this](std::error_code ec, size_t n) { idle_read_done(ec, n); });
}

void TlsStream::idle_read_done(std::error_code ec, size_t n) {
  Receive* r = receive_of(ssl_);
  if (r == nullptr) return;
  r->receiving = false;
  if (ec == asio::error::eof) {
    r->peer_closed = true;  // OpenSSL reads the end next (receive_read)
  } else if (ec) {
    idle_error_ = ec;
    r->drained = true;
  } else {
    r->begin = 0;
    r->end = n;
    r->drained = n < Receive::kBuffer;
  }
}

Stream::Watch TlsStream::watch_state() const {
  if (idle_.pending()) return Watch::Quiet;
  const Receive* r = receive_of(ssl_);
  if (idle_error_ || (r != nullptr && (r->peer_closed || r->begin < r->end))) return Watch::Noisy;
  return Watch::Unwatched;
}

Watchdog::Watchdog(const asio::any_io_executor& ex, std::function<void()> on_expire)
    : state_(std::make_shared<State>(ex)) {
  state_->on_expire = std::move(on_expire);
}

Watchdog::~Watchdog() {
  state_->on_expire = nullptr;
  if (state_->wait_ends != Clock::time_point::max()) state_->timer.cancel();
}

void Watchdog::arm(std::chrono::milliseconds timeout) { arm_at(Clock::now() + timeout); }

void Watchdog::arm_at(Clock::time_point deadline) {
  state_->fired = false;  // a watchdog lives across requests (pooled connections)
  state_->deadline = deadline;
  // A pending wait that ends no later than the new deadline will notice it and wait again.
  if (state_->wait_ends > state_->deadline) wait_until(state_, state_->deadline);
}

void Watchdog::wait_until(const std::shared_ptr<State>& state, Clock::time_point when) {
  uint64_t generation = ++state->generation;
  state->wait_ends = when;
  state->timer.expires_at(when);  // cancels a pending wait: its handler sees a newer generation
  state->timer.async_wait([state, generation](std::error_code ec) {
    if (generation != state->generation) return;
    state->wait_ends = Clock::time_point::max();
    if (ec || !state->on_expire || state->deadline == Clock::time_point::max()) return;
    if (Clock::now() < state->deadline) {
      wait_until(state, state->deadline);  // re-armed later since this wait began
      return;
    }
    state->fired = true;
    state->on_expire();
  });
}

bool nothing_to_read(Stream& stream) {
  if (SSL* ssl = stream.ssl(); ssl && SSL_has_pending(ssl)) return false;
  if (const Receive* r = receive_of(stream.ssl()); r != nullptr && r->begin < r->end) return false;
  if (!stream.socket().is_open()) return false;
  switch (stream.watch_state()) {
    case Stream::Watch::Quiet:
      return true;
    case Stream::Watch::Noisy:
      return false;
    case Stream::Watch::Unwatched:
      break;
  }
  char probe;
  ssize_t r = ::recv(stream.socket().native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

awaitable<Result<http::ProxyHeader>> read_proxy_header(tcp::socket& socket, std::chrono::milliseconds timeout) {
  Watchdog deadline(socket.get_executor(), [&socket] {
    std::error_code ignored;
    socket.close(ignored);
  });
  deadline.arm(timeout);
  char buf[http::kProxyHeaderMaxBytes];
  // Peeked, not read: the bytes after the header stay in the socket for TLS detection. A peek
  // returns at once while any byte is waiting, so an incomplete header is peeked again after a
  // short pause (headers arrive in one segment in practice); the deadline bounds the whole.
  for (int attempt = 0; attempt < 10000; ++attempt) {
    std::error_code ec;
    size_t n = co_await socket.async_receive(asio::buffer(buf), tcp::socket::message_peek, nothrow(ec));
    if (ec || n == 0) {
      co_return fail("proxy_protocol.closed", deadline.fired()
                                                  ? "no complete PROXY header within " +
                                                        std::to_string(timeout.count()) + " ms"
                                                  : "the connection ended before its PROXY header");
    }
    http::ProxyHeaderParse parsed = http::parse_proxy_header(std::string_view(buf, n));
    if (parsed.state == http::ProxyHeaderParse::State::Invalid) co_return fail(std::move(parsed.error));
    if (parsed.state == http::ProxyHeaderParse::State::Complete) {
      co_await asio::async_read(socket, asio::buffer(buf, parsed.header.length), nothrow(ec));
      if (ec) co_return fail("proxy_protocol.closed", "the connection ended while its PROXY header was read");
      co_return std::move(parsed.header);
    }
    asio::steady_timer pause(socket.get_executor(), std::chrono::milliseconds(2));
    co_await pause.async_wait(nothrow(ec));
  }
  co_return fail("proxy_protocol.closed", "no complete PROXY header after 10000 looks");
}

awaitable<Result<tls::ClientHelloParse>> peek_client_hello(tcp::socket& socket, std::chrono::milliseconds timeout) {
  Watchdog deadline(socket.get_executor(), [&socket] {
    std::error_code ignored;
    socket.close(ignored);
  });
  deadline.arm(timeout);
  std::string buf(tls::kClientHelloMaxBytes, '\0');
  // As read_proxy_header: a peek returns at once while any byte waits, so an incomplete
  // ClientHello is peeked again after a short pause; the deadline bounds the whole.
  for (int attempt = 0; attempt < 10000; ++attempt) {
    std::error_code ec;
    size_t n = co_await socket.async_receive(asio::buffer(buf), tcp::socket::message_peek, nothrow(ec));
    if (ec || n == 0) {
      co_return fail("tls.client_hello.closed", deadline.fired()
                                                    ? "no complete ClientHello within " +
                                                          std::to_string(timeout.count()) + " ms"
                                                    : "the connection ended before its ClientHello");
    }
    tls::ClientHelloParse parsed = tls::parse_client_hello(std::string_view(buf.data(), n));
    if (parsed.state == tls::ClientHelloParse::State::Invalid) co_return fail(std::move(parsed.error));
    if (parsed.state == tls::ClientHelloParse::State::Complete) co_return parsed;
    asio::steady_timer pause(socket.get_executor(), std::chrono::milliseconds(2));
    co_await pause.async_wait(nothrow(ec));
  }
  co_return fail("tls.client_hello.closed", "no complete ClientHello after 10000 looks");
}

awaitable<Result<tls::ClientHelloParse>> read_client_hello(Stream& stream, std::string& buffered,
                                                          std::chrono::milliseconds timeout) {
  Watchdog deadline(stream.socket().get_executor(), [&stream] { stream.close(); });
  deadline.arm(timeout);
  buffered.clear();
  char chunk[2048];
  while (buffered.size() < tls::kClientHelloMaxBytes) {
    std::error_code ec;
    // Never more than the bound in all: what follows the ClientHello stays in the stream.
    const size_t want = std::min(sizeof chunk, tls::kClientHelloMaxBytes - buffered.size());
    size_t n = co_await stream.read_some(asio::buffer(chunk, want), ec);
    if (ec || n == 0) {
      co_return fail("tls.client_hello.closed", deadline.fired()
                                                    ? "no complete ClientHello within " +
                                                          std::to_string(timeout.count()) + " ms"
                                                    : "the connection ended before its ClientHello");
    }
    buffered.append(chunk, n);
    tls::ClientHelloParse parsed = tls::parse_client_hello(buffered);
    if (parsed.state == tls::ClientHelloParse::State::Invalid) co_return fail(std::move(parsed.error));
    if (parsed.state == tls::ClientHelloParse::State::Complete) co_return parsed;
  }
  co_return fail("tls.client_hello.too_large", "the ClientHello takes more than 16 KiB");
}

std::string remote_address(const tcp::socket& s) {
  std::error_code ec;
  auto ep = s.remote_endpoint(ec);
  return ec ? std::string() : endpoint_string(ep);
}

std::string local_address(const tcp::socket& s) {
  std::error_code ec;
  auto ep = s.local_endpoint(ec);
  return ec ? std::string() : endpoint_string(ep);
}

}  // namespace mg::proxy::net
