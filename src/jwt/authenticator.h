// jwt/authenticator.h — RequestAuthentication as Istio/Envoy jwt_authn does it, for the proxy
// and for `meshguardctl authz check`.
//
// Semantics (see docs/ARCHITECTURE.md "JWT"):
// - Tokens are looked for at every location configured by any rule (fromHeaders with prefix,
//   default `Authorization: Bearer `; fromParams, default `access_token`; fromCookies).
// - No token anywhere → NoToken (passes, no principal).
// - Every token found must verify (Envoy: "if a request has multiple tokens, all of them must
//   be valid"); the first failure rejects the request with its status (401, or 403 for a
//   disallowed audience). The principal comes from the first token found (rule order, then
//   headers, params, cookies).
// - A token's `iss` must be the issuer of a rule that configured the location it was found
//   at; otherwise "Jwt issuer is not configured".
// - Check order as Envoy: structure → issuer → exp/nbf (60 s skew) → audiences → key
//   selection → signature.
// - Rules with only jwksUri, or only an issuer (OpenID discovery), take keys from a JwksProvider
//   the caller feeds under remote_keys_name(rule) (see jwks_fetcher.h). Until keys are there,
//   such tokens fail closed with 401 "Jwks remote fetch is failed"; requests without a token
//   still pass.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "jwt/jwk.h"
#include "jwt/jws.h"
#include "jwt/request_auth.h"
#include "jwt/rule.h"
#include "jwt/token_cache.h"

namespace mg::jwt {

// Request headers as received; names in any case. Values are not copied by authenticate().
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Key sets fetched from jwksUri or discovered from an issuer, by remote_keys_name(). Thread-safe.
// Every change of content bumps generation(), which invalidates cached verifications made with
// older keys.
class JwksProvider {
 public:
  // Parses and stores; a bad document leaves the previous keys in place and fails.
  mg::Status set_jwks_json(const std::string& uri, std::string_view json);
  void remove(const std::string& uri);
  std::shared_ptr<const Jwks> get(const std::string& uri) const;
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  struct Slot {
    std::string raw;
    std::shared_ptr<const Jwks> keys;
  };
  mutable std::mutex mu_;
  std::map<std::string, Slot, std::less<>> slots_;
  std::atomic<uint64_t> generation_{1};
};

enum class TokenSource { Header, Param, Cookie };

// One verified token and where it came from.
struct TokenUse {
  TokenSource source = TokenSource::Header;
  std::string name;  // header name (lower case), parameter or cookie name
  std::shared_ptr<const VerifiedToken> token;
};

// The cheap form of the outcome: verified tokens are shared, not copied.
struct AuthResult {
  JwtStatus status = JwtStatus::Missing;  // Ok (≥ 1 token, all valid), Missing, or why it failed
  std::vector<TokenUse> tokens;     // when Ok: the verified tokens in extraction order

  bool rejected() const { return status != JwtStatus::Ok && status != JwtStatus::Missing; }
  RequestAuth to_request_auth() const;
};

// What the proxy does to the request before forwarding it (Envoy forward_payload_header,
// claim_to_headers, forward=false).
struct HeaderMutations {
  std::vector<std::pair<std::string, std::string>> set_headers;  // replace any existing value
  std::vector<std::string> remove_headers;                       // lower case
  std::vector<std::string> remove_params;
  std::vector<std::string> remove_cookies;
};

class Authenticator {
 public:
  struct Options {
    size_t cache_capacity = 4096;  // verified tokens kept; 0 disables the cache
  };

  // Never fails: a rule whose inline JWKS does not parse fails closed (its tokens get 401)
  // and is listed in config_errors(). Use validate_rule() to refuse such config up front.
  explicit Authenticator(std::vector<JwtRule> rules, std::shared_ptr<JwksProvider> provider = nullptr);
  Authenticator(std::vector<JwtRule> rules, std::shared_ptr<JwksProvider> provider, Options options);

  // Full outcome for the authz engine (copies claims out of the cache).
  RequestAuth authenticate(const HeaderList& headers, std::string_view path_with_query, int64_t now_unix) const;
  // Same decision, sharing the cached verified tokens: no claim copies on a cache hit.
  AuthResult authenticate_shared(const HeaderList& headers, std::string_view path_with_query, int64_t now_unix) const;

  HeaderMutations header_mutations(const AuthResult& result) const;

  const std::vector<JwtRule>& rules() const { return rules_; }
  const std::vector<std::string>& config_errors() const { return config_errors_; }
  // Signature verifications performed so far (cache hits do not count).
  uint64_t signature_verifications() const { return verifications_.load(std::memory_order_relaxed); }
  size_t cache_size() const { return cache_.size(); }

 private:
  struct HeaderLocation {
    std::string lower_name;
    std::string prefix;
    std::vector<size_t> rules;
  };
  struct NamedLocation {
    std::string name;
    std::vector<size_t> rules;
  };
  struct RuleKeys {
    std::shared_ptr<const Jwks> inline_keys;  // null: use the provider (jwks_uri)
    std::string error;                        // inline JWKS that did not parse
  };

  JwtStatus verify_token(std::string_view token, const std::vector<size_t>& allowed_rules, int64_t now,
                      std::shared_ptr<const VerifiedToken>& out) const;
  JwtStatus verify_with_rule(const Jwt& jwt, size_t rule_index) const;

  std::vector<JwtRule> rules_;
  std::vector<RuleKeys> keys_;
  std::shared_ptr<JwksProvider> provider_;
  std::vector<HeaderLocation> header_locations_;
  std::vector<NamedLocation> param_locations_;
  std::vector<NamedLocation> cookie_locations_;
  std::vector<std::string> config_errors_;
  bool cache_enabled_;
  mutable VerifiedTokenCache cache_;
  mutable std::atomic<uint64_t> verifications_{0};
};

// Static checks the policy module may run on each jwtRules[] entry: issuer present, the inline
// JWKS parses (when given), jwksUri is http(s), header/param/cookie names non-empty. A rule
// with neither jwks nor jwksUri is accepted: its keys come from OpenID discovery, and until
// (unless) that succeeds its tokens fail closed with 401.
mg::Status validate_rule(const JwtRule& rule);

}  // namespace mg::jwt
