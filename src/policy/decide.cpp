#include "policy/decide.h"

#include <algorithm>

#include "policy/opa.h"
#include "policy/remote_ip.h"
#include "policy/request_authn.h"

namespace mg::policy {

// Merges the OPAPolicies' partial decision `opa` (they all allowed) into the authorization decision `d`.
void merge_opa(Decision& d, Decision&& opa);

WorkloadRef destination_workload(const Request& r) {
  return WorkloadRef{r.destination_namespace, r.destination_labels, r.destination_service_account};
}

AuthzAttributes make_attributes(const Request& r, std::string_view normalized_path,
                                const jwt::RequestAuth* auth, bool peer_identity,
                                uint32_t num_trusted_proxies) {
  AuthzAttributes a;
  if (peer_identity) {
    a.peer_principal = r.source_principal;
    a.peer_namespace = principal_namespace(a.peer_principal);
  }
  a.source_ip = parse_ip(r.source_ip);
  a.remote_ip = a.source_ip;
  a.destination_ip = parse_ip(r.destination_ip);
  a.destination_port = r.destination_port;
  a.sni = r.sni;
  if (r.http) {
    a.http = true;
    a.method = r.http->method;
    a.path = normalized_path;
    a.host = r.http->host;
    a.headers = r.http->headers;
    a.auth = auth;
    a.remote_ip = remote_ip(a.source_ip, r.http->headers, num_trusted_proxies);
  }
  return a;
}

namespace {

// True when a rule can only get its keys from jwksUri or OpenID discovery, which the offline
// authenticator never fetches.
bool needs_remote_keys(const std::vector<jwt::JwtRule>& rules) {
  for (const auto& rule : rules)
    if (rule.jwks.empty()) return true;
  return false;
}

}  // namespace

// Step 1: the PeerAuthentication in force for the destination port.
std::optional<Decision> refuse_plaintext(const AuthzSnapshot& s, const Request& r) {
  const auto& mtls = s.peer_authn().for_port(r.destination_port);
  if (mtls.mode != MtlsMode::Strict || !r.source_principal.empty()) return std::nullopt;
  Decision d;
  d.allow = false;
  d.status = 0;
  d.policy = mtls.decided_by;
  d.reason = ReasonCode::DeniedPlaintextOnStrict;
  d.detail = "(port " + std::to_string(r.destination_port) + (mtls.port_level ? ", portLevelMtls)" : ")");
  return d;
}

namespace {

// Steps 2 to 5.
Decision decide_into(const AuthzSnapshot& s, const Request& r, int64_t now, const jwt::Authenticator* authenticator,
                     std::string& normalized, jwt::AuthResult& result) {
  normalized.clear();
  result.status = jwt::JwtStatus::Missing;
  result.tokens.clear();
  const auto& mtls = s.peer_authn().for_port(r.destination_port);
  const bool peer_identity = mtls.mode != MtlsMode::Disable;

  jwt::RequestAuth auth;
  if (r.http) {
    // Istio's normalization: a method not in upper case is refused (400), not matched as if it
    // were another — a DENY on GET must not let `get` through to an app that reads it as GET.
    const char* why = nullptr;
    const bool upper_case_method = std::none_of(r.http->method.begin(), r.http->method.end(),
                                                [](unsigned char c) { return c >= 'a' && c <= 'z'; });
    if (!upper_case_method) {
      why = "method not in upper case";
    } else if (normalize_path(r.http->path, s.mesh().path_normalization, normalized, &why) !=
               PathVerdict::Ok) {
      why = why ? why : "bad path";
    }
    if (why) {
      normalized.clear();
      Decision d;
      d.allow = false;
      d.status = 400;
      d.reason = ReasonCode::MalformedRequest;
      d.detail = why;
      return d;
    }
    if (!s.jwt_rules().empty()) {
      std::shared_ptr<const jwt::Authenticator> offline;
      if (!authenticator) {
        offline = offline_authenticator(s.jwt_rules());
        authenticator = offline.get();
      }
      result = authenticator->authenticate_shared(r.http->headers, r.http->path, now);
      auth = result.to_request_auth();
      if (auth.outcome == jwt::RequestAuth::Outcome::Rejected) {
        Decision d;
        d.allow = false;
        d.status = auth.status == 403 ? 403 : 401;
        if (!s.request_authentications().empty()) d.policy = s.request_authentications().front();
        d.reason = ReasonCode::RequestAuthnFailed;
        d.detail = auth.reason.empty() ? "Jwt verification fails" : auth.reason;
        if (offline && result.status == jwt::JwtStatus::JwksFetchFail && needs_remote_keys(s.jwt_rules())) {
          d.detail +=
              " (offline decision: keys behind jwksUri or OpenID discovery are not fetched; only an inline "
              "jwks verifies here)";
        }
        return d;
      }
    }
  }
  if (s.opa_policies().empty()) return authorize(s, make_attributes(r, normalized, &auth, peer_identity, s.mesh().num_trusted_proxies));

  // OPAPolicies: Istio's CUSTOM slot, after request authentication, before DENY and ALLOW.
  Decision opa;
  const OpaInputContext context{s.mesh().trust_domain, peer_identity, &auth, now};
  if (!run_opa_policies(s, r, context, opa)) return opa;
  Decision d = authorize(s, make_attributes(r, normalized, &auth, peer_identity, s.mesh().num_trusted_proxies));
  merge_opa(d, std::move(opa));
  return d;
}

}  // namespace

void merge_opa(Decision& d, Decision&& opa) {
  for (auto& dry : opa.dry_run) d.dry_run.push_back(dry);
  d.opa = std::move(opa.opa);
  d.opa_errors = opa.opa_errors;
  // A CUSTOM provider still to ask: the OPAPolicies' mutations wait in the pending decision.
  if (d.allow || d.reason == ReasonCode::CustomProviderCheck) {
    if (d.reason == ReasonCode::AllowedNoAuthorizationPolicy && !opa.policy.empty()) {
      d.reason = ReasonCode::AllowedByOpaPolicy;
      d.policy = opa.policy;
    }
    d.upstream_headers = std::move(opa.upstream_headers);
    d.upstream_headers_to_remove = std::move(opa.upstream_headers_to_remove);
    d.response_headers = std::move(opa.response_headers);
  }
}

Decision resume_after_custom(const AuthzSnapshot& s, const Request& r, DecideIo& io, Decision&& pending) {
  const auto& mtls = s.peer_authn().for_port(r.destination_port);
  const jwt::RequestAuth auth = io.auth.to_request_auth();
  Decision d = authorize(s, make_attributes(r, io.normalized_path, &auth, mtls.mode != MtlsMode::Disable,
                                            s.mesh().num_trusted_proxies),
                         /*custom_allowed=*/true);
  // The OPAPolicies' outcome (they ran before CUSTOM) travels in the pending decision; of its
  // dry-run results only theirs are kept (authorize() just reported the AuthorizationPolicies').
  for (const auto& dry : pending.dry_run)
    if (dry.opa) d.dry_run.push_back(dry);
  d.opa = std::move(pending.opa);
  d.opa_errors = pending.opa_errors;
  if (d.allow) {
    d.upstream_headers = std::move(pending.upstream_headers);
    d.upstream_headers_to_remove = std::move(pending.upstream_headers_to_remove);
    d.response_headers = std::move(pending.response_headers);
  }
  return d;
}

Decision decide_request(const AuthzSnapshot& s, const Request& r, int64_t now, DecideIo& io) {
  return decide_into(s, r, now, io.authenticator, io.normalized_path, io.auth);
}

Decision decide(const AuthzSnapshot& s, const Request& r, int64_t now, DecideIo& io) {
  if (auto refused = refuse_plaintext(s, r)) {
    io.normalized_path.clear();
    io.auth.status = jwt::JwtStatus::Missing;
    io.auth.tokens.clear();
    return std::move(*refused);
  }
  return decide_into(s, r, now, io.authenticator, io.normalized_path, io.auth);
}

Decision decide(const AuthzSnapshot& s, const Request& r, int64_t now) {
  if (auto refused = refuse_plaintext(s, r)) return std::move(*refused);
  thread_local std::string normalized;  // warm capacity: no allocation per decision
  jwt::AuthResult result;
  return decide_into(s, r, now, nullptr, normalized, result);
}

}  // namespace mg::policy
