#include "gateway/routes.h"

#include <algorithm>

namespace mg::gateway {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

// How specific a matching host pattern is: an exact host beats any wildcard, a longer wildcard
// suffix beats a shorter one, "*" comes last (Istio picks the most specific VirtualService host).
size_t specificity(std::string_view pattern) {
  if (pattern == "*") return 0;
  if (pattern.starts_with("*.")) return pattern.size();
  return 100000 + pattern.size();
}

// Whether two host patterns (a server's and a VirtualService's) can both match one host.
bool hosts_overlap(std::string_view a, std::string_view b) {
  if (a == "*" || b == "*") return true;
  if (!a.starts_with("*.")) return host_matches(b, a);
  if (!b.starts_with("*.")) return host_matches(a, b);
  // Two wildcards: the longer suffix must end with the shorter one.
  return a.size() >= b.size() ? host_matches(b, a.substr(1)) || a == b : host_matches(a, b.substr(1));
}

// A server host ("NS/HOST", "*/HOST", "./HOST" or "HOST") admits a VirtualService of `vs_ns` when
// its namespace part allows that namespace ("." = the Gateway's own).
bool server_admits(std::string_view server_host, const std::string& gateway_ns, const std::string& vs_ns,
                   std::string_view& host) {
  host = server_host;
  const auto slash = server_host.find('/');
  if (slash == std::string_view::npos) return true;
  const std::string_view ns = server_host.substr(0, slash);
  host = server_host.substr(slash + 1);
  return ns == "*" || (ns == "." ? vs_ns == gateway_ns : ns == vs_ns);
}

bool names_gateway(const policy::VirtualService& vs, const BoundServer& b) {
  for (const auto& g : vs.gateways) {
    const auto slash = g.find('/');
    const std::string_view ns = slash == std::string::npos ? std::string_view(vs.meta.ns) : std::string_view(g).substr(0, slash);
    const std::string_view name = slash == std::string::npos ? std::string_view(g) : std::string_view(g).substr(slash + 1);
    if (ns == b.gateway_ns && name == b.gateway_name) return true;
  }
  return false;
}

// Whether a match entry's `gateways` lets it apply where the VirtualService was bound (`bound`:
// "ns/name" of the binding Gateways, or "mesh"). Names without a namespace are the VirtualService's.
template <class Match>
bool entry_applies_at(const Match& m, const policy::VirtualService& vs, const std::vector<std::string>& bound) {
  if (m.gateways.empty()) return true;
  for (const auto& g : m.gateways) {
    const std::string full = g == "mesh" || g.find('/') != std::string::npos ? g : vs.meta.ns + "/" + g;
    if (std::find(bound.begin(), bound.end(), full) != bound.end()) return true;
  }
  return false;
}

// The destination `pick` in [0, 100) falls on by the weights (the last one when they fall short).
const policy::HttpRouteDestination* pick_destination(const std::vector<policy::HttpRouteDestination>& route,
                                                     uint32_t pick) {
  uint32_t slot = pick % 100, total = 0;
  for (const auto& d : route) {
    total += d.weight;
    if (slot < total) return &d;
  }
  return &route.back();
}

bool request_matches(const policy::HttpMatchRequest& m, std::string_view path, std::string_view method,
                     const http::Headers& headers) {
  if (m.uri && !m.uri->matches(path)) return false;
  if (m.method && !m.method->matches(method)) return false;
  for (const auto& [name, match] : m.headers) {
    auto value = headers.get(name);
    if (!value || !match.matches(*value)) return false;
  }
  return true;
}

}  // namespace

bool selects(const policy::Gateway& g, const Labels& labels) {
  if (g.workload_selector.empty()) return false;
  for (const auto& [k, v] : g.workload_selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

Result<std::vector<ListenerPlan>> plan_listeners(const policy::ResourceSet& set, const Labels& labels) {
  std::vector<ListenerPlan> out;
  for (const auto& g : set.gateways) {
    if (!selects(g, labels)) continue;
    for (const auto& server : g.servers) {
      BoundServer bound{g.meta.ns, g.meta.name, server};
      auto same = server.port == 0 ? out.end()
                                   : std::find_if(out.begin(), out.end(), [&](const ListenerPlan& l) { return l.port == server.port; });
      if (same == out.end()) {
        out.push_back({server.port, server.protocol, server.tls_mode, {std::move(bound)}});
        continue;
      }
      if (same->protocol != server.protocol || same->tls_mode != server.tls_mode) {
        const auto& first = same->servers.front();
        return fail(
            "gateway.port_conflict",
            g.meta.source + ":" + std::to_string(server.line) + ": Gateway " + g.meta.full_name() +
                ": port " + std::to_string(server.port) + " is already " +
                (same->protocol == policy::GatewayServer::Protocol::Http         ? "HTTP"
                 : same->protocol == policy::GatewayServer::Protocol::Tls        ? "TLS PASSTHROUGH"
                 : same->tls_mode == policy::GatewayServer::TlsMode::IstioMutual ? "HTTPS ISTIO_MUTUAL"
                                                                                 : "HTTPS") +
                " in Gateway " + first.gateway_ns + "/" + first.gateway_name);
      }
      same->servers.push_back(std::move(bound));
    }
  }
  return out;
}

bool host_matches(std::string_view pattern, std::string_view host) {
  if (pattern == "*") return !host.empty();
  if (pattern.starts_with("*.")) {
    const std::string_view suffix = pattern.substr(1);  // ".example.com"
    return host.size() > suffix.size() && iequal(host.substr(host.size() - suffix.size()), suffix);
  }
  return iequal(pattern, host);
}

std::shared_ptr<const RouteTable> RouteTable::build(std::shared_ptr<const policy::ResourceSet> set,
                                                    const std::vector<ListenerPlan>& listeners) {
  auto table = std::make_shared<RouteTable>();
  table->bound_.resize(listeners.size());
  for (size_t i = 0; i < listeners.size(); ++i) {
    for (const auto& vs : set->virtual_services) {
      Bound bound{&vs, {}, {}};
      for (const auto& server : listeners[i].servers) {
        if (!names_gateway(vs, server)) continue;
        const std::string gateway = server.gateway_ns + "/" + server.gateway_name;
        if (std::find(bound.gateways.begin(), bound.gateways.end(), gateway) == bound.gateways.end())
          bound.gateways.push_back(gateway);
        for (const auto& server_host : server.server.hosts) {
          std::string_view host;
          if (!server_admits(server_host, server.gateway_ns, vs.meta.ns, host)) continue;
          for (const auto& vs_host : vs.hosts) {
            if (!hosts_overlap(host, vs_host)) continue;
            Bound::Host h{std::string(specificity(host) > specificity(vs_host) ? host : std::string_view(vs_host)), vs_host};
            if (std::find(bound.hosts.begin(), bound.hosts.end(), h) == bound.hosts.end()) bound.hosts.push_back(std::move(h));
          }
        }
      }
      if (!bound.hosts.empty()) table->bound_[i].push_back(std::move(bound));
    }
  }
  table->ports_.reserve(listeners.size());
  for (const auto& l : listeners) table->ports_.push_back(l.port);
  table->set_ = std::move(set);
  return table;
}

std::shared_ptr<const RouteTable> RouteTable::build_mesh(std::shared_ptr<const policy::ResourceSet> set) {
  auto table = std::make_shared<RouteTable>();
  table->bound_.resize(1);
  table->ports_.push_back(0);
  for (const auto& vs : set->virtual_services) {
    if (!vs.gateways.empty() && std::find(vs.gateways.begin(), vs.gateways.end(), "mesh") == vs.gateways.end()) continue;
    Bound bound{&vs, {}, {"mesh"}};
    for (const auto& h : vs.hosts) bound.hosts.push_back({h, h});
    table->bound_[0].push_back(std::move(bound));
  }
  table->set_ = std::move(set);
  return table;
}

std::optional<RouteMatch> RouteTable::route(size_t listener, std::string_view host, std::string_view path,
                                            std::string_view method, const http::Headers& headers,
                                            uint32_t pick, uint32_t port) const {
  if (listener >= bound_.size()) return std::nullopt;
  if (port == 0) port = ports_[listener];
  // The VirtualService with the most specific host matching the request (the first in load order
  // among equals).
  const Bound* best = nullptr;
  size_t best_rank = 0;
  for (const auto& b : bound_[listener]) {
    for (const auto& h : b.hosts) {
      if (!host_matches(h.match, host)) continue;
      const size_t rank = specificity(h.vs_host) + 1;
      if (rank > best_rank) {
        best = &b;
        best_rank = rank;
      }
    }
  }
  if (!best) return std::nullopt;
  const std::string_view bare_path = path.substr(0, path.find('?'));
  const auto& http = best->vs->http;
  for (size_t i = 0; i < http.size(); ++i) {
    const auto& r = http[i];
    const bool matched = r.match.empty() || std::any_of(r.match.begin(), r.match.end(), [&](const auto& m) {
                           return entry_applies_at(m, *best->vs, best->gateways) && (m.port == 0 || m.port == port) &&
                                  request_matches(m, bare_path, method, headers);
                         });
    if (!matched) continue;
    return RouteMatch{best->vs->meta.full_name(), i, pick_destination(r.route, pick)};
  }
  return std::nullopt;
}

std::optional<TlsRouteMatch> RouteTable::route_tls(size_t listener, std::string_view sni, uint32_t pick,
                                                   uint32_t port) const {
  if (listener >= bound_.size() || sni.empty()) return std::nullopt;
  if (port == 0) port = ports_[listener];
  const Bound* best = nullptr;
  size_t best_rank = 0;
  for (const auto& b : bound_[listener]) {
    if (b.vs->tls.empty()) continue;  // HTTP-only VirtualServices do not take TLS connections
    for (const auto& h : b.hosts) {
      if (!host_matches(h.match, sni)) continue;
      const size_t rank = specificity(h.vs_host) + 1;
      if (rank > best_rank) {
        best = &b;
        best_rank = rank;
      }
    }
  }
  if (!best) return std::nullopt;
  const auto& tls = best->vs->tls;
  for (size_t i = 0; i < tls.size(); ++i) {
    const auto& r = tls[i];
    const bool matched = std::any_of(r.match.begin(), r.match.end(), [&](const policy::TlsMatchAttributes& m) {
      return entry_applies_at(m, *best->vs, best->gateways) && (m.port == 0 || m.port == port) &&
             std::any_of(m.sni_hosts.begin(), m.sni_hosts.end(),
                         [&](const std::string& h) { return host_matches(h, sni); });
    });
    if (matched) return TlsRouteMatch{best->vs->meta.full_name(), i, pick_destination(r.route, pick)};
  }
  return std::nullopt;
}

bool RouteTable::serves(size_t listener, std::string_view host, uint32_t port) const {
  if (listener >= bound_.size()) return false;
  if (port == 0) port = ports_[listener];
  for (const auto& b : bound_[listener]) {
    if (std::none_of(b.hosts.begin(), b.hosts.end(), [&](const Bound::Host& h) { return host_matches(h.match, host); }))
      continue;
    for (const auto& r : b.vs->http) {
      if (r.match.empty() || std::any_of(r.match.begin(), r.match.end(), [&](const policy::HttpMatchRequest& m) {
            return entry_applies_at(m, *b.vs, b.gateways) && (m.port == 0 || m.port == port);
          }))
        return true;
    }
  }
  return false;
}

std::vector<RouteTable::BoundView> RouteTable::bound(size_t listener) const {
  std::vector<BoundView> out;
  if (listener >= bound_.size()) return out;
  for (const auto& b : bound_[listener]) {
    BoundView view{b.vs, {}};
    for (const auto& h : b.hosts) view.hosts.push_back(h.match);
    out.push_back(std::move(view));
  }
  return out;
}

std::string_view host_without_port(std::string_view host) {
  if (host.starts_with("[")) {
    const auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(1, close - 1);
  }
  const auto colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

}  // namespace mg::gateway
