#include "policy/offline_keys.h"

#include <algorithm>
#include <set>

namespace mg::policy {

Result<std::pair<std::string, std::string>> split_key_flag(std::string_view flag) {
  const auto eq = flag.rfind('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == flag.size()) {
    return fail("policy.bad_keys", "--jwks \"" + std::string(flag) +
                                       "\": expected NAME=FILE (NAME: a jwksUri, or the "
                                       "issuer of a rule without jwks or jwksUri)");
  }
  return std::pair{std::string(flag.substr(0, eq)), std::string(flag.substr(eq + 1))};
}

Result<std::shared_ptr<jwt::JwksProvider>> given_keys_provider(const ResourceSet& set,
                                                               const std::vector<GivenKeys>& given) {
  std::set<std::string, std::less<>> wanted;
  for (const auto& ra : set.request_authentications) {
    for (const auto& rule : ra.jwt_rules) {
      if (const auto& name = jwt::remote_keys_name(rule); !name.empty()) wanted.insert(name);
    }
  }
  auto provider = std::make_shared<jwt::JwksProvider>();
  std::set<std::string, std::less<>> seen;
  for (const auto& g : given) {
    if (!wanted.contains(g.name)) {
      std::string names;
      for (const auto& w : wanted) names += (names.empty() ? "" : ", ") + w;
      return fail("policy.bad_keys",
                  "--jwks " + g.name + ": no jwtRule fetches keys from this name (" +
                      (names.empty() ? "no rule needs keys" : "rules need keys for: " + names) + ")");
    }
    if (!seen.insert(g.name).second) return fail("policy.bad_keys", "--jwks " + g.name + ": given twice");
    if (auto s = provider->set_jwks_json(g.name, g.json); !s) {
      return fail("policy.bad_keys", "--jwks " + g.name + ": " + g.from + ": " + s.error().message);
    }
  }
  return provider;
}

std::vector<std::string> names_without_keys(const std::vector<jwt::JwtRule>& rules,
                                            const jwt::JwksProvider& provider) {
  std::vector<std::string> out;
  for (const auto& rule : rules) {
    const auto& name = jwt::remote_keys_name(rule);
    if (name.empty() || provider.get(name) || std::find(out.begin(), out.end(), name) != out.end()) continue;
    out.push_back(name);
  }
  return out;
}

}  // namespace mg::policy
