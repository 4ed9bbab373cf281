// control/endpoints.cpp — see endpoints.h.
#include "control/endpoints.h"

#include <algorithm>

#include "control/snapshot.h"
#include "policy/select.h"

namespace mg::control {

std::string peer_ip(std::string_view peer) {
  if (peer.starts_with("ipv4:")) {
    peer.remove_prefix(5);
    return std::string(peer.substr(0, peer.rfind(':')));
  }
  if (peer.starts_with("ipv6:[")) {
    peer.remove_prefix(6);
    const auto close = peer.find(']');
    if (close == std::string_view::npos) return {};
    std::string ip(peer.substr(0, close));
    // gRPC writes the zone of a link-local address %-escaped ("fe80::1%25eth0"): not dialable as is.
    return ip.find('%') == std::string::npos ? ip : std::string();
  }
  return {};  // unix sockets and the like: no address another proxy could dial
}

std::vector<policy::ServiceEndpoints> compute_endpoints(const policy::ResourceSet& set,
                                                        const std::vector<Registration>& registrations) {
  std::vector<policy::ServiceEndpoints> out;
  out.reserve(set.services.size());
  for (const auto& svc : set.services) {
    policy::ServiceEndpoints eps;
    eps.meta.name = svc.meta.name;
    eps.meta.ns = svc.meta.ns;
    eps.meta.source = "<registry>";
    for (const auto& r : registrations) {
      if (r.ns != svc.meta.ns) continue;
      const policy::Workload* registered = find_workload(set, r.ns, r.name);
      if (registered && !registered->service_account.empty() && registered->service_account != r.service_account)
        continue;  // the distributor ends such a stream; it never backs a service meanwhile
      const auto& labels = registered ? registered->labels : r.labels;
      if (!policy::service_selects(svc, policy::WorkloadRef{r.ns, labels, r.service_account})) continue;
      policy::ServiceEndpoint e;
      e.workload = r.name;
      e.address = registered && !registered->address.empty() ? registered->address : r.address;
      e.service_account = r.service_account;
      e.healthy = r.connected;
      for (const auto& port : svc.ports) {
        for (const auto& in : r.inbound) {
          if (in.app_port == port.target_port && in.port != 0) {
            e.ports.emplace(port.port, in.port);
            break;
          }
        }
      }
      if (e.address.empty() || e.ports.empty()) continue;
      eps.endpoints.push_back(std::move(e));
    }
    std::sort(eps.endpoints.begin(), eps.endpoints.end(),
              [](const auto& a, const auto& b) { return a.workload < b.workload; });
    eps.meta.document = endpoints_document(eps);
    out.push_back(std::move(eps));
  }
  return out;
}

std::string endpoints_document(const policy::ServiceEndpoints& e) {
  std::string out = "apiVersion: meshguard.io/v1alpha1\nkind: ServiceEndpoints\nmetadata: {name: " + e.meta.name +
                    ", namespace: " + e.meta.ns + "}\nspec:\n  endpoints:";
  if (e.endpoints.empty()) return out + " []\n";
  out += '\n';
  for (const auto& ep : e.endpoints) {
    // Names are DNS labels and the address an IP (validated where they came from); the address is
    // quoted because an IPv6 one starts with ':' or holds "::".
    out += "  - workload: " + ep.workload + "\n    address: \"" + ep.address + "\"\n    serviceAccount: " +
           ep.service_account + "\n    ports: [";
    bool first = true;
    for (const auto& [port, endpoint_port] : ep.ports) {
      out += std::string(first ? "" : ", ") + "{port: " + std::to_string(port) +
             ", endpointPort: " + std::to_string(endpoint_port) + "}";
      first = false;
    }
    out += std::string("]\n    healthy: ") + (ep.healthy ? "true" : "false") + "\n";
  }
  return out;
}

bool may_call(const std::optional<std::vector<std::string>>& egress, const std::string& caller_ns,
              const policy::Service& service) {
  if (!egress) return true;
  for (const auto& entry : *egress) {
    const auto slash = entry.find('/');
    if (slash == std::string::npos) continue;  // the parser refuses these
    const std::string ns = entry.substr(0, slash), name = entry.substr(slash + 1);
    const bool ns_ok = ns == "*" || (ns == "." ? caller_ns == service.meta.ns : ns == service.meta.ns);
    if (ns_ok && (name == "*" || name == service.meta.name)) return true;
  }
  return false;
}

}  // namespace mg::control
