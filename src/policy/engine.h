// policy/engine.h — the compiled authorization engine (one engine for proxy, control plane
// and meshguardctl).
//
//   auto snap = compile_snapshot(resources, workload, mesh);   // once per config change
//   Decision d = authorize(**snap, attributes);                // per request: no I/O, no locks,
//                                                              // no allocation (unless dry-run)
//
// compile_snapshot keeps only what applies to the workload (select.h) and compiles it into an
// immutable AuthzSnapshot: rules are grouped by action and protocol (HTTP / TCP; on TCP,
// ALLOW / AUDIT / CUSTOM rules using HTTP-only fields match nothing, DENY rules drop those
// fields) and rules whose operations all name exact or prefix paths are bucketed by path, so a
// request only visits rules that can match it. Evaluation order is Istio's: CUSTOM (a matching rule
// hands the decision to its extension provider: CustomProviderCheck) → DENY → (no ALLOW
// policy ⇒ allow) → any ALLOW rule matches ⇒ allow → deny; AUDIT only sets `audit`;
// `istio.io/dry-run` policies never decide and are reported in `dry_run`.
// The full pipeline (peer authn → path → request authn → authorize) is in decide.h.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "jwt/request_auth.h"
#include "jwt/rule.h"
#include "policy/match.h"
#include "policy/parse.h"
#include "policy/resources.h"
#include "policy/select.h"

namespace mg::policy {

// Request attributes as views; the caller owns the storage for the duration of the call.
struct AuthzAttributes {
  std::string_view peer_principal;  // without "spiffe://"; empty: no mTLS peer identity
  std::string_view peer_namespace;  // principal_namespace(peer_principal)
  // Set by authorize() when the peer's trust domain is not the mesh's (nor an alias): a federated
  // mesh's peer (policy/mesh.h). Its principal matches only patterns that name that trust domain,
  // never a namespace, and only an ALLOW rule naming it can allow it.
  std::string_view foreign_trust_domain;
  std::optional<IpAddress> source_ip;       // the direct peer (ipBlocks, source.ip)
  std::optional<IpAddress> remote_ip;       // original client (remoteIpBlocks, remote.ip)
  std::optional<IpAddress> destination_ip;
  uint32_t destination_port = 0;
  std::string_view sni;

  bool http = false;              // false: a TCP connection
  std::string_view method;
  std::string_view path;          // normalized, without query (path.h)
  std::string_view host;
  std::span<const std::pair<std::string, std::string>> headers;
  const jwt::RequestAuth* auth = nullptr;  // null or not Authenticated: no request principal
};

enum class ReasonCode {
  AllowedNoAuthorizationPolicy,  // no ALLOW policy applies (and nothing denied)
  AllowedByPolicy,               // an ALLOW rule matched
  DeniedByPolicy,                // a DENY rule matched
  DeniedNoAllowMatch,            // ALLOW policies apply, none matched
  DeniedCustomUnavailable,       // a CUSTOM rule matched; its provider is undefined (or the request is TCP)
  CustomProviderCheck,           // a CUSTOM rule matched; its provider (Decision::provider) decides next
  DeniedPlaintextOnStrict,       // peer authn: plaintext to a STRICT port (connection refused)
  MalformedRequest,              // 400: e.g. %00 in the path
  RequestAuthnFailed,            // 401/403 from request authentication (JWT)
  DeniedByOpaPolicy,             // an OPAPolicy's decision was false, allowed: false, or undefined
  DeniedOpaPolicyError,          // an OPAPolicy failed to evaluate (error, budget) and its onError is Deny
  AllowedByOpaPolicy,            // OPAPolicies allowed; no ALLOW policy applies and no DENY matched
  DeniedForeignNotNamed,         // a federated mesh's peer, and no ALLOW rule names its principal
};
const char* to_string(ReasonCode code);  // stable identifier, e.g. "DeniedByPolicy"

struct DryRunResult {
  std::string_view policy;  // "ns/name"
  Action action = Action::Allow;
  bool matched = false;
  int rule = -1;            // first matching rule
  // A dry-run OPAPolicy is reported as a DENY that matched when it would have denied (so what
  // the proxy logs for shadow policies needs no special case); `opa` tells them apart.
  bool opa = false;
};

// What one OPAPolicy said about a request (enforced and dry-run ones alike).
enum class OpaOutcome : uint8_t { Allowed, Denied, Undefined, Error };
const char* to_string(OpaOutcome o);  // "allowed", "denied", "undefined", "error"

struct OpaResult {
  std::string_view policy;  // "ns/name"; points into the snapshot
  OpaOutcome outcome = OpaOutcome::Undefined;
  bool dry_run = false;
  bool allow_on_error = false;  // spec.onError: Allow
  std::string error;            // when Error: why (OPA's error text, or the budget)
};

struct Decision {
  bool allow = false;
  int status = 403;          // 200, 400, 401, 403, or 0 (connection refused)
  std::string_view policy;   // "ns/name" that decided; empty = none. Points into the snapshot.
  int rule = -1;             // rule index in that policy; -1 = none
  ReasonCode reason = ReasonCode::DeniedNoAllowMatch;
  std::string detail;        // extra words for a pipeline failure (401 reason, 400 why)
  bool audit = false;        // an AUDIT rule matched
  // DeniedNoAllowMatch for a request without a verified token, where an ALLOW rule would match
  // had it carried one: it lacks a credential rather than a permission. Istio answers 403 all the
  // same (HTTP keeps that); a gRPC caller is told UNAUTHENTICATED (proxy/enforcement.cpp).
  bool lacks_credential = false;
  std::string_view audit_policy;
  int audit_rule = -1;
  std::vector<DryRunResult> dry_run;  // empty unless dry-run policies apply

  // OPAPolicies (empty when none applies). Every evaluated one, in load order; enforced policies
  // after the first denial are not evaluated.
  std::vector<OpaResult> opa;
  int opa_errors = 0;  // evaluations that failed (error or budget overrun), enforced or dry-run
  // The response an OPAPolicy asks for, the way the OPA-Envoy plugin honours its object result:
  // on a denial `status` is its http_status (403 by default), `body` its body and
  // `response_headers` its `headers`; on an allow `upstream_headers` are its `headers` (set on
  // the forwarded request), `upstream_headers_to_remove` its request_headers_to_remove, and
  // `response_headers` its response_headers_to_add (added to the response to the client).
  std::string body;
  std::vector<std::pair<std::string, std::string>> response_headers;
  std::vector<std::pair<std::string, std::string>> upstream_headers;
  std::vector<std::string> upstream_headers_to_remove;

  // CustomProviderCheck: the extension provider the matching CUSTOM rule names (points into the
  // snapshot's mesh). The decision is a denial until the caller asks the provider and, if it
  // allows, resumes with policy::resume_after_custom (decide.h).
  const ExtensionProvider* provider = nullptr;
};

// One sentence for logs and `authz check` ("denied by DENY policy foo/bar rule 0").
std::string describe(const Decision& d);
// The same sentence appended to `out`.
void describe_into(const Decision& d, std::string& out);

namespace detail {

enum class Field : uint8_t {
  PeerPrincipal, PeerNamespace, RequestPrincipal, SourceIp, RemoteIp, DestinationIp, DestinationPort,
  Host, Method, Path, Header, AuthPrincipal, AuthAudiences, AuthPresenter, AuthClaim, Sni,
};

struct Predicate {
  Field field = Field::Path;
  bool negate = false;     // notX: none of the values may match
  bool http_only = false;
  std::vector<StringMatch> strings;
  std::vector<Cidr> cidrs;
  std::vector<uint32_t> ports;
  std::vector<std::string> key;  // header name, or claim path
  std::string origin;            // "rules[0].from[1].source.principals", for explain
};

struct Clause {  // AND
  std::vector<Predicate> predicates;
};

struct CompiledRule {
  int index = 0;
  bool never = false;         // TCP: an ALLOW/AUDIT/CUSTOM rule with HTTP-only fields
  std::vector<Clause> from;   // OR (empty: any)
  std::vector<Clause> to;     // OR (empty: any)
  Clause when;
};

struct CompiledPolicy {
  std::string name;  // "ns/name"
  Action action = Action::Allow;
  bool dry_run = false;
  std::string provider;
  std::string custom_unavailable;  // CUSTOM: why its provider cannot decide (Decision::detail)
  size_t rule_count = 0;
  std::vector<CompiledRule> http_rules;
  std::vector<CompiledRule> tcp_rules;
};

struct CompiledOpa {
  std::string name;  // "ns/name"
  bool dry_run = false;
  bool allow_on_error = false;
  std::string decision;           // as written, for explain
  std::vector<std::string> path;  // under data
  std::shared_ptr<const rego::Plan> plan;
};

struct RuleRef {
  uint32_t policy;
  const CompiledRule* rule;
};

// Rules of one action for one protocol, in (policy, rule) order; exact-path buckets for HTTP.
struct RuleIndex {
  std::vector<RuleRef> refs;
  std::vector<uint32_t> unindexed;  // positions in refs, ascending
  std::vector<std::pair<std::string, std::vector<uint32_t>>> by_path;    // exact paths, sorted
  std::vector<std::pair<std::string, std::vector<uint32_t>>> by_prefix;  // path prefixes, sorted
  std::vector<uint32_t> prefix_lengths;  // distinct lengths in by_prefix, ascending (bounded)
  bool any_policy = false;          // at least one enforced policy of this action applies
};

}  // namespace detail

class AuthzSnapshot {
 public:
  AuthzSnapshot() = default;
  AuthzSnapshot(const AuthzSnapshot&) = delete;  // the rule index points into policies_
  AuthzSnapshot& operator=(const AuthzSnapshot&) = delete;

  const MeshConfig& mesh() const { return mesh_; }
  const WorkloadRef& workload() const { return workload_; }
  const PeerAuthnResolution& peer_authn() const { return peer_authn_; }
  const std::vector<jwt::JwtRule>& jwt_rules() const { return jwt_rules_; }
  const std::vector<std::string>& request_authentications() const { return request_authn_names_; }
  const std::vector<detail::CompiledPolicy>& policies() const { return policies_; }
  const std::vector<detail::CompiledOpa>& opa_policies() const { return opa_; }
  // What the OPAPolicies' rules can read of their input document (all their plans together);
  // null when no OPAPolicy applies.
  const rego::InputUse* opa_input_use() const { return opa_input_use_.get(); }

 private:
  friend Result<std::shared_ptr<const AuthzSnapshot>> compile_snapshot(const ResourceSet&, const WorkloadRef&,
                                                                       const MeshConfig&);
  friend Decision authorize(const AuthzSnapshot&, const AuthzAttributes&, bool);

  MeshConfig mesh_;
  WorkloadRef workload_;
  PeerAuthnResolution peer_authn_;
  std::vector<jwt::JwtRule> jwt_rules_;
  std::vector<std::string> request_authn_names_;
  std::vector<detail::CompiledPolicy> policies_;  // enforced and dry-run, in load order
  // [action][0 = http, 1 = tcp]; actions: Custom, Deny, Allow, Audit
  detail::RuleIndex index_[4][2];
  std::vector<uint32_t> dry_run_policies_;
  std::vector<detail::CompiledOpa> opa_;  // OPAPolicies selecting the workload, in load order
  std::shared_ptr<const rego::InputUse> opa_input_use_;
};

Result<std::shared_ptr<const AuthzSnapshot>> compile_snapshot(const ResourceSet& resources, const WorkloadRef& workload,
                                                              const MeshConfig& mesh);

// `custom_allowed`: the CUSTOM provider already allowed this request, so CUSTOM rules are not
// looked at again (resume_after_custom).
Decision authorize(const AuthzSnapshot& snapshot, const AuthzAttributes& attributes, bool custom_allowed = false);

// Explain: for every applicable policy, whether each rule matched and, if not, the first part
// that did not (slow path; for `authz check -o table` and debugging).
struct RuleExplanation {
  int index = 0;
  bool matched = false;
  std::string why;  // "matched", or e.g. "rules[0].to[0].operation.paths did not match"
};
struct PolicyExplanation {
  std::string policy;
  Action action = Action::Allow;
  bool dry_run = false;
  std::vector<RuleExplanation> rules;
  std::string note;  // e.g. "no rules: matches nothing"
};
std::vector<PolicyExplanation> explain(const AuthzSnapshot& snapshot, const AuthzAttributes& attributes);

}  // namespace mg::policy
