// proxy/chain.h — the seam between the connection code and what judges a request: the chains
// the proxy runs over each inbound HTTP request (RequestChain) and TCP connection
// (ConnectionChain), published atomically as one ChainSet; a policy reload builds new ones, and
// the next request on every connection sees them. What meshguard publishes is one step per chain,
// the enforcement step (enforcement_step.h: the STRICT rule, then policy::decide's JWT → CUSTOM →
// DENY → ALLOW); the step list is the seam a test plugs its own steps into. Also the Verdict a
// step returns and what a step may read and edit (RequestContext, ConnectionContext).
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
#include "policy/outcome.h"
#include "proxy/config.h"
#include "tls/tls.h"

namespace mg::policy {
struct ExtensionProvider;
}

namespace mg::proxy {

// Why an inbound connection is refused rather than answered: the `reason` of
// meshguard_connections_refused_total and of the access log's connection_refused event.
enum class Refusal {
  PlaintextOnStrictPort,  // plaintext on a port whose mode is STRICT
  NoCertificate,          // mTLS asked for, no valid certificate of our own
  TlsHandshakeFailed,
  PeerCertificateRejected,  // the client's SVID did not verify
  Denied,                   // a TCP connection the policy denies
  MaxConnections,           // past maxConnections
  ProxyProtocolInvalid,     // gateway.proxyProtocol: no valid PROXY v1/v2 header first
  PeerMetadataInvalid,      // istio-peer-exchange selected, no well-formed metadata frame in time
  TlsClientHelloInvalid,    // TLS passthrough: no well-formed ClientHello in time
  NoRoute,                  // TLS passthrough: no tls route for the SNI, or its destination unknown
};
std::string_view to_string(Refusal reason);

// What a step decided. Deny ends the request with `status` and `body` (never reaches the app).
struct Verdict {
  bool allow = true;
  int status = 200;
  std::string body;
  // Explain fields for the access log and meshguard_authz_decisions_total (null when none).
  std::optional<std::string> policy;  // "namespace/name"
  std::optional<int> rule;
  policy::DecidingAction action = policy::DecidingAction::None;  // None: no policy decided
  bool audit = false;
  std::optional<bool> dry_run_allow;          // the outcome the dry-run policies would have had
  std::optional<std::string> dry_run_policy;  // the dry-run policy that would have decided
  std::string reason;
  // Denied for want of a request credential (policy::Decision::lacks_credential).
  bool lacks_credential = false;
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
    enum class Outcome { Allowed, Denied, Error, Timeout };
    std::string provider;
    Outcome outcome = Outcome::Error;
    double latency_ms = 0;
    std::string error;    // error / timeout: why
  };
  std::optional<ExtAuthzCall> ext_authz;
  // Set when the connection is to be refused (closed), not answered: step 1 of the enforcement
  // step, plaintext on a STRICT port.
  std::optional<Refusal> refusal;

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

// The enforcement step stopped at a CUSTOM policy whose extension provider must be asked (Istio
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

// "allowed" | "denied" | "error" | "timeout": the access log's and the metric's text.
std::string_view to_string(Verdict::ExtAuthzCall::Outcome outcome);

// Everything a step may look at; steps may also edit the request (e.g. remove a JWT before forwarding).
struct RequestContext {
  http::Request& request;
  const WorkloadInfo& workload;
  MtlsMode port_mode;
  uint16_t port = 0;                       // the inbound listener port
  std::string source_address;              // "ip:port" of the downstream peer
  std::optional<tls::PeerIdentity> peer;   // present iff the connection is mTLS
  jwt::RequestAuth
      request_auth;  // out: request authentication's outcome (the tokens stay in policy's DecideIo)
  Verdict decision;  // out: the explained decision, for logs and metrics
  // The workload port (the app port): Istio's destination.port, the key of portLevelMtls and
  // of AuthorizationPolicy `ports`.
  uint16_t app_port = 0;
  // When a spliced connection is judged again (a policy reload): the Unix time it was first
  // judged, as of which JWT exp/nbf are checked — a token that expired since does not end it.
  std::optional<int64_t> judged_at;
  // Out: set by the enforcement step when a CUSTOM policy's provider decides next.
  std::shared_ptr<PendingCustom> pending_custom;
  // In: the provider already allowed this request (a spliced connection judged again after a
  // policy reload): the enforcement step goes on to DENY and ALLOW without asking it again.
  bool custom_allowed = false;
  // In: a gateway listener's request (proxy/gateway_mode.h): its TLS is what its Gateway server
  // says, and a PeerAuthentication does not apply to it (Istio applies those to sidecars only).
  bool gateway_listener = false;
};

struct ConnectionContext {
  const WorkloadInfo& workload;
  MtlsMode port_mode;
  uint16_t port = 0;
  std::string source_address;
  std::optional<tls::PeerIdentity> peer;
  Verdict decision;
  uint16_t app_port = 0;  // as in RequestContext
  // A TLS passthrough connection: its ClientHello's server name (connection.sni); "" otherwise.
  std::string sni;
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

// The chains while no policy is in force (no policyDir, nothing pushed yet): the enforcement
// step without a policy — the STRICT rule, then allowed ("no authorization policy applies", as
// Istio allows without AuthorizationPolicies).
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
