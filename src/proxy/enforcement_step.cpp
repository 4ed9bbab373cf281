#include "proxy/enforcement_step.h"

#include <chrono>

#include "jwt/forward.h"
#include "policy/decide.h"
#include "policy/outcome.h"
#include "policy/request.h"
#include "policy/select.h"

namespace mg::proxy {
namespace {

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "ip:port" / "[v6]:port" → the address part.
std::string_view host_of(std::string_view address) {
  if (!address.empty() && address.front() == '[') {
    auto end = address.find(']');
    return end == std::string_view::npos ? address : address.substr(1, end - 1);
  }
  auto colon = address.rfind(':');
  if (colon == std::string_view::npos || address.find(':') != colon) return address;
  return address.substr(0, colon);
}

// `port` is the workload (app) port: Istio's destination.port. Fills `r` by assignment, so a
// Request reused across requests keeps its strings' and map's storage; the labels, the same
// from one request to the next, are compared rather than copied again.
void fill_base_request(policy::Request& r, const WorkloadInfo& w, uint16_t port, const std::string& source,
                       const std::optional<tls::PeerIdentity>& peer) {
  r.destination_namespace = w.ns;
  if (r.destination_labels != w.labels) r.destination_labels = w.labels;
  r.destination_service_account = w.service_account;
  r.destination_ip.clear();
  r.destination_port = port;
  // The engine keeps principals without the "spiffe://" scheme (Istio's principal form).
  if (peer) {
    r.source_principal = policy::strip_spiffe(peer->id.str());
  } else {
    r.source_principal.clear();
  }
  r.source_ip = host_of(source);
  r.sni.clear();
  r.http.reset();
  r.time = now_seconds();
}

// Step 1's own refusal: plaintext on a port in STRICT mode. The request would be answered 403
// by a caller that does not close (a test running the chain); Enforcement closes the connection.
Verdict plaintext_refused(int status, std::string body) {
  Verdict v = Verdict::deny(status, std::move(body), "STRICT port without mTLS peer");
  v.refusal = Refusal::PlaintextOnStrictPort;
  return v;
}

Verdict no_policy() {
  Verdict v = Verdict::pass();
  v.reason = "no authorization policy applies";
  return v;
}

// Decision → Verdict; `http` false maps every denial to a refused connection (status 0).
Verdict to_verdict(const policy::Decision& d, bool http) {
  Verdict v;
  if (d.allow) {
    v = Verdict::pass();
  } else if (!http) {
    v = Verdict::deny(0, "");
  } else if (d.reason == policy::ReasonCode::DeniedByOpaPolicy ||
             d.reason == policy::ReasonCode::DeniedOpaPolicyError) {
    v = Verdict::deny(d.status, d.body);  // the OPAPolicy's http_status and body (403, empty)
  } else if (d.status == 401) {
    v = Verdict::deny(401, "Jwt verification fails");
  } else if (d.status == 400) {
    v = Verdict::deny(400, "Bad Request");
  } else {
    v = Verdict::deny(403, "RBAC: access denied");  // 403, and 0 (the PeerAuthentication's STRICT)
  }
  if (!d.policy.empty()) v.policy = std::string(d.policy);
  if (d.rule >= 0) v.rule = d.rule;
  v.action = policy::deciding_action(d.reason);
  v.audit = d.audit;
  v.lacks_credential = d.lacks_credential;
  std::string shadow_policy;
  v.dry_run_allow = policy::dry_run_outcome(d, &shadow_policy);
  if (v.dry_run_allow && !shadow_policy.empty()) v.dry_run_policy = std::move(shadow_policy);
  policy::describe_into(d, v.reason);
  for (const auto& r : d.opa)
    v.opa.push_back({std::string(r.policy), policy::to_string(r.outcome), r.dry_run});
  if (http) {
    for (const auto& [name, value] : d.response_headers) v.response_headers.push_back({name, value});
  }
  // Only the STRICT refusal: every denied TCP connection has status 0 too.
  if (!d.allow && d.reason == policy::ReasonCode::DeniedPlaintextOnStrict)
    v.reason.insert(0, "mTLS required (PeerAuthentication STRICT): ");
  return v;
}

// What an allowed request becomes on its way to the app: the verified JWT's edits, the
// normalized path, an allowing OPAPolicy's mutations.
void edit_allowed(http::Request& request, const policy::Decision& decision, const policy::DecideIo& io,
                  const jwt::Authenticator* authenticator, const policy::AuthzSnapshot& snap) {
  if (authenticator)
    jwt::apply_to_forwarded(request, authenticator->header_mutations(io.auth), snap.jwt_rules());
  forward_normalized_path(request, io.normalized_path);
  apply_opa_mutations(request, decision);
}

// Request authentication's outcome as the context reports it (the verified tokens themselves
// stay in the DecideIo, from which the JWT edits are made).
void note_request_auth(jwt::RequestAuth& out, const jwt::AuthResult& auth) {
  out.outcome = auth.status == jwt::JwtStatus::Missing ? jwt::RequestAuth::Outcome::NoToken
                : auth.status == jwt::JwtStatus::Ok    ? jwt::RequestAuth::Outcome::Authenticated
                                                       : jwt::RequestAuth::Outcome::Rejected;
}

// A CUSTOM rule's provider decides next: until it answers, the request is denied (fail closed for
// a caller that cannot ask). What DENY / ALLOW need later is copied out of the thread's buffers.
std::shared_ptr<PendingCustom> pend(const EnforcedPolicy& policy, policy::Request judged,
                                    policy::DecideIo judged_io, policy::Decision&& decision) {
  auto pending = std::make_shared<PendingCustom>();
  pending->provider = decision.provider;
  pending->keep = policy.snapshot;
  pending->pending = to_verdict(decision, true);
  pending->resume = [snap = policy.snapshot, authenticator = policy.authenticator, judged = std::move(judged),
                     judged_io = std::move(judged_io),
                     decision = std::move(decision)](http::Request& request) mutable {
    auto& headers = judged.http->headers;  // the provider may have changed the request's fields
    headers.clear();
    for (const auto& field : request.headers) headers.emplace_back(field.name, field.value);
    const policy::Decision after = policy::resume_after_custom(*snap, judged, judged_io, std::move(decision));
    Verdict out = to_verdict(after, true);
    if (out.allow) edit_allowed(request, after, judged_io, authenticator.get(), *snap);
    return out;
  };
  return pending;
}

}  // namespace

void forward_normalized_path(http::Request& request, const std::string& normalized) {
  if (normalized.empty() || request.path == "*" || normalized == request.path) return;
  request.path = normalized;
  request.target = request.query.empty() ? normalized : normalized + "?" + request.query;
}

void apply_opa_mutations(http::Request& request, const policy::Decision& decision) {
  for (const auto& name : decision.upstream_headers_to_remove) request.headers.remove(name);
  for (const auto& [name, value] : decision.upstream_headers) request.headers.set(name, value);
}

Verdict enforce_request(const EnforcedPolicy* policy, RequestContext& ctx) {
  // 1. Peer authentication: the port's mode.
  if (!ctx.peer && refuses_plaintext(ctx.port_mode)) return plaintext_refused(403, "RBAC: access denied");
  if (!policy) {
    ctx.request_auth = jwt::RequestAuth{};  // no RequestAuthentication: no token
    ctx.decision = no_policy();
    return ctx.decision;
  }
  const policy::AuthzSnapshot& snap = *policy->snapshot;

  // One request model and one DecideIo per worker thread, refilled for every request (the step
  // runs start to end without yielding): their strings, map and vectors keep their storage, so
  // evaluating a request allocates almost nothing.
  thread_local policy::Request r;
  thread_local policy::HttpRequest h;
  thread_local policy::DecideIo io;
  fill_base_request(r, ctx.workload, ctx.app_port, ctx.source_address, ctx.peer);
  if (ctx.judged_at) r.time = *ctx.judged_at;

  // 1. Peer authentication: the PeerAuthentication's STRICT, under an operator's mtlsMode too —
  // not on a gateway listener, whose clients are outside the mesh.
  if (auto refused = ctx.gateway_listener ? std::nullopt : policy::refuse_plaintext(snap, r)) {
    ctx.decision = to_verdict(*refused, true);
    return ctx.decision;
  }

  // 2. The policy decision.
  h.method = ctx.request.method;
  h.path = ctx.request.path;
  if (!ctx.request.query.empty()) (h.path += '?') += ctx.request.query;
  h.host = ctx.request.host;
  h.headers.resize(ctx.request.headers.size());
  size_t i = 0;
  for (const auto& field : ctx.request.headers) {
    h.headers[i].first = field.name;
    h.headers[i].second = field.value;
    ++i;
  }
  r.http = std::move(h);
  io.authenticator = policy->authenticator.get();
  policy::Decision decision = policy::decide_request(snap, r, *r.time, io);
  if (decision.reason == policy::ReasonCode::CustomProviderCheck && ctx.custom_allowed) {
    decision = policy::resume_after_custom(snap, r, io, std::move(decision));  // allowed already
  }
  note_request_auth(ctx.request_auth, io.auth);
  if (decision.reason == policy::ReasonCode::CustomProviderCheck) {
    ctx.pending_custom = pend(*policy, r, io, std::move(decision));
    ctx.decision = ctx.pending_custom->pending;
  } else {
    ctx.decision = to_verdict(decision, true);
    if (ctx.decision.allow) edit_allowed(ctx.request, decision, io, policy->authenticator.get(), snap);
  }
  io.auth.tokens.clear();  // verified tokens are not kept alive past the request
  h = std::move(*r.http);  // back to the thread's buffer for the next request
  // The chain reads only a denial from its steps (an allow goes on to the next step): the
  // explained decision stays in ctx.decision, not copied for an allow.
  return ctx.decision.allow ? Verdict::pass() : ctx.decision;
}

Verdict enforce_connection(const EnforcedPolicy* policy, ConnectionContext& ctx) {
  // 1. Peer authentication: the port's mode.
  if (!ctx.peer && refuses_plaintext(ctx.port_mode)) return plaintext_refused(0, "");
  if (!policy) {
    ctx.decision = no_policy();
    return ctx.decision;
  }
  policy::Request r;
  fill_base_request(r, ctx.workload, ctx.app_port, ctx.source_address, ctx.peer);
  r.sni = ctx.sni;  // connection.sni: a passthrough connection's ClientHello
  // 1. The PeerAuthentication's STRICT; 2. the policy decision (L4 attributes only).
  if (auto refused = policy::refuse_plaintext(*policy->snapshot, r)) {
    ctx.decision = to_verdict(*refused, false);
  } else {
    policy::DecideIo io;  // a TCP connection has no path and no token: nothing is filled
    ctx.decision = to_verdict(policy::decide_request(*policy->snapshot, r, *r.time, io), false);
  }
  return ctx.decision;
}

}  // namespace mg::proxy
