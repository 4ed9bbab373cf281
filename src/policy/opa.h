// policy/opa.h — OPAPolicy at request time: the input document a policy sees (the OPA-Envoy
// plugin's, so policies written for it run unchanged; docs/OPA.md) and the evaluation of one
// compiled OPAPolicy into an outcome plus the response it asks for. Pure: no I/O, no locks; the
// plans are shared read-only by every worker.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "jwt/request_auth.h"
#include "policy/engine.h"
#include "policy/request.h"
#include "rego/value.h"

namespace mg::policy {

// Per-evaluation bounds on the request path: overrunning one is an evaluation error (onError).
inline constexpr uint64_t kOpaMaxSteps = 1'000'000;
inline constexpr uint64_t kOpaMaxBytes = 16ull << 20;

struct OpaInputContext {
  std::string_view trust_domain;           // the destination's own principal is built in it
  bool peer_identity = true;               // false under mTLS DISABLE: no principals
  const jwt::RequestAuth* auth = nullptr;  // the verified token (Authenticated), if any
  int64_t now = 0;                         // unix seconds: attributes.request.time
};

// The input document; an error when the request path cannot be parsed as a URL (as the plugin).
// An HTTP header name (an RFC 9110 token). policy/ keeps its own: mg_http is not built
// position-independent, and libmeshguard-agent.so links mg_policy.
bool is_header_name(std::string_view name);

Result<rego::Value> opa_input(const Request& request, const OpaInputContext& context);
// Only the parts `use` names (null: all), each built whole: what a plan whose rules read no more
// (rego::Plan::input_use) sees is the same as in the full document. Still an error for a path
// that does not parse, read or not.
Result<rego::Value> opa_input(const Request& request, const OpaInputContext& context,
                              const rego::InputUse* use);

// The result of evaluating one OPAPolicy, with the response fields of an object result.
struct OpaEvaluation {
  OpaOutcome outcome = OpaOutcome::Undefined;
  std::string error;  // Error: why
  int status = 403;   // Denied: http_status
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;                  // `headers`
  std::vector<std::pair<std::string, std::string>> response_headers_to_add;  // allowed only
  std::vector<std::string> request_headers_to_remove;                        // allowed only
};

OpaEvaluation evaluate_opa(const detail::CompiledOpa& policy, const rego::Value& input, int64_t now);

// Reads a decision value (boolean or object) the way the OPA-Envoy plugin does; an outcome of
// Error for a value of another shape.
OpaEvaluation interpret_opa_result(const rego::Value& result);

// Runs every OPAPolicy of the snapshot for one request into `d` (d.opa, d.opa_errors, and the
// response fields). Returns false when an enforced OPAPolicy denied: `d` is then the final
// decision. Nothing is done (true) when no OPAPolicy applies.
bool run_opa_policies(const AuthzSnapshot& snapshot, const Request& request, const OpaInputContext& context,
                      Decision& d);

}  // namespace mg::policy
