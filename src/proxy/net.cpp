#include "proxy/net.h"

namespace mg::proxy::net {

namespace {
auto nothrow(std::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

std::string endpoint_string(const tcp::endpoint& ep) {
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}
}  // namespace

awaitable<size_t> PlainStream::read_some(asio::mutable_buffer buf, std::error_code& ec) {
  ec.clear();
  size_t n = co_await socket_.async_read_some(buf, nothrow(ec));
  co_return n;
}

awaitable<void> PlainStream::write_all(asio::const_buffer buf, std::error_code& ec) {
  ec.clear();
  co_await asio::async_write(socket_, buf, nothrow(ec));
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
    : ctx_(std::move(ctx)), stream_(std::move(s), *ctx_) {}

awaitable<void> TlsStream::handshake(asio::ssl::stream_base::handshake_type type, std::error_code& ec) {
  ec.clear();
  co_await stream_.async_handshake(type, nothrow(ec));
}

awaitable<size_t> TlsStream::read_some(asio::mutable_buffer buf, std::error_code& ec) {
  ec.clear();
  size_t n = co_await stream_.async_read_some(buf, nothrow(ec));
  co_return n;
}

awaitable<void> TlsStream::write_all(asio::const_buffer buf, std::error_code& ec) {
  ec.clear();
  co_await asio::async_write(stream_, buf, nothrow(ec));
}

void TlsStream::close() {
  std::error_code ignored;
  stream_.next_layer().close(ignored);
}

Watchdog::Watchdog(const asio::any_io_executor& ex, std::function<void()> on_expire)
    : state_(std::make_shared<State>(ex)) {
  state_->on_expire = std::move(on_expire);
}

Watchdog::~Watchdog() {
  state_->on_expire = nullptr;
  state_->timer.cancel();
}

void Watchdog::arm(std::chrono::milliseconds timeout) {
  uint64_t generation = ++state_->generation;
  state_->timer.expires_after(timeout);
  state_->timer.async_wait([state = state_, generation](std::error_code ec) {
    if (ec || generation != state->generation || !state->on_expire) return;
    state->fired = true;
    state->on_expire();
  });
}

void Watchdog::disarm() {
  ++state_->generation;
  state_->timer.cancel();
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
