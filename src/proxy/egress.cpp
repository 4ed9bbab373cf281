#include "proxy/egress.h"

#include <algorithm>
#include <functional>

#include "http/message.h"
#include "proxy/gateway_mode.h"

namespace mg::proxy {

namespace {

// "host[:port]" → the port (0: none or not a number; the host then keeps what follows ':').
uint32_t port_of(std::string_view authority) {
  if (authority.starts_with("[")) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos || close + 1 >= authority.size() || authority[close + 1] != ':') return 0;
    authority.remove_prefix(close + 1);
  }
  const auto colon = authority.rfind(':');
  if (colon == std::string_view::npos) return 0;
  const std::string_view digits = authority.substr(colon + 1);
  if (digits.empty() || digits.size() > 5) return 0;
  uint32_t port = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return 0;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  return port <= 65535 ? port : 0;
}

bool is_wildcard(std::string_view host) { return host.starts_with("*"); }

}  // namespace

std::shared_ptr<const MeshRouting> MeshRouting::build(const policy::ResourceSet& resources) {
  auto set = std::make_shared<policy::ResourceSet>();
  set->virtual_services = resources.virtual_services;
  set->service_entries = resources.service_entries;
  auto out = std::make_shared<MeshRouting>();
  out->routes_ = gateway::RouteTable::build_mesh(set);
  out->internal_ = service_entry_services(*set);
  out->set_ = std::move(set);
  return out;
}

std::optional<MeshRouting::Entry> MeshRouting::find(std::string_view host, uint32_t port) const {
  const policy::ServiceEntry* best = nullptr;
  size_t best_rank = 0;
  for (const auto& se : set_->service_entries) {
    for (const auto& h : se.hosts) {
      if (!gateway::host_matches(h, host)) continue;
      const size_t rank = is_wildcard(h) ? h.size() : 100000;  // exact before the longest suffix
      if (rank > best_rank) {
        best = &se;
        best_rank = rank;
      }
    }
  }
  if (!best) return std::nullopt;
  const policy::ServiceEntryPort* chosen = nullptr;
  for (const auto& p : best->ports) {
    if (port ? p.number == port : p.number == 80) chosen = &p;
  }
  if (!chosen && port == 0 && best->ports.size() == 1) chosen = &best->ports.front();
  if (!chosen) return std::nullopt;
  return Entry{best, chosen};
}

std::optional<Registry::Match> MeshRouting::find_internal(std::string_view host, uint32_t port) const {
  for (const auto& s : internal_) {
    if (s.name != host) continue;
    const RegistryPort* p = port != 0           ? s.find_port(static_cast<uint16_t>(port))
                            : s.ports.size() == 1 ? &s.ports.front()
                                                  : s.find_port(80);
    if (!p) return std::nullopt;
    return Registry::Match{&s, p};
  }
  return std::nullopt;
}

bool MeshRouting::names(std::string_view host) const {
  return std::any_of(set_->service_entries.begin(), set_->service_entries.end(), [&](const policy::ServiceEntry& se) {
    return std::any_of(se.hosts.begin(), se.hosts.end(), [&](const std::string& h) { return gateway::host_matches(h, host); });
  });
}

Result<ExternalTarget> resolve_external(const MeshRouting::Entry& found, std::string_view host,
                                        const DestinationRules& rules, std::string_view subset) {
  const policy::ServiceEntry& se = *found.entry;
  const policy::ServiceEntryPort& sp = *found.port;
  ExternalTarget out;
  out.host = http::to_lower(host);
  out.service_entry = se.meta.full_name();
  out.service_port = sp.number;
  const uint32_t default_port = sp.target_port ? sp.target_port : sp.number;
  out.port = static_cast<uint16_t>(default_port);
  if (se.resolution != policy::ServiceEntry::Resolution::None && !se.endpoints.empty()) {
    // Endpoints may map the port name to their own port; the first endpoint's port is the one
    // connected to (endpoints of one entry serve one port alike in every task meshguard knows).
    bool first = true;
    for (const auto& e : se.endpoints) {
      auto mapped = e.ports.find(sp.name);
      const uint32_t p = mapped != e.ports.end() ? mapped->second : default_port;
      if (first) out.port = static_cast<uint16_t>(p);
      if (p != out.port) continue;
      out.addresses.push_back(e.address);
      first = false;
    }
  } else if (!is_wildcard(out.host) && !out.host.empty()) {
    // DNS without endpoints resolves the host; NONE has no original destination to pass through
    // to (no transparent capture), so the host is resolved as DNS would.
    out.addresses.push_back(out.host);
  }
  if (out.addresses.empty()) {
    return fail("no_endpoint", "ServiceEntry " + out.service_entry + " gives no address for " + out.host);
  }
  auto upstream = rules.upstream(out.host, sp.number, subset);
  if (!upstream) return fail(upstream.error());
  out.origin = std::move(upstream->origin);
  // The pool key: connections are shared only by requests that would make the same connection.
  std::string material = out.host + '\0' + std::to_string(out.port);
  for (const auto& a : out.addresses) material += '\0' + a;
  if (out.origin) material += '\0' + out.origin->rule + '\0' + out.origin->server_name;
  out.key = std::hash<std::string>{}(material);
  return out;
}

namespace {

// A MESH_INTERNAL ServiceEntry host `host` (its port as `entry` found it) for an HTTP request: its
// STATIC endpoints over mTLS (secure naming: the entry's subjectAltNames; none listed, nothing is
// accepted), the DestinationRule for the host giving the load balancer and an ISTIO_MUTUAL sni.
OutboundDecision to_internal(const MeshRouting& routing, const DestinationRules& rules, const std::string& host,
                             const MeshRouting::Entry& entry, std::string_view subset, std::string virtual_service) {
  const std::string name = "ServiceEntry " + entry.entry->meta.full_name() + " (host " + host + ")";
  auto match = routing.find_internal(host, entry.port->number);
  if (!match) {
    return NoCluster{"no_cluster", name + " is MESH_INTERNAL without resolution STATIC: no endpoints to reach"};
  }
  if (!is_http(match->port->protocol)) {
    return NoCluster{"no_cluster", name + " port " + std::to_string(entry.port->number) + " is not HTTP"};
  }
  auto upstream = rules.upstream(host, match->port->port, subset);
  if (!upstream) return NoCluster{upstream.error().code, upstream.error().message};
  if (upstream->origin) {
    return NoCluster{"no_cluster", "DestinationRule " + upstream->origin->rule + ": tls mode SIMPLE toward " + name +
                                       ", a MESH_INTERNAL host (reached over mTLS: ISTIO_MUTUAL)"};
  }
  ToService out{*match, upstream->load_balancer, {}, std::move(virtual_service)};
  if (const auto* rule = rules.find(host)) {
    auto eff = rule->effective(match->port->port, subset);
    if (eff && eff->tls && eff->tls->mode == policy::DestinationRule::Tls::Mode::IstioMutual) out.sni = eff->tls->sni;
  }
  return out;
}

// A route's destination that is a mesh service port: its DestinationRule's load balancer, an
// ISTIO_MUTUAL sni, DISABLE (plaintext, when `honour_disable`); SIMPLE refused (proxies speak mTLS
// to each other). The rule is the one for the host as written, else for the service's full name.
OutboundDecision to_mesh_service(const Registry::Match& match, const policy::HttpRouteDestination& d,
                                 const std::string& to, const DestinationRules& rules,
                                 const std::string& virtual_service, bool honour_disable) {
  const std::string rule_host = rules.find(host_without_port(d.host)) ? d.host : match.service->fqdn();
  auto upstream = rules.upstream(rule_host, match.port->port, d.subset);
  if (!upstream) return NoCluster{upstream.error().code, upstream.error().message};
  if (upstream->origin) {
    return NoCluster{"no_cluster", "DestinationRule " + upstream->origin->rule + ": tls mode SIMPLE toward mesh service " +
                                       to + " (proxies speak mTLS to each other: ISTIO_MUTUAL)"};
  }
  ToService out{match, upstream->load_balancer, {}, virtual_service};
  if (const auto* rule = rules.find(rule_host)) {
    auto eff = rule->effective(match.port->port, d.subset);
    if (eff && eff->tls && eff->tls->mode == policy::DestinationRule::Tls::Mode::IstioMutual) out.sni = eff->tls->sni;
    out.plaintext = honour_disable && eff && eff->tls && eff->tls->mode == policy::DestinationRule::Tls::Mode::Disable;
  }
  return out;
}

}  // namespace

OutboundDecision decide_outbound(const OutboundRequest& req, const Registry& registry, const MeshRouting& routing,
                                 const DestinationRules& rules) {
  const std::string host = host_without_port(req.authority);
  const uint32_t port = port_of(req.authority);
  static const http::Headers kNone;
  if (auto routed = routing.routes().route(0, host, req.path, req.method, req.headers ? *req.headers : kNone,
                                           req.pick, port ? port : 80)) {
    const policy::HttpRouteDestination& d = *routed->destination;
    // A short name is a service of the VirtualService's namespace, as Istio reads it.
    std::string to = d.host;
    if (to.find('.') == std::string::npos) (to += '.') += routed->virtual_service.substr(0, routed->virtual_service.find('/'));
    if (d.port) to += ":" + std::to_string(d.port);
    if (auto match = registry.resolve(to)) {
      if (!is_http(match->port->protocol)) {
        return NoCluster{"no_cluster", "VirtualService " + routed->virtual_service + " routes HTTP to " + to +
                                           ", a port that is not HTTP"};
      }
      return to_mesh_service(*match, d, to, rules, routed->virtual_service, /*honour_disable=*/true);
    }
    const std::string dest_host = http::to_lower(d.host);
    auto entry = routing.find(dest_host, d.port ? d.port : port ? port : 80);
    if (!entry) entry = routing.find(dest_host, 0);
    if (entry && entry->entry->location == policy::ServiceEntry::Location::MeshInternal) {
      return to_internal(routing, rules, dest_host, *entry, d.subset, routed->virtual_service);
    }
    if (!entry || entry->entry->location != policy::ServiceEntry::Location::MeshExternal) {
      return NoCluster{"no_cluster", "VirtualService " + routed->virtual_service + " routes to " + to +
                                         ", which no Service or MESH_EXTERNAL ServiceEntry port names"};
    }
    auto target = resolve_external(*entry, dest_host, rules, d.subset);
    if (!target) return NoCluster{target.error().code, target.error().message};
    return ToExternal{std::move(*target), routed->virtual_service};
  }
  if (routing.routes().serves(0, host, port ? port : 80)) return NotFound{};
  if (auto match = registry.resolve(req.authority)) {
    if (!is_http(match->port->protocol)) return NotFound{};
    ToService out{*match, std::nullopt, {}, {}};
    if (auto upstream = rules.upstream(match->service->fqdn(), match->port->port, ""))
      out.load_balancer = upstream->load_balancer;
    if (const auto* rule = rules.find(match->service->fqdn())) {
      auto eff = rule->effective(match->port->port, "");
      out.plaintext = eff && eff->tls && eff->tls->mode == policy::DestinationRule::Tls::Mode::Disable;
    }
    return out;
  }
  if (auto entry = routing.find(host, port)) {
    if (entry->entry->location != policy::ServiceEntry::Location::MeshExternal) {
      // A mesh-internal entry: its endpoints over mTLS, its subjectAltNames the identities.
      return to_internal(routing, rules, host, *entry, "", {});
    }
    auto target = resolve_external(*entry, host, rules);
    if (!target) return NoCluster{target.error().code, target.error().message};
    return ToExternal{std::move(*target), {}};
  }
  // A ServiceEntry host on a port it does not declare is as unknown as any other host.
  if (registry.registry_only()) return BlackHole{};
  return NotFound{};
}

namespace {

// A ServiceEntry port an app's TLS may go through as it is.
bool carries_tls(const policy::ServiceEntryPort& p) {
  return p.protocol == "TLS" || p.protocol == "HTTPS" || p.protocol == "TCP";
}

// `target` for a TLS connection: its bytes relayed, never TLS originated around them.
Result<ExternalTarget> no_origination(Result<ExternalTarget> target) {
  if (target && target->origin) {
    return fail("no_cluster", "DestinationRule " + target->origin->rule + ": tls mode SIMPLE for " + target->name() +
                                  ", a TLS connection passed through (it would wrap the app's TLS)");
  }
  return target;
}

OutboundDecision passthrough(Result<ExternalTarget> target, std::string virtual_service) {
  target = no_origination(std::move(target));
  if (!target) return NoCluster{target.error().code, target.error().message};
  return ToExternal{std::move(*target), std::move(virtual_service)};
}

}  // namespace

Result<ExternalTarget> resolve_passthrough(const policy::HttpRouteDestination& destination, uint32_t port,
                                           const MeshRouting& routing, const DestinationRules& rules) {
  const std::string host = http::to_lower(destination.host);
  auto entry = routing.find(host, destination.port ? destination.port : port);
  if (!entry && !destination.port) entry = routing.find(host, 0);
  if (!entry || entry->entry->location != policy::ServiceEntry::Location::MeshExternal || !carries_tls(*entry->port)) {
    return fail("no_cluster", "no MESH_EXTERNAL ServiceEntry names " + host + " on a TLS port" +
                                  (destination.port ? " " + std::to_string(destination.port) : std::string()));
  }
  return no_origination(resolve_external(*entry, host, rules, destination.subset));
}

OutboundDecision decide_outbound_tls(const OutboundTls& conn, const Registry& registry, const MeshRouting& routing,
                                     const DestinationRules& rules) {
  const std::string sni = http::to_lower(conn.sni);
  if (auto routed = routing.routes().route_tls(0, sni, conn.pick, conn.port)) {
    const policy::HttpRouteDestination& d = *routed->destination;
    std::string to = d.host;
    if (to.find('.') == std::string::npos) (to += '.') += routed->virtual_service.substr(0, routed->virtual_service.find('/'));
    if (d.port) to += ":" + std::to_string(d.port);
    if (auto match = registry.resolve(to)) {
      if (is_http(match->port->protocol)) {
        return NoCluster{"no_cluster", "VirtualService " + routed->virtual_service + " routes TLS to " + to +
                                           ", an HTTP port (a TLS route needs a TCP port)"};
      }
      // DISABLE is not applied to TLS routes: the app's own TLS still rides the mesh's mTLS.
      return to_mesh_service(*match, d, to, rules, routed->virtual_service, /*honour_disable=*/false);
    }
    auto target = resolve_passthrough(d, conn.port, routing, rules);
    if (!target && target.error().code == "no_cluster") {
      return NoCluster{"no_cluster", "VirtualService " + routed->virtual_service + " routes TLS to " + to +
                                         ", which no Service TCP port or MESH_EXTERNAL ServiceEntry TLS port names"};
    }
    return passthrough(std::move(target), routed->virtual_service);
  }
  if (!sni.empty()) {
    if (auto entry = routing.find(sni, conn.port)) {
      if (entry->entry->location != policy::ServiceEntry::Location::MeshExternal) {
        return NoCluster{"no_cluster", "ServiceEntry " + entry->entry->meta.full_name() + " (host " + sni +
                                           ") is MESH_INTERNAL: reachable through a gateway only"};
      }
      if (!carries_tls(*entry->port)) {
        return NoCluster{"no_cluster", "ServiceEntry " + entry->entry->meta.full_name() + " port " +
                                           std::to_string(entry->port->number) + " is " + entry->port->protocol +
                                           ", not TLS: a TLS connection cannot go through it"};
      }
      return passthrough(resolve_external(*entry, sni, rules), {});
    }
  }
  if (registry.registry_only()) return BlackHole{};
  return NotFound{};
}

}  // namespace mg::proxy
