// policy/parse_destination_rule.cpp — Istio's DestinationRule (networking.istio.io v1, v1beta1,
// v1alpha3) for policy::parse_resources: spec → policy::DestinationRule with the shared walkers of
// parse_internal.h (parse.cpp dispatches here by kind). Only what meshguard acts on is accepted —
// `host` and `trafficPolicy.tls{mode, sni, caCertificates}` — and every other field is refused
// with file:line: a load-balancer or outlier setting that parsed and then did nothing would
// mislead, and a silently ignored TLS field could weaken verification.
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
  if (tls.mode != DestinationRule::Tls::Mode::Simple && (!tls.sni.empty() || !tls.ca_certificates.empty())) {
    return err(ctx, n,
               std::string("trafficPolicy.tls: sni and caCertificates apply to mode SIMPLE only, not ") +
                   to_string(tls.mode));
  }
  return {};
}

}  // namespace

Status parse_destination_rule(Ctx& ctx, const YAML::Node& spec, DestinationRule& r) {
  if (!spec.IsDefined() || spec.IsNull()) return err(ctx, spec, "DestinationRule.spec is required (host)");
  auto s = for_each_field(
      ctx, spec, "DestinationRule.spec", {"host", "trafficPolicy"},
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
        return for_each_field(ctx, v, "DestinationRule.spec.trafficPolicy", {"tls"},
                              [&](const std::string&, const YAML::Node& t) -> Status {
                                DestinationRule::Tls tls;
                                if (auto st = parse_tls(ctx, t, tls); !st) return st;
                                r.tls = std::move(tls);
                                return {};
                              });
      });
  if (!s) return s;
  if (r.host.empty()) return err(ctx, spec, "DestinationRule.spec.host is required");
  return {};
}

}  // namespace mg::policy::detail
