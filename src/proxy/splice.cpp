#include "proxy/splice.h"

#include <asio/experimental/awaitable_operators.hpp>

namespace mg::proxy {

namespace {

net::awaitable<void> pump(net::Stream& from, net::Stream& to, BufferPool& pool, uint64_t& bytes,
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

}  // namespace

net::awaitable<std::pair<uint64_t, uint64_t>> splice(net::Stream& a, net::Stream& b, BufferPool& pool,
                                                     std::chrono::milliseconds idle_timeout) {
  using namespace asio::experimental::awaitable_operators;
  uint64_t a_to_b = 0, b_to_a = 0;
  net::Watchdog watchdog(a.socket().get_executor(), [&a, &b] {
    a.close();
    b.close();
  });
  watchdog.arm(idle_timeout);
  co_await (pump(a, b, pool, a_to_b, watchdog, idle_timeout) &&
            pump(b, a, pool, b_to_a, watchdog, idle_timeout));
  co_return std::pair{a_to_b, b_to_a};
}

}  // namespace mg::proxy
