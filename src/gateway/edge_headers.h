// gateway/edge_headers.h — the request headers an edge proxy restates for the backends behind it,
// as Envoy does at an Istio ingress gateway (use_remote_address: true): X-Forwarded-For gets the
// direct peer's address appended, X-Forwarded-Proto says how the client reached the gateway,
// X-Request-Id is kept when the client sent one and made otherwise, and a client's
// X-Forwarded-Client-Cert is dropped (only a proxy that verified a client certificate may set it).
// Pure logic: the request id comes from the caller.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "http/message.h"

namespace mg::gateway {

// A version-4 UUID ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", lower case) from 16 random bytes.
std::string uuid_v4(const std::array<uint8_t, 16>& random);

// `peer_ip`: the direct peer (the PROXY protocol's source when it is on), without a port.
// `https`: the client's connection to the gateway was TLS. `make_request_id`: called when the
// request carries no (or an empty) X-Request-Id; an empty result sets none.
void set_edge_headers(http::Headers& headers, std::string_view peer_ip, bool https,
                      const std::function<std::string()>& make_request_id);

}  // namespace mg::gateway
