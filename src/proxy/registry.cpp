#include "proxy/registry.h"

#include <algorithm>

#include "http/message.h"
#include "proxy/balancer.h"

namespace mg::proxy {

namespace {

Protocol protocol_of(policy::ServiceProtocol p) {
  switch (p) {
    case policy::ServiceProtocol::Http: return Protocol::Http;
    case policy::ServiceProtocol::Http2: return Protocol::Http2;
    case policy::ServiceProtocol::Grpc: return Protocol::Grpc;
    case policy::ServiceProtocol::Tcp: return Protocol::Tcp;
  }
  return Protocol::Tcp;
}

// "host[:port]" → host, port (0: none). Bracketed IPv6 literals never name a service.
std::pair<std::string_view, std::optional<uint16_t>> split_authority(std::string_view authority, bool& bad) {
  bad = false;
  size_t colon = authority.rfind(':');
  if (colon == std::string_view::npos) return {authority, std::nullopt};
  std::string_view digits = authority.substr(colon + 1);
  if (digits.empty() || digits.size() > 5 || !std::all_of(digits.begin(), digits.end(), [](char c) {
        return c >= '0' && c <= '9';
      })) {
    bad = true;
    return {};
  }
  unsigned long port = std::stoul(std::string(digits));
  if (port == 0 || port > 65535) {
    bad = true;
    return {};
  }
  return {authority.substr(0, colon), static_cast<uint16_t>(port)};
}

}  // namespace

const RegistryPort* RegistryService::find_port(uint16_t port) const {
  for (const auto& p : ports) {
    if (p.port == port) return &p;
  }
  return nullptr;
}

std::shared_ptr<Registry> Registry::build(const policy::ResourceSet& resources, const std::string& trust_domain,
                                          const std::string& own_ns) {
  auto out = std::make_shared<Registry>();
  out->trust_domain_ = trust_domain;
  for (const auto& svc : resources.services) {
    RegistryService s;
    s.name = svc.meta.name;
    s.ns = svc.meta.ns;
    s.load_balancer = svc.load_balancer;
    const policy::ServiceEndpoints* eps = nullptr;
    for (const auto& e : resources.service_endpoints) {
      if (e.meta.name == svc.meta.name && e.meta.ns == svc.meta.ns) eps = &e;
    }
    for (const auto& sp : svc.ports) {
      RegistryPort p;
      p.name = sp.name;
      p.port = static_cast<uint16_t>(sp.port);
      p.target_port = static_cast<uint16_t>(sp.target_port ? sp.target_port : sp.port);
      p.protocol = protocol_of(sp.protocol);
      if (eps) {
        for (const auto& ep : eps->endpoints) {
          auto served = ep.ports.find(sp.port);
          if (served == ep.ports.end() || served->second == 0 || served->second > 65535) continue;
          RegistryEndpoint r;
          r.workload = ep.workload;
          r.address = ep.address;
          r.port = static_cast<uint16_t>(served->second);
          r.service_account = ep.service_account;
          r.identity = "spiffe://" + trust_domain + "/ns/" + s.ns + "/sa/" + ep.service_account;
          r.healthy = ep.healthy;
          r.health = std::make_shared<EndpointHealth>();
          p.endpoints.push_back(std::move(r));
        }
      }
      s.ports.push_back(std::move(p));
    }
    if (eps) {
      for (const auto& ep : eps->endpoints) {
        if (!ep.service_account.empty())
          s.identities.push_back("spiffe://" + trust_domain + "/ns/" + s.ns + "/sa/" + ep.service_account);
      }
    }
    std::sort(s.identities.begin(), s.identities.end());
    s.identities.erase(std::unique(s.identities.begin(), s.identities.end()), s.identities.end());
    out->services_.push_back(std::move(s));
  }
  for (size_t i = 0; i < out->services_.size(); ++i) {
    const RegistryService& s = out->services_[i];
    const std::string base = http::to_lower(s.host());
    std::vector<std::string> names{base, base + ".svc", base + ".svc.cluster.local"};
    if (trust_domain != "cluster.local") names.push_back(base + ".svc." + http::to_lower(trust_domain));
    if (s.ns == own_ns) names.push_back(http::to_lower(s.name));
    for (auto& n : names) out->by_name_.emplace(std::move(n), i);
  }
  return out;
}

std::optional<Registry::Match> Registry::resolve(std::string_view authority) const {
  bool bad = false;
  auto [host, port] = split_authority(authority, bad);
  if (bad || host.empty()) return std::nullopt;
  if (host.back() == '.') host.remove_suffix(1);  // an absolute name
  auto it = by_name_.find(http::to_lower(host));
  if (it == by_name_.end()) return std::nullopt;
  const RegistryService& s = services_[it->second];
  const RegistryPort* p = nullptr;
  if (port) {
    p = s.find_port(*port);
  } else {
    // HTTP's default port, else the one port an HTTP request can go to.
    p = s.find_port(80);
    for (const auto& candidate : s.ports) {
      if (p) break;
      if (!is_http(candidate.protocol)) continue;
      if (!p && std::count_if(s.ports.begin(), s.ports.end(), [](const RegistryPort& x) { return is_http(x.protocol); }) == 1)
        p = &candidate;
    }
  }
  if (!p) return std::nullopt;
  return Match{&s, p};
}

std::optional<Registry::Match> Registry::find(std::string_view name, std::string_view ns, uint16_t port) const {
  for (const auto& s : services_) {
    if (s.name != name || s.ns != ns) continue;
    if (const RegistryPort* p = s.find_port(port)) return Match{&s, p};
    return std::nullopt;
  }
  return std::nullopt;
}

void Registry::carry_health(const Registry& previous) {
  for (auto& s : services_) {
    for (auto& p : s.ports) {
      const RegistryPort* old_port = nullptr;
      for (const auto& os : previous.services_) {
        if (os.name == s.name && os.ns == s.ns) old_port = os.find_port(p.port);
      }
      if (!old_port) continue;
      p.next = old_port->next;
      for (auto& e : p.endpoints) {
        for (const auto& oe : old_port->endpoints) {
          if (oe.address == e.address && oe.port == e.port) e.health = oe.health;
        }
      }
    }
  }
}

}  // namespace mg::proxy
