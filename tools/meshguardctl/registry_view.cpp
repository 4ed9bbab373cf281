// meshguardctl/registry_view.cpp — see registry_view.h.
#include "registry_view.h"

#include <iostream>

#include "commands.h"
#include "policy/parse.h"
#include "policy/select.h"

namespace mg::ctl {
namespace {

// Every computed ServiceEndpoints of namespace `ns` ("" : all), parsed.
Result<std::vector<policy::ServiceEndpoints>> fetch_endpoints(const Conn& c, const std::string& ns) {
  auto kind = find_kind("ServiceEndpoints");
  if (!kind) return fail(kind.error());
  auto fetched = fetch(c, {Target{*kind, ""}}, ns, LabelSelector{});
  if (!fetched) return fail(fetched.error());
  std::vector<policy::ServiceEndpoints> out;
  for (const auto& r : fetched->items) {
    auto set = policy::parse_resources(r.yaml(), key_str(r.key()));
    if (!set) return fail(set.error());
    for (auto& e : set->service_endpoints) out.push_back(std::move(e));
  }
  return out;
}

std::string ports_text(const policy::Service& s) {
  std::string out;
  for (const auto& p : s.ports) {
    out += (out.empty() ? "" : ",") + (p.name.empty() ? "" : p.name + ":") + std::to_string(p.port);
    if (p.target_port != p.port) out += "->" + std::to_string(p.target_port);
    out += "/" + std::string(policy::to_string(p.protocol));
  }
  return out;
}

std::string selector_text(const std::map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [k, v] : labels) out += (out.empty() ? "" : ",") + k + "=" + v;
  return out.empty() ? "<none>" : out;
}

std::string address_port(const std::string& address, uint32_t port) {
  const bool v6 = address.find(':') != std::string::npos;
  return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

// The SPIFFE ID a client expects of an endpoint: its proxy's, as the control plane recorded it;
// else spiffe://<trust domain>/ns/<ns>/sa/<account> with the trust domain of any known proxy.
std::string identity_of(const std::string& ns, const policy::ServiceEndpoint& e,
                        const std::vector<pb::WorkloadStatus>& wls) {
  std::string trust_domain;
  for (const auto& w : wls) {
    if (w.namespace_() == ns && w.name() == e.workload && w.service_account() == e.service_account)
      return w.spiffe_id();
    const std::string& id = w.spiffe_id();
    if (trust_domain.empty() && id.rfind("spiffe://", 0) == 0) trust_domain = id.substr(9, id.find('/', 9) - 9);
  }
  return "spiffe://" + (trust_domain.empty() ? std::string("cluster.local") : trust_domain) + "/ns/" + ns + "/sa/" +
         e.service_account;
}

std::vector<std::vector<std::string>> endpoint_rows(const policy::ServiceEndpoints& eps,
                                                    const std::vector<pb::WorkloadStatus>& wls,
                                                    const std::string& indent) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : eps.endpoints) {
    std::string where;
    for (const auto& [port, endpoint_port] : e.ports)
      where += (where.empty() ? "" : ",") + std::to_string(port) + "->" + address_port(e.address, endpoint_port);
    rows.push_back({indent + eps.meta.ns, eps.meta.name, e.workload, where, identity_of(eps.meta.ns, e, wls),
                    e.healthy ? "true" : "false"});
  }
  return rows;
}

}  // namespace

int print_services_table(const Conn& c, const Fetched& services) {
  auto eps = fetch_endpoints(c, "");
  if (!eps) return eps.error().message.empty() ? 1 : fail_line(eps.error().message);
  std::vector<std::vector<std::string>> rows{{"NAMESPACE", "NAME", "SELECTOR", "PORT(S)", "LB", "ENDPOINTS", "AGE"}};
  for (const auto& r : services.items) {
    auto set = policy::parse_resources(r.yaml(), key_str(r.key()));
    if (!set || set->services.size() != 1) return fail_line(key_str(r.key()) + ": the stored document is not a Service");
    const auto& s = set->services[0];
    size_t listed = 0, healthy = 0;
    for (const auto& e : *eps) {
      if (e.meta.ns != s.meta.ns || e.meta.name != s.meta.name) continue;
      listed = e.endpoints.size();
      for (const auto& ep : e.endpoints) healthy += ep.healthy ? 1 : 0;
    }
    rows.push_back({s.meta.ns, s.meta.name, selector_text(s.workload_selector), ports_text(s),
                    s.load_balancer == policy::Service::LoadBalancer::RoundRobin ? "ROUND_ROBIN" : "LEAST_REQUEST",
                    std::to_string(healthy) + "/" + std::to_string(listed), age(r.updated_unix())});
  }
  print_table(rows);
  return 0;
}

int print_endpoints_table(const Conn& c, const Fetched& endpoints) {
  auto wls = list_workloads(c);
  if (!wls) return 1;
  std::vector<std::vector<std::string>> rows{{"NAMESPACE", "SERVICE", "WORKLOAD", "ENDPOINT(S)", "IDENTITY", "HEALTHY"}};
  for (const auto& r : endpoints.items) {
    auto set = policy::parse_resources(r.yaml(), key_str(r.key()));
    if (!set || set->service_endpoints.size() != 1) return fail_line(key_str(r.key()) + ": not a ServiceEndpoints");
    const auto& eps = set->service_endpoints[0];
    if (eps.endpoints.empty()) {
      rows.push_back({eps.meta.ns, eps.meta.name, "<none>", "-", "-", "-"});
      continue;
    }
    for (auto& row : endpoint_rows(eps, *wls, "")) rows.push_back(std::move(row));
  }
  print_table(rows);
  return 0;
}

int describe_service(const Conn& c, const policy::Service& svc, const pb::Resource& stored) {
  auto wls = list_workloads(c);
  if (!wls) return 1;
  auto eps = fetch_endpoints(c, svc.meta.ns);
  if (!eps) return eps.error().message.empty() ? 1 : fail_line(eps.error().message);
  std::vector<std::vector<std::string>> head{
      {"Name:", svc.meta.name},
      {"Namespace:", svc.meta.ns},
      {"Kind:", "Service (meshguard.io)"},
      {"Hosts:", svc.meta.name + " (from " + svc.meta.ns + "), " + svc.host() + ", " + svc.host() + ".svc, " +
                     svc.host() + ".svc.cluster.local"},
      {"Selector:", selector_text(svc.workload_selector)},
      {"Load balancer:", svc.load_balancer == policy::Service::LoadBalancer::RoundRobin ? "ROUND_ROBIN" : "LEAST_REQUEST"},
      {"Revision:", std::to_string(stored.revision())},
      {"Updated:", utc(stored.updated_unix())}};
  print_table(head);
  std::cout << "Ports:\n";
  std::vector<std::vector<std::string>> ports{{"  NAME", "PORT", "TARGETPORT", "PROTOCOL"}};
  for (const auto& p : svc.ports)
    ports.push_back({"  " + (p.name.empty() ? std::string("<unnamed>") : p.name), std::to_string(p.port),
                     std::to_string(p.target_port), policy::to_string(p.protocol)});
  print_table(ports);
  std::cout << "Selected workloads (known to the control plane):\n";
  std::vector<std::vector<std::string>> selected{{"  NAME", "SERVICE ACCOUNT", "CONNECTED"}};
  for (const auto& w : *wls) {
    if (!policy::service_selects(svc, {w.namespace_(), {w.labels().begin(), w.labels().end()}, w.service_account()}))
      continue;
    selected.push_back({"  " + w.name(), w.service_account(), w.connected() ? "yes" : "no"});
  }
  if (selected.size() == 1)
    std::cout << "  <none>\n";
  else
    print_table(selected);
  std::cout << "Endpoints:\n";
  std::vector<std::vector<std::string>> rows{{"  NAMESPACE", "SERVICE", "WORKLOAD", "ENDPOINT(S)", "IDENTITY", "HEALTHY"}};
  for (const auto& e : *eps) {
    if (e.meta.name != svc.meta.name) continue;
    for (auto& row : endpoint_rows(e, *wls, "  ")) rows.push_back(std::move(row));
  }
  if (rows.size() == 1)
    std::cout << "  <none>\n";
  else
    print_table(rows);
  return 0;
}

}  // namespace mg::ctl
