// policy/check.cpp — see check.h.
#include "policy/check.h"

#include <ctime>

#include "policy/offline_keys.h"
#include "policy/outcome.h"
#include "policy/request.h"

namespace mg::policy {

namespace {

// The request with its destination's namespace, labels and service account taken from the
// Workload NS/NAME of `set` (and its port, when the request has none, from the Workload's first).
// A request naming another namespace, labels or service account is refused, not silently changed.
Result<std::string> with_workload(const std::string& text, const std::string& ref, const ResourceSet& set,
                                  bool from_files) {
  auto slash = ref.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == ref.size())
    return fail("ctl.bad_args", "--workload takes NS/NAME, not " + ref);
  const std::string ns = ref.substr(0, slash), name = ref.substr(slash + 1);
  const Workload* wl = nullptr;
  for (const auto& w : set.workloads) {
    if (w.meta.ns == ns && w.meta.name == name) wl = &w;
  }
  if (!wl)
    return fail("ctl.no_workload", "--workload " + ref + ": no Workload " + ref +
                                       (from_files ? " in the -f files" : " in the control plane's store"));
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return fail("ctl.bad_request", "not a JSON object");
  auto& dest = doc["destination"];
  if (dest.is_null()) dest = nlohmann::json::object();
  if (!dest.is_object()) return fail("ctl.bad_request", "request.destination: must be an object");
  auto set_field = [&](const char* key, const nlohmann::json& value) -> Status {
    if (dest.contains(key) && dest[key] != value)
      return fail("ctl.bad_request", std::string("request.destination.") + key + " " + dest[key].dump() +
                                         " differs from --workload " + ref + "'s " + value.dump());
    dest[key] = value;
    return {};
  };
  for (auto st : {set_field("namespace", wl->meta.ns), set_field("labels", wl->labels),
                  set_field("serviceAccount", wl->service_account)}) {
    if (!st) return fail(st.error());
  }
  if (!dest.contains("port") && !wl->ports.empty()) dest["port"] = wl->ports.front();
  return doc.dump();
}

}  // namespace

const char* const kOfflineProviderNote =
    "offline: the extension provider is not called; a proxy asks it, and only if it allows do DENY and ALLOW "
    "policies decide (ifProviderAllows)";

Result<std::unique_ptr<CheckRun>> run_authz_check(const ResourceSet& set, const MeshConfig& mesh,
                                                  const std::string& request_text,
                                                  const std::string& workload, bool from_files,
                                                  std::shared_ptr<jwt::JwksProvider> keys) {
  std::string text = request_text;
  if (!workload.empty()) {
    auto with = with_workload(text, workload, set, from_files);
    if (!with) return fail(with.error());
    text = std::move(*with);
  }
  auto req = parse_request_json(text);
  if (!req) return fail(req.error());
  auto run = std::make_unique<CheckRun>();
  run->request = std::move(*req);
  auto snap = compile_snapshot(set, destination_workload(run->request), mesh);
  if (!snap) return fail(snap.error());
  run->snapshot = std::move(*snap);
  run->now = run->request.time ? *run->request.time : static_cast<int64_t>(std::time(nullptr));
  // Tokens are verified as a proxy verifies them, with the keys given where a proxy would have
  // fetched them (none given: such a token fails closed with 401, as a proxy's does until its
  // fetch succeeds).
  run->authenticator = std::make_unique<jwt::Authenticator>(run->snapshot->jwt_rules(), keys);
  run->io.authenticator = run->authenticator.get();
  run->decision = decide(*run->snapshot, run->request, run->now, run->io);
  if (run->decision.reason == ReasonCode::RequestAuthnFailed &&
      run->io.auth.status == jwt::JwtStatus::JwksFetchFail && keys) {
    std::string names;
    for (const auto& n : names_without_keys(run->snapshot->jwt_rules(), *keys))
      names += (names.empty() ? "" : ", ") + n;
    if (!names.empty()) {
      run->decision.detail +=
          " (offline decision: keys are not fetched; give them with --jwks NAME=FILE for " + names + ")";
    }
  }
  // The request unchanged, as no provider's header mutations are known offline.
  if (run->decision.reason == ReasonCode::CustomProviderCheck)
    run->if_allowed = resume_after_custom(*run->snapshot, run->request, run->io, Decision(run->decision));
  return run;
}

nlohmann::ordered_json decision_json(const Decision& d, const Decision* if_allowed) {
  nlohmann::ordered_json j;
  j["decision"] = d.allow ? "ALLOW" : "DENY";
  j["status"] = d.status;
  j["policy"] =
      d.policy.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(std::string(d.policy));
  j["rule"] = d.rule >= 0 ? nlohmann::ordered_json(d.rule) : nlohmann::ordered_json(nullptr);
  j["reason"] = describe(d);
  j["audit"] = d.audit;
  j["reasonCode"] = to_string(d.reason);
  if (d.audit) {
    j["auditPolicy"] = std::string(d.audit_policy);
    j["auditRule"] = d.audit_rule;
  }
  auto dry = nlohmann::ordered_json::array();
  for (const auto& r : d.dry_run) {
    nlohmann::ordered_json e;
    e["policy"] = std::string(r.policy);
    e["action"] = r.opa ? "OPA" : to_string(r.action);
    e["matched"] = r.matched;
    e["rule"] = r.rule >= 0 ? nlohmann::ordered_json(r.rule) : nlohmann::ordered_json(nullptr);
    // What this shadow policy would have done on its own.
    const char* would = "none";
    if (r.opa)
      would = r.matched ? "DENY" : "ALLOW";
    else if (r.action == Action::Deny)
      would = r.matched ? "DENY" : "none";
    else if (r.action == Action::Allow)
      would = r.matched ? "ALLOW" : "DENY";
    else if (r.action == Action::Custom)
      would = r.matched ? "DENY" : "none";
    else if (r.action == Action::Audit)
      would = r.matched ? "AUDIT" : "none";
    e["wouldDecide"] = would;
    dry.push_back(std::move(e));
  }
  j["dryRun"] = std::move(dry);
  if (!d.opa.empty()) {
    auto opa = nlohmann::ordered_json::array();
    for (const auto& r : d.opa) {
      nlohmann::ordered_json e;
      e["policy"] = std::string(r.policy);
      e["outcome"] = to_string(r.outcome);
      e["dryRun"] = r.dry_run;
      if (!r.error.empty()) e["error"] = r.error;
      opa.push_back(std::move(e));
    }
    j["opa"] = std::move(opa);
    j["opaErrors"] = d.opa_errors;
  }
  if (d.provider) {
    nlohmann::ordered_json p;
    p["name"] = d.provider->name;
    p["kind"] = to_string(d.provider->kind);
    p["service"] = d.provider->service;
    p["port"] = d.provider->port;
    j["provider"] = std::move(p);
    j["note"] = kOfflineProviderNote;
    if (if_allowed) j["ifProviderAllows"] = decision_json(*if_allowed);
  }
  return j;
}

// Every policy of `set` considered for the request's workload: applied ones with each rule's
// match and why (explain), the others with why they do not apply.
nlohmann::ordered_json explain_json(const ResourceSet& set, const CheckRun& run, const MeshConfig& mesh) {
  // The attributes as decide() judged them: its normalized path and verified tokens.
  const AuthzSnapshot& snap = *run.snapshot;
  const auto& mtls = snap.peer_authn().for_port(run.request.destination_port);
  jwt::RequestAuth auth;
  if (run.request.http && !snap.jwt_rules().empty())
    auth = run.authenticator->authenticate(run.request.http->headers, run.request.http->path, run.now);
  const auto attrs = make_attributes(run.request, run.io.normalized_path, &auth,
                                     mtls.mode != MtlsMode::Disable, mesh.num_trusted_proxies);
  const WorkloadRef w = destination_workload(run.request);
  auto out = nlohmann::ordered_json::array();
  for (const auto& e : explain(snap, attrs)) {
    nlohmann::ordered_json p{{"kind", "AuthorizationPolicy"},
                             {"policy", e.policy},
                             {"action", to_string(e.action)},
                             {"dryRun", e.dry_run},
                             {"applies", true}};
    if (!e.note.empty()) p["note"] = e.note;
    auto rules = nlohmann::ordered_json::array();
    for (const auto& r : e.rules)
      rules.push_back({{"index", r.index}, {"matched", r.matched}, {"why", r.why}});
    p["rules"] = std::move(rules);
    out.push_back(std::move(p));
  }
  auto not_applied = [&](const char* kind, const auto& list, bool spans) {
    for (const auto& r : list) {
      auto a = applies_to(r.meta, r.selector, w, mesh, spans);
      if (a.applies && std::string(kind) == "AuthorizationPolicy") continue;  // listed above
      out.push_back({{"kind", kind}, {"policy", r.meta.full_name()}, {"applies", a.applies}, {"why", a.why}});
    }
  };
  not_applied("AuthorizationPolicy", set.authorization_policies, true);
  not_applied("PeerAuthentication", set.peer_authentications, false);
  not_applied("RequestAuthentication", set.request_authentications, true);
  not_applied("OPAPolicy", set.opa_policies, true);
  return out;
}

}  // namespace mg::policy
