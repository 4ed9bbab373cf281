#include "proxy/destination_rules.h"

#include <algorithm>
#include <cctype>

#include "tls/origination.h"

namespace mg::proxy {

std::string host_without_port(std::string_view authority) {
  std::string_view host = authority;
  if (host.starts_with("[")) {
    auto end = host.find(']');
    host = end == std::string_view::npos ? host : host.substr(1, end - 1);
  } else if (auto colon = host.rfind(':'); colon != std::string_view::npos && host.find(':') == colon) {
    host = host.substr(0, colon);
  }
  if (host.ends_with(".")) host.remove_suffix(1);
  std::string out(host);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<std::shared_ptr<const DestinationRules>> DestinationRules::build(const policy::ResourceSet& resources,
                                                                        const std::string& own_ns,
                                                                        const std::string& root_ns) {
  auto out = std::make_shared<DestinationRules>();
  for (const auto& r : resources.destination_rules) {
    Entry e;
    e.rule = r;
    e.rank = r.meta.ns == own_ns ? 0 : r.meta.ns == root_ns ? 1 : 2;
    // Every tls of the rule: its policy's, its port-level ones, its subsets' and theirs.
    std::vector<const policy::DestinationRule::Tls*> all;
    auto collect = [&](const policy::DestinationRule::TrafficPolicy& p) {
      if (p.tls) all.push_back(&*p.tls);
      for (const auto& ps : p.port_level)
        if (ps.tls) all.push_back(&*ps.tls);
    };
    collect(r.traffic_policy);
    for (const auto& sub : r.subsets) collect(sub.traffic_policy);
    for (const auto* t : all) {
      if (t->mode != policy::DestinationRule::Tls::Mode::Simple || out->contexts_.contains(t->ca_certificates)) continue;
      auto ctx = tls::origination_context(t->ca_certificates);
      if (!ctx) {
        return fail("policy.destination_rule_ca", r.meta.source + ":" + std::to_string(r.meta.line) +
                                                      ": DestinationRule " + r.meta.full_name() + ": " +
                                                      ctx.error().message);
      }
      SSL_CTX_up_ref(ctx->get());  // asio::ssl::context takes one reference; ours is released below
      out->contexts_.emplace(t->ca_certificates, std::make_shared<asio::ssl::context>(ctx->get()));
    }
    out->rules_.push_back(std::move(e));
  }
  // Stable: equal ranks keep load order.
  std::stable_sort(out->rules_.begin(), out->rules_.end(),
                   [](const Entry& a, const Entry& b) { return a.rank < b.rank; });
  return std::shared_ptr<const DestinationRules>(std::move(out));
}

const DestinationRules::Entry* DestinationRules::decide(std::string_view authority) const {
  const std::string host = host_without_port(authority);
  const Entry* wildcard = nullptr;
  for (const auto& e : rules_) {
    if (!e.rule.matches(host)) continue;
    if (!e.rule.host.starts_with("*.")) return &e;  // the best-ranked exact rule
    if (!wildcard) wildcard = &e;
  }
  return wildcard;
}

const policy::DestinationRule* DestinationRules::find(std::string_view host) const {
  const Entry* e = decide(host);
  return e ? &e->rule : nullptr;
}

std::optional<OriginTls> DestinationRules::origination(std::string_view host, uint32_t port,
                                                       std::string_view subset) const {
  auto up = upstream(host, port, subset);
  return up ? up->origin : std::nullopt;
}

Result<DestinationRules::Upstream> DestinationRules::upstream(std::string_view host, uint32_t port,
                                                              std::string_view subset) const {
  const Entry* e = decide(host);
  if (!e) {
    if (!subset.empty())
      return fail("subset_not_found", "no DestinationRule names host " + host_without_port(host) + " (subset \"" +
                                          std::string(subset) + "\")");
    return Upstream{};
  }
  auto eff = e->rule.effective(port, subset);
  if (!eff) {
    return fail("subset_not_found", "DestinationRule " + e->rule.meta.full_name() + " has no subset \"" +
                                        std::string(subset) + "\"");
  }
  Upstream out;
  out.load_balancer = eff->load_balancer;
  if (eff->tls && eff->tls->mode == policy::DestinationRule::Tls::Mode::Simple) {
    out.origin = OriginTls{e->rule.meta.full_name(), eff->tls->sni.empty() ? host_without_port(host) : eff->tls->sni,
                           contexts_.at(eff->tls->ca_certificates)};
  }
  return out;
}

}  // namespace mg::proxy
