// policy/request_authn.h — the request-authentication step of the decision pipeline: finds a
// JWT at the locations the applicable RequestAuthentication jwtRules name and validates it.
// The single seam between policy and jwt: the jwt module owns this function's body.
//   no rules                       → NoToken (tokens are ignored, as Istio does)
//   no token at any location       → NoToken (passes, no request principal)
//   a token                        → Authenticated, or Rejected with status 401 / 403
// Locations: fromHeaders (name + prefix), fromParams (query), fromCookies; a rule naming none
// uses `Authorization: Bearer <token>` and the `access_token` query parameter.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "jwt/authenticator.h"
#include "jwt/request_auth.h"
#include "jwt/rule.h"
#include "policy/request.h"

namespace mg::policy {

// The shared offline authenticator for `rules`: one per distinct rule set (inline JWKS parsed
// once, verified-token cache shared by later calls), with no JwksProvider — keys behind jwksUri
// are never fetched here, so such tokens fail closed with 401. Thread-safe; bounded.
std::shared_ptr<const jwt::Authenticator> offline_authenticator(const std::vector<jwt::JwtRule>& rules);

jwt::RequestAuth authenticate_request(const std::vector<jwt::JwtRule>& rules, const HttpRequest& req, int64_t now);

// The token `rule` would read from `req`, or empty. Exposed for the jwt module and tests.
std::string_view find_token(const jwt::JwtRule& rule, const HttpRequest& req);

}  // namespace mg::policy
