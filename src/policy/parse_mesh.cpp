// policy/parse_mesh.cpp — the Mesh kind for policy::parse_resources: trust domain and aliases,
// certificate lifetimes, gateway topology and the CUSTOM action's extensionProviders, with the shared
// walkers of parse_internal.h; parse.cpp dispatches here by kind.
#include <charconv>
#include <optional>
#include <string>
#include <utility>

#include "identity/spiffe_id.h"
#include "policy/mesh.h"
#include "policy/opa.h"
#include "policy/parse.h"
#include "policy/parse_internal.h"

namespace mg::policy::detail {

namespace {

constexpr int64_t kMinCertificateTtlSeconds = 60;
constexpr int64_t kMaxCertificateTtlSeconds = 90LL * 24 * 3600;

// Mesh.spec.gatewayTopology: {numTrustedProxies: N}, Istio's gatewayTopology field of the same name.
Status parse_gateway_topology(Ctx& ctx, const YAML::Node& n, Mesh& m) {
  return for_each_field(ctx, n, "Mesh.spec.gatewayTopology", {"numTrustedProxies"},
                        [&](const std::string&, const YAML::Node& v) -> Status {
                          auto text = scalar(ctx, v, "gatewayTopology.numTrustedProxies");
                          if (!text) return fail(text.error());
                          uint32_t n = 0;
                          auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
                          if (text->empty() || ec != std::errc() || end != text->data() + text->size()) {
                            return err(ctx, v,
                                       "gatewayTopology.numTrustedProxies must be a whole number of proxies "
                                       "(0 or more), not \"" +
                                           *text + "\"",
                                       "policy.bad_value");
                          }
                          m.num_trusted_proxies = n;
                          return {};
                        });
}

// A list of HTTP header names (RFC 9110 tokens), as the ext_authz header fields take them.
Status header_name_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<std::string>& out) {
  if (auto s = string_list(ctx, n, what, out); !s) return s;
  for (const auto& v : out) {
    if (!is_header_name(v)) {
      return err(ctx, n, what + ": \"" + v + "\" is not a header name", "policy.bad_value");
    }
  }
  return {};
}

constexpr int64_t kMaxExtAuthzTimeoutMs = 3600LL * 1000;

// includeRequestBodyInCheck: Istio's BufferSettings.
Status parse_ext_authz_body(Ctx& ctx, const YAML::Node& n, const std::string& what,
                            ExtensionProvider::RequestBody& b) {
  b.present = true;
  return for_each_field(ctx, n, what, {"maxRequestBytes", "allowPartialMessage", "packAsBytes"},
                        [&](const std::string& k, const YAML::Node& x) -> Status {
                          if (k == "maxRequestBytes") {
                            auto v = whole_number(ctx, x, what + ".maxRequestBytes", 1, 16u << 20);
                            if (!v) return fail(v.error());
                            b.max_request_bytes = *v;
                            return {};
                          }
                          auto v = boolean(ctx, x, what + "." + k);
                          if (!v) return fail(v.error());
                          (k == "allowPartialMessage" ? b.allow_partial_message : b.pack_as_bytes) = *v;
                          return {};
                        });
}

// envoyExtAuthzHttp / envoyExtAuthzGrpc: the fields both share, and the HTTP-only ones.
Status parse_ext_authz(Ctx& ctx, const YAML::Node& n, const std::string& what, ExtensionProvider& p) {
  const bool http = p.kind == ExtensionProvider::Kind::EnvoyExtAuthzHttp;
  bool has_service = false, has_port = false;
  auto field = [&](const std::string& key, const YAML::Node& v) -> Status {
    const std::string name = what + "." + key;
    if (key == "port") {
      auto port = whole_number(ctx, v, name, 1, 65535);
      if (!port) return fail(port.error());
      p.port = *port;
      has_port = true;
      return {};
    }
    if (key == "failOpen") {
      auto b = boolean(ctx, v, name);
      if (!b) return fail(b.error());
      p.fail_open = *b;
      return {};
    }
    if (key == "statusOnError") {
      auto status = whole_number(ctx, v, name, 100, 599);
      if (!status) return err(ctx, v, name + " must be an HTTP status code (100 to 599)", "policy.bad_value");
      p.status_on_error = static_cast<int>(*status);
      return {};
    }
    if (key == "includeRequestBodyInCheck") return parse_ext_authz_body(ctx, v, name, p.include_request_body_in_check);
    if (key == "includeRequestHeadersInCheck") return header_name_list(ctx, v, name, p.include_request_headers_in_check);
    if (key == "headersToUpstreamOnAllow") return header_name_list(ctx, v, name, p.headers_to_upstream_on_allow);
    if (key == "headersToDownstreamOnDeny") return header_name_list(ctx, v, name, p.headers_to_downstream_on_deny);
    if (key == "includeAdditionalHeadersInCheck") {
      auto& extra = p.include_additional_headers_in_check;
      if (auto st = string_map(ctx, v, name, extra); !st) return st;
      for (const auto& [k, value] : extra) {
        if (!is_header_name(k)) {
          return err(ctx, v, name + ": \"" + k + "\" is not a header name", "policy.bad_value");
        }
        if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
          return err(ctx, v, name + "." + k + ": a header value cannot hold CR, LF or NUL", "policy.bad_value");
        }
      }
      return {};
    }
    auto text = scalar(ctx, v, name);
    if (!text) return fail(text.error());
    if (key == "service") {
      if (text->empty() || text->find_first_of(std::string_view(" \t\r\n\0/\"\\", 8)) != std::string::npos) {
        return err(ctx, v, name + " must be a host name or address, not \"" + *text + "\"", "policy.bad_value");
      }
      p.service = *text;
      has_service = true;
    } else if (key == "pathPrefix") {
      if (!text->empty() && ((*text)[0] != '/' || text->find_first_of(std::string_view(" \t\r\n\0?#", 7)) !=
                                                       std::string::npos)) {
        return err(ctx, v, name + " must be a path starting with \"/\", not \"" + *text + "\"",
                   "policy.bad_value");
      }
      p.path_prefix = *text;
    } else {  // timeout
      auto ms = parse_duration_ms(*text, kMaxExtAuthzTimeoutMs);
      if (!ms) {
        return err(ctx, v, name + " must be a duration written like \"0.5s\" or \"200ms\", up to 1h, not \"" + *text + "\"",
                   "policy.bad_duration");
      }
      p.timeout_ms = *ms;
    }
    return {};
  };
  Status st = http ? for_each_field(ctx, n, what,
                                    {"service", "port", "pathPrefix", "timeout", "failOpen", "statusOnError",
                                     "includeRequestHeadersInCheck", "includeAdditionalHeadersInCheck",
                                     "headersToUpstreamOnAllow", "headersToDownstreamOnDeny",
                                     "includeRequestBodyInCheck"},
                                    field)
                   : for_each_field(ctx, n, what,
                                    {"service", "port", "timeout", "failOpen", "statusOnError",
                                     "includeRequestBodyInCheck"},
                                    field);
  if (!st) return st;
  if (!has_service) return err(ctx, n, what + ".service is required");
  if (!has_port) return err(ctx, n, what + ".port is required");
  return {};
}

// Mesh.spec.extensionProviders: Istio's meshConfig.extensionProviders, the ext_authz kinds.
Status parse_extension_providers(Ctx& ctx, const YAML::Node& n, Mesh& m) {
  if (n.IsNull()) return {};
  if (!n.IsSequence()) return err(ctx, n, "extensionProviders must be a list");
  for (const auto& item : n) {
    if (auto st = spend(ctx, item); !st) return st;
    ExtensionProvider p;
    int kinds = 0;
    auto st = for_each_field(
        ctx, item, "extensionProviders entry", {"name", "envoyExtAuthzHttp", "envoyExtAuthzGrpc"},
        [&](const std::string& key, const YAML::Node& v) -> Status {
          if (key == "name") {
            auto text = scalar(ctx, v, "extensionProviders.name");
            if (!text) return fail(text.error());
            p.name = *text;
            return {};
          }
          ++kinds;
          p.kind = key == "envoyExtAuthzHttp" ? ExtensionProvider::Kind::EnvoyExtAuthzHttp
                                              : ExtensionProvider::Kind::EnvoyExtAuthzGrpc;
          if (!v.IsMap()) return err(ctx, v, "extensionProviders." + key + " must be a mapping");
          return parse_ext_authz(ctx, v, "extensionProviders." + key, p);
        });
    if (!st) return st;
    if (p.name.empty()) return err(ctx, item, "extensionProviders entry: name is required");
    if (kinds != 1) {
      return err(ctx, item,
                 "extensionProviders \"" + p.name + "\" must set exactly one of envoyExtAuthzHttp or envoyExtAuthzGrpc");
    }
    if (std::any_of(m.extension_providers.begin(), m.extension_providers.end(),
                    [&](const ExtensionProvider& q) { return q.name == p.name; })) {
      return err(ctx, item, "extensionProviders: \"" + p.name + "\" is defined twice (names must be unique)");
    }
    m.extension_providers.push_back(std::move(p));
  }
  return {};
}

// Mesh.spec.outboundTrafficPolicy: Istio's {mode: REGISTRY_ONLY | ALLOW_ANY}, or the mode alone.
Status parse_outbound_traffic_policy(Ctx& ctx, const YAML::Node& n, Mesh& m) {
  auto mode = [&](const YAML::Node& v) -> Status {
    auto text = scalar(ctx, v, "outboundTrafficPolicy.mode");
    if (!text) return fail(text.error());
    if (*text == "REGISTRY_ONLY") {
      m.outbound_traffic_policy = OutboundTrafficPolicy::RegistryOnly;
    } else if (*text == "ALLOW_ANY") {
      m.outbound_traffic_policy = OutboundTrafficPolicy::AllowAny;
    } else {
      return err(ctx, v, "outboundTrafficPolicy.mode must be REGISTRY_ONLY or ALLOW_ANY, not \"" + *text + "\"",
                 "policy.bad_value");
    }
    return {};
  };
  if (n.IsScalar()) return mode(n);
  if (!n.IsMap()) return err(ctx, n, "outboundTrafficPolicy must be {mode: REGISTRY_ONLY | ALLOW_ANY} or the mode");
  bool has_mode = false;
  auto s = for_each_field(ctx, n, "Mesh.spec.outboundTrafficPolicy", {"mode"},
                          [&](const std::string&, const YAML::Node& v) -> Status {
                            has_mode = true;
                            return mode(v);
                          });
  if (!s) return s;
  if (!has_mode) return err(ctx, n, "outboundTrafficPolicy.mode is required (REGISTRY_ONLY or ALLOW_ANY)");
  return {};
}

// Mesh.spec.ca: {mode: builtin | plugin, pluginDir: DIR}. pluginDir (Kuma's "provided" CA, Istio's
// cacerts) plugs an operator's CA into a mesh other than the default (whose CA is
// meshguard-control's --plug-in-ca); it implies mode plugin, and mode builtin with it is refused.
Status parse_mesh_ca(Ctx& ctx, const YAML::Node& n, Mesh& m) {
  bool mode_builtin = false;
  std::optional<YAML::Node> dir_node;  // where pluginDir was written, for the errors below
  auto st = for_each_field(
      ctx, n, "Mesh.spec.ca", {"mode", "pluginDir"},
      [&](const std::string& key, const YAML::Node& x) -> Status {
        auto text = scalar(ctx, x, "ca." + key);
        if (!text) return fail(text.error());
        if (key == "pluginDir") {
          if (text->empty() || text->front() != '/' || text->find_first_of("\n\r") != std::string::npos)
            return err(ctx, x, "ca.pluginDir must be an absolute directory path, not \"" + *text + "\"",
                       "policy.bad_value");
          m.ca_plugin_dir = *text;
          dir_node.emplace(x);
          return {};
        }
        if (*text != "builtin" && *text != "plugin") {
          return err(ctx, x, "ca.mode must be builtin or plugin, not \"" + *text + "\"", "policy.bad_value");
        }
        m.ca_mode = *text;
        mode_builtin = *text == "builtin";
        return {};
      });
  if (!st) return st;
  if (m.ca_plugin_dir.empty()) {
    if (m.ca_mode == "plugin" && m.meta.name != kDefaultMesh)
      return err(ctx, n,
                 "ca.mode plugin needs ca.pluginDir (the directory of the operator's CA, cacerts layout)",
                 "policy.bad_value");
    return {};
  }
  if (mode_builtin)
    return err(ctx, *dir_node, "ca.pluginDir plugs in a CA: it cannot go with ca.mode builtin",
               "policy.bad_value");
  if (m.meta.name == kDefaultMesh)
    return err(
        ctx, *dir_node,
        "ca.pluginDir is for meshes other than the default: the default mesh's CA is meshguard-control's "
        "--plug-in-ca",
        "policy.bad_value");
  m.ca_mode = "plugin";
  return {};
}

}  // namespace

Status parse_mesh(Ctx& ctx, const YAML::Node& spec, Mesh& m) {
  return for_each_field(
      ctx, spec, "Mesh.spec",
      {"trustDomain", "trustDomainAliases", "rootNamespace", "pathNormalization", "certificateTTL", "ca",
       "gatewayTopology", "extensionProviders", "h2UpgradePolicy", "outboundTrafficPolicy", "federatesWith"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "federatesWith") {
          if (auto st = string_list(ctx, v, "federatesWith", m.federates_with); !st) return st;
          for (const auto& name : m.federates_with) {
            if (!is_dns_label(name)) {
              return err(ctx, v, "federatesWith entry \"" + name + "\" is not a mesh name (a DNS label)",
                         "policy.bad_mesh_name");
            }
            if (name == m.meta.name)
              return err(ctx, v, "federatesWith cannot name the mesh itself", "policy.bad_federation");
          }
          return {};
        }
        if (key == "gatewayTopology") return parse_gateway_topology(ctx, v, m);
        if (key == "outboundTrafficPolicy") return parse_outbound_traffic_policy(ctx, v, m);
        if (key == "extensionProviders") return parse_extension_providers(ctx, v, m);
        if (key == "trustDomainAliases") {
          if (auto st = string_list(ctx, v, "trustDomainAliases", m.trust_domain_aliases); !st) return st;
          for (const auto& alias : m.trust_domain_aliases) {
            if (auto st = identity::validate_trust_domain(alias); !st) {
              return err(ctx, v,
                         "trustDomainAliases entry \"" + alias +
                             "\" is not a valid SPIFFE trust domain: " + st.error().message,
                         "policy.bad_trust_domain");
            }
          }
          return {};
        }
        if (key == "ca") return parse_mesh_ca(ctx, v, m);
        auto text = scalar(ctx, v, key);
        if (!text) return fail(text.error());
        if (key == "h2UpgradePolicy") {
          if (*text != "UPGRADE" && *text != "DO_NOT_UPGRADE") {
            return err(ctx, v, "h2UpgradePolicy must be UPGRADE or DO_NOT_UPGRADE, not \"" + *text + "\"",
                       "policy.bad_value");
          }
          m.h2_upgrade = *text == "UPGRADE";
          return {};
        }
        if (key == "trustDomain") {
          if (auto st = identity::validate_trust_domain(*text); !st) {
            return err(ctx, v, "trustDomain \"" + *text + "\" is not a valid SPIFFE trust domain: " + st.error().message,
                       "policy.bad_trust_domain");
          }
          m.trust_domain = *text;
        } else if (key == "rootNamespace") {
          if (text->empty() || text->find_first_of("/ \t\r\n") != std::string::npos) {
            return err(ctx, v, "rootNamespace must be a non-empty namespace name", "policy.bad_value");
          }
          m.root_namespace = *text;
        } else if (key == "pathNormalization") {
          auto mode = parse_path_normalization(*text);
          if (!mode) {
            return err(ctx, v,
                       "pathNormalization must be NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES, not \"" +
                           *text + "\"",
                       "policy.bad_value");
          }
          m.path_normalization = *mode;
        } else {
          auto ms = parse_duration_ms(*text, kMaxCertificateTtlSeconds * 1000);
          if (!ms || *ms % 1000 != 0 || *ms / 1000 < kMinCertificateTtlSeconds) {
            return err(ctx, v,
                       "certificateTTL must be a whole number of seconds written like \"1h\", \"30m\" or \"90s\", "
                       "from 1m to 2160h (90 days), not \"" + *text + "\"",
                       "policy.bad_duration");
          }
          m.certificate_ttl_seconds = *ms / 1000;
        }
        return {};
      });
}

}  // namespace mg::policy::detail

namespace mg::policy {

const char* to_string(OutboundTrafficPolicy p) {
  return p == OutboundTrafficPolicy::RegistryOnly ? "REGISTRY_ONLY" : "ALLOW_ANY";
}

}  // namespace mg::policy
