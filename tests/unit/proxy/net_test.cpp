// Unit tests of a pooled connection's idle read (proxy/net.h, Stream::watch_idle), over plaintext
// and over TLS on loopback: nothing_to_read tells a quiet connection from one that received stray
// bytes or was closed while idle, and the next read takes what the idle read received — also when
// it starts before the bytes arrive (it then waits for that same read). And try_write: what the
// socket takes at once, the rest sent by write_all from the same memory, intact over both.
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "proxy/net.h"

namespace mg::proxy::net {
namespace {

using namespace std::chrono_literals;

struct Loop {
  asio::io_context io{1};
  // Runs until `done` or a 5 s bound (a read never completed fails the test instead of hanging it).
  void run_until(const std::function<bool()>& done) {
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (!done() && std::chrono::steady_clock::now() < until) {
      io.run_for(2ms);
      if (io.stopped()) io.restart();
    }
  }
};

// A connected loopback pair.
struct Pair {
  tcp::socket a, b;
  explicit Pair(asio::io_context& io) : a(io), b(io) {
    tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
    a.connect(acceptor.local_endpoint());
    acceptor.accept(b);
  }
};

// Reads once from `stream` in a coroutine; the outcome lands in `got` / `error`.
struct PendingRead {
  std::optional<std::string> got;
  std::error_code error;
  void start(asio::io_context& io, Stream& stream) {
    asio::co_spawn(
        io,
        [this, &stream]() -> awaitable<void> {
          char buf[256];
          std::error_code ec;
          const size_t n = co_await stream.read_some(asio::buffer(buf), ec);
          error = ec;
          got = std::string(buf, n);
        },
        asio::detached);
  }
  // Starts the read and runs `loop` until it ends (bounded).
  void run(Loop& loop, Stream& stream) {
    start(loop.io, stream);
    loop.run_until([this] { return got.has_value(); });
  }
};

void send_text(tcp::socket& s, std::string_view text) {
  asio::write(s, asio::buffer(text.data(), text.size()));
}

// A watched plaintext stream: `stream` is one end of a loopback pair, `pair.b` the peer.
class IdleReadPlaintext : public ::testing::Test {
 protected:
  IdleReadPlaintext() { stream.watch_idle(); }
  Loop loop;
  Pair pair{loop.io};
  PlainStream stream{std::move(pair.a)};
};

TEST_F(IdleReadPlaintext, StrayBytesMakeTheConnectionNoisyAndAreReadNext) {
  loop.io.poll();
  EXPECT_TRUE(nothing_to_read(stream));
  EXPECT_EQ(stream.watch_state(), Stream::Watch::Quiet);
  send_text(pair.b, "stray");
  loop.run_until([&] { return stream.watch_state() != Stream::Watch::Quiet; });
  EXPECT_EQ(stream.watch_state(), Stream::Watch::Noisy);
  EXPECT_FALSE(nothing_to_read(stream));
  PendingRead read;
  read.run(loop, stream);
  ASSERT_TRUE(read.got);
  EXPECT_FALSE(read.error);
  EXPECT_EQ(*read.got, "stray");
  EXPECT_EQ(stream.watch_state(), Stream::Watch::Unwatched);
}

TEST_F(IdleReadPlaintext, ReadStartedWhileWatchingGetsTheNextBytes) {
  PendingRead read;
  read.start(loop.io, stream);
  loop.io.poll();
  EXPECT_FALSE(read.got) << "nothing was sent yet";
  send_text(pair.b, "response");
  loop.run_until([&] { return read.got.has_value(); });
  ASSERT_TRUE(read.got);
  EXPECT_FALSE(read.error);
  EXPECT_EQ(*read.got, "response");
  // Watched again, then quiet again.
  stream.watch_idle();
  loop.io.poll();
  EXPECT_TRUE(nothing_to_read(stream));
}

TEST_F(IdleReadPlaintext, CloseWhileIdleIsNoisyAndReadsAsTheEnd) {
  pair.b.close();
  loop.run_until([&] { return stream.watch_state() != Stream::Watch::Quiet; });
  EXPECT_FALSE(nothing_to_read(stream));
  PendingRead read;
  read.run(loop, stream);
  ASSERT_TRUE(read.got);
  EXPECT_EQ(read.error, asio::error::eof);
}

TEST(IdleRead, StreamGoneBeforeItsIdleReadEndsIsHarmless) {
  Loop loop;
  Pair pair(loop.io);
  auto stream = std::make_unique<PlainStream>(std::move(pair.a));
  stream->watch_idle();
  loop.io.poll();
  stream.reset();  // the idle read completes later, aborted, with nobody to tell
  loop.io.run_for(10ms);
  SUCCEED();
}

// A self-signed server context (no verification on the client: the stream, not the PKI, is tested).
std::shared_ptr<asio::ssl::context> server_context() {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  if (!key || !cert) return nullptr;
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("idle-read"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) return nullptr;
  if (SSL_CTX_use_certificate(ctx->native_handle(), cert.get()) != 1) return nullptr;
  if (SSL_CTX_use_PrivateKey(ctx->native_handle(), key.get()) != 1) return nullptr;
  return ctx;
}

struct TlsPair {
  std::unique_ptr<TlsStream> client, server;
  bool ready = false;
  TlsPair(Loop& loop) {
    auto server_ctx = server_context();
    if (!server_ctx) return;
    Pair pair(loop.io);
    client = std::make_unique<TlsStream>(
        std::move(pair.a), std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client));
    server = std::make_unique<TlsStream>(std::move(pair.b), server_ctx);
    int done = 0;
    std::error_code client_ec, server_ec;
    auto handshake = [&](TlsStream& stream, asio::ssl::stream_base::handshake_type type,
                         std::error_code& ec) {
      asio::co_spawn(
          loop.io,
          [&stream, type, &ec, &done]() -> awaitable<void> {
            co_await stream.handshake(type, ec);
            ++done;
          },
          asio::detached);
    };
    handshake(*client, asio::ssl::stream_base::client, client_ec);
    handshake(*server, asio::ssl::stream_base::server, server_ec);
    loop.run_until([&] { return done == 2; });
    ready = done == 2 && !client_ec && !server_ec;
  }
};

void tls_send(Loop& loop, TlsStream& stream, std::string text);

// After one exchange, as a pooled connection is: what the handshake left (TLS 1.3 session
// tickets) has been read.
void exchange_once(Loop& loop, TlsPair& tls) {
  tls_send(loop, *tls.server, "hello");
  PendingRead read;
  read.run(loop, *tls.client);
  ASSERT_TRUE(read.got);
  ASSERT_EQ(*read.got, "hello");
}

void tls_send(Loop& loop, TlsStream& stream, std::string text) {
  bool sent = false;
  asio::co_spawn(
      loop.io,
      [&]() -> awaitable<void> {
        std::error_code ec;
        co_await stream.write_all(asio::buffer(text), ec);
        sent = !ec;
      },
      asio::detached);
  loop.run_until([&] { return sent; });
  ASSERT_TRUE(sent);
}

TEST(IdleRead, TlsStrayRecordMakesTheConnectionNoisyAndIsReadNext) {
  Loop loop;
  TlsPair tls(loop);
  ASSERT_TRUE(tls.ready);
  exchange_once(loop, tls);
  tls.client->watch_idle();
  loop.io.poll();
  EXPECT_TRUE(nothing_to_read(*tls.client));
  tls_send(loop, *tls.server, "stray");
  loop.run_until([&] { return !nothing_to_read(*tls.client); });
  EXPECT_FALSE(nothing_to_read(*tls.client));
  PendingRead read;
  read.run(loop, *tls.client);
  ASSERT_TRUE(read.got);
  EXPECT_FALSE(read.error) << read.error.message();
  EXPECT_EQ(*read.got, "stray");
}

TEST(IdleRead, TlsReadStartedWhileWatchingGetsTheNextRecord) {
  Loop loop;
  TlsPair tls(loop);
  ASSERT_TRUE(tls.ready);
  exchange_once(loop, tls);
  for (const char* text : {"first", "second"}) {  // watched, read, watched again
    tls.client->watch_idle();
    PendingRead read;
    read.start(loop.io, *tls.client);
    loop.io.poll();
    EXPECT_FALSE(read.got);
    tls_send(loop, *tls.server, text);
    loop.run_until([&] { return read.got.has_value(); });
    ASSERT_TRUE(read.got);
    EXPECT_FALSE(read.error) << read.error.message();
    EXPECT_EQ(*read.got, text);
  }
}

TEST(IdleRead, TlsPeerGoneWhileIdleIsNoisy) {
  Loop loop;
  TlsPair tls(loop);
  ASSERT_TRUE(tls.ready);
  exchange_once(loop, tls);
  tls.client->watch_idle();
  loop.io.poll();
  tls.server->close();
  loop.run_until([&] { return !nothing_to_read(*tls.client); });
  EXPECT_FALSE(nothing_to_read(*tls.client));
  PendingRead read;
  read.run(loop, *tls.client);
  ASSERT_TRUE(read.got);
  EXPECT_TRUE(read.error) << "a closed connection reads as an error or the end";
}

// --- try_write: what the socket takes now, the rest with write_all from the same memory ----------

// Reads from `stream` until `size` bytes came or an error, beside a writer.
struct ReadAll {
  std::string got;
  std::error_code error;
  bool done = false;
  void start(asio::io_context& io, Stream& stream, size_t size) {
    asio::co_spawn(
        io,
        [this, &stream, size]() -> awaitable<void> {
          std::string buf(16384, '\0');
          while (got.size() < size) {
            const size_t n = co_await stream.read_some(asio::buffer(buf), error);
            if (error) break;
            got.append(buf.data(), n);
          }
          done = true;
        },
        asio::detached);
  }
};

// Bytes that differ from position to position: a piece lost, doubled or moved shows.
std::string numbered_bytes(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4093) % 26);
  return s;
}

// Writes `data` with try_write while the peer reads nothing (it must stop short: the socket cannot
// take it all), then the rest with write_all while `reader` reads; what arrives must be `data`.
void try_then_write_all(Loop& loop, Stream& writer, Stream& reader, const std::string& data) {
  writer.socket().set_option(asio::socket_base::send_buffer_size(16384));
  std::error_code ec;
  const size_t written = writer.try_write(asio::buffer(data), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_GT(written, 0u);
  ASSERT_LT(written, data.size()) << "nobody reads yet: the socket cannot take it all";
  ReadAll read;
  read.start(loop.io, reader, data.size());
  bool sent = false;
  asio::co_spawn(
      loop.io,
      [&]() -> awaitable<void> {
        std::error_code write_ec;
        co_await writer.write_all(asio::buffer(data) + written, write_ec);
        EXPECT_FALSE(write_ec) << write_ec.message();
        sent = !write_ec;
      },
      asio::detached);
  loop.run_until([&] { return read.done && sent; });
  EXPECT_TRUE(sent);
  EXPECT_FALSE(read.error) << read.error.message();
  EXPECT_EQ(read.got.size(), data.size());
  EXPECT_TRUE(read.got == data) << "the bytes arrived altered";
}

TEST(TryWrite, PlaintextTakesWhatTheSocketTakesAndWriteAllSendsTheRest) {
  Loop loop;
  Pair pair(loop.io);
  PlainStream writer(std::move(pair.a)), reader(std::move(pair.b));
  try_then_write_all(loop, writer, reader, numbered_bytes(1 << 20));
}

TEST(TryWrite, TlsWriteLeftUnfinishedGoesOnFromTheSameMemory) {
  Loop loop;
  TlsPair tls(loop);
  ASSERT_TRUE(tls.ready);
  exchange_once(loop, tls);
  try_then_write_all(loop, *tls.server, *tls.client, numbered_bytes(1 << 20));
}

TEST(TryWrite, AClosedStreamWritesNothingAndSaysSo) {
  Loop loop;
  Pair pair(loop.io);
  PlainStream plain(std::move(pair.a));
  plain.close();
  std::error_code ec;
  EXPECT_EQ(plain.try_write(asio::buffer(std::string_view("x")), ec), 0u);
  EXPECT_TRUE(ec);
  TlsPair tls(loop);
  ASSERT_TRUE(tls.ready);
  tls.client->close();
  ec.clear();
  EXPECT_EQ(tls.client->try_write(asio::buffer(std::string_view("x")), ec), 0u);
  EXPECT_TRUE(ec);
}

}  // namespace
}  // namespace mg::proxy::net
