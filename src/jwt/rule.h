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
  int timeout_ms = 5000;  // jwksUri fetch timeout ("timeout" field, a duration)
};

}  // namespace mg::jwt
