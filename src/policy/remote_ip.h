// policy/remote_ip.h — the original client's address behind trusted proxies: what remote.ip and
// remoteIpBlocks match. One rule, used by the engine's decide() (so by the proxy) and by
// `meshguardctl authz check`: Envoy's xff_num_trusted_hops with use_remote_address, which Istio
// sets from gatewayTopology.numTrustedProxies.
//   0 trusted proxies (the default): the peer's address; X-Forwarded-For is not read at all —
//     any client can write it;
//   N > 0: the Nth address from the right of X-Forwarded-For (every field of it read as one
//     comma-separated list, in order), the one the outermost trusted proxy appended; the peer's
//     address when the list has fewer than N entries or that entry is not an IP address.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "policy/match.h"

namespace mg::policy {

std::optional<IpAddress> remote_ip(const std::optional<IpAddress>& peer,
                                   std::span<const std::pair<std::string, std::string>> headers,
                                   uint32_t num_trusted_proxies);

}  // namespace mg::policy
