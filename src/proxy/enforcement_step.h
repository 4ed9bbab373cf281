// proxy/enforcement_step.h — the one enforcement step: what the proxy does with one inbound
// request (or TCP connection) and the policy in force, as Envoy's RBAC filter is one step over its
// engine. In order:
//   1. peer authentication — the STRICT rule, its only check on the request path: plaintext on a
//      port whose mode is STRICT is refused (Refusal::PlaintextOnStrictPort: the caller closes the
//      connection); then the PeerAuthentication's own STRICT (policy::refuse_plaintext, which an
//      operator's mtlsMode override does not loosen; a gateway listener's request skips it:
//      RequestContext::gateway_listener);
//   2. the policy decision, policy::decide_request: normalization → JWT → OPAPolicies / CUSTOM →
//      DENY → ALLOW — the decision is policy/'s, this step only maps it to a Verdict (the action
//      named and the dry-run outcome by policy/outcome.h) and edits the allowed request (the JWT
//      edits of jwt/forward.h, the normalized path, an allowing OPAPolicy's mutations).
// A CUSTOM rule whose provider decides leaves a PendingCustom (chain.h) that resumes the same
// decision after the provider's answer (Enforcement::ask_provider). Without a policy (no
// policyDir, no push) only step 1 runs and everything else is allowed (Istio: no policy, allow).
// Pure: no I/O; the chains (chain.h) run it, Enforcement (enforcement.h) counts what it decided.
#pragma once

#include <memory>
#include <string>

#include "http/message.h"
#include "jwt/authenticator.h"
#include "policy/engine.h"
#include "proxy/chain.h"
#include "proxy/config.h"

namespace mg::proxy {

// The STRICT rule, its one definition: a port in STRICT mode takes mTLS connections only. The
// request path applies it in the step below; the connection path applies it where no request
// exists yet — the listener before reading a byte (inbound.cpp), and at a publish a plaintext
// connection between requests, spliced or carrying HTTP/2 streams (ConnectionManager::rejudge).
constexpr bool refuses_plaintext(MtlsMode port_mode) { return port_mode == MtlsMode::Strict; }

// The compiled policy the step enforces: the workload's snapshot and, when it has jwtRules, the
// authenticator its tokens verify with (one per snapshot: inline keys parsed once, jwksUri keys
// from the proxy's JwksProvider, verified tokens cached).
struct EnforcedPolicy {
  std::shared_ptr<const policy::AuthzSnapshot> snapshot;
  std::shared_ptr<const jwt::Authenticator> authenticator;  // null: no jwtRules
};

// The step for one HTTP request; `policy` null: no policy. Sets ctx.decision (the explained
// decision) unless step 1 refused, and ctx.pending_custom when a provider decides next. Returns
// the denial, or (a policy allowed) a plain pass: the explanation is ctx.decision's.
Verdict enforce_request(const EnforcedPolicy* policy, RequestContext& ctx);
// The step for one TCP connection (every denial a refused connection, status 0).
Verdict enforce_connection(const EnforcedPolicy* policy, ConnectionContext& ctx);

// The forwarded request carries the path that was authorized (as Envoy forwards its normalized
// path): otherwise `/admin/../x` would be judged as `/x` and served as whatever the app makes of
// it. `normalized` is policy::DecideIo::normalized_path; empty leaves the request unchanged.
void forward_normalized_path(http::Request& request, const std::string& normalized);

// Applies an allowing OPAPolicy's request mutations (its `headers` set, its
// request_headers_to_remove removed), as Envoy applies an ext_authz OK response.
void apply_opa_mutations(http::Request& request, const policy::Decision& decision);

}  // namespace mg::proxy
