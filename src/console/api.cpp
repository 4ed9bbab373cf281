// console/api.cpp — see api.h.
#include "console/api.h"

#include <algorithm>
#include <set>
#include <type_traits>

#include "policy/analyze.h"
#include "policy/check.h"

namespace mg::console {

using ojson = nlohmann::ordered_json;

namespace {

policy::WorkloadRef ref_of(const ConsoleWorkload& w) { return {w.ns, w.labels, w.service_account}; }

// "spiffe://td/ns/NS/sa/SA" → NS ("" when not of that form).
std::string namespace_of(const std::string& principal) {
  const auto at = principal.find("/ns/");
  if (at == std::string::npos) return "";
  const auto end = principal.find('/', at + 4);
  return principal.substr(at + 4, end == std::string::npos ? std::string::npos : end - at - 4);
}

// The graph node a source principal stands for: the one workload that runs as it, else the
// principal itself (several workloads share a service account, or none is known); plaintext has
// no identity and is one node.
std::string source_node(const std::string& principal, const std::multimap<std::string, std::string>& by_id) {
  if (principal.empty()) return "plaintext";
  if (by_id.count(principal) == 1) return by_id.find(principal)->second;
  return principal;
}

// SPIFFE ID → the keys of the workloads that run as it (source_node's index).
std::multimap<std::string, std::string> by_principal(const std::vector<ConsoleWorkload>& workloads) {
  std::multimap<std::string, std::string> by_id;
  for (const auto& w : workloads) {
    if (!w.spiffe_id.empty()) by_id.emplace(w.spiffe_id, w.key());
  }
  return by_id;
}

const char* badge(uint64_t mtls, uint64_t plaintext) {
  if (plaintext == 0) return "mTLS";
  return mtls == 0 ? "plaintext" : "mixed";
}

std::string short_hash(const std::string& h) { return h.substr(0, 12); }

}  // namespace

ojson graph_json(const std::vector<ConsoleWorkload>& workloads, const std::vector<FlowTotal>& flows,
                 const std::map<std::string, int64_t>& covered_ms, const WindowLimits& limits) {
  const auto by_id = by_principal(workloads);
  struct Edge {
    uint64_t mtls = 0, plaintext = 0, allowed = 0, denied = 0;
    std::set<std::string> principals;
    std::map<std::string, std::pair<uint64_t, uint64_t>> policies;  // policy → (allowed, denied)
    double rate = 0;
  };
  std::map<std::pair<std::string, std::string>, Edge> edges;  // (source node, destination)
  std::map<std::string, std::string> extra_nodes;             // node id → namespace
  for (const auto& t : flows) {
    const std::string src = source_node(t.flow.source_principal, by_id);
    Edge& e = edges[{src, t.destination}];
    (t.flow.mtls ? e.mtls : e.plaintext) += t.flow.requests;
    (t.flow.allowed ? e.allowed : e.denied) += t.flow.requests;
    if (!t.flow.source_principal.empty()) e.principals.insert(t.flow.source_principal);
    auto& p = e.policies[t.flow.policy];
    (t.flow.allowed ? p.first : p.second) += t.flow.requests;
    auto covered = covered_ms.find(t.destination);
    if (covered != covered_ms.end() && covered->second > 0)
      e.rate += static_cast<double>(t.flow.requests) * 1000.0 / static_cast<double>(covered->second);
    if (src == "plaintext")
      extra_nodes[src] = "";
    else if (src == t.flow.source_principal)
      extra_nodes[src] = namespace_of(src);
  }
  std::map<std::string, std::vector<const ConsoleWorkload*>> by_ns;
  for (const auto& w : workloads) by_ns[w.ns].push_back(&w);
  ojson namespaces = ojson::array();
  ojson nodes = ojson::array();
  for (const auto& [ns, list] : by_ns) {
    ojson names = ojson::array();
    for (const auto* w : list) {
      names.push_back(w->key());
      nodes.push_back({{"id", w->key()},
                       {"kind", "workload"},
                       {"namespace", ns},
                       {"name", w->name},
                       {"connected", w->connected},
                       {"spiffeId", w->spiffe_id}});
    }
    namespaces.push_back({{"name", ns}, {"workloads", std::move(names)}});
  }
  for (const auto& [id, ns] : extra_nodes) {
    nodes.push_back({{"id", id},
                     {"kind", id == "plaintext" ? "plaintext" : "principal"},
                     {"namespace", ns},
                     {"name", id == "plaintext" ? "plaintext (no identity)" : id},
                     {"connected", false},
                     {"spiffeId", id == "plaintext" ? "" : id}});
  }
  ojson out_edges = ojson::array();
  for (const auto& [key, e] : edges) {
    ojson policies = ojson::array();
    for (const auto& [name, counts] : e.policies) {
      policies.push_back({{"policy", name.empty() ? ojson(nullptr) : ojson(name)},
                          {"allowed", counts.first},
                          {"denied", counts.second}});
    }
    out_edges.push_back(
        {{"source", key.first},
         {"destination", key.second},
         {"sourcePrincipals", std::vector<std::string>(e.principals.begin(), e.principals.end())},
         {"requests", e.allowed + e.denied},
         {"rate", std::round(e.rate * 1000.0) / 1000.0},
         {"mtls", badge(e.mtls, e.plaintext)},
         {"mtlsRequests", e.mtls},
         {"plaintextRequests", e.plaintext},
         {"allowed", e.allowed},
         {"denied", e.denied},
         {"policies", std::move(policies)}});
  }
  return {{"windowSeconds", limits.window_ms() / 1000},
          {"namespaces", std::move(namespaces)},
          {"nodes", std::move(nodes)},
          {"edges", std::move(out_edges)}};
}

ojson workloads_json(const std::vector<ConsoleWorkload>& workloads, const MeshView& mesh, int64_t now_unix) {
  ojson out = ojson::array();
  for (const auto& w : workloads) {
    ojson cert = nullptr;
    if (w.cert_not_after > 0) {
      const int64_t left = w.cert_not_after - now_unix;
      // Lifetime: the mesh's certificate TTL, which every workload certificate is issued with.
      const bool warn = left < mesh.certificate_ttl_seconds / 5;
      cert = {{"serial", w.cert_serial}, {"notAfterUnix", w.cert_not_after},
              {"secondsLeft", left},     {"lifetimeSeconds", mesh.certificate_ttl_seconds},
              {"warning", warn},         {"state", w.cert_state}};
    }
    ojson root = nullptr;
    if (!w.acked_bundle.empty())
      root = {{"bundle", short_hash(w.acked_bundle)}, {"current", w.acked_bundle == mesh.bundle_hash}};
    out.push_back({{"id", w.key()},
                   {"namespace", w.ns},
                   {"name", w.name},
                   {"serviceAccount", w.service_account},
                   {"spiffeId", w.spiffe_id},
                   {"labels", w.labels},
                   {"registered", w.registered},
                   {"connected", w.connected},
                   {"certificate", std::move(cert)},
                   {"trustRoot", std::move(root)},
                   {"configSent", {{"version", w.sent_version}, {"revision", w.sent_revision}}},
                   {"configAcked", {{"version", w.acked_version}, {"revision", w.acked_revision}}},
                   {"inSync", !w.sent_version.empty() && w.sent_version == w.acked_version},
                   {"nackError", w.nack_error},
                   {"proxyVersion", w.proxy_version}});
  }
  return {{"workloads", std::move(out)}};
}

ojson policies_json(const policy::ResourceSet& set, const policy::MeshConfig& mesh,
                    const std::vector<ConsoleWorkload>& workloads) {
  const auto findings = policy::analyze(set, mesh);
  ojson out = ojson::array();
  policy::for_each_kind(set, [&](const char* kind, const auto& list) {
    for (const auto& r : list) {
      ojson j{{"kind", kind}, {"namespace", r.meta.ns}, {"name", r.meta.name}, {"dryRun", r.meta.dry_run}};
      using T = std::decay_t<decltype(r)>;
      if constexpr (std::is_same_v<T, policy::AuthorizationPolicy>) {
        j["action"] = policy::to_string(r.action);
        j["audit"] = r.action == policy::Action::Audit;
      }
      ojson selects = nullptr;  // null: the kind selects no workloads
      if constexpr (requires { r.selector.match_labels; }) {
        selects = ojson::array();
        for (const auto& w : workloads) {
          if (policy::applies_to(r.meta, r.selector, ref_of(w), mesh).applies) selects.push_back(w.key());
        }
      } else if constexpr (std::is_same_v<T, policy::Service>) {
        selects = ojson::array();
        for (const auto& w : workloads) {
          if (policy::service_selects(r, ref_of(w))) selects.push_back(w.key());
        }
      }
      j["selects"] = std::move(selects);
      ojson found = ojson::array();
      for (const auto& f : findings) {
        if (f.resource == r.meta.ns + "/" + r.meta.name)
          found.push_back({{"code", f.code}, {"severity", f.severity}, {"message", f.message}});
      }
      j["findings"] = std::move(found);
      j["yaml"] = r.meta.document;
      out.push_back(std::move(j));
    }
  });
  return {{"resources", std::move(out)}};
}

ojson decisions_json(const std::vector<ReportedDecision>& decisions,
                     const std::vector<ConsoleWorkload>& workloads,
                     const std::map<std::string, std::string>& query) {
  auto get = [&](const char* k) {
    auto it = query.find(k);
    return it == query.end() ? std::string() : it->second;
  };
  const std::string workload = get("workload"), policy_filter = get("policy");
  size_t limit = 100;
  if (auto l = get("limit"); !l.empty() && l.size() < 6 && std::all_of(l.begin(), l.end(), ::isdigit))
    limit = std::stoul(l);
  const auto by_id = by_principal(workloads);
  ojson out = ojson::array();
  for (const auto& d : decisions) {
    if (out.size() >= limit) break;
    const auto& s = d.sample;
    const std::string source = source_node(s.source_principal, by_id);
    if (!workload.empty() && d.destination != workload && source != workload) continue;
    if (!policy_filter.empty() && s.policy != policy_filter) continue;
    auto or_null = [](const std::string& v) { return v.empty() ? ojson(nullptr) : ojson(v); };
    out.push_back({{"timeUnixMs", s.time_unix_ms},
                   {"source", source},
                   {"sourcePrincipal", or_null(s.source_principal)},
                   {"sourceAddress", s.source_address},
                   {"destination", d.destination},
                   {"method", or_null(s.method)},
                   {"path", or_null(s.path)},
                   {"status", s.status},
                   {"decision", s.allowed ? "ALLOW" : "DENY"},
                   {"audit", s.audit},
                   {"mtls", s.mtls},
                   {"policy", or_null(s.policy)},
                   {"rule", s.rule >= 0 ? ojson(s.rule) : ojson(nullptr)},
                   {"reason", s.reason}});
  }
  return {{"decisions", std::move(out)}};
}

std::vector<DecisionRow> recent_decisions(const std::vector<ReportedDecision>& decisions,
                                          const std::vector<ConsoleWorkload>& workloads,
                                          const std::string& destination, const std::string& policy,
                                          size_t limit) {
  const auto by_id = by_principal(workloads);
  std::vector<DecisionRow> out;
  for (const auto& d : decisions) {
    if (out.size() >= limit) break;
    if (!destination.empty() && d.destination != destination) continue;
    if (!policy.empty() && d.sample.policy != policy) continue;
    out.push_back({d, source_node(d.sample.source_principal, by_id)});
  }
  return out;
}

Result<ojson> whatif_json(const policy::ResourceSet& set, const policy::MeshConfig& mesh,
                          const std::vector<ConsoleWorkload>& workloads, std::string_view body) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return fail("console.bad_request", "the body must be a JSON object");
  std::string workload;
  if (auto it = doc.find("workload"); it != doc.end() && !it->is_null()) {
    if (!it->is_string()) return fail("console.bad_request", "workload: must be a string NS/NAME");
    workload = it->get<std::string>();
  }
  auto req = doc.find("request");
  if (req == doc.end() || !req->is_object())
    return fail("console.bad_request", "request: must be an object (docs/AUTHZ-CHECK.md's request.json)");
  const bool registered =
      std::any_of(set.workloads.begin(), set.workloads.end(),
                  [&](const policy::Workload& w) { return w.meta.ns + "/" + w.meta.name == workload; });
  if (!workload.empty() && !registered) {
    // A proxy known only by its Hello: its labels as the control plane selects it by.
    auto known =
        std::find_if(workloads.begin(), workloads.end(), [&](const auto& w) { return w.key() == workload; });
    if (known == workloads.end()) return fail("console.no_workload", "no workload " + workload);
    auto& dest = (*req)["destination"];
    if (dest.is_null()) dest = nlohmann::json::object();
    if (!dest.is_object()) return fail("console.bad_request", "request.destination: must be an object");
    dest["namespace"] = known->ns;
    dest["labels"] = known->labels;
    if (!known->service_account.empty()) dest["serviceAccount"] = known->service_account;
    workload.clear();
  }
  auto run = policy::run_authz_check(set, mesh, req->dump(), workload, /*from_files=*/false, nullptr);
  if (!run) return fail(run.error());
  auto j = policy::decision_json((*run)->decision, (*run)->if_allowed ? &*(*run)->if_allowed : nullptr);
  j["explain"] = policy::explain_json(set, **run, mesh);
  return j;
}

ojson mesh_json(const MeshView& mesh, const policy::ResourceSet& set, const policy::MeshConfig& config,
                const std::vector<ConsoleWorkload>& workloads, const WindowStats& window, int64_t now_unix) {
  ojson roots = ojson::array();
  for (const auto& r : mesh.roots) {
    roots.push_back({{"subject", r.subject},
                     {"fingerprint", r.fingerprint},
                     {"notAfterUnix", r.not_after},
                     {"secondsLeft", r.not_after - now_unix}});
  }
  // Mesh-wide mTLS: the root namespace's PeerAuthentication without selector, as a workload of no
  // labels in the root namespace resolves it.
  const auto resolved =
      policy::resolve_peer_authentication(set, policy::WorkloadRef{config.root_namespace, {}, ""}, config);
  size_t connected = 0, on_current = 0;
  for (const auto& w : workloads) {
    if (!w.connected) continue;
    ++connected;
    if (w.acked_bundle == mesh.bundle_hash) ++on_current;
  }
  return {{"trustDomain", mesh.trust_domain},
          {"rootNamespace", config.root_namespace},
          {"storeRevision", mesh.revision},
          {"certificateTtlSeconds", mesh.certificate_ttl_seconds},
          {"caRoots", std::move(roots)},
          {"bundle", short_hash(mesh.bundle_hash)},
          {"rotation",
           {{"connected", connected}, {"onCurrentBundle", on_current}, {"settled", connected == on_current}}},
          {"mtlsMode", policy::to_string(resolved.workload.mode)},
          {"mtlsDecidedBy", resolved.workload.decided_by},
          {"telemetry",
           {{"proxiesReporting", window.proxies},
            {"flowsDropped", window.flows_dropped},
            {"decisionsDropped", window.decisions_dropped}}},
          {"controlPlane", {{"healthy", true}}}};
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  auto decode = [](std::string_view in) {
    std::string out;
    for (size_t i = 0; i < in.size(); ++i) {
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      if (in[i] == '+') {
        out += ' ';
      } else if (in[i] == '%' && i + 2 < in.size() + 0 && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
        out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
        i += 2;
      } else {
        out += in[i];
      }
    }
    return out;
  };
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    out[decode(part.substr(0, eq))] = eq == std::string_view::npos ? "" : decode(part.substr(eq + 1));
  }
  return out;
}

}  // namespace mg::console
