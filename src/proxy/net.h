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

namespace mg::proxy::net {

using asio::ip::tcp;
template <class T = void>
using awaitable = asio::awaitable<T>;

class Stream {
 public:
  virtual ~Stream() = default;
  virtual awaitable<size_t> read_some(asio::mutable_buffer buf, std::error_code& ec) = 0;
  virtual awaitable<void> write_all(asio::const_buffer buf, std::error_code& ec) = 0;
  // Immediate close: pending operations complete with an error. Idempotent.
  virtual void close() = 0;
  // No more data will be sent: a FIN for plaintext; TLS cannot half-close cleanly, so it closes.
  virtual void shutdown_send() = 0;
  virtual tcp::socket& socket() = 0;
  virtual SSL* ssl() { return nullptr; }
};

class PlainStream final : public Stream {
 public:
  explicit PlainStream(tcp::socket s) : socket_(std::move(s)) {}
  awaitable<size_t> read_some(asio::mutable_buffer buf, std::error_code& ec) override;
  awaitable<void> write_all(asio::const_buffer buf, std::error_code& ec) override;
  void close() override;
  void shutdown_send() override;
  tcp::socket& socket() override { return socket_; }

 private:
  tcp::socket socket_;
};

class TlsStream final : public Stream {
 public:
  // `ctx` is kept alive as long as the stream: a credential swap never frees a context in use.
  TlsStream(tcp::socket s, std::shared_ptr<asio::ssl::context> ctx);
  awaitable<void> handshake(asio::ssl::stream_base::handshake_type type, std::error_code& ec);
  awaitable<size_t> read_some(asio::mutable_buffer buf, std::error_code& ec) override;
  awaitable<void> write_all(asio::const_buffer buf, std::error_code& ec) override;
  void close() override;
  void shutdown_send() override { close(); }
  tcp::socket& socket() override { return stream_.next_layer(); }
  SSL* ssl() override { return stream_.native_handle(); }

 private:
  std::shared_ptr<asio::ssl::context> ctx_;
  asio::ssl::stream<tcp::socket> stream_;
};

class Watchdog {
 public:
  Watchdog(const asio::any_io_executor& ex, std::function<void()> on_expire);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void arm(std::chrono::milliseconds timeout);  // replaces any earlier deadline
  void disarm();
  bool fired() const { return state_->fired; }

 private:
  struct State {
    explicit State(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    uint64_t generation = 0;
    bool fired = false;
    std::function<void()> on_expire;
  };
  std::shared_ptr<State> state_;
};

// "ip:port" of the peer / local end; "" when the socket has none.
std::string remote_address(const tcp::socket& s);
std::string local_address(const tcp::socket& s);

}  // namespace mg::proxy::net
