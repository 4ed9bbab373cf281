// policy/parse_networking.cpp — Istio's routing kinds (networking.istio.io v1, v1beta1, v1alpha3
// Gateway, VirtualService, ServiceEntry) for policy::parse_resources: spec → policy::Gateway /
// VirtualService / ServiceEntry, with the shared walkers of parse_internal.h (parse.cpp dispatches
// here by kind). Only the subset a gateway-mode proxy acts on is accepted (docs/GATEWAYS.md): a
// field outside it is refused with file:line, because ignoring a routing rule would send traffic
// somewhere its author did not mean.
#include <set>
#include <utility>

#include "identity/spiffe_id.h"
#include "policy/match.h"
#include "policy/parse.h"
#include "policy/parse_internal.h"

namespace mg::policy::detail {

namespace {

// A host name as Istio's routing kinds write it: "*", "name", "a.b.c" or "*.a.b" — the wildcard
// only as the whole first label. Lower-cased on the way in (host names are case-insensitive).
Status host_name(const Ctx& ctx, const YAML::Node& at, const std::string& what, std::string& host) {
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view rest = host;
  if (rest == "*") return {};
  if (rest.starts_with("*.")) rest.remove_prefix(2);
  const bool ok = !rest.empty() && rest.size() <= 253 && rest.front() != '.' && rest.back() != '.' &&
                  rest.find("..") == std::string_view::npos &&
                  std::all_of(rest.begin(), rest.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
                  });
  if (!ok) {
    return err(ctx, at,
               what + ": \"" + host + "\" is not a host name (\"*\", \"example.com\" or \"*.example.com\")",
               "policy.bad_value");
  }
  return {};
}

Status host_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<std::string>& out,
                 bool namespace_prefix) {
  if (auto s = string_list(ctx, n, what, out); !s) return s;
  size_t index = 0;
  for (auto& h : out) {
    const YAML::Node at = std::as_const(n)[index++];
    std::string host = h;
    if (namespace_prefix) {
      // Gateway servers[].hosts: "NS/HOST" limits which namespaces' VirtualServices may bind.
      if (auto slash = h.find('/'); slash != std::string::npos) {
        const std::string ns = h.substr(0, slash);
        if (ns != "*" && ns != "." && !is_dns_label(ns)) {
          return err(ctx, at, what + ": \"" + h + "\": the part before '/' must be a namespace, \"*\" or \".\"",
                     "policy.bad_value");
        }
        host = h.substr(slash + 1);
        if (auto s = host_name(ctx, at, what, host); !s) return s;
        h = ns + "/" + host;
        continue;
      }
    }
    if (auto s = host_name(ctx, at, what, host); !s) return s;
    h = host;
  }
  if (out.empty()) return err(ctx, n, what + " must list at least one host");
  return {};
}

Status parse_server_port(Ctx& ctx, const YAML::Node& n, GatewayServer& server, bool& has_protocol) {
  bool has_number = false;
  auto s = for_each_field(
      ctx, n, "Gateway.spec.servers[].port", {"number", "protocol", "name"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "number") {
          auto number = whole_number(ctx, v, "servers[].port.number", 0, 65535);
          if (!number) return fail(number.error());
          server.port = *number;
          has_number = true;
          return {};
        }
        auto text = scalar(ctx, v, "servers[].port." + key);
        if (!text) return fail(text.error());
        if (key == "name") {
          server.port_name = *text;
          return {};
        }
        has_protocol = true;
        if (*text == "HTTP" || *text == "http") {
          server.protocol = GatewayServer::Protocol::Http;
        } else if (*text == "HTTPS" || *text == "https") {
          server.protocol = GatewayServer::Protocol::Https;
        } else if (*text == "TLS" || *text == "tls") {
          server.protocol = GatewayServer::Protocol::Tls;
        } else {
          return err(ctx, v, "servers[].port.protocol must be HTTP, HTTPS or TLS, not \"" + *text + "\"",
                     "policy.bad_value");
        }
        return {};
      });
  if (!s) return s;
  if (!n.IsMap() || !has_number) return err(ctx, n, "Gateway.spec.servers[].port.number is required");
  if (!has_protocol) return err(ctx, n, "Gateway.spec.servers[].port.protocol is required (HTTP, HTTPS or TLS)");
  return {};
}

// A credentialName becomes a directory under the gateway's credentialsDir, so it must be one safe
// path component (a Kubernetes Secret name: lower case letters, digits, '-' and '.').
bool is_credential_name(std::string_view name) {
  if (name.empty() || name.size() > 253 || name == "." || name == ".." || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'; });
}

Status parse_server_tls(Ctx& ctx, const YAML::Node& n, GatewayServer& server) {
  auto s = for_each_field(ctx, n, "Gateway.spec.servers[].tls", {"mode", "credentialName"},
                          [&](const std::string& key, const YAML::Node& v) -> Status {
                            auto text = scalar(ctx, v, "servers[].tls." + key);
                            if (!text) return fail(text.error());
                            if (key == "mode") {
                              if (*text == "SIMPLE") {
                                server.tls_mode = GatewayServer::TlsMode::Simple;
                              } else if (*text == "ISTIO_MUTUAL") {
                                server.tls_mode = GatewayServer::TlsMode::IstioMutual;
                              } else if (*text == "PASSTHROUGH") {
                                server.tls_mode = GatewayServer::TlsMode::Passthrough;
                              } else if (*text == "AUTO_PASSTHROUGH") {
                                // Istio's multi-cluster east-west mode: routes by an SNI naming a
                                // cluster of another mesh network; meshguard has no such networks.
                                return err(ctx, v,
                                           "servers[].tls.mode AUTO_PASSTHROUGH is not supported (it routes "
                                           "by Istio's outbound_.PORT_.SUBSET_.HOST SNI between mesh networks; "
                                           "use PASSTHROUGH with VirtualService tls routes)",
                                           "policy.unsupported");
                              } else {
                                return err(ctx, v,
                                           "servers[].tls.mode \"" + *text +
                                               "\" is not supported (SIMPLE, ISTIO_MUTUAL or PASSTHROUGH)",
                                           "policy.bad_value");
                              }
                              return {};
                            }
                            if (!is_credential_name(*text)) {
                              return err(ctx, v,
                                         "servers[].tls.credentialName \"" + *text +
                                             "\" must be a Secret name (lower case letters, digits, '-' and '.')",
                                         "policy.bad_value");
                            }
                            server.credential_name = *text;
                            return {};
                          });
  if (!s) return s;
  if (!n.IsMap() || server.tls_mode == GatewayServer::TlsMode::None)
    return err(ctx, n, "Gateway.spec.servers[].tls.mode is required (SIMPLE, ISTIO_MUTUAL or PASSTHROUGH)");
  const bool simple = server.tls_mode == GatewayServer::TlsMode::Simple;
  if (simple && server.credential_name.empty())
    return err(ctx, n, "Gateway.spec.servers[].tls.credentialName is required with mode SIMPLE");
  // ISTIO_MUTUAL presents the gateway's own SVID, PASSTHROUGH none of its own: a credentialName
  // would go unused.
  if (!simple && !server.credential_name.empty()) {
    return err(ctx, n,
               std::string("Gateway.spec.servers[].tls.credentialName is not used with mode ") +
                   (server.tls_mode == GatewayServer::TlsMode::Passthrough ? "PASSTHROUGH" : "ISTIO_MUTUAL"));
  }
  return {};
}

Status parse_server(Ctx& ctx, const YAML::Node& n, GatewayServer& server) {
  server.line = line_of(n);
  bool has_port = false, has_protocol = false, has_tls = false, has_hosts = false;
  auto s = for_each_field(ctx, n, "Gateway.spec.servers[]", {"port", "hosts", "tls", "name"},
                          [&](const std::string& key, const YAML::Node& v) -> Status {
                            if (key == "port") {
                              has_port = true;
                              return parse_server_port(ctx, v, server, has_protocol);
                            }
                            if (key == "hosts") {
                              has_hosts = true;
                              return host_list(ctx, v, "servers[].hosts", server.hosts, true);
                            }
                            if (key == "tls") {
                              has_tls = true;
                              return parse_server_tls(ctx, v, server);
                            }
                            return scalar(ctx, v, "servers[].name") ? Status{} : err(ctx, v, "servers[].name must be a string");
                          });
  if (!s) return s;
  if (!n.IsMap() || !has_port) return err(ctx, n, "Gateway.spec.servers[].port is required");
  if (!has_hosts) return err(ctx, n, "Gateway.spec.servers[].hosts is required");
  const bool https = server.protocol == GatewayServer::Protocol::Https;
  const bool tls = server.protocol == GatewayServer::Protocol::Tls;
  if (https && !has_tls)
    return err(ctx, n,
               "Gateway.spec.servers[]: protocol HTTPS needs tls {mode: SIMPLE, credentialName} or {mode: "
               "ISTIO_MUTUAL}");
  if (https && server.tls_mode == GatewayServer::TlsMode::Passthrough)
    return err(ctx, n, "Gateway.spec.servers[]: tls mode PASSTHROUGH is for protocol TLS (the gateway does not "
                       "read HTTP it passes through)");
  if (tls && (!has_tls || server.tls_mode != GatewayServer::TlsMode::Passthrough))
    return err(ctx, n, "Gateway.spec.servers[]: protocol TLS needs tls {mode: PASSTHROUGH} (routed by SNI, "
                       "VirtualService tls[])");
  if (!https && !tls && has_tls) return err(ctx, n, "Gateway.spec.servers[]: tls is only for protocol HTTPS or TLS");
  return {};
}

Status parse_string_match(Ctx& ctx, const YAML::Node& n, const std::string& what, HttpStringMatch& out) {
  int given = 0;
  auto s = for_each_field(ctx, n, what, {"exact", "prefix", "regex"}, [&](const std::string& key, const YAML::Node& v) -> Status {
    if (key == "regex") return err(ctx, v, what + ": regex is not supported (exact or prefix)", "policy.unsupported");
    auto text = scalar(ctx, v, what + "." + key);
    if (!text) return fail(text.error());
    out.kind = key == "exact" ? HttpStringMatch::Kind::Exact : HttpStringMatch::Kind::Prefix;
    out.value = *text;
    ++given;
    return {};
  });
  if (!s) return s;
  if (given != 1) return err(ctx, n, what + " needs exactly one of exact or prefix");
  return {};
}

// A list of Gateway names: NAME (the VirtualService's namespace), NAMESPACE/NAME, or "mesh".
Status gateway_names(Ctx& ctx, const YAML::Node& v, const std::string& what, std::vector<std::string>& out) {
  if (auto st = string_list(ctx, v, what, out); !st) return st;
  size_t index = 0;
  for (const auto& name : out) {
    const YAML::Node at = std::as_const(v)[index++];
    const auto slash = name.find('/');
    const bool ok = slash == std::string::npos ? !name.empty()
                                               : is_dns_label(name.substr(0, slash)) && slash + 1 < name.size() &&
                                                     name.find('/', slash + 1) == std::string::npos;
    if (!ok) return err(ctx, at, what + ": \"" + name + "\" must be NAME or NAMESPACE/NAME", "policy.bad_value");
  }
  return {};
}

Status parse_match(Ctx& ctx, const YAML::Node& n, HttpMatchRequest& m) {
  m.line = line_of(n);
  return for_each_field(
      ctx, n, "VirtualService.spec.http[].match[]", {"uri", "headers", "method", "name", "gateways", "port"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "name") return scalar(ctx, v, "match[].name") ? Status{} : err(ctx, v, "match[].name must be a string");
        if (key == "gateways") return gateway_names(ctx, v, "match[].gateways", m.gateways);
        if (key == "port") {
          auto p = whole_number(ctx, v, "match[].port", 1, 65535);
          if (!p) return fail(p.error());
          m.port = *p;
          return {};
        }
        if (key == "uri" || key == "method") {
          HttpStringMatch sm;
          if (auto st = parse_string_match(ctx, v, "match[]." + key, sm); !st) return st;
          if (key == "uri" && !sm.value.starts_with("/")) {
            return err(ctx, v, "match[].uri must start with '/', not \"" + sm.value + "\"", "policy.bad_value");
          }
          (key == "uri" ? m.uri : m.method) = std::move(sm);
          return {};
        }
        if (!v.IsMap()) return err(ctx, v, "match[].headers must be a mapping of header names to matches");
        for (auto it = v.begin(); it != v.end(); ++it) {
          if (auto st = spend(ctx, it->first); !st) return st;
          if (!it->first.IsScalar() || it->first.Scalar().empty()) {
            return err(ctx, it->first, "match[].headers: header names must be non-empty strings");
          }
          std::string name = it->first.Scalar();
          for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          HttpStringMatch sm;
          if (auto st = parse_string_match(ctx, it->second, "match[].headers." + name, sm); !st) return st;
          if (!m.headers.emplace(name, std::move(sm)).second) {
            return err(ctx, it->first, "match[].headers: header \"" + name + "\" is listed twice");
          }
        }
        return {};
      });
}

Status parse_destination(Ctx& ctx, const YAML::Node& n, HttpRouteDestination& d) {
  auto s = for_each_field(
      ctx, n, "VirtualService.spec.http[].route[].destination", {"host", "port", "subset"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "subset") {
          auto text = scalar(ctx, v, "route[].destination.subset");
          if (!text) return fail(text.error());
          if (!is_dns_label(*text)) {
            return err(ctx, v, "route[].destination.subset must name a DestinationRule subset, not \"" + *text + "\"",
                       "policy.bad_value");
          }
          d.subset = *text;
          return {};
        }
        if (key == "host") {
          auto text = scalar(ctx, v, "route[].destination.host");
          if (!text) return fail(text.error());
          d.host = *text;
          if (d.host.find('*') != std::string::npos) {
            return err(ctx, v, "route[].destination.host must name one host, not a wildcard", "policy.bad_value");
          }
          return host_name(ctx, v, "route[].destination.host", d.host);
        }
        return for_each_field(ctx, v, "route[].destination.port", {"number"},
                              [&](const std::string&, const YAML::Node& number) -> Status {
                                auto p = whole_number(ctx, number, "route[].destination.port.number", 1, 65535);
                                if (!p) return fail(p.error());
                                d.port = *p;
                                return {};
                              });
      });
  if (!s) return s;
  if (!n.IsMap() || d.host.empty()) return err(ctx, n, "route[].destination.host is required");
  return {};
}

// route[] of an http[] or tls[] entry (`what`: "http" or "tls"): destinations with weights.
Status parse_route_list(Ctx& ctx, const YAML::Node& v, const std::string& what, std::vector<HttpRouteDestination>& route,
                        std::vector<bool>& weighted) {
  if (!v.IsSequence()) return err(ctx, v, what + "[].route must be a list");
  return object_list(ctx, v, what + "[].route", route, [&](const YAML::Node& item, HttpRouteDestination& d) -> Status {
    d.line = line_of(item);
    bool has_destination = false, has_weight = false;
    auto st = for_each_field(ctx, item, "VirtualService.spec." + what + "[].route[]", {"destination", "weight"},
                             [&](const std::string& field, const YAML::Node& value) -> Status {
                               if (field == "destination") {
                                 has_destination = true;
                                 return parse_destination(ctx, value, d);
                               }
                               auto w = whole_number(ctx, value, "route[].weight", 0, 100);
                               if (!w) return fail(w.error());
                               d.weight = *w;
                               has_weight = true;
                               return {};
                             });
    if (!st) return st;
    if (!item.IsMap() || !has_destination) return err(ctx, item, what + "[].route[].destination is required");
    weighted.push_back(has_weight);
    return {};
  });
}

// The weights of an entry's destinations: one destination takes all (100 or absent); several
// each name theirs, adding up to 100.
Status check_weights(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<HttpRouteDestination>& route,
                     const std::vector<bool>& weighted) {
  if (!n.IsMap() || route.empty()) return err(ctx, n, "VirtualService.spec." + what + "[].route must list a destination");
  if (route.size() == 1) {
    if (weighted[0] && route[0].weight != 100) {
      return err(ctx, n, what + "[].route: a single destination's weight must be 100 (or absent)", "policy.bad_value");
    }
    route[0].weight = 100;
    return {};
  }
  uint32_t total = 0;
  for (size_t i = 0; i < route.size(); ++i) {
    if (!weighted[i]) {
      return err(ctx, std::as_const(n)["route"][i], what + "[].route[]: weight is required when there are several destinations");
    }
    total += route[i].weight;
  }
  if (total != 100) {
    return err(ctx, std::as_const(n)["route"], what + "[].route: the weights must add up to 100, not " + std::to_string(total),
               "policy.bad_value");
  }
  return {};
}

Status parse_http_route(Ctx& ctx, const YAML::Node& n, HttpRoute& r) {
  r.line = line_of(n);
  std::vector<bool> weighted;
  auto s = for_each_field(
      ctx, n, "VirtualService.spec.http[]", {"name", "match", "route"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "name") {
          auto text = scalar(ctx, v, "http[].name");
          if (!text) return fail(text.error());
          r.name = *text;
          return {};
        }
        if (key == "match") {
          if (!v.IsNull() && !v.IsSequence()) return err(ctx, v, "http[].match must be a list");
          return object_list(ctx, v, "http[].match", r.match,
                             [&](const YAML::Node& item, HttpMatchRequest& m) { return parse_match(ctx, item, m); });
        }
        return parse_route_list(ctx, v, "http", r.route, weighted);
      });
  if (!s) return s;
  return check_weights(ctx, n, "http", r.route, weighted);
}

// Whether a VirtualService host covers an sniHost: the same name, "*", or a "*." suffix the name
// (or the narrower wildcard) ends with.
bool host_covers(std::string_view vs_host, std::string_view sni) {
  if (vs_host == "*" || vs_host == sni) return true;
  if (!vs_host.starts_with("*.")) return false;
  const std::string_view suffix = vs_host.substr(1);
  return sni.size() > suffix.size() && sni.ends_with(suffix);
}

Status parse_tls_match(Ctx& ctx, const YAML::Node& n, TlsMatchAttributes& m) {
  m.line = line_of(n);
  auto s = for_each_field(ctx, n, "VirtualService.spec.tls[].match[]", {"sniHosts", "gateways", "port"},
                          [&](const std::string& key, const YAML::Node& v) -> Status {
                            if (key == "sniHosts") return host_list(ctx, v, "tls[].match[].sniHosts", m.sni_hosts, false);
                            if (key == "gateways") return gateway_names(ctx, v, "tls[].match[].gateways", m.gateways);
                            auto p = whole_number(ctx, v, "tls[].match[].port", 1, 65535);
                            if (!p) return fail(p.error());
                            m.port = *p;
                            return {};
                          });
  if (!s) return s;
  if (!n.IsMap() || m.sni_hosts.empty()) return err(ctx, n, "VirtualService.spec.tls[].match[].sniHosts is required");
  return {};
}

Status parse_tls_route(Ctx& ctx, const YAML::Node& n, TlsRoute& r) {
  r.line = line_of(n);
  std::vector<bool> weighted;
  bool has_match = false;
  auto s = for_each_field(ctx, n, "VirtualService.spec.tls[]", {"match", "route"},
                          [&](const std::string& key, const YAML::Node& v) -> Status {
                            if (key == "match") {
                              has_match = true;
                              if (!v.IsSequence()) return err(ctx, v, "tls[].match must be a list");
                              return object_list(ctx, v, "tls[].match", r.match,
                                                 [&](const YAML::Node& item, TlsMatchAttributes& m) {
                                                   return parse_tls_match(ctx, item, m);
                                                 });
                            }
                            return parse_route_list(ctx, v, "tls", r.route, weighted);
                          });
  if (!s) return s;
  // Istio requires a match on a TLS route: the SNI is what a TLS connection is routed by.
  if (n.IsMap() && (!has_match || r.match.empty()))
    return err(ctx, n, "VirtualService.spec.tls[].match is required (at least one entry with sniHosts)");
  return check_weights(ctx, n, "tls", r.route, weighted);
}

Status parse_entry_port(Ctx& ctx, const YAML::Node& n, ServiceEntryPort& p) {
  bool has_number = false;
  auto s = for_each_field(
      ctx, n, "ServiceEntry.spec.ports[]", {"number", "protocol", "name", "targetPort"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "number" || key == "targetPort") {
          auto number = whole_number(ctx, v, "ports[]." + key, 1, 65535);
          if (!number) return fail(number.error());
          (key == "number" ? p.number : p.target_port) = *number;
          has_number = has_number || key == "number";
          return {};
        }
        auto text = scalar(ctx, v, "ports[]." + key);
        if (!text) return fail(text.error());
        if (key == "name") {
          p.name = *text;
          return {};
        }
        std::string upper = *text;
        for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        for (const char* known : {"HTTP", "HTTPS", "HTTP2", "GRPC", "TCP", "TLS"}) {
          if (upper == known) {
            p.protocol = upper;
            return {};
          }
        }
        return err(ctx, v, "ports[].protocol must be HTTP, HTTPS, HTTP2, GRPC, TCP or TLS, not \"" + *text + "\"",
                   "policy.bad_value");
      });
  if (!s) return s;
  if (!n.IsMap() || !has_number) return err(ctx, n, "ServiceEntry.spec.ports[].number is required");
  if (p.name.empty()) return err(ctx, n, "ServiceEntry.spec.ports[].name is required");
  if (p.protocol.empty()) p.protocol = "TCP";
  return {};
}

Status parse_entry_endpoint(Ctx& ctx, const YAML::Node& n, ServiceEntryEndpoint& e) {
  auto s = for_each_field(ctx, n, "ServiceEntry.spec.endpoints[]", {"address", "ports"},
                          [&](const std::string& key, const YAML::Node& v) -> Status {
                            if (key == "address") {
                              auto text = scalar(ctx, v, "endpoints[].address");
                              if (!text) return fail(text.error());
                              e.address = *text;
                              return {};
                            }
                            if (!v.IsMap()) return err(ctx, v, "endpoints[].ports must be a mapping of port names to numbers");
                            for (auto it = v.begin(); it != v.end(); ++it) {
                              if (auto st = spend(ctx, it->first); !st) return st;
                              if (!it->first.IsScalar()) return err(ctx, it->first, "endpoints[].ports: keys must be port names");
                              auto number = whole_number(ctx, it->second, "endpoints[].ports." + it->first.Scalar(), 1, 65535);
                              if (!number) return fail(number.error());
                              if (!e.ports.emplace(it->first.Scalar(), *number).second) {
                                return err(ctx, it->first, "endpoints[].ports: \"" + it->first.Scalar() + "\" is listed twice");
                              }
                            }
                            return {};
                          });
  if (!s) return s;
  if (!n.IsMap() || e.address.empty()) return err(ctx, n, "ServiceEntry.spec.endpoints[].address is required");
  return {};
}

template <class E>
Status enum_field(const Ctx& ctx, const YAML::Node& v, const std::string& what,
                  std::initializer_list<std::pair<const char*, E>> names, E& out) {
  auto text = scalar(ctx, v, what);
  if (!text) return fail(text.error());
  std::string known;
  for (const auto& [name, value] : names) {
    if (*text == name) {
      out = value;
      return {};
    }
    known += std::string(known.empty() ? "" : " or ") + name;
  }
  return err(ctx, v, what + " must be " + known + ", not \"" + *text + "\"", "policy.bad_value");
}

}  // namespace

bool is_networking_kind(std::string_view kind, std::string_view api_version) {
  return api_version.starts_with("networking.istio.io/") &&
         (kind == "Gateway" || kind == "VirtualService" || kind == "ServiceEntry");
}

Status check_networking_version(const Ctx& ctx, const YAML::Node& doc, std::string_view kind,
                                std::string_view api_version) {
  if (api_version == "networking.istio.io/v1" || api_version == "networking.istio.io/v1beta1" ||
      api_version == "networking.istio.io/v1alpha3")
    return {};
  return err(ctx, doc,
             std::string(kind) +
                 ": apiVersion must be networking.istio.io/v1, networking.istio.io/v1beta1 or "
                 "networking.istio.io/v1alpha3, not \"" + std::string(api_version) + "\"");
}

Status parse_gateway(Ctx& ctx, const YAML::Node& spec, Gateway& g) {
  if (!spec.IsDefined() || spec.IsNull()) return err(ctx, spec, "Gateway.spec is required (selector and servers)");
  std::optional<YAML::Node> servers_node;
  auto s = for_each_field(ctx, spec, "Gateway.spec", {"selector", "servers"},
                          [&](const std::string& key, const YAML::Node& v) -> Status {
                            if (key == "selector") return string_map(ctx, v, "Gateway.spec.selector", g.workload_selector);
                            servers_node.emplace(v);
                            if (!v.IsSequence()) return err(ctx, v, "Gateway.spec.servers must be a list");
                            return object_list(ctx, v, "Gateway.spec.servers", g.servers,
                                               [&](const YAML::Node& item, GatewayServer& server) {
                                                 return parse_server(ctx, item, server);
                                               });
                          });
  if (!s) return s;
  if (g.servers.empty()) return err(ctx, servers_node ? *servers_node : spec, "Gateway.spec.servers must list at least one server");
  // One port, one protocol: an HTTP and an HTTPS server cannot share a listener.
  std::map<uint32_t, GatewayServer::Protocol> protocols;
  for (size_t i = 0; i < g.servers.size(); ++i) {
    const auto& server = g.servers[i];
    if (server.port == 0) continue;
    auto [it, fresh] = protocols.emplace(server.port, server.protocol);
    if (!fresh && it->second != server.protocol) {
      const auto name = [](GatewayServer::Protocol p) {
        return p == GatewayServer::Protocol::Http ? "HTTP" : p == GatewayServer::Protocol::Https ? "HTTPS" : "TLS";
      };
      return err(ctx, std::as_const(*servers_node)[i],
                 "Gateway.spec.servers: port " + std::to_string(server.port) + " is both " + name(it->second) +
                     " and " + name(server.protocol));
    }
  }
  return {};
}

Status parse_virtual_service(Ctx& ctx, const YAML::Node& spec, VirtualService& vs) {
  if (!spec.IsDefined() || spec.IsNull()) return err(ctx, spec, "VirtualService.spec is required (hosts and http or tls)");
  bool has_hosts = false;
  auto s = for_each_field(
      ctx, spec, "VirtualService.spec", {"hosts", "gateways", "http", "tls"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "hosts") {
          has_hosts = true;
          return host_list(ctx, v, "VirtualService.spec.hosts", vs.hosts, false);
        }
        if (key == "gateways") return gateway_names(ctx, v, "VirtualService.spec.gateways", vs.gateways);
        if (key == "tls") {
          if (!v.IsSequence()) return err(ctx, v, "VirtualService.spec.tls must be a list");
          return object_list(ctx, v, "VirtualService.spec.tls", vs.tls,
                             [&](const YAML::Node& item, TlsRoute& r) { return parse_tls_route(ctx, item, r); });
        }
        if (!v.IsSequence()) return err(ctx, v, "VirtualService.spec.http must be a list");
        return object_list(ctx, v, "VirtualService.spec.http", vs.http,
                           [&](const YAML::Node& item, HttpRoute& r) { return parse_http_route(ctx, item, r); });
      });
  if (!s) return s;
  if (!has_hosts) return err(ctx, spec, "VirtualService.spec.hosts is required");
  // Istio's rule: a TLS route's sniHosts are within the VirtualService's hosts.
  for (size_t i = 0; i < vs.tls.size(); ++i) {
    for (size_t j = 0; j < vs.tls[i].match.size(); ++j) {
      for (size_t k = 0; k < vs.tls[i].match[j].sni_hosts.size(); ++k) {
        const std::string& sni = vs.tls[i].match[j].sni_hosts[k];
        if (std::none_of(vs.hosts.begin(), vs.hosts.end(), [&](const std::string& h) { return host_covers(h, sni); })) {
          return err(ctx, std::as_const(spec)["tls"][i]["match"][j]["sniHosts"][k],
                     "tls[].match[].sniHosts: \"" + sni + "\" is not within the VirtualService's hosts",
                     "policy.bad_value");
        }
      }
    }
  }
  return {};
}

Status parse_service_entry(Ctx& ctx, const YAML::Node& spec, ServiceEntry& se) {
  if (!spec.IsDefined() || spec.IsNull()) return err(ctx, spec, "ServiceEntry.spec is required (hosts)");
  bool has_hosts = false;
  std::optional<YAML::Node> endpoints_node, sans_node;
  auto s = for_each_field(
      ctx, spec, "ServiceEntry.spec", {"hosts", "ports", "location", "resolution", "endpoints", "subjectAltNames"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "hosts") {
          has_hosts = true;
          return host_list(ctx, v, "ServiceEntry.spec.hosts", se.hosts, false);
        }
        if (key == "ports") {
          if (!v.IsSequence()) return err(ctx, v, "ServiceEntry.spec.ports must be a list");
          return object_list(ctx, v, "ServiceEntry.spec.ports", se.ports,
                             [&](const YAML::Node& item, ServiceEntryPort& p) { return parse_entry_port(ctx, item, p); });
        }
        if (key == "location") {
          using L = ServiceEntry::Location;
          return enum_field<L>(ctx, v, "ServiceEntry.spec.location",
                               {{"MESH_EXTERNAL", L::MeshExternal}, {"MESH_INTERNAL", L::MeshInternal}}, se.location);
        }
        if (key == "resolution") {
          using R = ServiceEntry::Resolution;
          return enum_field<R>(ctx, v, "ServiceEntry.spec.resolution",
                               {{"NONE", R::None}, {"STATIC", R::Static}, {"DNS", R::Dns}}, se.resolution);
        }
        if (key == "endpoints") {
          endpoints_node.emplace(v);
          if (!v.IsSequence()) return err(ctx, v, "ServiceEntry.spec.endpoints must be a list");
          return object_list(ctx, v, "ServiceEntry.spec.endpoints", se.endpoints,
                             [&](const YAML::Node& item, ServiceEntryEndpoint& e) {
                               return parse_entry_endpoint(ctx, item, e);
                             });
        }
        sans_node.emplace(v);
        return string_list(ctx, v, "ServiceEntry.spec.subjectAltNames", se.subject_alt_names);
      });
  if (!s) return s;
  if (!has_hosts) return err(ctx, spec, "ServiceEntry.spec.hosts is required");
  std::set<std::string> names;
  std::set<uint32_t> numbers;
  for (size_t i = 0; i < se.ports.size(); ++i) {
    const YAML::Node at = std::as_const(spec)["ports"][i];
    if (!names.insert(se.ports[i].name).second) return err(ctx, at, "ServiceEntry.spec.ports: duplicate name \"" + se.ports[i].name + "\"");
    if (!numbers.insert(se.ports[i].number).second) {
      return err(ctx, at, "ServiceEntry.spec.ports: duplicate number " + std::to_string(se.ports[i].number));
    }
  }
  for (size_t i = 0; i < se.endpoints.size(); ++i) {
    const auto& e = se.endpoints[i];
    const YAML::Node at = std::as_const(*endpoints_node)[i];
    if (se.resolution == ServiceEntry::Resolution::None) {
      return err(ctx, at, "ServiceEntry.spec.endpoints need resolution STATIC or DNS");
    }
    if (se.resolution == ServiceEntry::Resolution::Static && !parse_ip(e.address)) {
      return err(ctx, at, "endpoints[].address must be an IP address with resolution STATIC, not \"" + e.address + "\"",
                 "policy.bad_value");
    }
    for (const auto& [name, port] : e.ports) {
      if (!names.count(name)) return err(ctx, at, "endpoints[].ports: \"" + name + "\" names no port of spec.ports");
    }
  }
  if (se.resolution == ServiceEntry::Resolution::Static && se.endpoints.empty()) {
    return err(ctx, spec, "ServiceEntry.spec: resolution STATIC needs endpoints");
  }
  if (se.location == ServiceEntry::Location::MeshInternal) {
    // A mesh-internal destination is reached over mTLS: its SANs are the SPIFFE IDs to expect.
    for (size_t i = 0; i < se.subject_alt_names.size(); ++i) {
      if (!identity::SpiffeId::parse(se.subject_alt_names[i])) {
        return err(ctx, std::as_const(*sans_node)[i],
                   "ServiceEntry.spec.subjectAltNames: \"" + se.subject_alt_names[i] +
                       "\" is not a SPIFFE ID (spiffe://TRUST_DOMAIN/ns/NS/sa/SA)",
                   "policy.bad_value");
      }
    }
  }
  return {};
}

}  // namespace mg::policy::detail
