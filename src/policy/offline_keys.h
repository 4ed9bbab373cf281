// policy/offline_keys.h — key sets handed to an offline decision (`meshguardctl authz check
// --jwks NAME=FILE`) in place of the keys a proxy fetches: NAME is a rule's jwksUri, or its issuer
// for a rule whose keys come by OpenID discovery — the name the proxy keeps the fetched keys under
// (jwt::remote_keys_name), so the offline decision verifies through the same JwksProvider path.
// Pure: the caller reads the files.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "jwt/authenticator.h"
#include "jwt/rule.h"
#include "policy/resources.h"

namespace mg::policy {

// "NAME=FILE" split at its last '=' (a jwksUri may hold '=' in its query; a file name rarely does).
Result<std::pair<std::string, std::string>> split_key_flag(std::string_view flag);

struct GivenKeys {
  std::string name;  // a jwksUri, or a discovering rule's issuer
  std::string json;  // the JWKS document
  std::string from;  // where it was read (the file), for error messages
};

// A provider holding each given key set under its name. Refused (policy.bad_keys): a name that is
// no jwtRule's remote key name in `set` (a typo would otherwise leave the rule without keys and
// look like a bad token), a name given twice, a document that is not a JWKS.
Result<std::shared_ptr<jwt::JwksProvider>> given_keys_provider(const ResourceSet& set,
                                                               const std::vector<GivenKeys>& given);

// The remote key names of `rules` for which `provider` holds no keys, in rule order, once each.
std::vector<std::string> names_without_keys(const std::vector<jwt::JwtRule>& rules,
                                            const jwt::JwksProvider& provider);

}  // namespace mg::policy
