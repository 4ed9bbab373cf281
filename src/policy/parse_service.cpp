// policy/parse_service.cpp — the service registry's kinds (meshguard.io/v1alpha1 Service and
// ServiceEndpoints) for policy::parse_resources: spec → policy::Service / ServiceEndpoints, with
// the shared walkers of parse_internal.h (parse.cpp dispatches here by kind). Kept apart from
// parse.cpp because these kinds describe where traffic goes, not who may send it.
#include <optional>
#include <set>
#include <utility>

#include "policy/match.h"
#include "policy/parse.h"
#include "policy/parse_internal.h"

namespace mg::policy::detail {

namespace {

// Istio's port-name convention, for a port without `protocol`: "http", "http-*" → http;
// "http2", "http2-*" → http2; "grpc", "grpc-*" → grpc; anything else (tcp, tcp-*, or no name) → tcp.
ServiceProtocol protocol_from_name(std::string_view name) {
  auto named = [&](std::string_view prefix) {
    return name == prefix || (name.starts_with(prefix) && name.size() > prefix.size() && name[prefix.size()] == '-');
  };
  if (named("http")) return ServiceProtocol::Http;
  if (named("http2")) return ServiceProtocol::Http2;
  if (named("grpc")) return ServiceProtocol::Grpc;
  return ServiceProtocol::Tcp;
}

Result<ServiceProtocol> parse_protocol(const Ctx& ctx, const YAML::Node& n) {
  auto text = scalar(ctx, n, "ports[].protocol");
  if (!text) return fail(text.error());
  for (auto p : {ServiceProtocol::Http, ServiceProtocol::Http2, ServiceProtocol::Grpc, ServiceProtocol::Tcp}) {
    if (*text == to_string(p)) return p;
  }
  return err(ctx, n, "ports[].protocol must be http, http2, grpc or tcp, not \"" + *text + "\"", "policy.bad_value");
}

Status parse_service_port(Ctx& ctx, const YAML::Node& n, ServicePort& p) {
  bool has_port = false, has_target = false, has_protocol = false;
  auto s = for_each_field(ctx, n, "Service.spec.ports[]", {"name", "port", "targetPort", "protocol"},
                          [&](const std::string& key, const YAML::Node& v) -> Status {
                            if (key == "name") {
                              auto text = scalar(ctx, v, "ports[].name");
                              if (!text) return fail(text.error());
                              if (!is_dns_label(*text)) {
                                return err(ctx, v,
                                           "ports[].name \"" + *text +
                                               "\" must be a DNS label (lower case letters, digits and '-')",
                                           "policy.bad_value");
                              }
                              p.name = *text;
                              return {};
                            }
                            if (key == "protocol") {
                              auto proto = parse_protocol(ctx, v);
                              if (!proto) return fail(proto.error());
                              p.protocol = *proto;
                              has_protocol = true;
                              return {};
                            }
                            auto number = whole_number(ctx, v, "ports[]." + key, 1, 65535);
                            if (!number) return fail(number.error());
                            (key == "port" ? p.port : p.target_port) = *number;
                            (key == "port" ? has_port : has_target) = true;
                            return {};
                          });
  if (!s) return s;
  if (!n.IsMap()) return err(ctx, n, "Service.spec.ports[] must be a mapping");
  if (!has_port) return err(ctx, n, "Service.spec.ports[]: port is required");
  if (!has_target) p.target_port = p.port;
  if (!has_protocol) p.protocol = protocol_from_name(p.name);
  return {};
}

Status parse_endpoint_port(Ctx& ctx, const YAML::Node& n, uint32_t& port, uint32_t& endpoint_port) {
  auto s = for_each_field(ctx, n, "ServiceEndpoints.spec.endpoints[].ports[]", {"port", "endpointPort"},
                          [&](const std::string& key, const YAML::Node& v) -> Status {
                            auto number = whole_number(ctx, v, "endpoints[].ports[]." + key, 1, 65535);
                            if (!number) return fail(number.error());
                            (key == "port" ? port : endpoint_port) = *number;
                            return {};
                          });
  if (!s) return s;
  if (!n.IsMap() || port == 0 || endpoint_port == 0) {
    return err(ctx, n, "ServiceEndpoints.spec.endpoints[].ports[] needs port and endpointPort");
  }
  return {};
}

Status parse_endpoint(Ctx& ctx, const YAML::Node& n, ServiceEndpoint& e) {
  bool has_ports = false;
  auto s = for_each_field(
      ctx, n, "ServiceEndpoints.spec.endpoints[]", {"workload", "address", "serviceAccount", "ports", "healthy"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "healthy") {
          auto b = boolean(ctx, v, "endpoints[].healthy");
          if (!b) return fail(b.error());
          e.healthy = *b;
          return {};
        }
        if (key == "ports") {
          if (!v.IsSequence() || v.size() == 0) return err(ctx, v, "endpoints[].ports must be a non-empty list");
          has_ports = true;
          for (const auto& item : v) {
            if (auto st = spend(ctx, item); !st) return st;
            uint32_t port = 0, endpoint_port = 0;
            if (auto st = parse_endpoint_port(ctx, item, port, endpoint_port); !st) return st;
            if (!e.ports.emplace(port, endpoint_port).second) {
              return err(ctx, item, "endpoints[].ports: service port " + std::to_string(port) + " is listed twice");
            }
          }
          return {};
        }
        auto text = scalar(ctx, v, "endpoints[]." + key);
        if (!text) return fail(text.error());
        if (key == "address") {
          if (!parse_ip(*text)) return err(ctx, v, "endpoints[].address must be an IP address, not \"" + *text + "\"");
          e.address = *text;
        } else if (!is_dns_label(*text)) {
          return err(ctx, v, "endpoints[]." + key + " \"" + *text + "\" must be a DNS label", "policy.bad_value");
        } else {
          (key == "workload" ? e.workload : e.service_account) = *text;
        }
        return {};
      });
  if (!s) return s;
  if (!n.IsMap()) return err(ctx, n, "ServiceEndpoints.spec.endpoints[] must be a mapping");
  for (auto [field, value] : {std::pair<const char*, const std::string*>{"workload", &e.workload},
                              {"address", &e.address},
                              {"serviceAccount", &e.service_account}}) {
    if (value->empty()) return err(ctx, n, std::string("endpoints[].") + field + " is required");
  }
  if (!has_ports) return err(ctx, n, "endpoints[].ports is required");
  return {};
}

}  // namespace

Status parse_service(Ctx& ctx, const YAML::Node& spec, Service& svc) {
  if (!spec.IsDefined() || spec.IsNull()) return err(ctx, spec, "Service.spec is required (selector and ports)");
  // Copies, never assignments: assigning to a yaml-cpp Node that refers to one writes into it.
  std::optional<YAML::Node> selector_node, ports_node;
  auto s = for_each_field(ctx, spec, "Service.spec", {"selector", "ports", "loadBalancer"},
                          [&](const std::string& key, const YAML::Node& v) -> Status {
                            if (key == "selector") {
                              selector_node.emplace(v);
                              return string_map(ctx, v, "Service.spec.selector", svc.workload_selector);
                            }
                            if (key == "ports") {
                              ports_node.emplace(v);
                              if (!v.IsSequence()) return err(ctx, v, "Service.spec.ports must be a list");
                              return object_list(ctx, v, "Service.spec.ports", svc.ports,
                                                 [&](const YAML::Node& item, ServicePort& p) {
                                                   return parse_service_port(ctx, item, p);
                                                 });
                            }
                            auto text = scalar(ctx, v, "Service.spec.loadBalancer");
                            if (!text) return fail(text.error());
                            if (*text == "LEAST_REQUEST") {
                              svc.load_balancer = Service::LoadBalancer::LeastRequest;
                            } else if (*text == "ROUND_ROBIN") {
                              svc.load_balancer = Service::LoadBalancer::RoundRobin;
                            } else {
                              return err(ctx, v,
                                         "Service.spec.loadBalancer must be LEAST_REQUEST or ROUND_ROBIN, not \"" +
                                             *text + "\"",
                                         "policy.bad_value");
                            }
                            return {};
                          });
  if (!s) return s;
  // An empty selector would select nothing in Kubernetes terms but reads like "every workload":
  // refused so the author says which workloads back the service.
  if (svc.workload_selector.empty()) {
    return err(ctx, selector_node ? *selector_node : spec,
               "Service.spec.selector is required: a non-empty map of Workload labels");
  }
  if (svc.ports.empty()) {
    return err(ctx, ports_node ? *ports_node : spec, "Service.spec.ports is required: at least one port");
  }
  std::set<std::string> names;
  std::set<uint32_t> numbers;
  size_t index = 0;
  for (const auto& p : svc.ports) {
    const YAML::Node at = std::as_const(*ports_node)[index++];
    if (p.name.empty() && svc.ports.size() > 1) {
      return err(ctx, at, "Service.spec.ports[]: name is required when the service has more than one port");
    }
    if (!p.name.empty() && !names.insert(p.name).second) {
      return err(ctx, at, "Service.spec.ports: duplicate port name \"" + p.name + "\"");
    }
    if (!numbers.insert(p.port).second) {
      return err(ctx, at, "Service.spec.ports: duplicate port " + std::to_string(p.port));
    }
  }
  return {};
}

Status parse_service_endpoints(Ctx& ctx, const YAML::Node& spec, ServiceEndpoints& out) {
  auto s = for_each_field(ctx, spec, "ServiceEndpoints.spec", {"endpoints"},
                          [&](const std::string&, const YAML::Node& v) -> Status {
                            if (!v.IsNull() && !v.IsSequence()) {
                              return err(ctx, v, "ServiceEndpoints.spec.endpoints must be a list");
                            }
                            return object_list(ctx, v, "ServiceEndpoints.spec.endpoints", out.endpoints,
                                               [&](const YAML::Node& item, ServiceEndpoint& e) {
                                                 return parse_endpoint(ctx, item, e);
                                               });
                          });
  if (!s) return s;
  std::set<std::string> workloads;
  size_t index = 0;
  for (const auto& e : out.endpoints) {
    if (!workloads.insert(e.workload).second) {
      return err(ctx, std::as_const(spec)["endpoints"][index],
                 "ServiceEndpoints.spec.endpoints: workload \"" + e.workload + "\" is listed twice");
    }
    ++index;
  }
  return {};
}

}  // namespace mg::policy::detail

namespace mg::policy {

Status check_appliable(const ResourceSet& set) {
  if (set.service_endpoints.empty()) return {};
  const Meta& m = set.service_endpoints.front().meta;
  return fail("policy.generated_kind",
              m.source + ":" + std::to_string(m.line) + ": ServiceEndpoints " + m.full_name() +
                  " cannot be applied: the control plane computes every service's endpoints from its Service and "
                  "the registered proxies (`meshguardctl get endpoints` shows them)");
}

}  // namespace mg::policy
