// console/suggest.cpp — see suggest.h.
#include "console/suggest.h"

#include <algorithm>
#include <map>
#include <set>

#include "policy/check.h"
#include "policy/parse.h"

namespace mg::console {

using ojson = nlohmann::ordered_json;

namespace {

const ConsoleWorkload* find(const std::vector<ConsoleWorkload>& workloads, const std::string& key) {
  for (const auto& w : workloads) {
    if (w.key() == key) return &w;
  }
  return nullptr;
}

// A policy principal is written without the scheme (analyze's MG0006).
std::string policy_principal(const std::string& spiffe) {
  constexpr std::string_view scheme = "spiffe://";
  return spiffe.rfind(scheme, 0) == 0 ? spiffe.substr(scheme.size()) : spiffe;
}

// A YAML flow scalar: JSON's string syntax is YAML's double-quoted style.
std::string q(const std::string& s) { return nlohmann::json(s).dump(); }

// A path the prefix pattern matches (the pattern without its '*'), to replay a flow with.
std::string sample_path(const std::string& prefix) {
  if (prefix.empty()) return "/";
  return prefix.back() == '*' ? prefix.substr(0, prefix.size() - 1) : prefix;
}

}  // namespace

Result<ojson> suggest_json(const std::vector<ConsoleWorkload>& workloads, const std::vector<FlowTotal>& flows,
                           const std::string& workload) {
  const ConsoleWorkload* w = find(workloads, workload);
  if (!w) return fail("console.no_workload", "no workload " + workload);
  if (w->labels.empty())
    return fail("console.no_labels",
                "workload " + workload + " has no labels: a policy could not select it alone");
  // principal → method → path prefixes ("" method: TCP connections).
  std::map<std::string, std::map<std::string, std::set<std::string>>> allowed;
  uint64_t requests = 0, plaintext = 0, denied = 0;
  for (const auto& t : flows) {
    if (t.destination != workload) continue;
    requests += t.flow.requests;
    if (!t.flow.allowed) {
      denied += t.flow.requests;
      continue;
    }
    if (!t.flow.mtls || t.flow.source_principal.empty()) {
      plaintext += t.flow.requests;
      continue;
    }
    auto& paths = allowed[policy_principal(t.flow.source_principal)][t.flow.method];
    if (!t.flow.path_prefix.empty()) paths.insert(t.flow.path_prefix);
  }
  std::string yaml =
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: " + w->name +
      "-observed\n  namespace: " + w->ns +
      "\n  annotations: {\"istio.io/dry-run\": \"true\"}\nspec:\n  selector:\n    matchLabels:\n";
  for (const auto& [k, v] : w->labels) yaml += "      " + q(k) + ": " + q(v) + "\n";
  yaml += "  action: ALLOW\n";
  std::string rule_text;
  size_t rules = 0;
  for (const auto& [principal, methods] : allowed) {
    for (const auto& [method, paths] : methods) {
      rule_text += "  - from: [{source: {principals: [" + q(principal) + "]}}]\n";
      if (!method.empty()) {
        rule_text += "    to: [{operation: {methods: [" + q(method) + "]";
        if (!paths.empty()) {
          rule_text += ", paths: [";
          bool first = true;
          for (const auto& p : paths) {
            rule_text += (first ? "" : ", ") + q(p);
            first = false;
          }
          rule_text += "]";
        }
        rule_text += "}}]\n";
      }
      ++rules;
    }
  }
  // An ALLOW policy without rules denies everything: say so rather than suggest it.
  yaml += rules == 0
              ? "  rules: []  # no allowed mTLS traffic observed: this ALLOW policy would deny everything\n"
              : "  rules:\n" + rule_text;
  return ojson{
      {"workload", workload},
      {"yaml", yaml},
      {"rules", rules},
      {"observed", {{"requests", requests}, {"plaintextRequests", plaintext}, {"deniedRequests", denied}}}};
}

Result<ojson> dry_run_json(const policy::ResourceSet& set, const policy::MeshConfig& mesh,
                           const std::vector<ConsoleWorkload>& workloads, const std::vector<FlowTotal>& flows,
                           std::string_view body) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("workload") || !doc["workload"].is_string() ||
      !doc.contains("yaml") || !doc["yaml"].is_string())
    return fail("console.bad_request", "the body must be {\"workload\": \"NS/NAME\", \"yaml\": \"...\"}");
  const std::string workload = doc["workload"].get<std::string>();
  const ConsoleWorkload* w = find(workloads, workload);
  if (!w) return fail("console.no_workload", "no workload " + workload);
  auto parsed = policy::parse_resources(doc["yaml"].get<std::string>(), "suggestion");
  if (!parsed) return fail(parsed.error());
  // As if enforced: the dry run asks what the policy would do, not what its shadow reports.
  for (auto& p : parsed->authorization_policies) p.meta.dry_run = false;
  policy::ResourceSet with = set;
  with.append(std::move(*parsed));
  uint64_t requests = 0, would_allow = 0, would_deny = 0;
  size_t replayed = 0;
  ojson changed = ojson::array();
  for (const auto& t : flows) {
    if (t.destination != workload) continue;
    nlohmann::json req{{"destination",
                        {{"namespace", w->ns},
                         {"labels", w->labels},
                         {"serviceAccount", w->service_account},
                         {"port", 80}}}};
    if (!t.flow.source_principal.empty()) req["source"] = {{"principal", t.flow.source_principal}};
    if (!t.flow.method.empty())
      req["request"] = {{"method", t.flow.method}, {"path", sample_path(t.flow.path_prefix)}};
    auto run = policy::run_authz_check(with, mesh, req.dump(), "", false, nullptr);
    if (!run) return fail(run.error());
    const bool allow = (*run)->decision.allow;
    ++replayed;
    requests += t.flow.requests;
    (allow ? would_allow : would_deny) += t.flow.requests;
    if (allow != t.flow.allowed) {
      changed.push_back(
          {{"sourcePrincipal",
            t.flow.source_principal.empty() ? ojson(nullptr) : ojson(t.flow.source_principal)},
           {"method", t.flow.method},
           {"pathPrefix", t.flow.path_prefix},
           {"requests", t.flow.requests},
           {"observed", t.flow.allowed ? "ALLOW" : "DENY"},
           {"wouldBe", allow ? "ALLOW" : "DENY"},
           {"policy",
            (*run)->decision.policy.empty() ? ojson(nullptr) : ojson(std::string((*run)->decision.policy))},
           {"reason", policy::describe((*run)->decision)}});
    }
  }
  return ojson{{"workload", workload},      {"flows", replayed},       {"requests", requests},
               {"wouldAllow", would_allow}, {"wouldDeny", would_deny}, {"changed", std::move(changed)}};
}

}  // namespace mg::console
