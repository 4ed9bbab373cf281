#include "jwt/authenticator.h"

#include <algorithm>

#include "jwt/claims.h"

namespace mg::jwt {

// ---- JwksProvider ----

mg::Status JwksProvider::set_jwks_json(const std::string& uri, std::string_view json) {
  {
    std::lock_guard lock(mu_);
    auto it = slots_.find(uri);
    if (it != slots_.end() && it->second.raw == json) return {};  // unchanged: keep caches warm
  }
  auto parsed = parse_jwks(json);
  if (!parsed) return fail(parsed.error());
  auto keys = std::make_shared<const Jwks>(std::move(*parsed));
  std::lock_guard lock(mu_);
  slots_[uri] = Slot{std::string(json), std::move(keys)};
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return {};
}

void JwksProvider::remove(const std::string& uri) {
  std::lock_guard lock(mu_);
  if (slots_.erase(uri) > 0) generation_.fetch_add(1, std::memory_order_acq_rel);
}

std::shared_ptr<const Jwks> JwksProvider::get(const std::string& uri) const {
  std::lock_guard lock(mu_);
  auto it = slots_.find(uri);
  return it == slots_.end() ? nullptr : it->second.keys;
}

// ---- helpers ----

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = lower(c);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding for query values ('+' is a space in forms; JWTs never contain either).
// A malformed escape is kept literally, which then fails base64url decoding: still a 401.
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

void add_rule(std::vector<size_t>& rules, size_t i) {
  if (std::find(rules.begin(), rules.end(), i) == rules.end()) rules.push_back(i);
}

}  // namespace

// ---- Authenticator ----

Authenticator::Authenticator(std::vector<JwtRule> rules, std::shared_ptr<JwksProvider> provider)
    : Authenticator(std::move(rules), std::move(provider), Options{}) {}

Authenticator::Authenticator(std::vector<JwtRule> rules, std::shared_ptr<JwksProvider> provider, Options options)
    : rules_(std::move(rules)),
      provider_(std::move(provider)),
      cache_enabled_(options.cache_capacity > 0),
      cache_(options.cache_capacity) {
  keys_.resize(rules_.size());
  for (size_t i = 0; i < rules_.size(); ++i) {
    const JwtRule& r = rules_[i];
    if (!r.jwks.empty()) {
      auto parsed = parse_jwks(r.jwks);
      if (parsed) {
        keys_[i].inline_keys = std::make_shared<const Jwks>(std::move(*parsed));
      } else {
        keys_[i].error = parsed.error().message;
        config_errors_.push_back("jwtRules issuer '" + r.issuer + "': inline jwks: " + parsed.error().message);
      }
    }

    // Istio's defaults apply only when the rule names no location at all.
    bool any_location = !r.from_headers.empty() || !r.from_params.empty() || !r.from_cookies.empty();
    std::vector<JwtHeaderLocation> headers = r.from_headers;
    std::vector<std::string> params = r.from_params;
    if (!any_location) {
      headers.push_back({"Authorization", "Bearer "});
      params.push_back("access_token");
    }
    for (const auto& h : headers) {
      std::string lname = to_lower(h.name);
      auto it = std::find_if(header_locations_.begin(), header_locations_.end(),
                             [&](const HeaderLocation& l) { return l.lower_name == lname && l.prefix == h.prefix; });
      if (it == header_locations_.end()) it = header_locations_.insert(header_locations_.end(), HeaderLocation{lname, h.prefix, {}});
      add_rule(it->rules, i);
    }
    auto add_named = [i](std::vector<NamedLocation>& locs, const std::string& name) {
      auto it = std::find_if(locs.begin(), locs.end(), [&](const NamedLocation& l) { return l.name == name; });
      if (it == locs.end()) it = locs.insert(locs.end(), NamedLocation{name, {}});
      add_rule(it->rules, i);
    };
    for (const auto& p : params) add_named(param_locations_, p);
    for (const auto& c : r.from_cookies) add_named(cookie_locations_, c);
  }
}

JwtStatus Authenticator::verify_with_rule(const Jwt& jwt, size_t rule_index) const {
  const JwtRule& rule = rules_[rule_index];
  if (!rule.audiences.empty()) {
    bool allowed = std::any_of(jwt.aud.begin(), jwt.aud.end(), [&](const std::string& a) {
      return std::find(rule.audiences.begin(), rule.audiences.end(), a) != rule.audiences.end();
    });
    if (!allowed) return JwtStatus::AudienceNotAllowed;
  }
  std::shared_ptr<const Jwks> keys = keys_[rule_index].inline_keys;
  if (!keys && rule.jwks.empty() && provider_) keys = provider_->get(remote_keys_name(rule));
  if (!keys) return JwtStatus::JwksFetchFail;

  bool matched = false;
  JwtStatus last = JwtStatus::VerificationFail;
  for (const Jwk& key : keys->keys) {
    if (!key_matches(key, jwt.alg, jwt.kid)) continue;
    matched = true;
    verifications_.fetch_add(1, std::memory_order_relaxed);
    last = verify_signature(jwt.alg, key, jwt.signing_input, jwt.signature);
    if (last == JwtStatus::Ok) return JwtStatus::Ok;
  }
  return matched ? last : JwtStatus::JwksKidAlgMismatch;
}

JwtStatus Authenticator::verify_token(std::string_view token, const std::vector<size_t>& allowed_rules, int64_t now,
                                   std::shared_ptr<const VerifiedToken>& out) const {
  if (token.size() > kMaxTokenBytes) return JwtStatus::TooLarge;
  uint64_t generation = provider_ ? provider_->generation() : 0;
  VerifiedTokenCache::Key key{};
  if (cache_enabled_) key = VerifiedTokenCache::key_for(token);
  if (auto hit = cache_enabled_ ? cache_.find(key, now, generation) : nullptr) {
    if (std::find(allowed_rules.begin(), allowed_rules.end(), hit->rule_index) != allowed_rules.end()) {
      Jwt times;
      times.exp = hit->exp;
      times.nbf = hit->nbf;
      JwtStatus st = check_time(times, now);
      if (st != JwtStatus::Ok) return st;
      out = std::move(hit);
      return JwtStatus::Ok;
    }
    // Verified before for a rule that does not own this location: judge it afresh.
  }

  Jwt jwt;
  JwtStatus st = parse_jwt(token, jwt);
  if (st != JwtStatus::Ok) return st;

  std::vector<size_t> candidates;
  for (size_t i : allowed_rules)
    if (!jwt.iss.empty() && rules_[i].issuer == jwt.iss) candidates.push_back(i);
  if (candidates.empty()) return JwtStatus::UnknownIssuer;

  st = check_time(jwt, now);
  if (st != JwtStatus::Ok) return st;

  JwtStatus first_failure = JwtStatus::Ok;
  for (size_t rule_index : candidates) {
    JwtStatus rs = verify_with_rule(jwt, rule_index);
    if (rs == JwtStatus::Ok) {
      auto verified = std::make_shared<VerifiedToken>();
      verified->rule_index = rule_index;
      verified->exp = jwt.exp;
      verified->nbf = jwt.nbf;
      verified->payload_b64 = std::string(jwt.payload_b64);
      RequestAuth& a = verified->auth;
      a.outcome = RequestAuth::Outcome::Authenticated;
      a.status = 200;
      a.issuer = jwt.iss;
      a.subject = jwt.sub;
      a.principal = jwt.iss + "/" + jwt.sub;
      a.audiences = jwt.aud;
      a.presenter = jwt.azp;
      // The raw payload is kept only when a claim must be copied to a header as sent.
      if (!rules_[rule_index].output_claim_to_headers.empty()) verified->payload = jwt.payload;
      a.claims = normalize_claims(std::move(jwt.payload));
      if (cache_enabled_) cache_.insert(key, verified, now, generation);
      out = std::move(verified);
      return JwtStatus::Ok;
    }
    if (first_failure == JwtStatus::Ok) first_failure = rs;
  }
  return first_failure;
}

AuthResult Authenticator::authenticate_shared(const HeaderList& headers, std::string_view path_with_query, int64_t now) const {
  AuthResult result;
  bool any_token = false;
  // Returns false when the request is rejected (stop looking).
  auto consider = [&](std::string_view token, const std::vector<size_t>& rules, TokenSource source, std::string_view name) {
    if (token.empty()) return true;
    any_token = true;
    std::shared_ptr<const VerifiedToken> verified;
    JwtStatus st = verify_token(token, rules, now, verified);
    if (st != JwtStatus::Ok) {
      result.status = st;
      result.tokens.clear();
      return false;
    }
    result.tokens.push_back(TokenUse{source, std::string(name), std::move(verified)});
    return true;
  };

  for (const auto& loc : header_locations_) {
    for (const auto& [name, value] : headers) {
      if (!iequals(name, loc.lower_name)) continue;
      std::string_view v = value;
      if (!loc.prefix.empty()) {
        // RFC 7235: the auth scheme is case-insensitive. A header without the prefix simply
        // carries no token for this location (e.g. "Authorization: Basic ...").
        if (!istarts_with(v, loc.prefix)) continue;
        v.remove_prefix(loc.prefix.size());
      }
      if (!consider(trim(v), loc.rules, TokenSource::Header, loc.lower_name)) return result;
    }
  }

  if (!param_locations_.empty()) {
    size_t q = path_with_query.find('?');
    if (q != std::string_view::npos) {
      std::string_view query = path_with_query.substr(q + 1);
      if (size_t hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);
      while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        size_t eq = pair.find('=');
        std::string_view pname = pair.substr(0, eq);
        std::string_view pvalue = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        for (const auto& loc : param_locations_) {
          if (pname != loc.name) continue;
          std::string decoded = percent_decode(pvalue);
          if (!consider(decoded, loc.rules, TokenSource::Param, loc.name)) return result;
        }
      }
    }
  }

  if (!cookie_locations_.empty()) {
    for (const auto& [name, value] : headers) {
      if (!iequals(name, "cookie")) continue;
      std::string_view rest = value;
      while (!rest.empty()) {
        size_t semi = rest.find(';');
        std::string_view pair = trim(rest.substr(0, semi));
        rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
        size_t eq = pair.find('=');
        if (eq == std::string_view::npos) continue;
        std::string_view cname = trim(pair.substr(0, eq));
        std::string_view cvalue = trim(pair.substr(eq + 1));
        if (cvalue.size() >= 2 && cvalue.front() == '"' && cvalue.back() == '"') cvalue = cvalue.substr(1, cvalue.size() - 2);
        for (const auto& loc : cookie_locations_) {
          if (cname != loc.name) continue;
          if (!consider(cvalue, loc.rules, TokenSource::Cookie, loc.name)) return result;
        }
      }
    }
  }

  result.status = any_token && !result.tokens.empty() ? JwtStatus::Ok : JwtStatus::Missing;
  return result;
}

RequestAuth AuthResult::to_request_auth() const {
  RequestAuth out;
  if (status == JwtStatus::Ok && !tokens.empty() && tokens.front().token) {
    out = tokens.front().token->auth;
    return out;
  }
  if (status == JwtStatus::Missing || status == JwtStatus::Ok) {
    out.outcome = RequestAuth::Outcome::NoToken;
    return out;
  }
  out.outcome = RequestAuth::Outcome::Rejected;
  out.status = http_status(status);
  out.reason = status_message(status);
  return out;
}

RequestAuth Authenticator::authenticate(const HeaderList& headers, std::string_view path_with_query, int64_t now_unix) const {
  return authenticate_shared(headers, path_with_query, now_unix).to_request_auth();
}

HeaderMutations Authenticator::header_mutations(const AuthResult& result) const {
  HeaderMutations m;
  if (result.status != JwtStatus::Ok) return m;
  auto add_unique = [](std::vector<std::string>& v, const std::string& s) {
    if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
  };
  for (const auto& use : result.tokens) {
    if (!use.token || use.token->rule_index >= rules_.size()) continue;
    const JwtRule& rule = rules_[use.token->rule_index];
    if (!rule.output_payload_to_header.empty())
      m.set_headers.emplace_back(to_lower(rule.output_payload_to_header), use.token->payload_b64);
    for (const auto& c2h : rule.output_claim_to_headers) {
      if (auto v = claim_header_value(use.token->payload, c2h.claim)) m.set_headers.emplace_back(to_lower(c2h.header), std::move(*v));
    }
    if (!rule.forward_original_token) {
      switch (use.source) {
        case TokenSource::Header: add_unique(m.remove_headers, use.name); break;
        case TokenSource::Param: add_unique(m.remove_params, use.name); break;
        case TokenSource::Cookie: add_unique(m.remove_cookies, use.name); break;
      }
    }
  }
  return m;
}

mg::Status validate_rule(const JwtRule& rule) {
  if (rule.issuer.empty()) return fail("jwt.rule_no_issuer", "jwtRules entry without issuer");
  if (!rule.jwks.empty()) {
    auto parsed = parse_jwks(rule.jwks);
    if (!parsed) return fail("jwt.rule_bad_jwks", "issuer '" + rule.issuer + "': jwks: " + parsed.error().message);
  }
  if (!rule.jwks_uri.empty() && rule.jwks_uri.rfind("https://", 0) != 0 && rule.jwks_uri.rfind("http://", 0) != 0)
    return fail("jwt.rule_bad_jwks_uri", "issuer '" + rule.issuer + "': jwksUri must be http:// or https://");
  for (const auto& h : rule.from_headers)
    if (h.name.empty()) return fail("jwt.rule_bad_location", "issuer '" + rule.issuer + "': fromHeaders entry without name");
  for (const auto& p : rule.from_params)
    if (p.empty()) return fail("jwt.rule_bad_location", "issuer '" + rule.issuer + "': empty fromParams entry");
  for (const auto& c : rule.from_cookies)
    if (c.empty()) return fail("jwt.rule_bad_location", "issuer '" + rule.issuer + "': empty fromCookies entry");
  return {};
}

}  // namespace mg::jwt
