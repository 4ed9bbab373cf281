// proxy/chain.h — the per-request enforcement chain and its seam.
//
// Every inbound HTTP request runs the steps in order: peer authn → request authn → authz; only
// if all of them continue does the I/O code forward it to the app. A step is a plain function
// object over RequestContext, so the policy engine (src/policy, fed with the request model and
// mg::jwt::RequestAuth) plugs in by replacing the "request_authn" and "authz" steps of a Chain;
// the connection code never changes. TCP ports run a ConnectionChain the same way (L4 authz).
// Chains are immutable and published through an atomic shared_ptr: a policy reload builds a new
// one, and the next request on every connection sees it.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/message.h"
#include "jwt/request_auth.h"
#include "proxy/config.h"
#include "tls/tls.h"

namespace mg::policy {
struct ExtensionProvider;
}

namespace mg::proxy {

// What a step decided. Deny ends the request with `status` and `body` (never reaches the app).
struct Verdict {
  bool allow = true;
  int status = 200;
  std::string body;
  // Explain fields for the access log and meshguard_authz_decisions_total (null when none).
  std::optional<std::string> policy;  // "namespace/name"
  std::optional<int> rule;
  std::string action;                 // ALLOW | DENY | CUSTOM | AUDIT | "" (no policy applied)
  bool audit = false;
  std::optional<bool> dry_run_allow;          // the outcome the dry-run policies would have had
  std::optional<std::string> dry_run_policy;  // the dry-run policy that would have decided
  std::string reason;
  // Every OPAPolicy evaluated (access log "opa", meshguard_opa_decisions_total); empty when none.
  struct Opa {
    std::string policy;   // "namespace/name"
    const char* outcome;  // allowed | denied | undefined | error
    bool dry_run;
  };
  std::vector<Opa> opa;
  // Headers an OPAPolicy's object result puts on the response: on a denial the local reply's
  // (its `headers`), on an allow added to the app's response (its `response_headers_to_add`).
  std::vector<http::Header> response_headers;
  // A CUSTOM policy's call to its extension provider (access log "ext_authz",
  // meshguard_ext_authz_requests_total); absent when none was asked.
  struct ExtAuthzCall {
    std::string provider;
    std::string outcome;  // allowed | denied | error | timeout
    double latency_ms = 0;
    std::string error;    // error / timeout: why
  };
  std::optional<ExtAuthzCall> ext_authz;

  static Verdict pass() { return {}; }
  static Verdict deny(int status, std::string body, std::string reason = {}) {
    Verdict v;
    v.allow = false;
    v.status = status;
    v.body = std::move(body);
    v.reason = std::move(reason);
    return v;
  }
};

// Everything a step may look at; steps may also edit the request (e.g. remove a JWT before forwarding).
// The authz step stopped at a CUSTOM policy whose extension provider must be asked (Istio
// orders CUSTOM before DENY and ALLOW). The chain's verdict is then a denial (fail closed for a
// caller that cannot ask); Enforcement::ask_provider asks and, when the provider allows, calls
// `resume` with the request as the provider left it.
struct PendingCustom {
  const policy::ExtensionProvider* provider = nullptr;  // valid while `keep` lives
  std::shared_ptr<const void> keep;                     // the snapshot the provider points into
  Verdict pending;                                      // the explained decision so far (CUSTOM)
  // DENY and ALLOW on the request (after the provider's mutations): the explained decision,
  // the allowed request edited as an allowed request is (JWT, normalized path, OPA mutations).
  std::function<Verdict(http::Request&)> resume;
};

struct RequestContext {
  http::Request& request;
  const WorkloadInfo& workload;
  MtlsMode port_mode;
  uint16_t port = 0;                       // the inbound listener port
  std::string source_address;              // "ip:port" of the downstream peer
  std::optional<tls::PeerIdentity> peer;   // present iff the connection is mTLS
  jwt::RequestAuth request_auth;           // filled by the request-authn step
  Verdict decision;                        // the authz step's verdict, for logs and metrics
  // The workload port (the app port): Istio's destination.port, the key of portLevelMtls and
  // of AuthorizationPolicy `ports`.
  uint16_t app_port = 0;
  // When a spliced connection is judged again (a policy reload): the Unix time it was first
  // judged, as of which JWT exp/nbf are checked — a token that expired since does not end it.
  std::optional<int64_t> judged_at;
  // Out: set by the authz step when a CUSTOM policy's provider decides next.
  std::shared_ptr<PendingCustom> pending_custom;
  // In: the provider already allowed this request (a spliced connection judged again after a
  // policy reload): the authz step goes on to DENY and ALLOW without asking it again.
  bool custom_allowed = false;
};

struct ConnectionContext {
  const WorkloadInfo& workload;
  MtlsMode port_mode;
  uint16_t port = 0;
  std::string source_address;
  std::optional<tls::PeerIdentity> peer;
  Verdict decision;
  uint16_t app_port = 0;  // as in RequestContext
};

template <class Context>
struct BasicChain {
  struct Step {
    std::string name;
    std::function<Verdict(Context&)> run;
  };
  std::vector<Step> steps;

  // Runs the steps in order; the first deny ends the chain and is returned.
  Verdict run(Context& ctx) const {
    for (const auto& step : steps) {
      Verdict v = step.run(ctx);
      if (!v.allow) return v;
    }
    return Verdict::pass();
  }
};

using RequestChain = BasicChain<RequestContext>;
using ConnectionChain = BasicChain<ConnectionContext>;

// The chain meshguard runs while no policy engine is plugged in:
//  - peer_authn: a STRICT port without a verified peer identity is refused (defence in depth:
//    the listener already refuses plaintext there);
//  - request_authn: no RequestAuthentication is configured, so every request has NoToken;
//  - authz: no AuthorizationPolicy is configured, which in Istio's semantics allows the request.
RequestChain default_request_chain();
ConnectionChain default_connection_chain();

// The published chains (read per request/connection, replaced on policy reload). The pair is
// one atomic value, so a reader never sees the request chain of one policy version with the
// connection chain of another.
class ChainSet {
 public:
  struct Pair {
    std::shared_ptr<const RequestChain> request;
    std::shared_ptr<const ConnectionChain> connection;
    // +1 per replace: which chains judged a live connection, without keeping them alive.
    uint64_t generation = 0;
  };

  ChainSet();
  std::shared_ptr<const Pair> current() const { return pair_.load(std::memory_order_acquire); }
  std::shared_ptr<const RequestChain> request() const { return current()->request; }
  std::shared_ptr<const ConnectionChain> connection() const { return current()->connection; }
  void replace(std::shared_ptr<const RequestChain> r, std::shared_ptr<const ConnectionChain> c) {
    const uint64_t generation = generations_.fetch_add(1) + 1;
    pair_.store(std::make_shared<const Pair>(Pair{std::move(r), std::move(c), generation}),
                std::memory_order_release);
  }

 private:
  std::atomic<uint64_t> generations_{0};
  std::atomic<std::shared_ptr<const Pair>> pair_;
};

}  // namespace mg::proxy
