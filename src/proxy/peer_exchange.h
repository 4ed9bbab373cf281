// proxy/peer_exchange.h — Istio's TCP metadata exchange on one mTLS connection between two
// proxies: the I/O around the frame proxy/peer_metadata.h builds and parses. Each side writes its
// frame as soon as the handshake has selected ALPN istio-peer-exchange and then reads the other's,
// so neither waits for the other to speak first; the app's bytes follow on the same connection.
// Used by the client proxy of a TCP route (proxy/outbound.cpp) and every inbound mTLS connection
// that selected it (proxy/inbound.cpp).
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "common/result.h"
#include "proxy/net.h"
#include "proxy/peer_metadata.h"

namespace mg::proxy {

// Whether the handshake on `stream` selected istio-peer-exchange.
bool peer_exchange_selected(net::Stream& stream);

// Writes `own`'s frame, then reads exactly the peer's (never a byte past it), all within `timeout`
// (the stream is closed when it passes). The peer's labels when its metadata names the namespace
// `peer_principal` proves; null when it names another (labelled as if none had been sent, as the
// HTTP exchange does). An error — the caller closes the connection — when the peer closes or
// stalls first, or sends a frame that is not one, too large, or malformed.
net::awaitable<Result<std::shared_ptr<const PeerLabels>>> exchange_peer_metadata(
    net::Stream& stream, const OwnMetadata& own, std::string_view peer_principal,
    std::chrono::milliseconds timeout);

}  // namespace mg::proxy
