#include "policy/select.h"

namespace mg::policy {

namespace {

std::string describe_labels(const std::map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ",";
    out += k + "=" + v;
  }
  return out;
}

bool labels_match(const Selector& selector, const WorkloadRef& w) {
  for (const auto& [k, v] : selector.match_labels) {
    auto it = w.labels.find(k);
    if (it == w.labels.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace

Applicability applies_to(const Meta& meta, const Selector& selector, const WorkloadRef& w, const MeshConfig& mesh,
                         bool root_selector_spans_namespaces) {
  const bool in_root = meta.ns == mesh.root_namespace;
  if (!selector.present) {
    if (in_root) return {true, "mesh-wide (root namespace " + mesh.root_namespace + ")"};
    if (meta.ns == w.ns) return {true, "namespace-wide (" + meta.ns + ")"};
    return {false, "namespace " + meta.ns + " is not the workload's (" + w.ns + ")"};
  }
  const bool namespace_ok = meta.ns == w.ns || (in_root && root_selector_spans_namespaces);
  if (!namespace_ok) return {false, "namespace " + meta.ns + " is not the workload's (" + w.ns + ")"};
  if (!labels_match(selector, w)) {
    return {false, "selector " + describe_labels(selector.match_labels) + " does not match the workload's labels"};
  }
  return {true, "selector " + describe_labels(selector.match_labels) + " matches"};
}

std::vector<const AuthorizationPolicy*> applicable_authorization_policies(const ResourceSet& set, const WorkloadRef& w,
                                                                          const MeshConfig& mesh) {
  std::vector<const AuthorizationPolicy*> out;
  for (const auto& p : set.authorization_policies) {
    if (applies_to(p.meta, p.selector, w, mesh).applies) out.push_back(&p);
  }
  return out;
}

std::vector<const RequestAuthentication*> applicable_request_authentications(const ResourceSet& set,
                                                                             const WorkloadRef& w,
                                                                             const MeshConfig& mesh) {
  std::vector<const RequestAuthentication*> out;
  for (const auto& r : set.request_authentications) {
    if (applies_to(r.meta, r.selector, w, mesh).applies) out.push_back(&r);
  }
  return out;
}

std::vector<const OpaPolicy*> applicable_opa_policies(const ResourceSet& set, const WorkloadRef& w,
                                                      const MeshConfig& mesh) {
  std::vector<const OpaPolicy*> out;
  for (const auto& p : set.opa_policies) {
    if (applies_to(p.meta, p.selector, w, mesh).applies) out.push_back(&p);
  }
  return out;
}

PeerAuthnResolution resolve_peer_authentication(const ResourceSet& set, const WorkloadRef& w, const MeshConfig& mesh) {
  // One policy per level; when several compete, the first loaded wins (Istio: the oldest).
  const PeerAuthentication* mesh_level = nullptr;
  const PeerAuthentication* namespace_level = nullptr;
  const PeerAuthentication* workload_level = nullptr;
  for (const auto& p : set.peer_authentications) {
    if (!p.selector.present) {
      if (p.meta.ns == mesh.root_namespace) {
        if (!mesh_level) mesh_level = &p;
      } else if (p.meta.ns == w.ns) {
        if (!namespace_level) namespace_level = &p;
      }
    } else if (p.meta.ns == w.ns && applies_to(p.meta, p.selector, w, mesh, false).applies) {
      if (!workload_level) workload_level = &p;
    }
  }
  PeerAuthnResolution out;
  for (const auto* level : {workload_level, namespace_level, mesh_level}) {
    if (level && level->mode != MtlsMode::Unset) {
      out.workload = {level->mode, level->meta.full_name(), false};
      break;
    }
  }
  if (workload_level) {
    for (const auto& [port, mode] : workload_level->port_level) {
      if (mode != MtlsMode::Unset) out.ports[port] = {mode, workload_level->meta.full_name(), true};
    }
  }
  return out;
}

MeshConfig mesh_config_of(const ResourceSet& set, MeshConfig defaults) {
  for (const auto& mesh : set.meshes) {
    if (mesh.meta.name != "default") continue;
    defaults.trust_domain = mesh.trust_domain;
    defaults.trust_domain_aliases = mesh.trust_domain_aliases;
    defaults.root_namespace = mesh.root_namespace;
    defaults.path_normalization = mesh.path_normalization;
    defaults.num_trusted_proxies = mesh.num_trusted_proxies;
  }
  return defaults;
}

std::string mesh_document(const MeshConfig& mesh) {
  auto quoted = [](const std::string& value) {
    std::string q = "\"";
    for (char c : value) {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
    return q + "\"";
  };
  std::string out = "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: default\nspec:\n";
  out += "  trustDomain: " + quoted(mesh.trust_domain) + "\n";
  if (!mesh.trust_domain_aliases.empty()) {
    out += "  trustDomainAliases:\n";
    for (const auto& alias : mesh.trust_domain_aliases) out += "  - " + quoted(alias) + "\n";
  }
  out += "  rootNamespace: " + quoted(mesh.root_namespace) + "\n";
  out += std::string("  pathNormalization: ") + to_string(mesh.path_normalization) + "\n";
  if (mesh.num_trusted_proxies != 0) {
    out += "  gatewayTopology:\n    numTrustedProxies: " + std::to_string(mesh.num_trusted_proxies) + "\n";
  }
  return out;
}

}  // namespace mg::policy
