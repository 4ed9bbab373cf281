// The cost of making sure a pooled upstream connection holds no stray bytes before a request
// is handed to it (issue 12, item 1), per reuse, on an idle loopback TCP connection:
//   - check at reuse: one recv(MSG_PEEK | MSG_DONTWAIT) that finds nothing (EAGAIN);
//   - watch while idle: a readability wait queued through Asio when the connection goes back to
//     the pool, cancelled when it is taken again (its handler then runs with operation_aborted),
//     with and without the peek at release that an edge-triggered reactor needs (bytes that
//     arrived before the wait was queued raise no new edge);
//   - TLS adds SSL_has_pending (bytes OpenSSL read ahead, which no socket readiness shows).
#include <benchmark/benchmark.h>

#include <openssl/ssl.h>
#include <sys/socket.h>
#include <asio.hpp>

namespace {

using asio::ip::tcp;

struct LoopbackPair {
  asio::io_context io{1};
  tcp::socket client{io}, server{io};
  LoopbackPair() {
    tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
    client.non_blocking(true);
  }
};

bool peek_finds_nothing(tcp::socket& s) {
  char probe;
  ssize_t r = ::recv(s.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void BM_CheckAtReuse(benchmark::State& state) {
  LoopbackPair pair;
  for (auto _ : state) benchmark::DoNotOptimize(peek_finds_nothing(pair.client));
}
BENCHMARK(BM_CheckAtReuse);

// Queue the wait (release to the pool), cancel it (taken from the pool), run its handler.
void watch_cycle(LoopbackPair& pair, bool& aborted) {
  pair.client.async_wait(tcp::socket::wait_read,
                         [&aborted](std::error_code ec) { aborted = ec == asio::error::operation_aborted; });
  pair.client.cancel();
  pair.io.poll();
  pair.io.restart();
}

void BM_WatchWhileIdle(benchmark::State& state) {
  LoopbackPair pair;
  bool aborted = false;
  for (auto _ : state) {
    watch_cycle(pair, aborted);
    benchmark::DoNotOptimize(aborted);
  }
  if (!aborted) state.SkipWithError("the wait was not cancelled");
}
BENCHMARK(BM_WatchWhileIdle);

void BM_WatchWhileIdleWithPeekAtRelease(benchmark::State& state) {
  LoopbackPair pair;
  bool aborted = false;
  for (auto _ : state) {
    benchmark::DoNotOptimize(peek_finds_nothing(pair.client));
    watch_cycle(pair, aborted);
    benchmark::DoNotOptimize(aborted);
  }
  if (!aborted) state.SkipWithError("the wait was not cancelled");
}
BENCHMARK(BM_WatchWhileIdleWithPeekAtRelease);

void BM_TlsPendingCheck(benchmark::State& state) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  for (auto _ : state) benchmark::DoNotOptimize(SSL_has_pending(ssl));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
}
BENCHMARK(BM_TlsPendingCheck);

}  // namespace

BENCHMARK_MAIN();
