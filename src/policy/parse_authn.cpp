// policy/parse_authn.cpp — the authentication kinds for policy::parse_resources: PeerAuthentication
// (mTLS mode per workload and port) and RequestAuthentication (JWT rules), with the shared walkers
// of parse_internal.h; parse.cpp dispatches here by kind.
#include <nlohmann/json.hpp>

#include <string>
#include <utility>

#include "jwt/rule.h"
#include "policy/match.h"
#include "policy/parse.h"
#include "policy/parse_internal.h"

namespace mg::policy::detail {

namespace {

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

}  // namespace

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

}  // namespace mg::policy::detail
