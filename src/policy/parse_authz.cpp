// policy/parse_authz.cpp — AuthorizationPolicy for policy::parse_resources: rules (from, to, when)
// → policy::AuthorizationPolicy, with the shared walkers of parse_internal.h; parse.cpp dispatches
// here by kind. Patterns, CIDRs and condition keys are validated here, so a compiled policy never
// meets one it cannot match.
#include <string>
#include <utility>

#include "policy/match.h"
#include "policy/parse.h"
#include "policy/parse_internal.h"

namespace mg::policy::detail {

namespace {

Status parse_source(Ctx& ctx, const YAML::Node& n, Source& src) {
  src.line = line_of(n);
  auto s = for_each_field(
      ctx, n, "source",
      {"principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces",
       "notNamespaces", "ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        const std::string what = "source." + key;
        if (key == "principals") return pattern_list(ctx, v, what, src.principals);
        if (key == "notPrincipals") return pattern_list(ctx, v, what, src.not_principals);
        if (key == "requestPrincipals") return pattern_list(ctx, v, what, src.request_principals);
        if (key == "notRequestPrincipals") return pattern_list(ctx, v, what, src.not_request_principals);
        if (key == "namespaces") return pattern_list(ctx, v, what, src.namespaces);
        if (key == "notNamespaces") return pattern_list(ctx, v, what, src.not_namespaces);
        if (key == "ipBlocks") return cidr_list(ctx, v, what, src.ip_blocks);
        if (key == "notIpBlocks") return cidr_list(ctx, v, what, src.not_ip_blocks);
        if (key == "remoteIpBlocks") return cidr_list(ctx, v, what, src.remote_ip_blocks);
        return cidr_list(ctx, v, what, src.not_remote_ip_blocks);
      });
  if (!s) return s;
  const bool empty = src.principals.empty() && src.not_principals.empty() && src.request_principals.empty() &&
                     src.not_request_principals.empty() && src.namespaces.empty() && src.not_namespaces.empty() &&
                     src.ip_blocks.empty() && src.not_ip_blocks.empty() && src.remote_ip_blocks.empty() &&
                     src.not_remote_ip_blocks.empty();
  if (empty) return err(ctx, n, "from.source must not be empty");
  return {};
}

Status parse_operation(Ctx& ctx, const YAML::Node& n, Operation& op) {
  op.line = line_of(n);
  auto s = for_each_field(
      ctx, n, "operation",
      {"hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        const std::string what = "operation." + key;
        if (key == "hosts") return pattern_list(ctx, v, what, op.hosts);
        if (key == "notHosts") return pattern_list(ctx, v, what, op.not_hosts);
        if (key == "ports") return port_list(ctx, v, what, op.ports);
        if (key == "notPorts") return port_list(ctx, v, what, op.not_ports);
        if (key == "methods") return pattern_list(ctx, v, what, op.methods);
        if (key == "notMethods") return pattern_list(ctx, v, what, op.not_methods);
        if (key == "paths") return pattern_list(ctx, v, what, op.paths);
        return pattern_list(ctx, v, what, op.not_paths);
      });
  if (!s) return s;
  const bool empty = op.hosts.empty() && op.not_hosts.empty() && op.ports.empty() && op.not_ports.empty() &&
                     op.methods.empty() && op.not_methods.empty() && op.paths.empty() && op.not_paths.empty();
  if (empty) return err(ctx, n, "to.operation must not be empty");
  return {};
}

Status parse_condition(Ctx& ctx, const YAML::Node& n, Condition& c) {
  c.line = line_of(n);
  auto s = for_each_field(ctx, n, "when", {"key", "values", "notValues"},
                          [&](const std::string& key, const YAML::Node& v) -> Status {
                            if (key == "key") {
                              auto text = scalar(ctx, v, "when.key");
                              if (!text) return fail(text.error());
                              c.key = *text;
                              return {};
                            }
                            return string_list(ctx, v, "when." + key, key == "values" ? c.values : c.not_values);
                          });
  if (!s) return s;
  if (c.key.empty()) return err(ctx, n, "when.key is required");
  auto parsed = parse_condition_key(c.key);
  if (!parsed) return err(ctx, n, parsed.error().message, "policy.bad_key");
  if (c.values.empty() && c.not_values.empty()) return err(ctx, n, "when \"" + c.key + "\": values or notValues must be set");
  for (const auto* list : {&c.values, &c.not_values}) {
    for (const auto& v : *list) {
      if (parsed->is_ip()) {
        if (auto r = parse_cidr(v); !r) return err(ctx, n, "when \"" + c.key + "\": " + r.error().message, "policy.bad_cidr");
      } else if (parsed->kind == ConditionKey::Kind::DestinationPort) {
        if (auto r = parse_port(v); !r) return err(ctx, n, "when \"" + c.key + "\": " + r.error().message, "policy.bad_port");
      } else if (auto r = parse_string_match(v); !r) {
        return err(ctx, n, "when \"" + c.key + "\": " + r.error().message, "policy.bad_value");
      }
    }
  }
  return {};
}

Status parse_rule(Ctx& ctx, const YAML::Node& n, Rule& rule) {
  rule.line = line_of(n);
  if (n.IsNull()) return {};  // `- {}` written as an empty item
  return for_each_field(ctx, n, "rule", {"from", "to", "when"}, [&](const std::string& key, const YAML::Node& v) -> Status {
    if (key == "from") {
      return object_list(ctx, v, "rules.from", rule.from, [&](const YAML::Node& item, Source& src) -> Status {
        YAML::Node inner;
        auto s = for_each_field(ctx, item, "from", {"source"}, [&](const std::string&, const YAML::Node& x) {
          inner = x;
          return Status{};
        });
        if (!s) return s;
        if (!inner.IsDefined() || inner.IsNull()) return err(ctx, item, "from.source must not be empty");
        return parse_source(ctx, inner, src);
      });
    }
    if (key == "to") {
      return object_list(ctx, v, "rules.to", rule.to, [&](const YAML::Node& item, Operation& op) -> Status {
        YAML::Node inner;
        auto s = for_each_field(ctx, item, "to", {"operation"}, [&](const std::string&, const YAML::Node& x) {
          inner = x;
          return Status{};
        });
        if (!s) return s;
        if (!inner.IsDefined() || inner.IsNull()) return err(ctx, item, "to.operation must not be empty");
        return parse_operation(ctx, inner, op);
      });
    }
    return object_list(ctx, v, "rules.when", rule.when,
                       [&](const YAML::Node& item, Condition& c) { return parse_condition(ctx, item, c); });
  });
}

}  // namespace

Status parse_authorization_policy(Ctx& ctx, const YAML::Node& spec, AuthorizationPolicy& p) {
  bool has_provider = false;
  auto s = for_each_field(
      ctx, spec, "AuthorizationPolicy.spec", {"selector", "action", "provider", "rules", "targetRef", "targetRefs"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "selector") return parse_selector(ctx, v, p.selector);
        if (key == "targetRef" || key == "targetRefs") {
          return err(ctx, v, key + " (gateway / waypoint attachment) is not supported by meshguard; use selector");
        }
        if (key == "action") {
          auto text = scalar(ctx, v, "action");
          if (!text) return fail(text.error());
          if (*text == "ALLOW") p.action = Action::Allow;
          else if (*text == "DENY") p.action = Action::Deny;
          else if (*text == "AUDIT") p.action = Action::Audit;
          else if (*text == "CUSTOM") p.action = Action::Custom;
          else return err(ctx, v, "action must be ALLOW, DENY, AUDIT or CUSTOM, not \"" + *text + "\"");
          return {};
        }
        if (key == "provider") {
          has_provider = true;
          return for_each_field(ctx, v, "provider", {"name"}, [&](const std::string&, const YAML::Node& x) -> Status {
            auto text = scalar(ctx, x, "provider.name");
            if (!text) return fail(text.error());
            p.provider = *text;
            return {};
          });
        }
        return object_list(ctx, v, "rules", p.rules,
                           [&](const YAML::Node& item, Rule& r) { return parse_rule(ctx, item, r); });
      });
  if (!s) return s;
  if (p.action == Action::Custom && p.provider.empty()) return err(ctx, spec, "CUSTOM action requires provider.name");
  if (p.action != Action::Custom && has_provider) return err(ctx, spec, "provider is only allowed with action CUSTOM");
  return {};
}

}  // namespace mg::policy::detail
