#include "proxy/peer_exchange.h"

#include <string>

#include "tls/tls.h"

namespace mg::proxy {

namespace {

// Reads exactly `size` bytes into `out`: each read asks for no more than what is missing, so the
// app's bytes that follow stay in the stream (OpenSSL keeps the rest of a record).
net::awaitable<Status> read_exactly(net::Stream& stream, size_t size, std::string& out) {
  out.assign(size, '\0');
  size_t have = 0;
  while (have < size) {
    std::error_code ec;
    const size_t n = co_await stream.read_some(asio::buffer(out.data() + have, size - have), ec);
    if (ec || n == 0)
      co_return fail("peer_exchange.closed", "the connection ended before the peer's metadata frame");
    have += n;
  }
  co_return Status{};
}

}  // namespace

bool peer_exchange_selected(net::Stream& stream) {
  return stream.ssl() != nullptr && tls::negotiated_alpn(stream.ssl()) == tls::kAlpnPeerExchange;
}

net::awaitable<Result<std::shared_ptr<const PeerLabels>>> exchange_peer_metadata(
    net::Stream& stream, const OwnMetadata& own, std::string_view peer_principal,
    std::chrono::milliseconds timeout) {
  net::Watchdog deadline(stream.socket().get_executor(), [&stream] { stream.close(); });
  deadline.arm(timeout);
  auto timed_out = [&deadline](Error e) -> Result<std::shared_ptr<const PeerLabels>> {
    if (deadline.fired()) {
      return fail("peer_exchange.timeout", "no metadata frame from the peer within the header timeout");
    }
    return fail(std::move(e));
  };
  std::error_code ec;
  co_await stream.write_all(asio::buffer(own.frame), ec);
  if (ec) co_return timed_out({"peer_exchange.closed", "cannot write the metadata frame: " + ec.message()});
  std::string header;
  if (auto read = co_await read_exactly(stream, kPeerExchangeHeaderSize, header); !read) {
    co_return timed_out(read.error());
  }
  auto size = parse_exchange_header(header);
  if (!size) co_return fail(size.error());
  std::string body;
  if (auto read = co_await read_exactly(stream, *size, body); !read) co_return timed_out(read.error());
  deadline.disarm();
  auto workload = decode_exchange_body(body);
  if (!workload) co_return fail(workload.error());
  co_return peer_labels_for(*workload, peer_principal);
}

}  // namespace mg::proxy
