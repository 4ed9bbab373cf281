#include "proxy/policy_chain.h"

#include <chrono>

#include "jwt/forward.h"
#include "policy/decide.h"
#include "policy/load.h"
#include "policy/outcome.h"
#include "policy/request.h"
#include "policy/select.h"

namespace mg::proxy {
namespace {

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// "ip:port" / "[v6]:port" → the address part.
std::string host_of(const std::string& address) {
  if (!address.empty() && address.front() == '[') {
    auto end = address.find(']');
    return end == std::string::npos ? address : address.substr(1, end - 1);
  }
  auto colon = address.rfind(':');
  if (colon == std::string::npos || address.find(':') != colon) return address;
  return address.substr(0, colon);
}

// `port` is the workload (app) port: Istio's destination.port. Fills `r` by assignment, so a
// Request reused across requests keeps its strings' and map's storage.
void fill_base_request(policy::Request& r, const WorkloadInfo& w, uint16_t port, const std::string& source,
                       const std::optional<tls::PeerIdentity>& peer) {
  r.destination_namespace = w.ns;
  r.destination_labels = w.labels;
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

policy::Request base_request(const WorkloadInfo& w, uint16_t port, const std::string& source,
                             const std::optional<tls::PeerIdentity>& peer) {
  policy::Request r;
  fill_base_request(r, w, port, source, peer);
  return r;
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
    v = Verdict::deny(403, "RBAC: access denied");  // 403, and 0 (plaintext to a STRICT port)
  }
  if (!d.policy.empty()) v.policy = std::string(d.policy);
  if (d.rule >= 0) v.rule = d.rule;
  v.action = std::string(policy::action_name(d.reason));
  v.audit = d.audit;
  std::string shadow_policy;
  v.dry_run_allow = policy::dry_run_outcome(d, &shadow_policy);
  if (v.dry_run_allow && !shadow_policy.empty()) v.dry_run_policy = std::move(shadow_policy);
  v.reason = policy::describe(d);
  for (const auto& r : d.opa) v.opa.push_back({std::string(r.policy), policy::to_string(r.outcome), r.dry_run});
  if (http) {
    for (const auto& [name, value] : d.response_headers) v.response_headers.push_back({name, value});
  }
  if (!d.allow && d.status == 0) v.reason = "mTLS required (PeerAuthentication STRICT): " + v.reason;
  return v;
}

// What an allowed request becomes on its way to the app: the verified JWT's edits, the
// normalized path, an allowing OPAPolicy's mutations.
void edit_allowed(http::Request& request, const policy::Decision& decision, const policy::DecideIo& io,
                  const jwt::Authenticator* authenticator, const policy::AuthzSnapshot& snap) {
  if (authenticator) jwt::apply_to_forwarded(request, authenticator->header_mutations(io.auth), snap.jwt_rules());
  forward_normalized_path(request, io.normalized_path);
  apply_opa_mutations(request, decision);
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

EffectiveMtls effective_mtls(const InboundPort& port, bool have_tls, const policy::AuthzSnapshot* snapshot) {
  if (port.mtls) return {*port.mtls, "config mtlsMode (operator override)"};
  if (snapshot) {
    const auto& m = snapshot->peer_authn().for_port(port.app_port);
    if (!m.decided_by.empty()) {
      MtlsMode mode = m.mode == policy::MtlsMode::Strict    ? MtlsMode::Strict
                      : m.mode == policy::MtlsMode::Disable ? MtlsMode::Disable
                                                            : MtlsMode::Permissive;
      return {mode, "PeerAuthentication " + m.decided_by + (m.port_level ? " portLevelMtls" : "")};
    }
  }
  if (have_tls) return {MtlsMode::Permissive, "default (no PeerAuthentication; certificates configured)"};
  return {MtlsMode::Disable, "default (no PeerAuthentication; no tls section)"};
}

Result<PolicyChains> load_policy_chains(const std::string& dir, const WorkloadInfo& workload,
                                        std::shared_ptr<jwt::JwksProvider> jwks,
                                        std::optional<uint32_t> num_trusted_proxies) {
  auto resources = policy::load_resource_files({dir});
  if (!resources) return fail(resources.error());
  return compile_policy_chains(*resources, workload, std::move(jwks), num_trusted_proxies);
}

Result<PolicyChains> compile_policy_chains(const policy::ResourceSet& set, const WorkloadInfo& workload,
                                           std::shared_ptr<jwt::JwksProvider> jwks,
                                           std::optional<uint32_t> num_trusted_proxies) {
  const policy::ResourceSet* resources = &set;
  policy::WorkloadRef ref{workload.ns, workload.labels, workload.service_account};
  // A Workload document for this very workload (the control plane pushes the registered one) is
  // the truth about its labels: a label change takes effect with the next reload, no restart.
  for (const auto& w : resources->workloads) {
    if (w.meta.name != workload.name || w.meta.ns != workload.ns) continue;
    if (!w.service_account.empty() && w.service_account != workload.service_account)
      return fail("policy.workload_mismatch", w.meta.source + ":" + std::to_string(w.meta.line) + ": Workload " +
                                                  w.meta.full_name() + " runs as service account " +
                                                  w.service_account + ", this proxy as " + workload.service_account);
    ref.labels = w.labels;
  }
  policy::MeshConfig mesh = policy::mesh_config_of(*resources);
  if (num_trusted_proxies) mesh.num_trusted_proxies = *num_trusted_proxies;
  auto snapshot = policy::compile_snapshot(*resources, ref, mesh);
  if (!snapshot) return fail(snapshot.error());

  PolicyChains out;
  out.snapshot = *snapshot;
  out.registry = Registry::build(*resources, mesh.trust_domain, workload.ns);
  out.registry->set_registry_only(mesh.outbound_traffic_policy == policy::OutboundTrafficPolicy::RegistryOnly);
  auto rules = DestinationRules::build(*resources, workload.ns, mesh.root_namespace);
  if (!rules) return fail(rules.error());  // a caCertificates file that does not load: fail closed
  out.destination_rules = std::move(*rules);
  out.resources = resources->size();
  auto origin = [&](const char* kind, const policy::Meta& meta, bool applies) {
    out.origins.push_back({kind, meta.full_name(), meta.source, meta.line, applies});
  };
  for (const auto& p : resources->authorization_policies) {
    origin("AuthorizationPolicy", p.meta, policy::applies_to(p.meta, p.selector, ref, mesh).applies);
  }
  const auto& pa = (*snapshot)->peer_authn();
  for (const auto& p : resources->peer_authentications) {
    bool applies = pa.workload.decided_by == p.meta.full_name();
    for (const auto& [port, m] : pa.ports) applies = applies || m.decided_by == p.meta.full_name();
    origin("PeerAuthentication", p.meta, applies);
  }
  for (const auto& r : resources->request_authentications) {
    origin("RequestAuthentication", r.meta, policy::applies_to(r.meta, r.selector, ref, mesh).applies);
  }
  for (const auto& p : resources->opa_policies) {
    origin("OPAPolicy", p.meta, policy::applies_to(p.meta, p.selector, ref, mesh).applies);
  }
  for (const auto& w : resources->workloads) origin("Workload", w.meta, false);
  for (const auto& svc : resources->services) origin("Service", svc.meta, true);  // the registry's
  for (const auto& e : resources->service_endpoints) origin("ServiceEndpoints", e.meta, true);
  for (const auto& m : resources->meshes) {
    out.origins.push_back({"Mesh", m.meta.name, m.meta.source, m.meta.line, true});  // cluster-scoped
  }
  const RequestChain defaults = default_request_chain();
  const ConnectionChain tcp_defaults = default_connection_chain();

  // One Authenticator per snapshot: inline JWKS parsed once, jwksUri keys read from `jwks`,
  // verified tokens cached across requests. decide() runs it once per request and hands back the
  // verified tokens, from which the forwarded request's header mutations are made.
  std::shared_ptr<const jwt::Authenticator> authenticator;
  if (!out.snapshot->jwt_rules().empty()) {
    authenticator = std::make_shared<const jwt::Authenticator>(out.snapshot->jwt_rules(), std::move(jwks));
  }

  RequestChain rc;
  rc.steps.push_back(defaults.steps.at(0));  // peer_authn
  rc.steps.push_back({"request_authn", [](RequestContext&) { return Verdict::pass(); }});  // inside decide
  rc.steps.push_back(
      {"authz", [snap = out.snapshot, authenticator](RequestContext& ctx) {
         // One request model and one DecideIo per worker thread, refilled for every request (the
         // step runs start to end without yielding): their strings, map and vectors keep their
         // storage, so evaluating a request allocates almost nothing.
         thread_local policy::Request r;
         thread_local policy::HttpRequest h;
         thread_local policy::DecideIo io;
         fill_base_request(r, ctx.workload, ctx.app_port, ctx.source_address, ctx.peer);
         if (ctx.judged_at) r.time = *ctx.judged_at;
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
         io.authenticator = authenticator.get();
         policy::Decision decision = policy::decide(*snap, r, *r.time, io);
         if (decision.reason == policy::ReasonCode::CustomProviderCheck && ctx.custom_allowed) {
           decision = policy::resume_after_custom(*snap, r, io, std::move(decision));
         }
         Verdict v;
         if (decision.reason == policy::ReasonCode::CustomProviderCheck) {
           // The provider decides next (Enforcement::ask_provider); until then this is a denial.
           // What DENY / ALLOW need later is copied out of the thread's buffers.
           auto pending = std::make_shared<PendingCustom>();
           pending->provider = decision.provider;
           pending->keep = snap;
           pending->pending = to_verdict(decision, true);
           v = pending->pending;
           pending->resume = [snap, authenticator, judged = r, judged_io = io, decision = std::move(decision)](
                                 http::Request& request) mutable {
             auto& headers = judged.http->headers;  // the provider may have changed the request's fields
             headers.clear();
             for (const auto& field : request.headers) headers.emplace_back(field.name, field.value);
             const policy::Decision after = policy::resume_after_custom(*snap, judged, judged_io, std::move(decision));
             Verdict out = to_verdict(after, true);
             if (out.allow) edit_allowed(request, after, judged_io, authenticator.get(), *snap);
             return out;
           };
           ctx.pending_custom = std::move(pending);
         } else {
           v = to_verdict(decision, true);
           if (v.allow) edit_allowed(ctx.request, decision, io, authenticator.get(), *snap);
         }
         ctx.decision = v;
         io.auth.tokens.clear();  // verified tokens are not kept alive past the request
         h = std::move(*r.http);  // back to the thread's buffer for the next request
         // The chain only needs allow/deny and the answer; the explained decision is in ctx.
         return v.allow ? Verdict::pass() : v;
       }});

  ConnectionChain cc;
  cc.steps.push_back(tcp_defaults.steps.at(0));  // peer_authn
  cc.steps.push_back({"authz", [snap = out.snapshot](ConnectionContext& ctx) {
                        policy::Request r =
                            base_request(ctx.workload, ctx.app_port, ctx.source_address, ctx.peer);
                        Verdict v = to_verdict(policy::decide(*snap, r, *r.time), false);
                        ctx.decision = v;
                        return v;
                      }});
  out.request = std::make_shared<const RequestChain>(std::move(rc));
  out.connection = std::make_shared<const ConnectionChain>(std::move(cc));
  return out;
}

}  // namespace mg::proxy
