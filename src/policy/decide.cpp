#include "policy/decide.h"

#include "policy/request_authn.h"

namespace mg::policy {

WorkloadRef destination_workload(const Request& r) {
  return WorkloadRef{r.destination_namespace, r.destination_labels, r.destination_service_account};
}

AuthzAttributes make_attributes(const Request& r, std::string_view normalized_path, const jwt::RequestAuth* auth,
                                bool peer_identity) {
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
    if (const auto* xff = r.http->header("x-forwarded-for")) {
      std::string_view first = *xff;
      first = first.substr(0, first.find(','));
      while (!first.empty() && first.front() == ' ') first.remove_prefix(1);
      while (!first.empty() && first.back() == ' ') first.remove_suffix(1);
      if (auto ip = parse_ip(first)) a.remote_ip = ip;
    }
  }
  return a;
}

Decision decide(const AuthzSnapshot& s, const Request& r, int64_t now) {
  const auto& mtls = s.peer_authn().for_port(r.destination_port);
  const bool plaintext = r.source_principal.empty();
  if (mtls.mode == MtlsMode::Strict && plaintext) {
    Decision d;
    d.allow = false;
    d.status = 0;
    d.policy = mtls.decided_by;
    d.reason = ReasonCode::DeniedPlaintextOnStrict;
    d.detail = "(port " + std::to_string(r.destination_port) + (mtls.port_level ? ", portLevelMtls)" : ")");
    return d;
  }
  const bool peer_identity = mtls.mode != MtlsMode::Disable;

  thread_local std::string normalized;
  jwt::RequestAuth auth;
  if (r.http) {
    const char* why = nullptr;
    if (normalize_path(r.http->path, s.mesh().path_normalization, normalized, &why) != PathVerdict::Ok) {
      Decision d;
      d.allow = false;
      d.status = 400;
      d.reason = ReasonCode::MalformedRequest;
      d.detail = why ? why : "bad path";
      return d;
    }
    if (!s.jwt_rules().empty()) {
      auth = authenticate_request(s.jwt_rules(), *r.http, now);
      if (auth.outcome == jwt::RequestAuth::Outcome::Rejected) {
        Decision d;
        d.allow = false;
        d.status = auth.status == 403 ? 403 : 401;
        if (!s.request_authentications().empty()) d.policy = s.request_authentications().front();
        d.reason = ReasonCode::RequestAuthnFailed;
        d.detail = auth.reason.empty() ? "Jwt verification fails" : auth.reason;
        return d;
      }
    }
  }
  return authorize(s, make_attributes(r, normalized, &auth, peer_identity));
}

}  // namespace mg::policy
