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
  // The Mesh "default", else the set's only Mesh (a proxy of another mesh is pushed its own alone).
  const bool sole = set.meshes.size() == 1;
  for (const auto& mesh : set.meshes) {
    if (mesh.meta.name != "default" && !sole) continue;
    defaults.trust_domain = mesh.trust_domain;
    defaults.trust_domain_aliases = mesh.trust_domain_aliases;
    defaults.root_namespace = mesh.root_namespace;
    defaults.path_normalization = mesh.path_normalization;
    defaults.num_trusted_proxies = mesh.num_trusted_proxies;
    defaults.extension_providers = mesh.extension_providers;
    defaults.h2_upgrade = mesh.h2_upgrade;
    defaults.outbound_traffic_policy = mesh.outbound_traffic_policy;
  }
  return defaults;
}

const ExtensionProvider* find_extension_provider(const MeshConfig& mesh, std::string_view name) {
  for (const auto& p : mesh.extension_providers) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

Status check_custom_providers(const ResourceSet& set, const MeshConfig& mesh) {
  for (const auto& p : set.authorization_policies) {
    if (p.action != Action::Custom || find_extension_provider(mesh, p.provider)) continue;
    return fail("policy.undefined_provider",
                p.meta.source + ":" + std::to_string(p.meta.line) + ": AuthorizationPolicy " + p.meta.full_name() +
                    ": CUSTOM provider \"" + p.provider + "\" is not defined in the Mesh's extensionProviders");
  }
  return {};
}

namespace {

// A YAML double-quoted scalar that reads back as exactly `value` (control characters escaped, so
// a line break inside a value is not folded into a space).
std::string quoted(const std::string& value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string q = "\"";
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      q += '\\';
      q += c;
    } else if (u < 0x20 || u == 0x7f) {
      q += "\\x";
      q += kHex[u >> 4];
      q += kHex[u & 15];
    } else {
      q += c;
    }
  }
  return q + "\"";
}

// One extensionProviders entry, as parse_mesh reads it back (every field written, defaults too,
// so what a proxy sees never depends on its own defaults).
void write_extension_provider(const ExtensionProvider& p, std::string& out) {
  const bool http = p.kind == ExtensionProvider::Kind::EnvoyExtAuthzHttp;
  out += "  - name: " + quoted(p.name) + "\n";
  out += std::string("    ") + to_string(p.kind) + ":\n";
  const std::string in = "      ";
  auto list = [&](const char* key, const std::vector<std::string>& values) {
    if (values.empty()) return;
    out += in + key + ":\n";
    for (const auto& v : values) out += in + "- " + quoted(v) + "\n";
  };
  out += in + "service: " + quoted(p.service) + "\n";
  out += in + "port: " + std::to_string(p.port) + "\n";
  if (http && !p.path_prefix.empty()) out += in + "pathPrefix: " + quoted(p.path_prefix) + "\n";
  out += in + "timeout: \"" + std::to_string(p.timeout_ms) + "ms\"\n";
  out += in + "failOpen: " + (p.fail_open ? "true" : "false") + "\n";
  out += in + "statusOnError: \"" + std::to_string(p.status_on_error) + "\"\n";
  if (http) {
    list("includeRequestHeadersInCheck", p.include_request_headers_in_check);
    if (!p.include_additional_headers_in_check.empty()) {
      out += in + "includeAdditionalHeadersInCheck:\n";
      for (const auto& [k, v] : p.include_additional_headers_in_check) {
        out += in + "  " + quoted(k) + ": " + quoted(v) + "\n";
      }
    }
    list("headersToUpstreamOnAllow", p.headers_to_upstream_on_allow);
    list("headersToDownstreamOnDeny", p.headers_to_downstream_on_deny);
  }
  if (const auto& b = p.include_request_body_in_check; b.present) {
    out += in + "includeRequestBodyInCheck:\n";
    out += in + "  maxRequestBytes: " + std::to_string(b.max_request_bytes) + "\n";
    out += in + "  allowPartialMessage: " + (b.allow_partial_message ? "true" : "false") + "\n";
    out += in + "  packAsBytes: " + (b.pack_as_bytes ? "true" : "false") + "\n";
  }
}

}  // namespace

std::string mesh_document(const MeshConfig& mesh) {
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
  if (!mesh.extension_providers.empty()) {
    out += "  extensionProviders:\n";
    for (const auto& p : mesh.extension_providers) write_extension_provider(p, out);
  }
  if (!mesh.h2_upgrade) out += "  h2UpgradePolicy: DO_NOT_UPGRADE\n";
  if (mesh.outbound_traffic_policy != OutboundTrafficPolicy::AllowAny) {
    out += std::string("  outboundTrafficPolicy:\n    mode: ") + to_string(mesh.outbound_traffic_policy) + "\n";
  }
  return out;
}

bool service_selects(const Service& service, const WorkloadRef& workload) {
  if (service.workload_selector.empty() || workload.ns != service.meta.ns) return false;
  for (const auto& [k, v] : service.workload_selector) {
    auto it = workload.labels.find(k);
    if (it == workload.labels.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace mg::policy
