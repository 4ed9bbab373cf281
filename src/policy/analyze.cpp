#include "policy/analyze.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "policy/match.h"

namespace mg::policy {

namespace {

std::string where(const Meta& m) { return m.source + ":" + std::to_string(m.line); }

// Could some workload be selected by both scopes? (Conservative: label conflicts only.)
bool scopes_overlap(const Meta& a, const Selector& sa, const Meta& b, const Selector& sb, const MeshConfig& mesh) {
  const bool a_root = a.ns == mesh.root_namespace, b_root = b.ns == mesh.root_namespace;
  if (a.ns != b.ns && !a_root && !b_root) return false;
  for (const auto& [k, v] : sa.match_labels) {
    auto it = sb.match_labels.find(k);
    if (it != sb.match_labels.end() && it->second != v) return false;
  }
  return true;
}

bool requires_request_principal(const AuthorizationPolicy& p) {
  for (const auto& r : p.rules) {
    for (const auto& s : r.from) {
      if (!s.request_principals.empty() || !s.not_request_principals.empty()) return true;
    }
    for (const auto& c : r.when) {
      if (c.key.starts_with("request.auth.")) return true;
    }
  }
  return false;
}

bool selector_matches_some_workload(const Meta& meta, const Selector& sel, const ResourceSet& set,
                                    const MeshConfig& mesh) {
  for (const auto& w : set.workloads) {
    WorkloadRef ref{w.meta.ns, w.labels, w.service_account};
    if (applies_to(meta, sel, ref, mesh).applies) return true;
  }
  return false;
}

// A DENY operation that constrains nothing but paths denies those paths unconditionally.
bool unconditional_deny_path(const Rule& deny_rule, std::string_view path) {
  if (!deny_rule.from.empty() || !deny_rule.when.empty()) return false;
  if (deny_rule.to.empty()) return true;
  for (const auto& op : deny_rule.to) {
    if (!op.hosts.empty() || !op.not_hosts.empty() || !op.ports.empty() || !op.not_ports.empty() ||
        !op.methods.empty() || !op.not_methods.empty() || !op.not_paths.empty()) {
      continue;
    }
    for (const auto& v : op.paths) {
      auto m = parse_string_match(v);
      if (m && m->matches(path)) return true;
    }
  }
  return false;
}

// The HTTP-only fields (Istio's list) a rule uses where it could apply to app port `port`: `to`
// entries whose ports / notPorts leave that port out are not looked at.
std::vector<std::string> http_only_fields(const Rule& r, uint32_t port) {
  std::set<std::string> fields;
  const std::string p = std::to_string(port);
  for (const auto& op : r.to) {
    if (!op.ports.empty() && std::find(op.ports.begin(), op.ports.end(), p) == op.ports.end()) continue;
    if (std::find(op.not_ports.begin(), op.not_ports.end(), p) != op.not_ports.end()) continue;
    if (!op.hosts.empty()) fields.insert("hosts");
    if (!op.not_hosts.empty()) fields.insert("notHosts");
    if (!op.methods.empty()) fields.insert("methods");
    if (!op.not_methods.empty()) fields.insert("notMethods");
    if (!op.paths.empty()) fields.insert("paths");
    if (!op.not_paths.empty()) fields.insert("notPaths");
  }
  // A rule whose every `to` entry is about other ports never applies to this one.
  const bool some_to_applies = r.to.empty() || std::any_of(r.to.begin(), r.to.end(), [&](const Operation& op) {
    return (op.ports.empty() || std::find(op.ports.begin(), op.ports.end(), p) != op.ports.end()) &&
           std::find(op.not_ports.begin(), op.not_ports.end(), p) == op.not_ports.end();
  });
  if (!some_to_applies) return {};
  for (const auto& src : r.from) {
    if (!src.request_principals.empty()) fields.insert("requestPrincipals");
    if (!src.not_request_principals.empty()) fields.insert("notRequestPrincipals");
  }
  for (const auto& c : r.when) {
    if (c.key.starts_with("request.")) fields.insert("when " + c.key);
  }
  return {fields.begin(), fields.end()};
}

void check_spiffe(const AuthorizationPolicy& p, std::vector<Finding>& out) {
  for (const auto& r : p.rules) {
    for (const auto& s : r.from) {
      for (const auto* list : {&s.principals, &s.not_principals}) {
        for (const auto& v : *list) {
          if (v.starts_with("spiffe://")) {
            out.push_back({"MG0006", "warning", p.meta.full_name(),
                           "principal \"" + v + "\" starts with spiffe://; write it as \"" + v.substr(9) +
                               "\" or it never matches",
                           where(p.meta)});
          }
        }
      }
    }
  }
}

}  // namespace

std::vector<Finding> analyze(const ResourceSet& set, const MeshConfig& mesh) {
  std::vector<Finding> out;
  for (const auto& ra : set.request_authentications) {
    bool required = false;
    for (const auto& p : set.authorization_policies) {
      if (!p.meta.dry_run && scopes_overlap(ra.meta, ra.selector, p.meta, p.selector, mesh) &&
          requires_request_principal(p)) {
        required = true;
      }
    }
    if (!required) {
      out.push_back({"MG0001", "warning", ra.meta.full_name(),
                     "RequestAuthentication without any AuthorizationPolicy requiring a request principal: requests "
                     "without a token are not rejected (add requestPrincipals: [\"*\"])",
                     where(ra.meta)});
    }
  }
  if (!set.workloads.empty()) {
    auto check = [&](const Meta& meta, const Selector& sel, const char* kind) {
      if (sel.present && !selector_matches_some_workload(meta, sel, set, mesh)) {
        out.push_back({"MG0002", "warning", meta.full_name(),
                       std::string(kind) + " selector matches no registered Workload", where(meta)});
      }
    };
    for (const auto& p : set.authorization_policies) check(p.meta, p.selector, "AuthorizationPolicy");
    for (const auto& p : set.peer_authentications) check(p.meta, p.selector, "PeerAuthentication");
    for (const auto& r : set.request_authentications) check(r.meta, r.selector, "RequestAuthentication");
    for (const auto& p : set.opa_policies) check(p.meta, p.selector, "OPAPolicy");
  }
  for (const auto& p : set.authorization_policies) {
    if (p.action == Action::Allow && p.rules.empty()) {
      out.push_back({"MG0003", "warning", p.meta.full_name(),
                     "ALLOW policy with no rules allows nothing: every request to the selected workloads is denied",
                     where(p.meta)});
    }
    check_spiffe(p, out);
    if (p.action == Action::Custom && !find_extension_provider(mesh, p.provider)) {
      out.push_back({"MG0008", "warning", p.meta.full_name(),
                     "CUSTOM provider \"" + p.provider +
                         "\" is not defined in the Mesh's extensionProviders: every request it matches is denied",
                     where(p.meta)});
    }
  }
  for (const auto& allow : set.authorization_policies) {
    if (allow.action != Action::Allow || allow.meta.dry_run) continue;
    for (size_t ai = 0; ai < allow.rules.size(); ++ai) {
      for (const auto& op : allow.rules[ai].to) {
        for (const auto& path : op.paths) {
          auto m = parse_string_match(path);
          if (!m || m->kind != MatchKind::Exact) continue;
          for (const auto& deny : set.authorization_policies) {
            if (deny.action != Action::Deny || deny.meta.dry_run ||
                !scopes_overlap(allow.meta, allow.selector, deny.meta, deny.selector, mesh)) {
              continue;
            }
            for (size_t di = 0; di < deny.rules.size(); ++di) {
              if (unconditional_deny_path(deny.rules[di], path)) {
                out.push_back({"MG0004", "warning", allow.meta.full_name(),
                               "rule " + std::to_string(ai) + " allows path \"" + path + "\" but DENY policy " +
                                   deny.meta.full_name() + " rule " + std::to_string(di) + " always denies it",
                               where(allow.meta)});
              }
            }
          }
        }
      }
    }
  }
  std::set<std::string> seen_levels;
  for (const auto& pa : set.peer_authentications) {
    if (pa.selector.present) continue;
    if (!seen_levels.insert(pa.meta.ns).second) {
      out.push_back({"MG0005", "warning", pa.meta.full_name(),
                     std::string(pa.meta.ns == mesh.root_namespace ? "mesh" : "namespace") +
                         "-level PeerAuthentication for namespace " + pa.meta.ns +
                         " is ignored: another one was loaded first",
                     where(pa.meta)});
    }
  }
  // MG0009: a request principal is required where no RequestAuthentication can supply one.
  for (const auto& p : set.authorization_policies) {
    if (!requires_request_principal(p)) continue;
    bool authn = false;
    for (const auto& ra : set.request_authentications) {
      authn = authn || scopes_overlap(ra.meta, ra.selector, p.meta, p.selector, mesh);
    }
    if (!authn) {
      out.push_back({"MG0009", "warning", p.meta.full_name(),
                     "requestPrincipals or request.auth conditions, but no RequestAuthentication applies to the "
                     "workloads it selects: requests never carry a request principal, so those rules never match",
                     where(p.meta)});
    }
  }
  // MG0010: two workload-level PeerAuthentications that can select one workload, with different modes.
  for (size_t i = 0; i < set.peer_authentications.size(); ++i) {
    const auto& a = set.peer_authentications[i];
    if (!a.selector.present) continue;
    for (size_t j = i + 1; j < set.peer_authentications.size(); ++j) {
      const auto& b = set.peer_authentications[j];
      if (!b.selector.present || a.meta.ns != b.meta.ns || a.mode == b.mode) continue;
      if (!scopes_overlap(a.meta, a.selector, b.meta, b.selector, mesh)) continue;
      out.push_back({"MG0010", "warning", b.meta.full_name(),
                     std::string("conflicts with PeerAuthentication ") + a.meta.full_name() + " (" + where(a.meta) +
                         "): both can select one workload, with modes " + to_string(a.mode) + " and " +
                         to_string(b.mode) + "; only one is used",
                     where(b.meta)});
    }
  }
  for (const auto& svc : set.services) {
    bool selects_any = false;
    for (const auto& w : set.workloads) {
      if (!service_selects(svc, WorkloadRef{w.meta.ns, w.labels, w.service_account})) continue;
      selects_any = true;
      if (w.ports.empty()) continue;  // ports not declared: unknowable here
      for (const auto& p : svc.ports) {
        if (std::find(w.ports.begin(), w.ports.end(), p.target_port) != w.ports.end()) continue;
        out.push_back({"MG0013", "warning", svc.meta.full_name(),
                       "Service port " + (p.name.empty() ? std::to_string(p.port) : p.name) + " targets port " +
                           std::to_string(p.target_port) + ", which Workload " + w.meta.full_name() +
                           " does not serve (its ports: " + [&] {
                             std::string list;
                             for (auto wp : w.ports) list += (list.empty() ? "" : ", ") + std::to_string(wp);
                             return list;
                           }() + ")",
                       where(svc.meta)});
      }
    }
    if (!selects_any && !set.workloads.empty()) {
      std::string sel;
      for (const auto& [k, v] : svc.workload_selector) sel += (sel.empty() ? "" : ",") + k + "=" + v;
      out.push_back({"MG0012", "warning", svc.meta.full_name(),
                     "Service selector " + sel + " matches no registered Workload in namespace " + svc.meta.ns +
                         ": the service has no endpoints",
                     where(svc.meta)});
    }
  }
  // MG0015: HTTP-only fields in a rule of a policy selecting a workload behind a tcp service port.
  std::set<std::string> reported;
  for (const auto& p : set.authorization_policies) {
    for (const auto& w : set.workloads) {
      const WorkloadRef ref{w.meta.ns, w.labels, w.service_account};
      if (!applies_to(p.meta, p.selector, ref, mesh).applies) continue;
      for (const auto& svc : set.services) {
        if (!service_selects(svc, ref)) continue;
        for (const auto& sp : svc.ports) {
          if (sp.protocol != ServiceProtocol::Tcp) continue;
          for (size_t i = 0; i < p.rules.size(); ++i) {
            const auto fields = http_only_fields(p.rules[i], sp.target_port);
            if (fields.empty()) continue;
            const std::string port_name = sp.name.empty() ? std::to_string(sp.port) : sp.name;
            if (!reported.insert(p.meta.full_name() + '\0' + std::to_string(i) + '\0' + svc.meta.full_name() + '\0' +
                                 port_name)
                     .second)
              continue;
            std::string list;
            for (const auto& f : fields) list += (list.empty() ? "" : ", ") + f;
            out.push_back({"MG0015", "warning", p.meta.full_name(),
                           "rule " + std::to_string(i) + " uses HTTP-only fields (" + list + ") but Service " +
                               svc.meta.full_name() + " port " + port_name + " (targetPort " +
                               std::to_string(sp.target_port) + ") of Workload " + w.meta.full_name() +
                               " is tcp: the rule never matches its connections (" +
                               (p.action == Action::Allow ? "an ALLOW policy then does not allow them"
                                                          : "the rule does not apply to them") +
                               ")",
                           where(p.meta)});
          }
        }
      }
    }
  }
  for (const auto& eps : set.service_endpoints) {
    const bool has_service = std::any_of(set.services.begin(), set.services.end(), [&](const Service& s) {
      return s.meta.ns == eps.meta.ns && s.meta.name == eps.meta.name;
    });
    if (!has_service) {
      out.push_back({"MG0014", "warning", eps.meta.full_name(),
                     "ServiceEndpoints without a Service " + eps.meta.full_name() + ": no client can call it by name",
                     where(eps.meta)});
    }
  }
  // MG0011: security.istio.io/v1beta1, which Istio deprecates in favour of v1 (same fields).
  policy::for_each_kind(set, [&](const char* kind, const auto& list) {
    for (const auto& r : list) {
      try {
        const YAML::Node doc = YAML::Load(r.meta.document);
        if (doc["apiVersion"] && doc["apiVersion"].Scalar() == "security.istio.io/v1beta1") {
          out.push_back({"MG0011", "info", r.meta.full_name(),
                         std::string(kind) + " uses security.istio.io/v1beta1, deprecated: write security.istio.io/v1 "
                                             "(the same fields)",
                         where(r.meta)});
        }
      } catch (const YAML::Exception&) {
        // The document parsed once already; nothing to report about its version.
      }
    }
  });
  for (const auto& r : set.replaced) {
    const std::string first = r.source + ":" + std::to_string(r.line),
                      later = r.by_source + ":" + std::to_string(r.by_line);
    out.push_back(
        {"MG0007", "warning", r.full_name,
         r.kind + " defined twice: " + first + " is replaced by " + later + " (the later document wins)",
         later});
  }
  return out;
}

}  // namespace mg::policy
