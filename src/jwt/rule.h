// jwt/rule.h — one `RequestAuthentication.jwtRules[]` entry as plain data.
// The policy module parses and validates YAML into this; the jwt module turns it into a
// verifier. Kept free of dependencies so both sides can include it.
#pragma once

#include <string>
#include <vector>

namespace mg::jwt {

struct JwtHeaderLocation {
  std::string name;    // header name as configured (matched case-insensitively)
  std::string prefix;  // e.g. "Bearer "; stripped from the value before parsing
};

struct ClaimToHeader {
  std::string header;  // header to set on the forwarded request
  std::string claim;   // claim name (nested with '.')
};

struct JwtRule {
  std::string issuer;                  // required
  std::vector<std::string> audiences;  // empty: no audience check
  std::string jwks;                    // inline JWKS JSON (takes precedence over jwks_uri)
  std::string jwks_uri;                // fetched by the proxy / control plane
  std::vector<JwtHeaderLocation> from_headers;  // empty: "Authorization: Bearer "
  std::vector<std::string> from_params;         // empty: "access_token"
  std::vector<std::string> from_cookies;
  std::string output_payload_to_header;
  std::vector<ClaimToHeader> output_claim_to_headers;
  bool forward_original_token = false;
  int timeout_ms = 5000;  // jwksUri / discovery fetch timeout ("timeout" field, a duration)
};

// A rule with neither jwks nor jwksUri gets its keys by OpenID discovery from its issuer
// (`<issuer>/.well-known/openid-configuration` → `jwks_uri`), as Istio does.
inline bool discovers_keys(const JwtRule& rule) { return rule.jwks.empty() && rule.jwks_uri.empty(); }

// The name a rule's fetched keys are kept under in a JwksProvider: its jwksUri, or its issuer
// when the keys are discovered. "" for a rule with inline keys.
inline const std::string& remote_keys_name(const JwtRule& rule) {
  static const std::string none;
  if (!rule.jwks.empty()) return none;
  return rule.jwks_uri.empty() ? rule.issuer : rule.jwks_uri;
}

}  // namespace mg::jwt
