// rego/builtins_jwt.cpp — io.jwt.decode, io.jwt.verify_{rs,ps,es,hs}{256,384,512} / verify_eddsa and
// io.jwt.decode_verify with OPA's semantics and messages. Keys come from a PEM certificate, a PEM
// public key, or a JWK / JWKS; signatures are checked by src/jwt (jwk.h: verify_signature), HMACs by
// src/crypto. Token parsing is OPA's (three dot-separated base64url parts, any alg in the header),
// which is more permissive than the proxy's RequestAuthentication parser on purpose: policies
// decide what to accept.
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include <cstring>
#include <functional>

#include <nlohmann/json.hpp>

#include "crypto/openssl.h"
#include "jwt/jwk.h"
#include "rego/builtins_util.h"
#include "rego/go_encoding.h"
#include "rego/go_strings.h"

namespace mg::rego {
namespace {

using bi::Args;
using bi::want;

struct Token {
  std::string header, payload, signature;  // the base64url parts
  Value decoded_header;
};

Result<Token> split_token(const std::string& s) {
  if (s.find('.') == std::string::npos) return fail("jwt", "encoded JWT had no period separators");
  auto parts = go::split(s, ".");
  if (parts.size() != 3)
    return fail("jwt", "encoded JWT must have 3 sections, found " + std::to_string(parts.size()));
  return Token{parts[0], parts[1], parts[2], Value()};
}

Result<Value> json_object(const std::string& text) {
  std::string err;
  auto v = Value::parse_json(text, &err);
  if (!v) return fail("jwt", "invalid JSON: " + err);
  if (!v->is_object()) return fail("jwt", "decoded JSON type was not an Object");
  return *v;
}

Status decode_header(Token& t) {
  auto raw = go::base64url_decode_unpadded(t.header);
  if (!raw) return fail("jwt", "JWT header had invalid encoding: " + raw.error().message);
  auto h = json_object(*raw);
  if (!h) return fail("jwt", "bad JWT header: " + h.error().message);
  if (h->get("enc")) return fail("jwt", "JWT is a JWE object, which is not supported");
  t.decoded_header = *h;
  return {};
}

Result<std::string> decode_signature(const Token& t) { return go::base64url_decode_unpadded(t.signature); }

// OPA's parseTokenHeader + valid(): alg/kid/typ/cty must be strings, crit a non-empty list of
// strings; a critical parameter we do not understand makes the token invalid.
struct Header {
  std::string alg, kid, cty;
  bool valid = false;
};

Result<Header> parse_header(const Value& h) {
  Header out;
  std::vector<std::string> unknown, crit;
  for (const auto& [k, v] : h.as_object()) {
    const std::string& name = k.as_string();
    if (name == "alg" || name == "kid" || name == "typ" || name == "cty") {
      if (!v.is_string()) return fail("jwt", name + ": must be a string");
      if (name == "alg") out.alg = v.as_string();
      if (name == "kid") out.kid = v.as_string();
      if (name == "cty") out.cty = v.as_string();
    } else if (name == "crit") {
      if (!v.is_array()) return fail("jwt", "crit: must be a list");
      for (const Value& c : v.as_array())
        if (c.is_string()) crit.push_back(c.as_string());
      if (crit.empty()) return fail("jwt", "crit: must be a nonempty list");
    } else {
      unknown.push_back(name);
    }
  }
  out.valid = !out.alg.empty();
  for (const auto& u : unknown)
    if (std::find(crit.begin(), crit.end(), u) != crit.end()) out.valid = false;
  return out;
}

// ---- keys

struct Key {
  jwt::Jwk jwk;
  std::string alg;  // from a JWK; empty for PEM keys
};

std::optional<jwt::Jwk> jwk_from_pkey(crypto::PKeyPtr pkey) {
  jwt::Jwk k;
  switch (EVP_PKEY_get_base_id(pkey.get())) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
      k.kind = jwt::KeyKind::Rsa;
      break;
    case EVP_PKEY_ED25519:
      k.kind = jwt::KeyKind::Okp;
      k.curve = jwt::Curve::Ed25519;
      break;
    case EVP_PKEY_EC: {
      char group[64] = {0};
      size_t len = 0;
      if (EVP_PKEY_get_group_name(pkey.get(), group, sizeof group, &len) != 1) return std::nullopt;
      const std::string g(group);
      k.kind = jwt::KeyKind::Ec;
      k.curve = g == "prime256v1"  ? jwt::Curve::P256
                : g == "secp384r1" ? jwt::Curve::P384
                : g == "secp521r1" ? jwt::Curve::P521
                                   : jwt::Curve::None;
      if (k.curve == jwt::Curve::None) return std::nullopt;
      break;
    }
    default:
      return std::nullopt;
  }
  k.key = std::move(pkey);
  return k;
}

// OPA's getKeysFromCertOrJWK: one PEM block (CERTIFICATE or PUBLIC KEY), else a JWK or JWK Set.
Result<std::vector<Key>> keys_from(const std::string& text) {
  const size_t begin = text.find("-----BEGIN ");
  if (begin != std::string::npos && text.find("-----END ", begin) != std::string::npos) {
    const size_t type_end = text.find("-----", begin + 11);
    const std::string type =
        text.substr(begin + 11, type_end == std::string::npos ? 0 : type_end - begin - 11);
    const size_t end = text.find("-----END " + type + "-----", begin);
    if (end != std::string::npos) {
      const size_t after = end + type.size() + 14;
      if (text.find_first_not_of(" \t\r\n", after) != std::string::npos)
        return fail("jwt", "extra data after a PEM certificate block");
    }
    crypto::BioPtr bio(BIO_new_mem_buf(text.data() + begin, static_cast<int>(text.size() - begin)));
    crypto::PKeyPtr pkey;
    if (type == "CERTIFICATE") {
      crypto::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
      if (!cert) return fail("jwt", "failed to parse a PEM certificate: " + crypto::last_error());
      pkey.reset(X509_get_pubkey(cert.get()));
    } else if (type == "PUBLIC KEY") {
      pkey.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
      if (!pkey) return fail("jwt", "failed to parse a PEM public key: " + crypto::last_error());
    } else {
      return fail("jwt", "failed to extract a Key from the PEM certificate");
    }
    auto jwk = pkey ? jwk_from_pkey(std::move(pkey)) : std::nullopt;
    if (!jwk) return fail("jwt", "failed to parse a PEM certificate: unsupported public key type");
    std::vector<Key> out;
    out.push_back(Key{std::move(*jwk), ""});
    return out;
  }
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return fail("jwt", "failed to parse a JWK key (set): invalid JSON");
  std::vector<Key> out;
  auto add = [&](nlohmann::json k) -> Status {
    // OPA verifies with the public half of a private JWK; src/jwt accepts public keys only.
    if (k.is_object())
      for (const char* priv : {"d", "p", "q", "dp", "dq", "qi", "oth"}) k.erase(priv);
    auto jwk = jwt::parse_jwk(k);
    if (!jwk) return fail("jwt", "failed to parse a JWK key (set): " + jwk.error().message);
    static const char* kAlgs[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
                                  "ES384", "ES512", "HS256", "HS384", "HS512", "EdDSA"};
    if (!jwk->alg.empty() && std::find(std::begin(kAlgs), std::end(kAlgs), jwk->alg) == std::end(kAlgs))
      return {};
    std::string alg = jwk->alg;
    out.push_back(Key{std::move(*jwk), std::move(alg)});
    return {};
  };
  if (doc.contains("keys")) {
    if (!doc["keys"].is_array()) return fail("jwt", "failed to parse a JWK key (set): keys must be an array");
    for (const auto& k : doc["keys"])
      if (auto s = add(k); !s) return fail(s.error());
  } else if (auto s = add(doc); !s) {
    return fail(s.error());
  }
  return out;
}

// A thread's last few answers of a pure function, replaced oldest first. Entries are never moved
// once stored (the vector is reserved up front), so a reference to one stays valid until N more
// are inserted — past the caller's use of it.
template <class Entry, size_t N>
class RecentAnswers {
 public:
  RecentAnswers() { entries_.reserve(N); }
  template <class Matches>
  const Entry* find(Matches&& matches) const {
    for (const Entry& e : entries_)
      if (matches(e)) return &e;
    return nullptr;
  }
  const Entry& insert(Entry fresh) {
    if (entries_.size() < N) return entries_.emplace_back(std::move(fresh));
    Entry& slot = entries_[next_];
    next_ = (next_ + 1) % N;
    slot = std::move(fresh);
    return slot;
  }

 private:
  std::vector<Entry> entries_;
  size_t next_ = 0;
};

// A policy passes the same key text (a PEM certificate, a JWKS from data) call after call, and
// parsing it — JSON, then loading each public key into OpenSSL — costs more than verifying a
// signature: each thread keeps the keys of its last few texts. Keys are only read once loaded.
struct ParsedKeys {
  std::string text;
  std::optional<std::vector<Key>> keys;  // else `error`
  std::string error;
};

const ParsedKeys& cached_keys_from(const std::string& text) {
  thread_local RecentAnswers<ParsedKeys, 8> recent;
  if (const ParsedKeys* hit = recent.find([&](const ParsedKeys& e) { return e.text == text; })) return *hit;
  ParsedKeys fresh{text, std::nullopt, ""};
  if (auto keys = keys_from(text)) {
    fresh.keys = std::move(*keys);
  } else {
    fresh.error = keys.error().message;
  }
  return recent.insert(std::move(fresh));
}

bool verify_with(const Key& key, jwt::Alg alg, const Token& t, const std::string& sig) {
  const std::string input = t.header + "." + t.payload;
  return jwt::verify_signature(alg, key.jwk, input, sig) == jwt::JwtStatus::Ok;
}

const EVP_MD* hs_digest(std::string_view alg) {
  if (alg == "HS256") return EVP_sha256();
  if (alg == "HS384") return EVP_sha384();
  if (alg == "HS512") return EVP_sha512();
  return nullptr;
}

bool hmac_matches(const EVP_MD* md, std::string_view secret, const Token& t, const std::string& sig) {
  const std::string mac = crypto::hmac(md, secret, t.header + "." + t.payload);
  return !mac.empty() && mac.size() == sig.size() && CRYPTO_memcmp(mac.data(), sig.data(), mac.size()) == 0;
}

// ---- built-ins

BuiltinResult decode(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  std::string text = a[0].as_string();
  for (int depth = 0; depth < 16; ++depth) {
    auto t = split_token(text);
    if (!t) return BuiltinError::builtin(t.error().message);
    if (auto s = decode_header(*t); !s) return BuiltinError::builtin(s.error().message);
    auto payload = go::base64url_decode_unpadded(t->payload);
    if (!payload)
      return BuiltinError::builtin("JWT payload had invalid encoding: " + payload.error().message);
    const Value* cty = t->decoded_header.get("cty");
    if (cty && cty->is_string() && cty->as_string() == "JWT") {
      text = go::trim(*payload, "\"'");  // a nested token, quoted as jwt.io writes it
      continue;
    }
    auto body = json_object(*payload);
    if (!body) return BuiltinError::builtin(body.error().message);
    auto sig = decode_signature(*t);
    if (!sig) return BuiltinError::builtin("JWT signature had invalid encoding: " + sig.error().message);
    return Value::array({t->decoded_header, *body, Value::string(go::hex_encode(*sig))});
  }
  return BuiltinError::builtin("JWT nested too deeply");
}

template <jwt::Alg kAlg>
BuiltinResult verify_asymmetric(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  auto t = split_token(a[0].as_string());
  if (!t) return BuiltinError::builtin(t.error().message);
  if (auto e = want(a, 2, Kind::String)) return *e;
  const ParsedKeys& parsed = cached_keys_from(a[1].as_string());
  if (!parsed.keys) return BuiltinError::builtin(parsed.error);
  const std::vector<Key>* keys = &*parsed.keys;
  auto sig = decode_signature(*t);
  if (!sig) return BuiltinError::builtin(sig.error().message);
  if (auto s = decode_header(*t); !s) return BuiltinError::builtin(s.error().message);
  auto header = parse_header(t->decoded_header);
  if (!header) return BuiltinError::builtin(header.error().message);
  if (!header->kid.empty())
    for (const Key& k : *keys)
      if (k.jwk.kid == header->kid) return Value::boolean(verify_with(k, kAlg, *t, *sig));
  for (const Key& k : *keys) {
    if (!k.alg.empty() && k.alg != header->alg) continue;
    if (verify_with(k, kAlg, *t, *sig)) return Value::boolean(true);
  }
  return Value::boolean(false);
}

template <int kBits>
BuiltinResult verify_hs(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  if (auto e = want(a, 2, Kind::String)) return *e;
  auto t = split_token(a[0].as_string());
  if (!t) return BuiltinError::builtin(t.error().message);
  auto sig = decode_signature(*t);
  if (!sig) return BuiltinError::builtin(sig.error().message);
  const EVP_MD* md = kBits == 256 ? EVP_sha256() : kBits == 384 ? EVP_sha384() : EVP_sha512();
  return Value::boolean(hmac_matches(md, a[1].as_string(), *t, *sig));
}

// Views into the constraint argument, which outlives the call.
struct Constraints {
  const std::vector<Key>* keys = nullptr;  // from the `cert` constraint (cached_keys_from)
  std::string_view cert;                   // the text `keys` came from
  std::string_view secret, alg, iss, aud;
  double time = -1;
  size_t key_hash = 0;  // of cert, secret and alg, from their values' precomputed hashes
};

Result<double> time_from(const Value& v) {
  if (!v.is_number()) return fail("jwt", "token time constraint: must be a number");
  const double t = v.as_double();
  if (t < 0) return fail("jwt", "token time constraint: must not be negative");
  return t;
}

// What decode_verify learns from the token and the key constraints alone (signature, header,
// payload): an error, unverified, or verified with the header and claims. iss, aud and the
// times are checked afterwards, on every call.
struct TokenCheck {
  std::optional<BuiltinError> error;
  bool verified = false;
  Value header, claims;
  Value result;  // verified: [true, header, claims], what a call returns when the claims pass
};

TokenCheck check_token(std::string text, const Constraints& c) {
  auto error = [](std::string m) {
    return TokenCheck{BuiltinError::builtin(std::move(m)), false, {}, {}, {}};
  };
  const TokenCheck unverified;
  Token t;
  std::string payload;
  for (int depth = 0;; ++depth) {
    if (depth >= 16) return error("JWT nested too deeply");
    auto tok = split_token(text);
    if (!tok) return error(tok.error().message);
    t = std::move(*tok);
    if (auto s = decode_header(t); !s) return error(s.error().message);
    auto header = parse_header(t.decoded_header);
    if (!header) return error(header.error().message);
    if (!header->valid) return unverified;
    if (!c.alg.empty() && c.alg != header->alg) return unverified;
    auto sig = decode_signature(t);
    if (!sig) return error(sig.error().message);
    bool ok = false;
    if (c.keys) {
      const auto alg = jwt::parse_alg(header->alg);
      auto try_key = [&](const Key& k) { return alg && verify_with(k, *alg, t, *sig); };
      bool kid_matched = false;
      if (!header->kid.empty())
        for (const Key& k : *c.keys)
          if (k.jwk.kid == header->kid) {
            ok = try_key(k);
            kid_matched = true;
            break;
          }
      if (!kid_matched)
        for (const Key& k : *c.keys) {
          if (!k.alg.empty() && k.alg != header->alg) continue;
          if ((ok = try_key(k))) break;
        }
    } else {
      const EVP_MD* md = hs_digest(header->alg);
      ok = md && hmac_matches(md, c.secret, t, *sig);
    }
    if (!ok) return unverified;
    auto p = go::base64url_decode_unpadded(t.payload);
    if (!p) return error("JWT payload had invalid encoding: " + p.error().message);
    payload = std::move(*p);
    if (go::to_lower(header->cty) == "jwt") {
      text = payload;
      continue;
    }
    break;
  }
  auto body = json_object(payload);
  if (!body) return error(body.error().message);
  return TokenCheck{std::nullopt, true, t.decoded_header, *body,
                    Value::array({Value::boolean(true), t.decoded_header, *body})};
}

// Equal texts, in time that depends on their length only (a word at a time).
bool same_text(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  uint64_t diff = 0;
  size_t i = 0;
  for (; i + 8 <= a.size(); i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    diff |= x ^ y;
  }
  for (; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// check_token is a pure function of the token and the key constraints, and a proxy sees the same
// token (and policy) request after request: each thread keeps its last few answers. Tokens are
// compared whole, in constant time, after their hashes (the values' own, computed when built).
const TokenCheck& cached_check_token(const Value& token, const Constraints& c) {
  const std::string& text = token.as_string();
  struct Entry {
    size_t hash = 0;
    std::string token, cert, secret, alg;
    TokenCheck check;
  };
  thread_local RecentAnswers<Entry, 16> recent;
  const size_t hash = token.hash() ^ (c.key_hash << 1);
  if (const Entry* hit = recent.find([&](const Entry& e) {
        return e.hash == hash && same_text(e.token, text) && same_text(e.secret, c.secret) &&
               e.cert == c.cert && e.alg == c.alg;
      }))
    return hit->check;
  return recent
      .insert(Entry{hash, text, std::string(c.cert), std::string(c.secret), std::string(c.alg),
                    check_token(text, c)})
      .check;
}

BuiltinResult decode_verify(Args a, BuiltinContext& ctx) {
  if (auto e = want(a, 2, Kind::Object)) return *e;
  const auto unverified = [] {
    return Value::array({Value::boolean(false), Value::empty_object(), Value::empty_object()});
  };
  Constraints c;
  for (const auto& [k, v] : a[1].as_object()) {
    std::string name_text;
    const std::string& name = k.is_string() ? k.as_string() : (name_text = k.to_json_text());
    if (name == "cert") {
      if (!v.is_string()) return BuiltinError::builtin("cert constraint: must be a string");
      const ParsedKeys& parsed = cached_keys_from(v.as_string());
      if (!parsed.keys) return BuiltinError::builtin(parsed.error);
      c.keys = &*parsed.keys;
      c.cert = v.as_string();
      c.key_hash ^= v.hash() << 2;
    } else if (name == "secret" || name == "alg" || name == "iss" || name == "aud") {
      if (!v.is_string()) return BuiltinError::builtin(name + " constraint: must be a string");
      (name == "secret" ? c.secret : name == "alg" ? c.alg : name == "iss" ? c.iss : c.aud) = v.as_string();
      if (name == "secret") c.key_hash ^= v.hash();
      if (name == "alg") c.key_hash ^= v.hash() << 3;
    } else if (name == "time") {
      auto t = time_from(v);
      if (!t) return BuiltinError::builtin(t.error().message);
      c.time = *t;
    } else {
      return BuiltinError::builtin("unknown token validation constraint: " + name);
    }
  }
  if (c.time < 0) c.time = static_cast<double>(ctx.now_ns);
  const int key_sources = (c.keys ? 1 : 0) + (c.secret.empty() ? 0 : 1);
  if (key_sources > 1) return BuiltinError::builtin("duplicate key constraints");
  if (key_sources < 1) return BuiltinError::builtin("no key constraint");

  if (auto e = want(a, 1, Kind::String)) return *e;
  const TokenCheck& check = cached_check_token(a[0], c);
  if (check.error) return *check.error;
  if (!check.verified) return unverified();
  const Value& claims = check.claims;

  if (!c.iss.empty()) {
    const Value* iss = claims.get("iss");
    if (!iss || !iss->is_string() || iss->as_string() != c.iss) return unverified();
  }
  if (const Value* aud = claims.get("aud")) {
    bool match = aud->is_string() && aud->as_string() == c.aud;
    if (aud->is_array())
      for (const Value& e : aud->as_array()) match = match || (e.is_string() && e.as_string() == c.aud);
    if (!match) return unverified();
  } else if (!c.aud.empty()) {
    return unverified();
  }
  const Value now = Value::number(c.time / 1e9);
  if (const Value* exp = claims.get("exp")) {
    if (!exp->is_number()) return BuiltinError::builtin("exp value must be a number");
    if (now.compare(*exp) >= 0) return unverified();  // valid strictly before exp
  }
  if (const Value* nbf = claims.get("nbf")) {
    if (!nbf->is_number()) return BuiltinError::builtin("nbf value must be a number");
    if (now.compare(*nbf) < 0) return unverified();  // valid from nbf on
  }
  return check.result;
}

}  // namespace

void register_jwt(Registry& r) {
  const uint8_t S = kStringType;
  r.add({"io.jwt.decode", 1, decode, false, false, false, {S}});
  r.add({"io.jwt.verify_rs256", 2, verify_asymmetric<jwt::Alg::RS256>, false, false, false, {S, S}});
  r.add({"io.jwt.verify_rs384", 2, verify_asymmetric<jwt::Alg::RS384>, false, false, false, {S, S}});
  r.add({"io.jwt.verify_rs512", 2, verify_asymmetric<jwt::Alg::RS512>, false, false, false, {S, S}});
  r.add({"io.jwt.verify_ps256", 2, verify_asymmetric<jwt::Alg::PS256>, false, false, false, {S, S}});
  r.add({"io.jwt.verify_ps384", 2, verify_asymmetric<jwt::Alg::PS384>, false, false, false, {S, S}});
  r.add({"io.jwt.verify_ps512", 2, verify_asymmetric<jwt::Alg::PS512>, false, false, false, {S, S}});
  r.add({"io.jwt.verify_es256", 2, verify_asymmetric<jwt::Alg::ES256>, false, false, false, {S, S}});
  r.add({"io.jwt.verify_es384", 2, verify_asymmetric<jwt::Alg::ES384>, false, false, false, {S, S}});
  r.add({"io.jwt.verify_es512", 2, verify_asymmetric<jwt::Alg::ES512>, false, false, false, {S, S}});
  r.add({"io.jwt.verify_eddsa", 2, verify_asymmetric<jwt::Alg::EdDSA>, false, false, false, {S, S}});
  r.add({"io.jwt.verify_hs256", 2, verify_hs<256>, false, false, false, {S, S}});
  r.add({"io.jwt.verify_hs384", 2, verify_hs<384>, false, false, false, {S, S}});
  r.add({"io.jwt.verify_hs512", 2, verify_hs<512>, false, false, false, {S, S}});
  r.add({"io.jwt.decode_verify", 2, decode_verify, false, false, true, {S, kObjectType}});
}

}  // namespace mg::rego
