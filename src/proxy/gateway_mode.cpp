#include "proxy/gateway_mode.h"

#include <algorithm>

#include "http/message.h"
#include "proxy/balancer.h"
#include "proxy/report.h"

namespace mg::proxy {

namespace {

Protocol protocol_of(const std::string& p) {
  if (p == "HTTP") return Protocol::Http;
  if (p == "HTTP2") return Protocol::Http2;
  if (p == "GRPC") return Protocol::Grpc;
  return Protocol::Tcp;  // HTTPS, TLS, TCP, ...: not an HTTP port of a mesh backend
}

const RegistryPort* port_of(const RegistryService& s, uint32_t port) {
  if (port != 0) return s.find_port(static_cast<uint16_t>(port));
  if (s.ports.size() == 1) return &s.ports.front();
  return s.find_port(80);
}

// Whether two plans bind the same listeners (ports and how they are spoken): the only part of a
// Gateway a running proxy cannot take without a restart.
bool same_listeners(const std::vector<gateway::ListenerPlan>& a,
                    const std::vector<gateway::ListenerPlan>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return x.port == y.port && x.protocol == y.protocol && x.tls_mode == y.tls_mode;
  });
}

}  // namespace

void carry_health(std::vector<RegistryService>& entries, const std::vector<RegistryService>& previous) {
  for (auto& s : entries) {
    const auto old = std::find_if(previous.begin(), previous.end(), [&](const auto& o) { return o.name == s.name; });
    if (old == previous.end()) continue;
    for (auto& p : s.ports) {
      const RegistryPort* old_port = old->find_port(p.port);
      if (!old_port) continue;
      for (auto& e : p.endpoints) {
        for (const auto& o : old_port->endpoints) {
          if (o.address == e.address && o.port == e.port) e.health = o.health;
        }
      }
    }
  }
}

std::vector<RegistryService> service_entry_services(const policy::ResourceSet& set) {
  std::vector<RegistryService> out;
  for (const auto& se : set.service_entries) {
    if (se.location != policy::ServiceEntry::Location::MeshInternal ||
        se.resolution != policy::ServiceEntry::Resolution::Static)
      continue;
    for (const auto& host : se.hosts) {
      RegistryService s;
      s.name = http::to_lower(host);
      s.ns = se.meta.ns;
      s.identities = se.subject_alt_names;
      std::sort(s.identities.begin(), s.identities.end());
      for (const auto& sp : se.ports) {
        RegistryPort p;
        p.name = sp.name;
        p.port = static_cast<uint16_t>(sp.number);
        p.target_port = static_cast<uint16_t>(sp.target_port ? sp.target_port : sp.number);
        p.protocol = protocol_of(sp.protocol);
        for (const auto& ep : se.endpoints) {
          auto named = ep.ports.find(sp.name);
          const uint32_t port = named != ep.ports.end() ? named->second : p.target_port;
          if (port == 0 || port > 65535) continue;
          RegistryEndpoint r;
          r.address = ep.address;
          r.port = static_cast<uint16_t>(port);
          r.health = std::make_shared<EndpointHealth>();
          p.endpoints.push_back(std::move(r));
        }
        s.ports.push_back(std::move(p));
      }
      out.push_back(std::move(s));
    }
  }
  return out;
}

std::optional<ResolvedDestination> resolve_destination(const GatewayRoutes& routes, const Registry& registry,
                                                       const policy::HttpRouteDestination& destination,
                                                       std::string_view vs_namespace,
                                                       const MeshRouting* external_hosts,
                                                       const DestinationRules* rules) {
  // 1. The registry: a Service of the mesh ("httpbin" in the VirtualService's namespace).
  std::string authority = destination.host;
  if (authority.find('.') == std::string::npos) (authority += '.') += vs_namespace;
  if (destination.port) authority += ":" + std::to_string(destination.port);
  if (auto match = registry.resolve(authority)) {
    if (!is_http(match->port->protocol)) return std::nullopt;
    return ResolvedDestination{match->service, match->port, match->service->fqdn()};
  }
  // 2. A MESH_INTERNAL STATIC ServiceEntry.
  const std::string host = http::to_lower(destination.host);
  for (const auto& s : routes.entries) {
    if (s.name != host) continue;
    const RegistryPort* port = port_of(s, destination.port);
    if (!port || !is_http(port->protocol)) return std::nullopt;
    return ResolvedDestination{&s, port, s.name};
  }
  // 3. A MESH_EXTERNAL ServiceEntry: the egress gateway's way out of the mesh.
  if (external_hosts && rules) {
    auto entry = external_hosts->find(host, destination.port);
    if (!entry || entry->entry->location != policy::ServiceEntry::Location::MeshExternal) return std::nullopt;
    auto target = resolve_external(*entry, host, *rules, destination.subset);
    if (!target) return std::nullopt;
    ResolvedDestination out;
    out.name = host;
    out.external = std::move(*target);
    return out;
  }
  return std::nullopt;
}

Status GatewayMode::plan(ProxyConfig& config, const std::shared_ptr<const policy::ResourceSet>& resources) {
  labels_ = config.workload.labels;
  planned_ = true;
  if (resources) {
    auto planned = gateway::plan_listeners(*resources, labels_);
    if (!planned) return fail(planned.error());
    plans_ = std::move(*planned);
  }
  first_inbound_ = config.inbound.size();
  for (size_t i = 0; i < plans_.size(); ++i) {
    InboundPort port;
    // Where clients outside the mesh reach it: the workload's address when the config names one.
    port.address = config.workload.address.empty() ? "0.0.0.0" : config.workload.address;
    port.port = static_cast<uint16_t>(plans_[i].port);
    port.app_port = port.port;  // destination.port for policies: the gateway's own port
    port.protocol = Protocol::Http;
    port.mtls = plans_[i].tls_mode == policy::GatewayServer::TlsMode::IstioMutual ? MtlsMode::Strict
                                                                                  : MtlsMode::Disable;
    port.gateway = i;
    config.inbound.push_back(std::move(port));
  }
  if (resources) publish(resources);
  return {};
}

void GatewayMode::publish(const std::shared_ptr<const policy::ResourceSet>& resources) {
  if (!planned_ || !resources) return;
  auto planned = gateway::plan_listeners(*resources, labels_);
  if (!planned) {
    log_line("gateway: the routes in force stay: " + planned.error().to_string());
    return;
  }
  if (!same_listeners(*planned, plans_)) {
    log_line("gateway: the Gateways now ask for other listeners (ports or protocols); the " +
             std::to_string(plans_.size()) + " bound at start-up stay until a restart");
  }
  // The routes of the listeners that exist: servers matched by port (a port-0 listener by position).
  std::vector<gateway::ListenerPlan> current = plans_;
  for (size_t i = 0; i < current.size(); ++i) {
    current[i].servers.clear();
    for (size_t j = 0; j < planned->size(); ++j) {
      const auto& p = (*planned)[j];
      const bool same = p.port != 0 ? p.port == plans_[i].port : (plans_[i].port == 0 && j == i);
      if (same && p.protocol == plans_[i].protocol && p.tls_mode == plans_[i].tls_mode)
        current[i].servers = p.servers;
    }
  }
  auto routes = std::make_shared<GatewayRoutes>();
  routes->table = gateway::RouteTable::build(resources, current);
  routes->entries = service_entry_services(*resources);
  carry_health(routes->entries, routes_.load()->entries);
  routes_.store(std::move(routes));
  certificates_.configure(current);
}

}  // namespace mg::proxy
