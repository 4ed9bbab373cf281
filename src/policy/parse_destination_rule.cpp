// policy/parse_destination_rule.cpp — Istio's DestinationRule (networking.istio.io v1, v1beta1,
// v1alpha3) for policy::parse_resources: spec → policy::DestinationRule with the shared walkers of
// parse_internal.h (parse.cpp dispatches here by kind). Only what meshguard acts on is accepted —
// `host`, `trafficPolicy{tls{mode, sni, caCertificates}, loadBalancer{simple}, portLevelSettings}`
// and `subsets[]{name, trafficPolicy}` — and every other field is refused with file:line: an
// outlier or connection-pool setting that parsed and then did nothing would mislead, a subset's
// labels would select endpoints by labels the registry does not carry, and a silently ignored TLS
// field could weaken verification.
#include <string>

#include "policy/parse.h"
#include "policy/parse_internal.h"

namespace mg::policy {

const char* to_string(DestinationRule::Tls::Mode m) {
  switch (m) {
    case DestinationRule::Tls::Mode::Disable: return "DISABLE";
    case DestinationRule::Tls::Mode::Simple: return "SIMPLE";
    case DestinationRule::Tls::Mode::IstioMutual: return "ISTIO_MUTUAL";
  }
  return "DISABLE";
}

std::optional<DestinationRule::Effective> DestinationRule::effective(uint32_t port, std::string_view subset) const {
  Effective out{traffic_policy.tls, traffic_policy.load_balancer};
  auto apply_port = [&](const TrafficPolicy& p) {
    for (const auto& s : p.port_level) {
      if (port == 0 || s.port != port) continue;
      out = Effective{s.tls, s.load_balancer};  // port-level settings do not inherit
      return;
    }
  };
  apply_port(traffic_policy);
  if (subset.empty()) return out;
  for (const auto& s : subsets) {
    if (s.name != subset) continue;
    if (s.traffic_policy.tls) out.tls = s.traffic_policy.tls;
    if (s.traffic_policy.load_balancer) out.load_balancer = s.traffic_policy.load_balancer;
    apply_port(s.traffic_policy);
    return out;
  }
  return std::nullopt;
}

bool DestinationRule::matches(std::string_view name) const {
  if (host.starts_with("*.")) {
    std::string_view suffix = std::string_view(host).substr(1);  // ".example.com"
    return name.size() > suffix.size() && name.ends_with(suffix);
  }
  return name == host;
}

}  // namespace mg::policy

namespace mg::policy::detail {

namespace {

// A host as Istio's DestinationRule takes it, restricted to what a proxy can match: a DNS name of
// lower-case labels, or "*." followed by one. (Istio also takes short names resolved in the rule's
// namespace and a bare "*"; meshguard wants the name the client actually sends.)
bool valid_host(std::string_view host) {
  if (host.starts_with("*.")) host.remove_prefix(2);
  if (host.empty() || host.size() > 253) return false;
  while (true) {
    auto dot = host.find('.');
    if (!is_dns_label(host.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    host.remove_prefix(dot + 1);
  }
}

Status parse_tls(Ctx& ctx, const YAML::Node& n, DestinationRule::Tls& tls) {
  bool has_mode = false;
  auto s = for_each_field(
      ctx, n, "DestinationRule.spec.trafficPolicy.tls", {"mode", "sni", "caCertificates"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        auto text = scalar(ctx, v, "trafficPolicy.tls." + key);
        if (!text) return fail(text.error());
        if (key == "mode") {
          has_mode = true;
          if (*text == "SIMPLE") {
            tls.mode = DestinationRule::Tls::Mode::Simple;
          } else if (*text == "DISABLE") {
            tls.mode = DestinationRule::Tls::Mode::Disable;
          } else if (*text == "ISTIO_MUTUAL") {
            tls.mode = DestinationRule::Tls::Mode::IstioMutual;
          } else if (*text == "MUTUAL") {
            return err(ctx, v,
                       "trafficPolicy.tls.mode MUTUAL (a client certificate of your own) is not supported; use "
                       "SIMPLE, DISABLE or ISTIO_MUTUAL",
                       "policy.unsupported");
          } else {
            return err(ctx, v, "trafficPolicy.tls.mode must be SIMPLE, DISABLE or ISTIO_MUTUAL, not \"" + *text + "\"",
                       "policy.bad_value");
          }
        } else if (key == "sni") {
          if (!valid_host(*text) || text->starts_with("*")) {
            return err(ctx, v, "trafficPolicy.tls.sni must be a DNS name, not \"" + *text + "\"", "policy.bad_value");
          }
          tls.sni = *text;
        } else {
          // A path on the proxy's host, as Istio's: relative paths would depend on the proxy's
          // working directory, which an operator cannot see from the rule.
          if (text->empty() || text->front() != '/') {
            return err(ctx, v, "trafficPolicy.tls.caCertificates must be an absolute file path, not \"" + *text + "\"",
                       "policy.bad_value");
          }
          tls.ca_certificates = *text;
        }
        return {};
      });
  if (!s) return s;
  if (!n.IsMap()) return err(ctx, n, "DestinationRule.spec.trafficPolicy.tls must be a mapping");
  if (!has_mode) return err(ctx, n, "trafficPolicy.tls.mode is required (SIMPLE, DISABLE or ISTIO_MUTUAL)");
  // ISTIO_MUTUAL takes an sni (Istio's egress-gateway task sends the external host's name on the
  // mTLS connection to the egress gateway); DISABLE has no handshake to put one in.
  if (tls.mode == DestinationRule::Tls::Mode::Disable && !tls.sni.empty()) {
    return err(ctx, n, "trafficPolicy.tls: sni applies to modes SIMPLE and ISTIO_MUTUAL only, not DISABLE");
  }
  if (tls.mode != DestinationRule::Tls::Mode::Simple && !tls.ca_certificates.empty()) {
    return err(ctx, n,
               std::string("trafficPolicy.tls: caCertificates applies to mode SIMPLE only, not ") + to_string(tls.mode));
  }
  return {};
}

Status parse_load_balancer(Ctx& ctx, const YAML::Node& n, const std::string& what,
                           std::optional<DestinationRule::LoadBalancer>& out) {
  return for_each_field(ctx, n, what, {"simple"}, [&](const std::string&, const YAML::Node& v) -> Status {
    auto text = scalar(ctx, v, what + ".simple");
    if (!text) return fail(text.error());
    using LB = DestinationRule::LoadBalancer;
    // LEAST_CONN is Istio's deprecated name of LEAST_REQUEST.
    if (*text == "LEAST_REQUEST" || *text == "LEAST_CONN") {
      out = LB::LeastRequest;
    } else if (*text == "ROUND_ROBIN") {
      out = LB::RoundRobin;
    } else {
      return err(ctx, v, what + ".simple must be ROUND_ROBIN or LEAST_REQUEST, not \"" + *text + "\"",
                 "policy.unsupported");
    }
    return {};
  });
}

Status parse_traffic_policy(Ctx& ctx, const YAML::Node& n, const std::string& what,
                            DestinationRule::TrafficPolicy& p) {
  std::optional<YAML::Node> ports_node;
  auto s = for_each_field(
      ctx, n, what, {"tls", "loadBalancer", "portLevelSettings"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "tls") {
          DestinationRule::Tls tls;
          if (auto st = parse_tls(ctx, v, tls); !st) return st;
          p.tls = std::move(tls);
          return {};
        }
        if (key == "loadBalancer") return parse_load_balancer(ctx, v, what + ".loadBalancer", p.load_balancer);
        ports_node.emplace(v);
        if (!v.IsSequence()) return err(ctx, v, what + ".portLevelSettings must be a list");
        return object_list(ctx, v, what + ".portLevelSettings", p.port_level,
                           [&](const YAML::Node& item, DestinationRule::PortSettings& ps) -> Status {
                             const std::string at = what + ".portLevelSettings[]";
                             auto st = for_each_field(
                                 ctx, item, at, {"port", "tls", "loadBalancer"},
                                 [&](const std::string& field, const YAML::Node& fv) -> Status {
                                   if (field == "port") {
                                     return for_each_field(ctx, fv, at + ".port", {"number"},
                                                           [&](const std::string&, const YAML::Node& num) -> Status {
                                                             auto v = whole_number(ctx, num, at + ".port.number", 1, 65535);
                                                             if (!v) return fail(v.error());
                                                             ps.port = *v;
                                                             return {};
                                                           });
                                   }
                                   if (field == "loadBalancer")
                                     return parse_load_balancer(ctx, fv, at + ".loadBalancer", ps.load_balancer);
                                   DestinationRule::Tls tls;
                                   if (auto t = parse_tls(ctx, fv, tls); !t) return t;
                                   ps.tls = std::move(tls);
                                   return {};
                                 });
                             if (!st) return st;
                             if (ps.port == 0) return err(ctx, item, at + ".port.number is required");
                             return {};
                           });
      });
  if (!s) return s;
  for (size_t i = 0; i < p.port_level.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (p.port_level[j].port == p.port_level[i].port) {
        return err(ctx, std::as_const(*ports_node)[i],
                   what + ".portLevelSettings: port " + std::to_string(p.port_level[i].port) + " is listed twice");
      }
    }
  }
  return {};
}

}  // namespace

Status parse_destination_rule(Ctx& ctx, const YAML::Node& spec, DestinationRule& r) {
  if (!spec.IsDefined() || spec.IsNull()) return err(ctx, spec, "DestinationRule.spec is required (host)");
  std::optional<YAML::Node> subsets_node;
  auto s = for_each_field(
      ctx, spec, "DestinationRule.spec", {"host", "trafficPolicy", "subsets"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "host") {
          auto text = scalar(ctx, v, "DestinationRule.spec.host");
          if (!text) return fail(text.error());
          if (!valid_host(*text)) {
            return err(ctx, v,
                       "DestinationRule.spec.host must be a lower-case DNS name or \"*.\" and one, not \"" + *text +
                           "\"",
                       "policy.bad_value");
          }
          r.host = *text;
          return {};
        }
        if (key == "trafficPolicy")
          return parse_traffic_policy(ctx, v, "DestinationRule.spec.trafficPolicy", r.traffic_policy);
        subsets_node.emplace(v);
        if (!v.IsSequence()) return err(ctx, v, "DestinationRule.spec.subsets must be a list");
        return object_list(ctx, v, "DestinationRule.spec.subsets", r.subsets,
                           [&](const YAML::Node& item, DestinationRule::Subset& sub) -> Status {
                             auto st = for_each_field(
                                 ctx, item, "DestinationRule.spec.subsets[]", {"name", "trafficPolicy"},
                                 [&](const std::string& field, const YAML::Node& fv) -> Status {
                                   if (field == "name") {
                                     auto text = scalar(ctx, fv, "subsets[].name");
                                     if (!text) return fail(text.error());
                                     if (!is_dns_label(*text)) {
                                       return err(ctx, fv, "subsets[].name must be a DNS label, not \"" + *text + "\"",
                                                  "policy.bad_value");
                                     }
                                     sub.name = *text;
                                     return {};
                                   }
                                   return parse_traffic_policy(ctx, fv, "DestinationRule.spec.subsets[].trafficPolicy",
                                                               sub.traffic_policy);
                                 });
                             if (!st) return st;
                             if (sub.name.empty()) return err(ctx, item, "DestinationRule.spec.subsets[].name is required");
                             return {};
                           });
      });
  if (!s) return s;
  if (r.host.empty()) return err(ctx, spec, "DestinationRule.spec.host is required");
  for (size_t i = 0; i < r.subsets.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (r.subsets[j].name == r.subsets[i].name) {
        return err(ctx, std::as_const(*subsets_node)[i],
                   "DestinationRule.spec.subsets: \"" + r.subsets[i].name + "\" is listed twice");
      }
    }
  }
  return {};
}

}  // namespace mg::policy::detail
