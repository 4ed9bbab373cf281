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

// Whether a running listener can serve a planned one: same port, spoken the same way.
bool same_listener(const gateway::ListenerPlan& a, const gateway::ListenerPlan& b) {
  return a.port == b.port && a.protocol == b.protocol && a.tls_mode == b.tls_mode;
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
      s.service_entry = true;
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

Status GatewayMode::plan(const WorkloadInfo& workload,
                         const std::shared_ptr<const policy::ResourceSet>& resources) {
  labels_ = workload.labels;
  planned_ = true;
  if (resources) {
    // Fail closed at start-up: Gateways whose ports conflict refuse it (later, the listeners in
    // force stay).
    if (auto planned = gateway::plan_listeners(*resources, labels_); !planned) return fail(planned.error());
    publish(resources);
  }
  return {};
}

std::vector<gateway::ListenerPlan> GatewayMode::replan(const std::vector<gateway::ListenerPlan>& planned) {
  std::vector<bool> kept(slots_.size(), false);
  for (const auto& p : planned) {
    // A non-zero port: the slot on that port. Port 0: the first wanted port-0 slot of the same
    // kind not matched yet (the k-th such server keeps the k-th such listener).
    size_t match = slots_.size();
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].wanted && !kept[i] && same_listener(slots_[i].plan, p)) {
        match = i;
        break;
      }
    }
    if (match == slots_.size()) {
      if (slots_.size() >= kMaxListeners) {
        log_line("gateway: listener on port " + std::to_string(p.port) + " not opened: " +
                 std::to_string(kMaxListeners) + " gateway listeners were opened by this process already");
        continue;
      }
      slots_.push_back(Slot{p});
      kept.push_back(true);
      continue;
    }
    kept[match] = true;
    slots_[match].plan.servers = p.servers;
  }
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (kept[i] || !slots_[i].wanted) continue;
    slots_[i].wanted = false;
    slots_[i].plan.servers.clear();
    log_line("gateway: gateway[" + std::to_string(i) + "] is no longer asked for by a Gateway: closing it");
  }
  std::vector<gateway::ListenerPlan> out;
  out.reserve(slots_.size());
  for (const auto& s : slots_) out.push_back(s.plan);
  return out;
}

bool GatewayMode::publish(const std::shared_ptr<const policy::ResourceSet>& resources) {
  if (!planned_ || !resources) return false;
  auto planned = gateway::plan_listeners(*resources, labels_);
  if (!planned) {
    log_line("gateway: the listeners and routes in force stay: " + planned.error().to_string());
    return false;
  }
  std::vector<gateway::ListenerPlan> listeners;
  bool pending = false;
  {
    MutexLock lock(mutex_);
    listeners = replan(*planned);
    for (const auto& s : slots_) pending = pending || s.wanted != s.bound;
  }
  auto routes = std::make_shared<GatewayRoutes>();
  routes->table = gateway::RouteTable::build(resources, listeners);
  routes->entries = service_entry_services(*resources);
  carry_health(routes->entries, routes_.load()->entries);
  routes_.store(std::move(routes));
  certificates_.configure(listeners);
  return pending;
}

std::vector<size_t> GatewayMode::to_bind() const {
  MutexLock lock(mutex_);
  std::vector<size_t> out;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].wanted && !slots_[i].bound) out.push_back(i);
  }
  return out;
}

std::vector<size_t> GatewayMode::to_close() const {
  MutexLock lock(mutex_);
  std::vector<size_t> out;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i].wanted && slots_[i].bound) out.push_back(i);
  }
  return out;
}

InboundPort GatewayMode::inbound_port(size_t id) const {
  MutexLock lock(mutex_);
  const gateway::ListenerPlan& plan = slots_.at(id).plan;
  InboundPort port;
  // Where clients outside the mesh reach it: the workload's address when the config names one.
  port.address = address_;
  port.port = static_cast<uint16_t>(plan.port);
  port.app_port = port.port;  // destination.port for policies: the gateway's own port
  port.protocol = Protocol::Http;
  // ISTIO_MUTUAL: only mesh workloads (STRICT). HTTP: PERMISSIVE — plaintext from outside the
  // mesh, and the mesh's mTLS from a workload's proxy (which always speaks mTLS to a mesh
  // endpoint: Istio's auto mTLS), its principal then known to policy (the plain-HTTP egress
  // gateway). HTTPS SIMPLE: the gateway ends the client's TLS itself (edge_tls; no mesh mTLS).
  using TlsMode = policy::GatewayServer::TlsMode;
  port.mtls = plan.tls_mode == TlsMode::IstioMutual                    ? MtlsMode::Strict
              : plan.protocol == policy::GatewayServer::Protocol::Http ? MtlsMode::Permissive
                                                                       : MtlsMode::Disable;
  // TLS PASSTHROUGH: STRICT as ISTIO_MUTUAL (a workload's proxy carries the app's TLS over the
  // mesh's mTLS, so the caller's principal is known to policy), then routed by the inner SNI.
  if (plan.tls_mode == TlsMode::Passthrough) {
    port.mtls = MtlsMode::Strict;
    port.protocol = Protocol::Tcp;
    port.passthrough = true;
  }
  port.gateway = id;
  port.edge_tls = plan.tls_mode == TlsMode::Simple;
  return port;
}

void GatewayMode::bound(size_t id, size_t inbound_index) {
  MutexLock lock(mutex_);
  slots_.at(id).bound = true;
  slots_.at(id).inbound = inbound_index;
}

void GatewayMode::closed(size_t id) {
  MutexLock lock(mutex_);
  slots_.at(id).bound = false;
}

size_t GatewayMode::listeners() const {
  MutexLock lock(mutex_);
  return slots_.size();
}

std::optional<size_t> GatewayMode::inbound_index(size_t id) const {
  MutexLock lock(mutex_);
  return id < slots_.size() ? slots_[id].inbound : std::nullopt;
}

}  // namespace mg::proxy
