#include "policy/parse.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "identity/spiffe_id.h"
#include "policy/match.h"
#include "policy/opa.h"
#include "policy/parse_internal.h"
#include "rego/engine.h"
#include "rego/yaml_value.h"

namespace mg::policy {

using namespace detail;  // the helpers parse_service.cpp shares (parse_internal.h)

const char* to_string(Action a) {
  switch (a) {
    case Action::Allow: return "ALLOW";
    case Action::Deny: return "DENY";
    case Action::Audit: return "AUDIT";
    case Action::Custom: return "CUSTOM";
  }
  return "?";
}

const char* to_string(MtlsMode m) {
  switch (m) {
    case MtlsMode::Unset: return "UNSET";
    case MtlsMode::Disable: return "DISABLE";
    case MtlsMode::Permissive: return "PERMISSIVE";
    case MtlsMode::Strict: return "STRICT";
  }
  return "?";
}

const char* to_string(ServiceProtocol p) {
  switch (p) {
    case ServiceProtocol::Http: return "http";
    case ServiceProtocol::Http2: return "http2";
    case ServiceProtocol::Grpc: return "grpc";
    case ServiceProtocol::Tcp: return "tcp";
  }
  return "?";
}

namespace {

// Lists stay in load order, so of several resources with one name the last is the later document:
// it is kept, the earlier ones are dropped and recorded.
void keep_the_later_of_each_name(ResourceSet& set) {
  for_each_kind(set, [&](const char* kind, auto& resources) {
    std::map<std::pair<std::string_view, std::string_view>, size_t> last;
    for (size_t i = 0; i < resources.size(); ++i) last[{resources[i].meta.ns, resources[i].meta.name}] = i;
    if (last.size() == resources.size()) return;
    std::vector<size_t> winner(resources.size());
    for (size_t i = 0; i < resources.size(); ++i)
      winner[i] = last.at({resources[i].meta.ns, resources[i].meta.name});
    std::remove_reference_t<decltype(resources)> kept;
    for (size_t i = 0; i < resources.size(); ++i) {
      const Meta& by = resources[winner[i]].meta;
      if (winner[i] != i) {
        const Meta& old = resources[i].meta;
        set.replaced.push_back({kind, old.full_name(), old.source, by.source, old.line, by.line});
      }
    }
    for (size_t i = 0; i < resources.size(); ++i)
      if (winner[i] == i) kept.push_back(std::move(resources[i]));
    resources = std::move(kept);
  });
}

}  // namespace

void ResourceSet::append(ResourceSet&& other) {
  int next_order = 0;
  for_each_kind(*this, [&](const char*, const auto& resources) {
    for (const auto& r : resources) next_order = std::max(next_order, r.meta.order + 1);
  });
  for_each_kind(other, [&](const char*, auto& resources) {
    for (auto& r : resources) r.meta.order += next_order;
  });
  auto move_all = [](auto& into, auto& from) {
    for (auto& r : from) into.push_back(std::move(r));
  };
  for_each_kind([&](const char*, auto member) { move_all(this->*member, other.*member); });
  move_all(skipped, other.skipped);
  move_all(replaced, other.replaced);
  keep_the_later_of_each_name(*this);
}

bool is_dns_label(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

std::string skipped_warning(const ResourceSet& set) {
  if (set.skipped.empty()) return {};
  std::string out = "skipped " + std::to_string(set.skipped.size()) + " document" +
                    (set.skipped.size() == 1 ? "" : "s") + " of kinds meshguard does not enforce:";
  for (size_t i = 0; i < set.skipped.size(); ++i) {
    const auto& d = set.skipped[i];
    out += (i == 0 ? " " : ", ") + d.kind + " " + (d.ns.empty() ? "" : d.ns + "/") +
           (d.name.empty() ? "(no name)" : d.name) + " (" + d.source + ":" + std::to_string(d.line) + ")";
  }
  return out;
}

bool ConditionKey::http_only() const {
  switch (kind) {
    case Kind::RequestHeader:
    case Kind::AuthPrincipal:
    case Kind::AuthAudiences:
    case Kind::AuthPresenter:
    case Kind::AuthClaim:
      return true;
    default:
      return false;
  }
}

Result<ConditionKey> parse_condition_key(std::string_view key) {
  using K = ConditionKey::Kind;
  static const std::pair<std::string_view, K> kPlain[] = {
      {"source.ip", K::SourceIp},
      {"remote.ip", K::RemoteIp},
      {"source.namespace", K::SourceNamespace},
      {"source.principal", K::SourcePrincipal},
      {"request.auth.principal", K::AuthPrincipal},
      {"request.auth.audiences", K::AuthAudiences},
      {"request.auth.presenter", K::AuthPresenter},
      {"destination.ip", K::DestinationIp},
      {"destination.port", K::DestinationPort},
      {"connection.sni", K::ConnectionSni},
  };
  ConditionKey out;
  for (const auto& [name, kind] : kPlain) {
    if (key == name) {
      out.kind = kind;
      return out;
    }
  }
  // Bracketed keys: prefix followed by one ([header]) or more ([claim][nested]) segments.
  std::string_view rest;
  if (key.starts_with("request.headers[")) {
    out.kind = K::RequestHeader;
    rest = key.substr(std::string_view("request.headers").size());
  } else if (key.starts_with("request.auth.claims[")) {
    out.kind = K::AuthClaim;
    rest = key.substr(std::string_view("request.auth.claims").size());
  } else if (key.starts_with("experimental.envoy.filters.")) {
    return fail("policy.unsupported_key",
                "when key \"" + std::string(key) + "\" (experimental Envoy filter metadata) is not supported by meshguard");
  } else {
    return fail("policy.unknown_key", "unknown when key \"" + std::string(key) + "\"");
  }
  while (!rest.empty()) {
    if (rest.front() != '[') break;
    const auto close = rest.find(']');
    if (close == std::string_view::npos) break;
    const auto segment = rest.substr(1, close - 1);
    if (segment.empty() || segment.find('[') != std::string_view::npos) break;
    out.args.emplace_back(segment);
    rest = rest.substr(close + 1);
  }
  if (!rest.empty() || out.args.empty() || (out.kind == K::RequestHeader && out.args.size() != 1)) {
    return fail("policy.bad_key", "malformed when key \"" + std::string(key) + "\"");
  }
  return out;
}

namespace detail {

thread_local const Ctx* current_ctx = nullptr;

int line_of(const YAML::Node& n) {
  const int offset = current_ctx ? current_ctx->line_offset : 0;
  return n.Mark().line >= 0 ? n.Mark().line + 1 + offset : offset + 1;
}

Unexpected<Error> err(const Ctx& ctx, const YAML::Node& at, const std::string& why, const char* code) {
  return fail(code, ctx.source + ":" + std::to_string(line_of(at)) + ": " + why);
}

Status spend(Ctx& ctx, const YAML::Node& at) {
  if (ctx.budget == 0) return err(ctx, at, "document too large (alias expansion?)");
  --ctx.budget;
  return {};
}

Result<std::string> scalar(const Ctx& ctx, const YAML::Node& n, const std::string& what) {
  if (!n.IsScalar()) return err(ctx, n, what + " must be a string");
  return n.Scalar();
}

Status string_map(Ctx& ctx, const YAML::Node& n, const std::string& what,
                  std::map<std::string, std::string>& out) {
  if (n.IsNull()) return {};
  if (!n.IsMap()) return err(ctx, n, what + " must be a mapping of strings");
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (auto s = spend(ctx, it->first); !s) return s;
    if (!it->first.IsScalar() || it->first.Scalar().empty()) return err(ctx, it->first, what + ": keys must be non-empty strings");
    auto v = scalar(ctx, it->second, what + "." + it->first.Scalar());
    if (!v) return fail(v.error());
    if (!out.emplace(it->first.Scalar(), std::move(*v)).second) {
      return err(ctx, it->first, what + ": duplicate key \"" + it->first.Scalar() + "\"");
    }
  }
  return {};
}

Result<bool> boolean(const Ctx& ctx, const YAML::Node& n, const std::string& what) {
  auto text = scalar(ctx, n, what);
  if (!text) return fail(text.error());
  if (*text != "true" && *text != "false") return err(ctx, n, what + " must be true or false", "policy.bad_value");
  return *text == "true";
}

Result<uint32_t> whole_number(const Ctx& ctx, const YAML::Node& n, const std::string& what, uint32_t min,
                              uint32_t max) {
  auto text = scalar(ctx, n, what);
  if (!text) return fail(text.error());
  uint32_t v = 0;
  const auto* end = text->data() + text->size();
  auto [ptr, ec] = std::from_chars(text->data(), end, v);
  if (text->empty() || ec != std::errc() || ptr != end || v < min || v > max) {
    return err(ctx, n,
               what + " must be a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
                   ", not \"" + *text + "\"",
               "policy.bad_value");
  }
  return v;
}

}  // namespace detail

const char* to_string(ExtensionProvider::Kind k) {
  return k == ExtensionProvider::Kind::EnvoyExtAuthzHttp ? "envoyExtAuthzHttp" : "envoyExtAuthzGrpc";
}

namespace {



struct DocumentText {
  std::string_view body;  // what yaml-cpp loads: the "---" marker itself left out
  std::string_view text;  // the document as written, its "---" marker line included
  int first_line = 0;     // 0-based line of `body`'s first character
};

bool is_marker(std::string_view line, std::string_view marker) {
  if (!line.starts_with(marker)) return false;
  return line.size() == marker.size() || line[marker.size()] == ' ' || line[marker.size()] == '\t' ||
         line[marker.size()] == '\r';
}

// Splits a YAML stream at its document markers ("---" starts, "..." ends a document; both only
// at column 0, where YAML forbids them inside scalars). yaml-cpp 0.7's LoadAll can loop forever
// on some malformed streams (jbeder/yaml-cpp#1319), so each document is loaded on its own.
std::vector<DocumentText> split_documents(std::string_view text) {
  std::vector<DocumentText> docs;
  size_t start = 0, text_start = 0;
  int start_line = 0, line = 0;
  size_t pos = 0;
  auto flush = [&](size_t end) {
    if (end > start) {
      docs.push_back({text.substr(start, end - start), text.substr(text_start, end - text_start), start_line});
    }
  };
  while (pos <= text.size()) {
    const size_t eol = std::min(text.find('\n', pos), text.size());
    const auto current = text.substr(pos, eol - pos);
    if (is_marker(current, "---")) {
      flush(pos);
      // Content after "--- " on the marker line belongs to the new document.
      start = pos + 3;
      text_start = pos;
      start_line = line;
    } else if (is_marker(current, "...")) {
      flush(pos);
      start = std::min(eol + 1, text.size());
      text_start = start;
      start_line = line + 1;
    }
    if (eol == text.size()) break;
    pos = eol + 1;
    ++line;
  }
  flush(text.size());
  return docs;
}




Status string_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<std::string>& out) {
  if (n.IsNull()) return {};
  if (!n.IsSequence()) return err(ctx, n, what + " must be a list of strings");
  for (const auto& item : n) {
    if (auto s = spend(ctx, item); !s) return s;
    auto v = scalar(ctx, item, what + " entries");
    if (!v) return fail(v.error());
    out.push_back(std::move(*v));
  }
  return {};
}

// A list whose values are Istio string patterns (validated, kept as text).
Status pattern_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<std::string>& out) {
  if (auto s = string_list(ctx, n, what, out); !s) return s;
  for (const auto& v : out) {
    if (v.find("{*") != std::string::npos) {
      return err(ctx, n, what + ": \"" + v + "\": path templates ({*}, {**}) are not supported");
    }
    if (auto m = parse_string_match(v); !m) return err(ctx, n, what + ": " + m.error().message, "policy.bad_value");
  }
  return {};
}

Status cidr_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<std::string>& out) {
  if (auto s = string_list(ctx, n, what, out); !s) return s;
  for (const auto& v : out) {
    if (auto c = parse_cidr(v); !c) return err(ctx, n, what + ": " + c.error().message, "policy.bad_cidr");
  }
  return {};
}

Status port_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<std::string>& out) {
  if (auto s = string_list(ctx, n, what, out); !s) return s;
  for (const auto& v : out) {
    if (auto p = parse_port(v); !p) return err(ctx, n, what + ": " + p.error().message, "policy.bad_port");
  }
  return {};
}


Status parse_selector(Ctx& ctx, const YAML::Node& n, Selector& out) {
  auto s = for_each_field(ctx, n, "selector", {"matchLabels"}, [&](const std::string&, const YAML::Node& v) {
    return string_map(ctx, v, "selector.matchLabels", out.match_labels);
  });
  out.present = !out.match_labels.empty();
  return s;
}

Status parse_meta(Ctx& ctx, const YAML::Node& n, Meta& meta) {
  if (!n.IsDefined() || n.IsNull()) return err(ctx, n, "metadata is required");
  meta.ns.clear();
  auto s = for_each_field(
      ctx, n, "metadata",
      {"name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation",
       "creationTimestamp", "managedFields", "finalizers", "ownerReferences"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "name" || key == "namespace") {
          auto text = scalar(ctx, v, "metadata." + key);
          if (!text) return fail(text.error());
          if (text->empty() || text->find('/') != std::string::npos) {
            return err(ctx, v, "metadata." + key + " must be a non-empty name without '/'");
          }
          (key == "name" ? meta.name : meta.ns) = *text;
        } else if (key == "labels" || key == "annotations") {
          std::map<std::string, std::string> values;
          if (auto st = string_map(ctx, v, "metadata." + key, values); !st) return st;
          if (key == "annotations") {
            if (auto it = values.find("istio.io/dry-run"); it != values.end()) {
              if (it->second != "true" && it->second != "false") {
                return err(ctx, v, "annotation istio.io/dry-run must be \"true\" or \"false\"");
              }
              meta.dry_run = it->second == "true";
            }
          }
        }
        return {};  // other Kubernetes bookkeeping fields are accepted and ignored
      });
  if (!s) return s;
  if (meta.name.empty()) return err(ctx, n, "metadata.name is required");
  return {};  // meta.ns stays empty when metadata.namespace is absent (see place_in_namespace)
}

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

Result<MtlsMode> parse_mode(Ctx& ctx, const YAML::Node& n) {
  MtlsMode mode = MtlsMode::Unset;
  auto s = for_each_field(ctx, n, "mtls", {"mode"}, [&](const std::string&, const YAML::Node& v) -> Status {
    auto text = scalar(ctx, v, "mtls.mode");
    if (!text) return fail(text.error());
    if (*text == "UNSET") mode = MtlsMode::Unset;
    else if (*text == "DISABLE") mode = MtlsMode::Disable;
    else if (*text == "PERMISSIVE") mode = MtlsMode::Permissive;
    else if (*text == "STRICT") mode = MtlsMode::Strict;
    else return err(ctx, v, "mtls.mode must be UNSET, DISABLE, PERMISSIVE or STRICT, not \"" + *text + "\"");
    return {};
  });
  if (!s) return fail(s.error());
  return mode;
}

Status parse_peer_authentication(Ctx& ctx, const YAML::Node& spec, PeerAuthentication& p) {
  YAML::Node port_node;
  auto s = for_each_field(ctx, spec, "PeerAuthentication.spec", {"selector", "mtls", "portLevelMtls"},
                          [&](const std::string& key, const YAML::Node& v) -> Status {
                            if (key == "selector") return parse_selector(ctx, v, p.selector);
                            if (key == "mtls") {
                              auto m = parse_mode(ctx, v);
                              if (!m) return fail(m.error());
                              p.mode = *m;
                              return {};
                            }
                            port_node = v;
                            if (v.IsNull()) return {};
                            if (!v.IsMap()) return err(ctx, v, "portLevelMtls must be a mapping of port to mtls");
                            for (auto it = v.begin(); it != v.end(); ++it) {
                              if (auto st = spend(ctx, it->first); !st) return st;
                              auto text = scalar(ctx, it->first, "portLevelMtls key");
                              if (!text) return fail(text.error());
                              auto port = parse_port(*text);
                              if (!port || *port == 0) return err(ctx, it->first, "portLevelMtls: \"" + *text + "\" is not a port (1-65535)", "policy.bad_port");
                              auto m = parse_mode(ctx, it->second);
                              if (!m) return fail(m.error());
                              if (!p.port_level.emplace(*port, *m).second) return err(ctx, it->first, "portLevelMtls: duplicate port " + *text);
                            }
                            return {};
                          });
  if (!s) return s;
  if (!p.port_level.empty() && !p.selector.present) {
    return err(ctx, port_node, "portLevelMtls requires a workload selector (mesh / namespace policies cannot set it)");
  }
  return {};
}

// "5s", "500ms", "1.5s", "1m", "2160h": a decimal number and a unit (Go's duration units from ms
// to h). Anything else, zero, or more than `max_ms` fails.
Result<int64_t> parse_duration_ms(const std::string& text, int64_t max_ms) {
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  const std::string number = text.substr(0, i), unit = text.substr(i);
  double value = 0;
  try {
    size_t used = 0;
    value = std::stod(number, &used);
    if (used != number.size()) return fail("policy.bad_duration", "");
  } catch (const std::exception&) {
    return fail("policy.bad_duration", "");
  }
  double scale = 0;
  if (unit == "ms") scale = 1;
  else if (unit == "s") scale = 1000;
  else if (unit == "m") scale = 60000;
  else if (unit == "h") scale = 3600000;
  else return fail("policy.bad_duration", "");
  const double ms = value * scale;
  if (!(ms > 0) || ms > static_cast<double>(max_ms)) return fail("policy.bad_duration", "");
  return static_cast<int64_t>(ms < 1 ? 1 : ms);
}

Status parse_jwt_rule(Ctx& ctx, const YAML::Node& n, jwt::JwtRule& rule) {
  auto s = for_each_field(
      ctx, n, "jwtRules",
      {"issuer", "audiences", "jwksUri", "jwks", "fromHeaders", "fromParams", "fromCookies",
       "outputPayloadToHeader", "forwardOriginalToken", "outputClaimToHeaders", "timeout"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        auto text_field = [&](std::string& out) -> Status {
          auto text = scalar(ctx, v, "jwtRules." + key);
          if (!text) return fail(text.error());
          out = *text;
          return {};
        };
        if (key == "issuer") return text_field(rule.issuer);
        if (key == "jwksUri") {
          if (auto st = text_field(rule.jwks_uri); !st) return st;
          if (!(rule.jwks_uri.starts_with("https://") || rule.jwks_uri.starts_with("http://")) ||
              rule.jwks_uri.find_first_of(" \t\r\n") != std::string::npos) {
            return err(ctx, v, "jwtRules.jwksUri must be an http(s) URL");
          }
          return {};
        }
        if (key == "jwks") {
          if (auto st = text_field(rule.jwks); !st) return st;
          auto doc = nlohmann::json::parse(rule.jwks, nullptr, false);
          if (doc.is_discarded() || !doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array()) {
            return err(ctx, v, "jwtRules.jwks must be a JWKS JSON object with a \"keys\" list");
          }
          return {};
        }
        if (key == "outputPayloadToHeader") return text_field(rule.output_payload_to_header);
        if (key == "audiences") return string_list(ctx, v, "jwtRules.audiences", rule.audiences);
        if (key == "fromParams") return string_list(ctx, v, "jwtRules.fromParams", rule.from_params);
        if (key == "fromCookies") return string_list(ctx, v, "jwtRules.fromCookies", rule.from_cookies);
        if (key == "forwardOriginalToken") {
          auto text = scalar(ctx, v, "jwtRules.forwardOriginalToken");
          if (!text) return fail(text.error());
          if (*text != "true" && *text != "false") return err(ctx, v, "jwtRules.forwardOriginalToken must be true or false");
          rule.forward_original_token = *text == "true";
          return {};
        }
        if (key == "timeout") {
          auto text = scalar(ctx, v, "jwtRules.timeout");
          if (!text) return fail(text.error());
          auto ms = parse_duration_ms(*text, 3600000);
          if (!ms) return err(ctx, v, "jwtRules.timeout must be a duration like \"5s\" (at most 1h)");
          rule.timeout_ms = static_cast<int>(*ms);
          return {};
        }
        if (key == "fromHeaders") {
          return object_list(ctx, v, "jwtRules.fromHeaders", rule.from_headers,
                             [&](const YAML::Node& item, jwt::JwtHeaderLocation& loc) -> Status {
                               auto st = for_each_field(ctx, item, "fromHeaders", {"name", "prefix"},
                                                        [&](const std::string& k, const YAML::Node& x) -> Status {
                                                          auto text = scalar(ctx, x, "fromHeaders." + k);
                                                          if (!text) return fail(text.error());
                                                          (k == "name" ? loc.name : loc.prefix) = *text;
                                                          return {};
                                                        });
                               if (!st) return st;
                               if (loc.name.empty()) return err(ctx, item, "fromHeaders.name is required");
                               return {};
                             });
        }
        return object_list(ctx, v, "jwtRules.outputClaimToHeaders", rule.output_claim_to_headers,
                           [&](const YAML::Node& item, jwt::ClaimToHeader& c) -> Status {
                             auto st = for_each_field(ctx, item, "outputClaimToHeaders", {"header", "claim"},
                                                      [&](const std::string& k, const YAML::Node& x) -> Status {
                                                        auto text = scalar(ctx, x, "outputClaimToHeaders." + k);
                                                        if (!text) return fail(text.error());
                                                        (k == "header" ? c.header : c.claim) = *text;
                                                        return {};
                                                      });
                             if (!st) return st;
                             if (c.header.empty() || c.claim.empty()) {
                               return err(ctx, item, "outputClaimToHeaders needs header and claim");
                             }
                             return {};
                           });
      });
  if (!s) return s;
  if (rule.issuer.empty()) return err(ctx, n, "jwtRules.issuer is required");
  for (const auto& a : rule.audiences) {
    if (a.empty()) return err(ctx, n, "jwtRules.audiences entries must not be empty");
  }
  for (const auto& p : rule.from_params) {
    if (p.empty()) return err(ctx, n, "jwtRules.fromParams entries must not be empty");
  }
  for (const auto& c : rule.from_cookies) {
    if (c.empty()) return err(ctx, n, "jwtRules.fromCookies entries must not be empty");
  }
  // Without jwks or jwksUri the keys come from OpenID discovery at the issuer, so it must be a URL.
  if (jwt::discovers_keys(rule) &&
      !(rule.issuer.starts_with("https://") || rule.issuer.starts_with("http://"))) {
    return err(
        ctx, n,
        "jwtRules: without jwks or jwksUri the issuer must be an http(s) URL (keys by OpenID discovery)");
  }
  return {};
}

Status parse_request_authentication(Ctx& ctx, const YAML::Node& spec, RequestAuthentication& r) {
  return for_each_field(ctx, spec, "RequestAuthentication.spec", {"selector", "jwtRules", "targetRef", "targetRefs"},
                        [&](const std::string& key, const YAML::Node& v) -> Status {
                          if (key == "selector") return parse_selector(ctx, v, r.selector);
                          if (key == "jwtRules") {
                            return object_list(ctx, v, "jwtRules", r.jwt_rules, [&](const YAML::Node& item, jwt::JwtRule& j) {
                              return parse_jwt_rule(ctx, item, j);
                            });
                          }
                          return err(ctx, v, key + " is not supported by meshguard; use selector");
                        });
}

// Workload.spec.egress entries: "NAMESPACE/NAME" (see resources.h).
Status parse_egress(Ctx& ctx, const YAML::Node& v, Workload& w) {
  if (!v.IsSequence()) return err(ctx, v, "egress must be a list of \"NAMESPACE/NAME\" strings");
  std::vector<std::string> entries;
  if (auto st = string_list(ctx, v, "egress", entries); !st) return st;
  for (const auto& e : entries) {
    const auto slash = e.find('/');
    const std::string ns = slash == std::string::npos ? "" : e.substr(0, slash);
    const std::string name = slash == std::string::npos ? "" : e.substr(slash + 1);
    if ((ns != "." && ns != "*" && !is_dns_label(ns)) || (name != "*" && !is_dns_label(name))) {
      return err(ctx, v,
                 "egress entry \"" + e +
                     "\" must be NAMESPACE/NAME: a namespace, \".\" or \"*\", then a service name or \"*\"",
                 "policy.bad_value");
    }
  }
  w.egress = std::move(entries);
  return {};
}

Status parse_workload(Ctx& ctx, const YAML::Node& spec, Workload& w) {
  return for_each_field(ctx, spec, "Workload.spec", {"serviceAccount", "labels", "address", "ports", "egress"},
                        [&](const std::string& key, const YAML::Node& v) -> Status {
                          if (key == "egress") return parse_egress(ctx, v, w);
                          if (key == "serviceAccount") {
                            auto text = scalar(ctx, v, "serviceAccount");
                            if (!text) return fail(text.error());
                            w.service_account = *text;
                            return {};
                          }
                          if (key == "labels") return string_map(ctx, v, "labels", w.labels);
                          if (key == "address") {
                            auto text = scalar(ctx, v, "address");
                            if (!text) return fail(text.error());
                            if (!parse_ip(*text)) return err(ctx, v, "address must be an IP address");
                            w.address = *text;
                            return {};
                          }
                          std::vector<std::string> ports;
                          if (auto st = port_list(ctx, v, "ports", ports); !st) return st;
                          for (const auto& p : ports) w.ports.push_back(*parse_port(p));
                          return {};
                        });
}

constexpr int64_t kMinCertificateTtlSeconds = 60;
constexpr int64_t kMaxCertificateTtlSeconds = 90LL * 24 * 3600;

// Mesh.spec.gatewayTopology: {numTrustedProxies: N}, Istio's gatewayTopology field of the same name.
Status parse_gateway_topology(Ctx& ctx, const YAML::Node& n, Mesh& m) {
  return for_each_field(ctx, n, "Mesh.spec.gatewayTopology", {"numTrustedProxies"},
                        [&](const std::string&, const YAML::Node& v) -> Status {
                          auto text = scalar(ctx, v, "gatewayTopology.numTrustedProxies");
                          if (!text) return fail(text.error());
                          uint32_t n = 0;
                          auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
                          if (text->empty() || ec != std::errc() || end != text->data() + text->size()) {
                            return err(ctx, v,
                                       "gatewayTopology.numTrustedProxies must be a whole number of proxies "
                                       "(0 or more), not \"" +
                                           *text + "\"",
                                       "policy.bad_value");
                          }
                          m.num_trusted_proxies = n;
                          return {};
                        });
}



// A list of HTTP header names (RFC 9110 tokens), as the ext_authz header fields take them.
Status header_name_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<std::string>& out) {
  if (auto s = string_list(ctx, n, what, out); !s) return s;
  for (const auto& v : out) {
    if (!is_header_name(v)) {
      return err(ctx, n, what + ": \"" + v + "\" is not a header name", "policy.bad_value");
    }
  }
  return {};
}

constexpr int64_t kMaxExtAuthzTimeoutMs = 3600LL * 1000;

// includeRequestBodyInCheck: Istio's BufferSettings.
Status parse_ext_authz_body(Ctx& ctx, const YAML::Node& n, const std::string& what,
                            ExtensionProvider::RequestBody& b) {
  b.present = true;
  return for_each_field(ctx, n, what, {"maxRequestBytes", "allowPartialMessage", "packAsBytes"},
                        [&](const std::string& k, const YAML::Node& x) -> Status {
                          if (k == "maxRequestBytes") {
                            auto v = whole_number(ctx, x, what + ".maxRequestBytes", 1, 16u << 20);
                            if (!v) return fail(v.error());
                            b.max_request_bytes = *v;
                            return {};
                          }
                          auto v = boolean(ctx, x, what + "." + k);
                          if (!v) return fail(v.error());
                          (k == "allowPartialMessage" ? b.allow_partial_message : b.pack_as_bytes) = *v;
                          return {};
                        });
}

// envoyExtAuthzHttp / envoyExtAuthzGrpc: the fields both share, and the HTTP-only ones.
Status parse_ext_authz(Ctx& ctx, const YAML::Node& n, const std::string& what, ExtensionProvider& p) {
  const bool http = p.kind == ExtensionProvider::Kind::EnvoyExtAuthzHttp;
  bool has_service = false, has_port = false;
  auto field = [&](const std::string& key, const YAML::Node& v) -> Status {
    const std::string name = what + "." + key;
    if (key == "port") {
      auto port = whole_number(ctx, v, name, 1, 65535);
      if (!port) return fail(port.error());
      p.port = *port;
      has_port = true;
      return {};
    }
    if (key == "failOpen") {
      auto b = boolean(ctx, v, name);
      if (!b) return fail(b.error());
      p.fail_open = *b;
      return {};
    }
    if (key == "statusOnError") {
      auto status = whole_number(ctx, v, name, 100, 599);
      if (!status) return err(ctx, v, name + " must be an HTTP status code (100 to 599)", "policy.bad_value");
      p.status_on_error = static_cast<int>(*status);
      return {};
    }
    if (key == "includeRequestBodyInCheck") return parse_ext_authz_body(ctx, v, name, p.include_request_body_in_check);
    if (key == "includeRequestHeadersInCheck") return header_name_list(ctx, v, name, p.include_request_headers_in_check);
    if (key == "headersToUpstreamOnAllow") return header_name_list(ctx, v, name, p.headers_to_upstream_on_allow);
    if (key == "headersToDownstreamOnDeny") return header_name_list(ctx, v, name, p.headers_to_downstream_on_deny);
    if (key == "includeAdditionalHeadersInCheck") {
      auto& extra = p.include_additional_headers_in_check;
      if (auto st = string_map(ctx, v, name, extra); !st) return st;
      for (const auto& [k, value] : extra) {
        if (!is_header_name(k)) {
          return err(ctx, v, name + ": \"" + k + "\" is not a header name", "policy.bad_value");
        }
        if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
          return err(ctx, v, name + "." + k + ": a header value cannot hold CR, LF or NUL", "policy.bad_value");
        }
      }
      return {};
    }
    auto text = scalar(ctx, v, name);
    if (!text) return fail(text.error());
    if (key == "service") {
      if (text->empty() || text->find_first_of(std::string_view(" \t\r\n\0/\"\\", 8)) != std::string::npos) {
        return err(ctx, v, name + " must be a host name or address, not \"" + *text + "\"", "policy.bad_value");
      }
      p.service = *text;
      has_service = true;
    } else if (key == "pathPrefix") {
      if (!text->empty() && ((*text)[0] != '/' || text->find_first_of(std::string_view(" \t\r\n\0?#", 7)) !=
                                                       std::string::npos)) {
        return err(ctx, v, name + " must be a path starting with \"/\", not \"" + *text + "\"",
                   "policy.bad_value");
      }
      p.path_prefix = *text;
    } else {  // timeout
      auto ms = parse_duration_ms(*text, kMaxExtAuthzTimeoutMs);
      if (!ms) {
        return err(ctx, v, name + " must be a duration written like \"0.5s\" or \"200ms\", up to 1h, not \"" + *text + "\"",
                   "policy.bad_duration");
      }
      p.timeout_ms = *ms;
    }
    return {};
  };
  Status st = http ? for_each_field(ctx, n, what,
                                    {"service", "port", "pathPrefix", "timeout", "failOpen", "statusOnError",
                                     "includeRequestHeadersInCheck", "includeAdditionalHeadersInCheck",
                                     "headersToUpstreamOnAllow", "headersToDownstreamOnDeny",
                                     "includeRequestBodyInCheck"},
                                    field)
                   : for_each_field(ctx, n, what,
                                    {"service", "port", "timeout", "failOpen", "statusOnError",
                                     "includeRequestBodyInCheck"},
                                    field);
  if (!st) return st;
  if (!has_service) return err(ctx, n, what + ".service is required");
  if (!has_port) return err(ctx, n, what + ".port is required");
  return {};
}

// Mesh.spec.extensionProviders: Istio's meshConfig.extensionProviders, the ext_authz kinds.
Status parse_extension_providers(Ctx& ctx, const YAML::Node& n, Mesh& m) {
  if (n.IsNull()) return {};
  if (!n.IsSequence()) return err(ctx, n, "extensionProviders must be a list");
  for (const auto& item : n) {
    if (auto st = spend(ctx, item); !st) return st;
    ExtensionProvider p;
    int kinds = 0;
    auto st = for_each_field(
        ctx, item, "extensionProviders entry", {"name", "envoyExtAuthzHttp", "envoyExtAuthzGrpc"},
        [&](const std::string& key, const YAML::Node& v) -> Status {
          if (key == "name") {
            auto text = scalar(ctx, v, "extensionProviders.name");
            if (!text) return fail(text.error());
            p.name = *text;
            return {};
          }
          ++kinds;
          p.kind = key == "envoyExtAuthzHttp" ? ExtensionProvider::Kind::EnvoyExtAuthzHttp
                                              : ExtensionProvider::Kind::EnvoyExtAuthzGrpc;
          if (!v.IsMap()) return err(ctx, v, "extensionProviders." + key + " must be a mapping");
          return parse_ext_authz(ctx, v, "extensionProviders." + key, p);
        });
    if (!st) return st;
    if (p.name.empty()) return err(ctx, item, "extensionProviders entry: name is required");
    if (kinds != 1) {
      return err(ctx, item,
                 "extensionProviders \"" + p.name + "\" must set exactly one of envoyExtAuthzHttp or envoyExtAuthzGrpc");
    }
    if (std::any_of(m.extension_providers.begin(), m.extension_providers.end(),
                    [&](const ExtensionProvider& q) { return q.name == p.name; })) {
      return err(ctx, item, "extensionProviders: \"" + p.name + "\" is defined twice (names must be unique)");
    }
    m.extension_providers.push_back(std::move(p));
  }
  return {};
}

Status parse_mesh(Ctx& ctx, const YAML::Node& spec, Mesh& m) {
  return for_each_field(
      ctx, spec, "Mesh.spec",
      {"trustDomain", "trustDomainAliases", "rootNamespace", "pathNormalization", "certificateTTL", "ca",
       "gatewayTopology", "extensionProviders"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "gatewayTopology") return parse_gateway_topology(ctx, v, m);
        if (key == "extensionProviders") return parse_extension_providers(ctx, v, m);
        if (key == "trustDomainAliases") {
          if (auto st = string_list(ctx, v, "trustDomainAliases", m.trust_domain_aliases); !st) return st;
          for (const auto& alias : m.trust_domain_aliases) {
            if (auto st = identity::validate_trust_domain(alias); !st) {
              return err(ctx, v,
                         "trustDomainAliases entry \"" + alias +
                             "\" is not a valid SPIFFE trust domain: " + st.error().message,
                         "policy.bad_trust_domain");
            }
          }
          return {};
        }
        if (key == "ca") {
          return for_each_field(ctx, v, "Mesh.spec.ca", {"mode"}, [&](const std::string&, const YAML::Node& x) -> Status {
            auto text = scalar(ctx, x, "ca.mode");
            if (!text) return fail(text.error());
            if (*text != "builtin" && *text != "plugin") {
              return err(ctx, x, "ca.mode must be builtin or plugin, not \"" + *text + "\"", "policy.bad_value");
            }
            m.ca_mode = *text;
            return {};
          });
        }
        auto text = scalar(ctx, v, key);
        if (!text) return fail(text.error());
        if (key == "trustDomain") {
          if (auto st = identity::validate_trust_domain(*text); !st) {
            return err(ctx, v, "trustDomain \"" + *text + "\" is not a valid SPIFFE trust domain: " + st.error().message,
                       "policy.bad_trust_domain");
          }
          m.trust_domain = *text;
        } else if (key == "rootNamespace") {
          if (text->empty() || text->find_first_of("/ \t\r\n") != std::string::npos) {
            return err(ctx, v, "rootNamespace must be a non-empty namespace name", "policy.bad_value");
          }
          m.root_namespace = *text;
        } else if (key == "pathNormalization") {
          auto mode = parse_path_normalization(*text);
          if (!mode) {
            return err(ctx, v,
                       "pathNormalization must be NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES, not \"" +
                           *text + "\"",
                       "policy.bad_value");
          }
          m.path_normalization = *mode;
        } else {
          auto ms = parse_duration_ms(*text, kMaxCertificateTtlSeconds * 1000);
          if (!ms || *ms % 1000 != 0 || *ms / 1000 < kMinCertificateTtlSeconds) {
            return err(ctx, v,
                       "certificateTTL must be a whole number of seconds written like \"1h\", \"30m\" or \"90s\", "
                       "from 1m to 2160h (90 days), not \"" + *text + "\"",
                       "policy.bad_duration");
          }
          m.certificate_ttl_seconds = *ms / 1000;
        }
        return {};
      });
}

// Spends the parse budget on every node under `n`, so an aliased `spec.data` cannot expand into
// more work than the document's size allows before it is converted.
Status spend_tree(Ctx& ctx, const YAML::Node& n) {
  if (auto s = spend(ctx, n); !s) return s;
  if (n.IsSequence()) {
    for (const auto& item : n) {
      if (auto s = spend_tree(ctx, item); !s) return s;
    }
  } else if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (auto s = spend_tree(ctx, it->second); !s) return s;
    }
  }
  return {};
}

// "data.envoy.authz.allow" (a reference under data) or "envoy/authz/allow" (the OPA-Envoy
// plugin's `path` form) → {"envoy", "authz", "allow"}; empty when malformed.
std::vector<std::string> decision_path(std::string_view text) {
  std::vector<std::string> out;
  auto identifier = [](std::string_view seg) {
    if (seg.empty() || !(std::isalpha(static_cast<unsigned char>(seg[0])) || seg[0] == '_')) return false;
    for (char c : seg) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
    }
    return true;
  };
  const bool dotted = text.starts_with("data.");
  if (dotted) {
    text.remove_prefix(5);
  } else if (text.starts_with('/')) {
    text.remove_prefix(1);
  }
  const char sep = dotted ? '.' : '/';
  while (true) {
    const auto end = text.find(sep);
    const auto seg = text.substr(0, end);
    if (dotted ? !identifier(seg)
               : (seg.empty() || seg.find_first_of(" \t\r\n.") != std::string_view::npos)) {
      return {};
    }
    out.emplace_back(seg);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return out;
}

// Where a module written as the YAML scalar `node` starts in the whole text: the line of its
// first row (1-based) and the column its rows are indented by. A block scalar (`|`, `>`) starts
// on the line after its indicator, indented like its first non-blank line; any other scalar is
// taken to start right after its mark (exact for a one-line quoted or plain scalar).
struct ScalarOrigin {
  int line = 0;
  int column = 0;  // added to a Rego column
};

ScalarOrigin scalar_origin(const Ctx& ctx, const YAML::Node& node) {
  const std::string_view body = ctx.document.substr(std::min(ctx.body_offset, ctx.document.size()));
  const auto mark = node.Mark();
  ScalarOrigin o{line_of(node), mark.column};
  const auto pos = static_cast<size_t>(std::max(0, mark.pos));
  if (pos >= body.size() || (body[pos] != '|' && body[pos] != '>')) {
    if (pos < body.size() && (body[pos] == '"' || body[pos] == '\'')) ++o.column;
    return o;
  }
  size_t line_start = body.find('\n', pos);
  int line = o.line;
  while (line_start != std::string_view::npos) {
    ++line;
    const size_t begin = line_start + 1;
    const size_t eol = std::min(body.find('\n', begin), body.size());
    const auto text = body.substr(begin, eol - begin);
    const auto indent = text.find_first_not_of(' ');
    if (indent != std::string_view::npos && text[indent] != '\r') {
      // Rows before the first non-blank one are blank lines of the scalar itself.
      return {o.line + 1, static_cast<int>(indent)};
    }
    line_start = eol < body.size() ? eol : std::string_view::npos;
  }
  return {o.line + 1, 0};
}

Status parse_opa_policy(Ctx& ctx, const YAML::Node& spec, const YAML::Node& doc, OpaPolicy& p) {
  std::vector<YAML::Node> module_nodes;
  YAML::Node data_node;
  YAML::Node decision_node;
  bool has_policy = false, has_modules = false;
  auto s = for_each_field(
      ctx, spec, "OPAPolicy.spec",
      {"selector", "policy", "modules", "data", "decision", "regoVersion", "onError", "includeRequestBody"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "selector") return parse_selector(ctx, v, p.selector);
        if (key == "policy" || key == "modules") {
          (key == "policy" ? has_policy : has_modules) = true;
          if (key == "policy") {
            auto text = scalar(ctx, v, "spec.policy");
            if (!text) return fail(text.error());
            module_nodes.push_back(v);
            p.modules.push_back(std::move(*text));
            return {};
          }
          if (!v.IsSequence() || v.size() == 0)
            return err(ctx, v, "spec.modules must be a non-empty list of Rego modules");
          for (const auto& item : v) {
            if (auto st = spend(ctx, item); !st) return st;
            auto text = scalar(ctx, item, "spec.modules entries");
            if (!text) return fail(text.error());
            module_nodes.push_back(item);
            p.modules.push_back(std::move(*text));
          }
          return {};
        }
        if (key == "data") {
          if (!v.IsMap()) return err(ctx, v, "spec.data must be a mapping (it is placed under data)");
          data_node = v;
          return spend_tree(ctx, v);
        }
        if (key == "includeRequestBody") {
          p.include_request_body.present = true;
          bool has_max = false;
          auto st = for_each_field(
              ctx, v, "includeRequestBody", {"maxBytes", "allowPartial"},
              [&](const std::string& k, const YAML::Node& x) -> Status {
                auto text = scalar(ctx, x, "includeRequestBody." + k);
                if (!text) return fail(text.error());
                if (k == "allowPartial") {
                  if (*text != "true" && *text != "false") {
                    return err(ctx, x, "includeRequestBody.allowPartial must be true or false",
                               "policy.bad_value");
                  }
                  p.include_request_body.allow_partial = *text == "true";
                  return {};
                }
                uint32_t n = 0;
                const auto* end = text->data() + text->size();
                auto [ptr, ec] = std::from_chars(text->data(), end, n);
                if (ec != std::errc() || ptr != end || n == 0 || n > (16u << 20)) {
                  return err(ctx, x,
                             "includeRequestBody.maxBytes must be a whole number of bytes from 1 to 16777216",
                             "policy.bad_value");
                }
                p.include_request_body.max_bytes = n;
                has_max = true;
                return {};
              });
          if (!st) return st;
          if (!has_max) return err(ctx, v, "includeRequestBody.maxBytes is required");
          return {};
        }
        auto text = scalar(ctx, v, "spec." + key);
        if (!text) return fail(text.error());
        if (key == "decision") {
          p.decision = *text;
          decision_node = v;
          p.decision_path = decision_path(*text);
          if (p.decision_path.empty()) {
            return err(ctx, v,
                       "spec.decision must name a rule under data, like data.envoy.authz.allow or "
                       "envoy/authz/allow, "
                       "not \"" +
                           *text + "\"",
                       "policy.bad_value");
          }
        } else if (key == "regoVersion") {
          if (*text != "v1" && *text != "v0") {
            return err(ctx, v, "spec.regoVersion must be v1 or v0, not \"" + *text + "\"",
                       "policy.bad_value");
          }
          p.rego_v0 = *text == "v0";
        } else if (*text == "Deny" || *text == "Allow") {  // onError
          p.allow_on_error = *text == "Allow";
        } else {
          return err(ctx, v, "spec.onError must be Deny or Allow, not \"" + *text + "\"", "policy.bad_value");
        }
        return {};
      });
  if (!s) return s;
  const YAML::Node& at = spec.IsDefined() && !spec.IsNull() ? spec : doc;
  if (has_policy == has_modules)
    return err(ctx, at, "OPAPolicy: exactly one of spec.policy and spec.modules is required");
  if (p.decision_path.empty()) p.decision_path = decision_path(p.decision);

  std::vector<rego::ModuleSource> sources;
  for (size_t i = 0; i < p.modules.size(); ++i) {
    sources.push_back({has_policy ? "spec.policy" : "spec.modules[" + std::to_string(i) + "]", p.modules[i],
                       p.rego_v0 ? rego::RegoVersion::V0 : rego::RegoVersion::V1});
  }
  rego::Value data =
      data_node.IsDefined() ? rego::yaml_node_to_value(data_node) : rego::Value::empty_object();
  auto plan = rego::compile(sources, std::move(data));
  if (!plan) {
    const auto& errors = plan.error();
    if (errors.empty())
      return err(ctx, at, "OPAPolicy " + p.meta.full_name() + ": the Rego modules do not compile");
    const auto& e = errors.front();
    // Map the module's row:col to the file's line:column.
    std::string where = ctx.source + ":" + std::to_string(line_of(at));
    for (size_t i = 0; i < sources.size(); ++i) {
      if (e.file != sources[i].file || e.row <= 0) continue;
      const auto origin = scalar_origin(ctx, module_nodes[i]);
      where = ctx.source + ":" + std::to_string(origin.line + e.row - 1) + ":" +
              std::to_string(origin.column + e.col);
    }
    std::string more = errors.size() > 1 ? " (and " + std::to_string(errors.size() - 1) + " more)" : "";
    return fail("policy.bad_rego", where + ": OPAPolicy " + p.meta.full_name() + ": " +
                                       (e.file.empty() ? std::string("spec") : e.file) + ": " + e.code +
                                       ": " + e.message + more);
  }
  p.plan = std::move(*plan);
  return {};
}

bool is_enforced_kind(std::string_view kind) {
  return kind == "AuthorizationPolicy" || kind == "PeerAuthentication" || kind == "RequestAuthentication" ||
         kind == "Workload" || kind == "Mesh" || kind == "OPAPolicy" || kind == "ServiceEndpoints";
}

// The API groups meshguard owns every kind of: an unknown kind there is a typo or an API this build
// does not know, and skipping it could silently drop a security rule, so it is refused instead.
bool is_security_group(std::string_view api_version) {
  const auto slash = api_version.find('/');
  const auto group = slash == std::string_view::npos ? std::string_view() : api_version.substr(0, slash);
  return group == "security.istio.io" || group == "meshguard.io";
}

std::string scalar_or_empty(const YAML::Node& n) {
  return n.IsDefined() && n.IsScalar() ? n.Scalar() : std::string();
}

// A document of another kind (networking.istio.io, Kubernetes core, apps, ...) in the same file:
// recorded, so the caller can name it in a warning, and otherwise left alone. Only its apiVersion
// and kind must be there: without them it is not a Kubernetes object at all.
bool skip_document(Ctx& ctx, const YAML::Node& doc, ResourceSet& out) {
  const YAML::Node kind = std::as_const(doc)["kind"], api_version = std::as_const(doc)["apiVersion"];
  if (!kind.IsDefined() || !kind.IsScalar() || !api_version.IsDefined() || !api_version.IsScalar())
    return false;
  if (kind.Scalar().empty() || api_version.Scalar().empty()) return false;
  if (is_enforced_kind(kind.Scalar()) || is_security_group(api_version.Scalar()) ||
      is_networking_kind(kind.Scalar(), api_version.Scalar()))
    return false;
  SkippedDocument skipped;
  skipped.kind = kind.Scalar();
  if (const YAML::Node metadata = std::as_const(doc)["metadata"]; metadata.IsDefined() && metadata.IsMap()) {
    skipped.name = scalar_or_empty(std::as_const(metadata)["name"]);
    skipped.ns = scalar_or_empty(std::as_const(metadata)["namespace"]);
  }
  skipped.source = ctx.source;
  skipped.line = line_of(doc);
  out.skipped.push_back(std::move(skipped));
  return true;
}

Unexpected<Error> cannot_place(const Ctx& ctx, const YAML::Node& metadata, std::string_view ns) {
  return err(ctx, metadata,
             "cannot add namespace " + std::string(ns) +
                 " to this document's metadata; write metadata.namespace in the document",
             "policy.bad_namespace");
}

// The current document's text with `namespace: <ns>` added as the first field of its metadata
// (a block mapping or a flow one, as in JSON), so that the text alone, stored and pushed to
// proxies, says where the resource lives. Anything else (an anchored or tagged mapping) is refused
// rather than guessed at.
Result<std::string> with_namespace_field(const Ctx& ctx, const YAML::Node& metadata, std::string_view ns) {
  const std::string_view doc = ctx.document;
  const auto mark = metadata.Mark();
  const size_t pos = ctx.body_offset + static_cast<size_t>(std::max(0, mark.pos));
  const std::string field = "namespace: " + std::string(ns);
  if (mark.pos >= 0 && pos < doc.size()) {
    if (metadata.Style() == YAML::EmitterStyle::Flow && doc[pos] == '{') {
      const auto next = doc.find_first_not_of(" \t\r\n", pos + 1);
      const bool empty = next != std::string_view::npos && doc[next] == '}';
      return std::string(doc.substr(0, pos + 1)) + field + (empty ? "" : ", ") +
             std::string(doc.substr(pos + 1));
    }
    const size_t column = static_cast<size_t>(std::max(0, mark.column));
    if (metadata.Style() == YAML::EmitterStyle::Block && column > 0 && column <= pos &&
        doc.substr(pos - column, column).find_first_not_of(' ') == std::string_view::npos) {
      const size_t line_start = pos - column;
      return std::string(doc.substr(0, line_start)) + std::string(column, ' ') + field + "\n" +
             std::string(doc.substr(line_start));
    }
  }
  return cannot_place(ctx, metadata, ns);
}

// kubectl's rule for a namespaced resource: a document without metadata.namespace goes to the
// -n/--namespace namespace (else "default"); one naming another namespace than -n is refused.
Status place_in_namespace(Ctx& ctx, const YAML::Node& metadata, Meta& meta) {
  if (!meta.ns.empty()) {
    if (ctx.requested_ns.empty() || meta.ns == ctx.requested_ns) return {};
    return err(ctx, std::as_const(metadata)["namespace"],
               "the namespace from the provided object (\"" + meta.ns +
                   "\") does not match the namespace given with -n/--namespace (\"" +
                   std::string(ctx.requested_ns) + "\")",
               "policy.namespace_mismatch");
  }
  meta.ns = ctx.requested_ns.empty() ? "default" : std::string(ctx.requested_ns);
  if (meta.ns == "default") return {};  // the text alone already reads as "default"
  auto text = with_namespace_field(ctx, metadata, meta.ns);
  if (!text) return fail(text.error());
  // The stored text must re-parse to this very resource (proxies parse it alone).
  auto again = parse_resources(*text, ctx.source);
  if (!again || again->size() != 1 || again->replaced.size() + again->skipped.size() != 0) {
    return cannot_place(ctx, metadata, meta.ns);
  }
  bool same = false;
  for_each_kind(*again, [&](const char*, const auto& resources) {
    for (const auto& r : resources) same = r.meta.ns == meta.ns && r.meta.name == meta.name;
  });
  if (!same) {
    return cannot_place(ctx, metadata, meta.ns);
  }
  meta.document = std::move(*text);
  return {};
}

Status parse_document(Ctx& ctx, const YAML::Node& doc, ResourceSet& out) {
  if (!doc.IsMap())
    return err(ctx, doc, "a resource must be a mapping with apiVersion, kind, metadata and spec");
  if (skip_document(ctx, doc, out)) return {};
  std::string api_version, kind;
  YAML::Node metadata, spec;
  bool has_spec = false;
  auto s = for_each_field(ctx, doc, "resource", {"apiVersion", "kind", "metadata", "spec", "status"},
                          [&](const std::string& key, const YAML::Node& v) -> Status {
                            if (key == "apiVersion" || key == "kind") {
                              auto text = scalar(ctx, v, key);
                              if (!text) return fail(text.error());
                              (key == "kind" ? kind : api_version) = *text;
                            } else if (key == "metadata") {
                              metadata = v;
                            } else if (key == "spec") {
                              spec = v;
                              has_spec = true;
                            }
                            return {};  // status: written by controllers, ignored
                          });
  if (!s) return s;
  if (kind.empty()) return err(ctx, doc, "kind is required");
  const bool istio = api_version == "security.istio.io/v1" || api_version == "security.istio.io/v1beta1";
  if (kind == "AuthorizationPolicy" || kind == "PeerAuthentication" || kind == "RequestAuthentication") {
    if (!istio) {
      return err(ctx, doc, kind + ": apiVersion must be security.istio.io/v1 or security.istio.io/v1beta1, not \"" +
                               api_version + "\"");
    }
  } else if (kind == "Workload" || kind == "Mesh" || kind == "OPAPolicy" || kind == "ServiceEndpoints" ||
             (kind == "Service" && is_security_group(api_version))) {
    if (api_version != "meshguard.io/v1alpha1") return err(ctx, doc, kind + ": apiVersion must be meshguard.io/v1alpha1");
  } else if (is_networking_kind(kind, api_version)) {
    if (auto st = check_networking_version(ctx, doc, kind, api_version); !st) return st;
  } else if (is_security_group(api_version)) {
    return err(ctx, doc,
               "unknown kind \"" + kind + "\" in " + api_version +
                   " (meshguard enforces AuthorizationPolicy, PeerAuthentication, RequestAuthentication, "
                   "Workload, Mesh, OPAPolicy, Service and ServiceEndpoints)",
               "policy.unknown_kind");
  } else {
    return err(ctx, doc, "apiVersion is required", "policy.unknown_kind");
  }
  Meta meta;
  meta.source = ctx.source;
  meta.line = line_of(doc);
  meta.order = ctx.order;
  meta.document = std::string(ctx.document);
  if (auto st = parse_meta(ctx, metadata.IsDefined() ? metadata : YAML::Node(), meta); !st) {
    if (!metadata.IsDefined()) return err(ctx, doc, "metadata is required");
    return st;
  }
  const YAML::Node spec_node = has_spec ? spec : YAML::Node(YAML::NodeType::Null);
  if (kind != "Mesh") {
    if (auto st = place_in_namespace(ctx, metadata, meta); !st) return st;
  }
  if (kind == "Mesh") {
    // One mesh per control plane: a second name would be a second, conflicting set of settings.
    if (meta.name != "default") {
      return err(ctx, std::as_const(metadata)["name"], "Mesh: metadata.name must be \"default\" (one mesh per control plane), not \"" +
                                            meta.name + "\"", "policy.bad_mesh_name");
    }
    meta.ns.clear();  // cluster-scoped: metadata.namespace (and -n) is ignored
    Mesh m;
    m.meta = meta;
    if (auto st = parse_mesh(ctx, spec_node, m); !st) return st;
    out.meshes.push_back(std::move(m));
    return {};
  }
  if (kind == "OPAPolicy") {
    OpaPolicy p;
    p.meta = meta;
    if (auto st = parse_opa_policy(ctx, spec_node, doc, p); !st) return st;
    out.opa_policies.push_back(std::move(p));
    return {};
  }
  if (kind == "Service" || kind == "ServiceEndpoints") {
    // Their names are DNS names (details.default.svc.cluster.local), so both parts must be labels.
    for (const std::string* part : {&meta.name, &meta.ns}) {
      if (!is_dns_label(*part)) {
        return err(ctx, metadata.IsDefined() ? metadata : doc,
                   kind + ": metadata name and namespace must be DNS labels (lower case letters, digits and '-'), "
                          "not \"" + *part + "\"",
                   "policy.bad_value");
      }
    }
  }
  if (kind == "Service") {
    Service svc;
    svc.meta = meta;
    if (auto st = parse_service(ctx, spec_node, svc); !st) return st;
    out.services.push_back(std::move(svc));
    return {};
  }
  if (kind == "ServiceEndpoints") {
    ServiceEndpoints e;
    e.meta = meta;
    if (auto st = parse_service_endpoints(ctx, spec_node, e); !st) return st;
    out.service_endpoints.push_back(std::move(e));
    return {};
  }
  if (kind == "Gateway") {
    Gateway g;
    g.meta = meta;
    if (auto st = parse_gateway(ctx, spec_node, g); !st) return st;
    out.gateways.push_back(std::move(g));
    return {};
  }
  if (kind == "VirtualService") {
    VirtualService vs;
    vs.meta = meta;
    if (auto st = parse_virtual_service(ctx, spec_node, vs); !st) return st;
    out.virtual_services.push_back(std::move(vs));
    return {};
  }
  if (kind == "ServiceEntry") {
    ServiceEntry se;
    se.meta = meta;
    if (auto st = parse_service_entry(ctx, spec_node, se); !st) return st;
    out.service_entries.push_back(std::move(se));
    return {};
  }
  if (kind == "AuthorizationPolicy") {
    AuthorizationPolicy p;
    p.meta = meta;
    if (auto st = parse_authorization_policy(ctx, spec_node, p); !st) return st;
    out.authorization_policies.push_back(std::move(p));
  } else if (kind == "PeerAuthentication") {
    PeerAuthentication p;
    p.meta = meta;
    if (auto st = parse_peer_authentication(ctx, spec_node, p); !st) return st;
    out.peer_authentications.push_back(std::move(p));
  } else if (kind == "RequestAuthentication") {
    RequestAuthentication r;
    r.meta = meta;
    if (auto st = parse_request_authentication(ctx, spec_node, r); !st) return st;
    out.request_authentications.push_back(std::move(r));
  } else {
    Workload w;
    w.meta = meta;
    if (auto st = parse_workload(ctx, spec_node, w); !st) return st;
    out.workloads.push_back(std::move(w));
  }
  return {};
}

bool has_content(std::string_view body) {
  size_t pos = 0;
  while (pos < body.size()) {
    size_t eol = body.find('\n', pos);
    if (eol == std::string_view::npos) eol = body.size();
    auto line = body.substr(pos, eol - pos);
    const auto first = line.find_first_not_of(" \t\r");
    if (first != std::string_view::npos && line[first] != '#') return true;
    pos = eol + 1;
  }
  return false;
}

}  // namespace

Result<ResourceSet> parse_resources(std::string_view yaml, std::string_view source, std::string_view ns) {
  if (!ns.empty() && !is_dns_label(ns)) {
    return fail("policy.bad_namespace",
                "namespace \"" + std::string(ns) +
                    "\" is not a namespace name (lower case letters, digits and '-', at most 63)");
  }
  Ctx ctx;
  ctx.source = std::string(source);
  ctx.requested_ns = ns;
  // Real documents spend well under one unit per byte; aliases are what could exceed this. Each
  // document is also capped at what it would get parsed alone, so a document accepted here is
  // accepted again from its Meta::document (the control plane re-parses stored documents).
  auto budget_for = [](size_t bytes) { return std::max<size_t>(100000, bytes * 2); };
  size_t remaining = budget_for(yaml.size());
  ResourceSet out;
  ctx.order = -1;
  // A document placed in a namespace is parsed again, from inside this parse (place_in_namespace).
  struct Restore {
    const Ctx* previous;
    ~Restore() { current_ctx = previous; }
  } restore{current_ctx};
  current_ctx = &ctx;
  for (const auto& text : split_documents(yaml)) {
    ++ctx.order;
    ctx.line_offset = text.first_line;
    ctx.document = text.text;
    ctx.body_offset = static_cast<size_t>(text.body.data() - text.text.data());
    const size_t allowed = std::min(remaining, budget_for(text.text.size()));
    ctx.budget = allowed;
    try {
      const auto doc = YAML::Load(std::string(text.body));
      if (!doc.IsDefined() || doc.IsNull()) {
        // Empty documents (only blanks and comments) are fine; anything else that yaml-cpp
        // reads as "nothing" is malformed, and refusing it keeps the set all-or-nothing.
        if (has_content(text.body)) {
          return fail("policy.bad_yaml", ctx.source + ":" + std::to_string(ctx.line_offset + 1) +
                                             ": malformed YAML: the document is not a resource");
        }
        continue;
      }
      if (auto s = parse_document(ctx, doc, out); !s) return fail(s.error());
    } catch (const YAML::Exception& e) {
      const int line = (e.mark.line >= 0 ? e.mark.line : 0) + 1 + ctx.line_offset;
      return fail("policy.bad_yaml", ctx.source + ":" + std::to_string(line) + ": malformed YAML: " + e.msg);
    } catch (const std::exception& e) {
      return fail("policy.bad_yaml", ctx.source + ":" + std::to_string(ctx.line_offset + 1) + ": malformed YAML: " + e.what());
    }
    remaining -= allowed - ctx.budget;  // an empty document (the `continue` above) spends nothing
  }
  keep_the_later_of_each_name(out);
  return out;
}

}  // namespace mg::policy
