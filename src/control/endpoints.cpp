// control/endpoints.cpp — see endpoints.h.
#include "control/endpoints.h"

#include "policy/mesh.h"
#include "policy/parse.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "control/snapshot.h"
#include "policy/match.h"
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
    const std::string_view svc_mesh = policy::mesh_of(svc.meta);
    for (const auto& r : registrations) {
      if (r.ns != svc.meta.ns) continue;
      if ((r.mesh.empty() ? policy::kDefaultMesh : std::string_view(r.mesh)) != svc_mesh) continue;
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

std::string registration_record(const Registration& r) {
  nlohmann::json inbound = nlohmann::json::array();
  for (const auto& p : r.inbound)
    inbound.push_back({{"port", p.port}, {"appPort", p.app_port}, {"protocol", p.protocol}});
  const nlohmann::json out = {{"name", r.name},       {"namespace", r.ns}, {"serviceAccount", r.service_account},
                              {"labels", r.labels},   {"address", r.address}, {"inbound", std::move(inbound)}};
  if (r.mesh.empty()) return out.dump();  // as before several meshes
  nlohmann::json with_mesh = out;
  with_mesh["mesh"] = r.mesh;
  return with_mesh.dump();
}

Result<Registration> parse_registration_record(std::string_view record) {
  const auto bad = [](const std::string& why) { return fail("registry.bad_record", "registration record: " + why); };
  const auto j = nlohmann::json::parse(record, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return bad("not a JSON object");
  Registration r;
  const auto text = [&](const char* field, std::string* out, bool required) -> bool {
    auto it = j.find(field);
    if (it == j.end()) return !required;
    if (!it->is_string()) return false;
    *out = it->get<std::string>();
    return !(required && out->empty()) && out->size() <= 253;
  };
  if (!text("name", &r.name, true) || !text("namespace", &r.ns, true) ||
      !text("serviceAccount", &r.service_account, true) || !text("address", &r.address, false))
    return bad("name, namespace and serviceAccount must be non-empty strings, address a string");
  // As a Hello's name and an SVID's path segments allow: they are written into YAML unquoted.
  if (r.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-.") != std::string::npos)
    return bad("name must be a lower-case DNS name");
  constexpr const char* kSegment = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
  if (r.ns.find_first_not_of(kSegment) != std::string::npos ||
      r.service_account.find_first_not_of(kSegment) != std::string::npos)
    return bad("namespace and serviceAccount must be SPIFFE path segments ([a-zA-Z0-9._-])");
  if (!r.address.empty() && !policy::parse_ip(r.address)) return bad("address is not an IP address");
  if (!text("mesh", &r.mesh, false) || (!r.mesh.empty() && !policy::is_dns_label(r.mesh)))
    return bad("mesh must be a mesh name");
  if (auto it = j.find("labels"); it != j.end()) {
    if (!it->is_object() || it->size() > 256) return bad("labels must be an object of strings");
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string()) return bad("labels must be an object of strings");
      r.labels[k] = v.get<std::string>();
    }
  }
  auto in = j.find("inbound");
  if (in == j.end() || !in->is_array() || in->size() > 1024) return bad("inbound must be an array of at most 1024");
  for (const auto& p : *in) {
    if (!p.is_object()) return bad("an inbound port is not an object");
    const auto port = p.find("port"), app = p.find("appPort"), proto = p.find("protocol");
    if (port == p.end() || app == p.end() || !port->is_number_unsigned() || !app->is_number_unsigned() ||
        port->get<uint64_t>() == 0 || port->get<uint64_t>() > 65535 || app->get<uint64_t>() == 0 ||
        app->get<uint64_t>() > 65535)
      return bad("inbound ports must be 1..65535");
    std::string protocol;
    if (proto != p.end()) {
      if (!proto->is_string()) return bad("an inbound protocol is not a string");
      protocol = proto->get<std::string>().substr(0, 16);
    }
    r.inbound.push_back({static_cast<uint32_t>(port->get<uint64_t>()), static_cast<uint32_t>(app->get<uint64_t>()),
                         std::move(protocol)});
  }
  return r;
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
