// policy/decide.h — the whole inbound decision for one request, in the proxy's order:
//   1. peer authentication: the effective mTLS mode of the destination port; plaintext to a
//      STRICT port is refused (status 0). Under DISABLE the server does not terminate mTLS, so
//      no peer identity reaches authorization (principals / namespaces cannot match);
//   2. HTTP path normalization (mesh setting): %00 or a malformed path → 400;
//   3. request authentication (request_authn.h) when a RequestAuthentication applies:
//      a rejected token → 401 (or 403);
//   4. authorization (engine.h).
// remote.ip / remoteIpBlocks use the first address of X-Forwarded-For when it parses, else
// the direct peer address (source.ip).
#pragma once

#include <cstdint>
#include <string>

#include "policy/engine.h"
#include "policy/request.h"

namespace mg::policy {

Decision decide(const AuthzSnapshot& snapshot, const Request& request, int64_t now);

// The attributes `decide` hands to authorize(); views into `request`, `normalized_path` and
// `auth`. `peer_identity` false drops the peer principal (DISABLE mode).
AuthzAttributes make_attributes(const Request& request, std::string_view normalized_path,
                                const jwt::RequestAuth* auth, bool peer_identity);

// The workload a request is addressed to (request.destination).
WorkloadRef destination_workload(const Request& request);

}  // namespace mg::policy
