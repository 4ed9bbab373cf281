// jwt/request_auth.h — the outcome of request authentication (RequestAuthentication / JWT),
// as the authorization engine consumes it. Produced by the jwt module; read by policy.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mg::jwt {

struct RequestAuth {
  enum class Outcome {
    NoToken,        // no token at any configured location: passes, no request principal
    Authenticated,  // a token was present and valid
    Rejected,       // a token was present and failed: the request ends with `status`
  };
  Outcome outcome = Outcome::NoToken;
  int status = 0;       // when Rejected: 401 (bad token), or 403 (audience not allowed, as Envoy)
  std::string reason;   // when Rejected: e.g. "Jwt is expired", "Jwt verification fails"

  // When Authenticated:
  std::string principal;               // "<iss>/<sub>"
  std::string issuer;
  std::string subject;
  std::vector<std::string> audiences;  // `aud`, string or list
  std::string presenter;               // `azp`
  nlohmann::json claims;               // the whole payload (object)
};

}  // namespace mg::jwt
