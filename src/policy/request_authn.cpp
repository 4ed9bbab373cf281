#include "policy/request_authn.h"

#include <map>
#include <memory>
#include <mutex>

#include "jwt/authenticator.h"
#include "policy/match.h"

namespace mg::policy {

namespace {

std::string_view query_param(std::string_view path, std::string_view name) {
  auto q = path.find('?');
  if (q == std::string_view::npos) return {};
  auto query = path.substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name && eq + 1 < pair.size()) {
      return pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return {};
}

std::string_view cookie(const HttpRequest& req, std::string_view name) {
  const auto* header = req.header("cookie");
  if (!header) return {};
  std::string_view rest = *header;
  while (!rest.empty()) {
    const auto semi = rest.find(';');
    auto item = rest.substr(0, semi);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    const auto eq = item.find('=');
    if (eq != std::string_view::npos && item.substr(0, eq) == name && eq + 1 < item.size()) {
      return item.substr(eq + 1);
    }
    if (semi == std::string_view::npos) break;
    rest = rest.substr(semi + 1);
  }
  return {};
}

std::string_view header_token(const HttpRequest& req, std::string_view name, std::string_view prefix) {
  const auto* value = req.header(name);
  if (!value) return {};
  std::string_view v = *value;
  if (!prefix.empty()) {
    if (v.size() < prefix.size() || !iequals(v.substr(0, prefix.size()), prefix)) return {};
    v.remove_prefix(prefix.size());
  }
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  return v;
}

}  // namespace

std::string_view find_token(const jwt::JwtRule& rule, const HttpRequest& req) {
  if (rule.from_headers.empty() && rule.from_params.empty() && rule.from_cookies.empty()) {
    if (auto t = header_token(req, "authorization", "Bearer "); !t.empty()) return t;
    return query_param(req.path, "access_token");
  }
  for (const auto& h : rule.from_headers) {
    if (auto t = header_token(req, h.name, h.prefix); !t.empty()) return t;
  }
  for (const auto& p : rule.from_params) {
    if (auto t = query_param(req.path, p); !t.empty()) return t;
  }
  for (const auto& c : rule.from_cookies) {
    if (auto t = cookie(req, c); !t.empty()) return t;
  }
  return {};
}

std::shared_ptr<const jwt::Authenticator> offline_authenticator(const std::vector<jwt::JwtRule>& rules) {
  // Looked up by the rules' content. The map is leaked on purpose: it owns OpenSSL keys, which
  // must not be freed after OpenSSL's atexit cleanup.
  static std::mutex mu;
  static auto* built = new std::map<std::string, std::shared_ptr<const jwt::Authenticator>>();
  std::string fingerprint;
  for (const auto& r : rules) {
    for (const std::string* field : {&r.issuer, &r.jwks, &r.jwks_uri, &r.output_payload_to_header}) {
      fingerprint += *field;
      fingerprint += '\x1f';
    }
    for (const auto& a : r.audiences) fingerprint += "a:" + a + '\x1f';
    for (const auto& h : r.from_headers) fingerprint += "h:" + h.name + '\x1d' + h.prefix + '\x1f';
    for (const auto& p : r.from_params) fingerprint += "p:" + p + '\x1f';
    for (const auto& c : r.from_cookies) fingerprint += "c:" + c + '\x1f';
    for (const auto& c : r.output_claim_to_headers) fingerprint += "o:" + c.header + '\x1d' + c.claim + '\x1f';
    fingerprint += r.forward_original_token ? "f1" : "f0";
    fingerprint += '\x1e';
  }
  std::shared_ptr<const jwt::Authenticator> auth;
  {
    std::lock_guard lock(mu);
    if (auto it = built->find(fingerprint); it != built->end()) auth = it->second;
  }
  if (!auth) {
    auto fresh = std::make_shared<const jwt::Authenticator>(rules);
    std::lock_guard lock(mu);
    if (built->size() >= 64) built->clear();  // bounded: config churn cannot grow it forever
    auth = built->emplace(std::move(fingerprint), std::move(fresh)).first->second;
  }
  return auth;
}

jwt::RequestAuth authenticate_request(const std::vector<jwt::JwtRule>& rules, const HttpRequest& req, int64_t now) {
  return offline_authenticator(rules)->authenticate(req.headers, req.path, now);
}

}  // namespace mg::policy
