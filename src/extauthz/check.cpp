#include "extauthz/check.h"

#include <algorithm>

namespace mg::extauthz {
namespace {

bool iprefix(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && http::iequals(s.substr(0, prefix.size()), prefix);
}

bool isuffix(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && http::iequals(s.substr(s.size() - suffix.size()), suffix);
}

}  // namespace

bool proxy_owned_header(std::string_view name) {
  for (std::string_view f : {"host", "content-length", "transfer-encoding", "connection", "keep-alive",
                             "upgrade", "proxy-connection", "te", "trailer"}) {
    if (http::iequals(name, f)) return true;
  }
  return false;
}

bool header_pattern_matches(std::string_view pattern, std::string_view name) {
  if (pattern.size() > 1 && pattern.back() == '*')
    return iprefix(name, pattern.substr(0, pattern.size() - 1));
  if (pattern.size() > 1 && pattern.front() == '*') return isuffix(name, pattern.substr(1));
  if (pattern == "*") return true;
  return http::iequals(pattern, name);
}

bool any_pattern_matches(const std::vector<std::string>& patterns, std::string_view name) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return header_pattern_matches(p, name); });
}

http::Request build_http_check(const policy::ExtensionProvider& p, const http::Request& original,
                               const CheckBody* body) {
  http::Request out;
  out.method = original.method;
  std::string target = original.path;
  if (!original.query.empty()) (target += '?') += original.query;
  out.path = p.path_prefix + original.path;
  out.query = original.query;
  out.target = p.path_prefix + target;
  out.host = original.host;
  out.version_minor = 1;
  out.keep_alive = true;
  out.headers.add("Host", original.host);
  for (const auto& h : original.headers) {
    if (proxy_owned_header(h.name)) continue;
    if (http::iequals(h.name, "authorization") ||
        any_pattern_matches(p.include_request_headers_in_check, h.name)) {
      out.headers.add(h.name, h.value);
    }
  }
  for (const auto& [name, value] : p.include_additional_headers_in_check) out.headers.set(name, value);
  const bool with_body = body && body->present;
  if (with_body) out.headers.set("x-envoy-auth-partial-body", body->partial ? "true" : "false");
  const size_t length = with_body ? body->data.size() : 0;
  out.headers.set("Content-Length", std::to_string(length));
  out.framing = length ? http::BodyFraming::ContentLength : http::BodyFraming::None;
  out.content_length = length;
  return out;
}

CheckResult interpret_http_check(const policy::ExtensionProvider& p, const http::Response& response,
                                 std::string body) {
  CheckResult r;
  if (response.status == 200) {
    r.kind = CheckResult::Kind::Allow;
    r.status = 200;
    for (const auto& h : response.headers) {
      if (proxy_owned_header(h.name)) continue;
      if (any_pattern_matches(p.headers_to_upstream_on_allow, h.name)) r.upstream_set.push_back(h);
    }
    // Repeated fields of one name reach the app as repeated fields, as the provider sent them.
    std::vector<http::Header> set;
    for (auto& h : r.upstream_set) {
      auto same = std::find_if(set.begin(), set.end(),
                               [&](const http::Header& s) { return http::iequals(s.name, h.name); });
      if (same == set.end()) {
        set.push_back(std::move(h));
      } else {
        r.upstream_append.push_back(std::move(h));
      }
    }
    r.upstream_set = std::move(set);
    return r;
  }
  if (response.status >= 500) {
    return CheckResult::failure("provider answered HTTP " + std::to_string(response.status));
  }
  r.kind = CheckResult::Kind::Deny;
  r.status = response.status;
  r.body = std::move(body);
  const bool all = p.headers_to_downstream_on_deny.empty();
  for (const auto& h : response.headers) {
    if (proxy_owned_header(h.name)) continue;
    const bool always = http::iequals(h.name, "path") || http::iequals(h.name, "status") ||
                        http::iequals(h.name, "www-authenticate") || http::iequals(h.name, "location");
    if (all || always || any_pattern_matches(p.headers_to_downstream_on_deny, h.name))
      r.downstream_headers.push_back(h);
  }
  return r;
}

ErrorOutcome on_error(const policy::ExtensionProvider& p) {
  return p.fail_open ? ErrorOutcome{true, 200} : ErrorOutcome{false, p.status_on_error};
}

void apply_upstream_mutations(const CheckResult& r, http::Headers& headers) {
  for (const auto& name : r.upstream_remove) headers.remove(name);
  for (const auto& h : r.upstream_set) headers.set(h.name, h.value);
  for (const auto& h : r.upstream_append) headers.add(h.name, h.value);
  for (const auto& h : r.upstream_add_if_absent)
    if (!headers.contains(h.name)) headers.add(h.name, h.value);
  for (const auto& h : r.upstream_set_if_present)
    if (headers.contains(h.name)) headers.set(h.name, h.value);
}

}  // namespace mg::extauthz
