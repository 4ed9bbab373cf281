// policy/decide.h — the whole inbound decision for one request, in the proxy's order:
//   1. peer authentication: the PeerAuthentication mode of the destination port; plaintext to a
//      STRICT port is refused (status 0) — refuse_plaintext, which the proxy's enforcement step
//      calls itself, beside its port's own mode, before decide_request (steps 2 to 5). Under DISABLE the server does not terminate mTLS, so
//      no peer identity reaches authorization (principals / namespaces cannot match);
//   2. HTTP normalization (Istio's reference): a method not in upper case → 400; the path
//      normalized as the mesh setting says, %00 or a malformed path → 400;
//   3. request authentication when a RequestAuthentication applies, with the caller's
//      jwt::Authenticator (the proxy's has jwksUri keys) or the shared offline one
//      (request_authn.h): a rejected token → 401 (or 403);
//   4. OPAPolicies (opa.h), in Istio's CUSTOM slot: every enforced one must allow (false or
//      undefined → 403 or the policy's http_status; an evaluation error follows its onError);
//   5. authorization (engine.h). A matching CUSTOM rule whose provider is defined stops here
//      with reason CustomProviderCheck (a denial unless the caller acts on it): the caller asks
//      the provider (src/extauthz), applies its header mutations to the request when it allows,
//      and calls resume_after_custom, which runs DENY and ALLOW — Istio's order, where the
//      ext_authz filter runs before RBAC and RBAC sees the request as ext_authz left it.
// remote.ip / remoteIpBlocks: the peer's address, or with the mesh's numTrustedProxies N > 0 the
// Nth X-Forwarded-For entry from the right (remote_ip.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "jwt/authenticator.h"
#include "policy/engine.h"
#include "policy/request.h"

namespace mg::policy {

// What a caller brings to decide() besides the request, and what it gets back besides the
// Decision, so that it acts on exactly what was judged (no second normalization or token check).
struct DecideIo {
  // In: validates tokens for the snapshot's jwt_rules() (it must have been built from them). The
  // proxy passes one whose JwksProvider it feeds from jwksUri. Null: the shared offline
  // authenticator (inline jwks only; a jwksUri-only rule's tokens fail closed with 401).
  const jwt::Authenticator* authenticator = nullptr;
  // Out: the normalized path (without query) the request was authorized on; left empty for a TCP
  // connection and when decide() stopped before normalizing (plaintext on STRICT, malformed path).
  // Its capacity is reused across calls.
  std::string normalized_path;
  // Out: the verified tokens when request authentication ran (status Missing when it did not).
  jwt::AuthResult auth;
};

Decision decide(const AuthzSnapshot& snapshot, const Request& request, int64_t now, DecideIo& io);

// decide() in its two halves, for a caller that owns step 1 (the proxy's enforcement step, which
// also applies its ports' own STRICT mode there):
//   refuse_plaintext — step 1, the PeerAuthentication's STRICT rule: plaintext (no source
//   principal) to a port it makes STRICT → the refusal (status 0, DeniedPlaintextOnStrict);
//   nullopt when the request passes it. decide_request — steps 2 to 5.
std::optional<Decision> refuse_plaintext(const AuthzSnapshot& snapshot, const Request& request);
Decision decide_request(const AuthzSnapshot& snapshot, const Request& request, int64_t now, DecideIo& io);

// After a CustomProviderCheck decision `pending` (from decide with this `io`, whose normalized
// path and tokens it reuses) and the provider's allow: DENY and ALLOW on `request` (the same
// request, with the provider's header mutations), merged with the OPAPolicies' outcome that
// `pending` carries.
Decision resume_after_custom(const AuthzSnapshot& snapshot, const Request& request, DecideIo& io,
                             Decision&& pending);
// The offline form (`meshguardctl authz check`, tests): the shared offline authenticator, and no
// allocation once warm when no RequestAuthentication applies.
Decision decide(const AuthzSnapshot& snapshot, const Request& request, int64_t now);

// The attributes `decide` hands to authorize(); views into `request`, `normalized_path` and
// `auth`. `peer_identity` false drops the peer principal (DISABLE mode). `num_trusted_proxies`:
// MeshConfig's, for remote.ip.
AuthzAttributes make_attributes(const Request& request, std::string_view normalized_path,
                                const jwt::RequestAuth* auth, bool peer_identity,
                                uint32_t num_trusted_proxies);

// The workload a request is addressed to (request.destination).
WorkloadRef destination_workload(const Request& request);

}  // namespace mg::policy
