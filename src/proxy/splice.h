// proxy/splice.h — two connections joined byte for byte: a TCP port's connection and the app, an
// outbound TCP route and its destination proxy, a WebSocket after its 101. Both directions are
// copied until both end, or nothing moves for the idle timeout; a half-close is passed on.
#pragma once

#include <chrono>
#include <cstdint>
#include <utility>

#include "proxy/buffer_pool.h"
#include "proxy/net.h"

namespace mg::proxy {

// Returns {a→b bytes, b→a bytes}. Waits in 1 KB buffers; only a read that fills one borrows a
// 16 KB buffer from `pool`, kept while reads keep filling it (a bulk transfer), so an idle
// spliced connection holds 2 × 1 KB.
net::awaitable<std::pair<uint64_t, uint64_t>> splice(net::Stream& a, net::Stream& b, BufferPool& pool,
                                                     std::chrono::milliseconds idle_timeout);

}  // namespace mg::proxy
