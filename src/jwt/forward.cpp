#include "jwt/forward.h"

#include <algorithm>
#include <string>
#include <string_view>

namespace mg::jwt {
namespace {

// `query` without the parameters named in `names` (pairs kept verbatim, in order).
std::string without_params(std::string_view query, const std::vector<std::string>& names) {
  std::string out;
  while (true) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    std::string_view name = pair.substr(0, pair.find('='));
    if (!pair.empty() && std::find(names.begin(), names.end(), name) == names.end()) {
      if (!out.empty()) out.push_back('&');
      out.append(pair);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

// A Cookie header value without the cookies named in `names`.
std::string without_cookies(std::string_view header, const std::vector<std::string>& names) {
  std::string out;
  while (true) {
    auto semi = header.find(';');
    std::string_view item = header.substr(0, semi);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    std::string_view name = item.substr(0, item.find('='));
    if (!item.empty() && std::find(names.begin(), names.end(), name) == names.end()) {
      if (!out.empty()) out += "; ";
      out.append(item);
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return out;
}

}  // namespace

void apply_to_forwarded(http::Request& request, const HeaderMutations& mutations,
                        const std::vector<JwtRule>& rules) {
  for (const auto& rule : rules) {
    if (!rule.output_payload_to_header.empty()) request.headers.remove(rule.output_payload_to_header);
    for (const auto& c : rule.output_claim_to_headers) request.headers.remove(c.header);
  }
  for (const auto& name : mutations.remove_headers) request.headers.remove(name);
  if (!mutations.remove_params.empty() && !request.query.empty()) {
    request.query = without_params(request.query, mutations.remove_params);
    request.target = request.query.empty() ? request.path : request.path + "?" + request.query;
  }
  if (!mutations.remove_cookies.empty()) {
    std::vector<std::string> kept;
    for (std::string_view value : request.headers.get_all("cookie")) {
      std::string rest = without_cookies(value, mutations.remove_cookies);
      if (!rest.empty()) kept.push_back(std::move(rest));
    }
    request.headers.remove("cookie");
    for (auto& value : kept) request.headers.add("cookie", std::move(value));
  }
  for (const auto& [name, value] : mutations.set_headers) request.headers.set(name, value);
}

}  // namespace mg::jwt
