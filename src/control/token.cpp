// control/token.cpp — bootstrap token minting and verification (see token.h).
#include "control/token.h"

#include <nlohmann/json.hpp>

#include "crypto/openssl.h"
#include "identity/spiffe_id.h"
#include "jwt/jwk.h"
#include "jwt/jws.h"
#include "jwt/sign.h"

namespace mg::control {

namespace {

constexpr size_t kMaxIssuerBytes = 1024;
constexpr size_t kMaxIdBytes = 256;

// The token must name an identity the CA can put in a SPIFFE ID, so the names are checked with
// the SPIFFE rules; the trust domain here is a placeholder that is always valid.
Status check_names(std::string_view ns, std::string_view sa) {
  if (ns.empty() || sa.empty()) return fail("token.bad_claims", "namespace and service account are required");
  if (auto id = identity::SpiffeId::istio("cluster.local", ns, sa); !id) {
    return fail("token.bad_claims",
                "namespace/service account not valid in a SPIFFE ID: " + id.error().message);
  }
  return {};
}

Unexpected<Error> malformed(const std::string& why) {
  return fail("token.malformed", "bootstrap token: " + why);
}

}  // namespace

Result<std::string> mint_bootstrap_token(EVP_PKEY* key, std::string_view issuer, const BootstrapClaims& c) {
  if (issuer.empty() || issuer.size() > kMaxIssuerBytes)
    return fail("token.bad_claims", "issuer must be 1..1024 bytes");
  if (auto s = check_names(c.ns, c.service_account); !s) return fail(s.error());
  if (c.issued_at <= 0 || c.expires_at <= c.issued_at || c.expires_at > jwt::kMaxTimestamp) {
    return fail("token.bad_claims", "need 0 < issued_at < expires_at <= year 9999");
  }
  if (c.id.size() > kMaxIdBytes) return fail("token.bad_claims", "id is longer than 256 bytes");
  if (auto s = jwt::check_signing_key(jwt::Alg::ES256, key); !s) {
    return fail("token.bad_key", "the signing key must be an EC P-256 key");
  }
  std::string id = c.id;
  if (id.empty()) {
    auto bytes = crypto::random_bytes(16);
    if (!bytes) return fail(bytes.error());
    id = crypto::hex(bytes->data(), bytes->size());
  }
  const nlohmann::json header = {{"alg", "ES256"}, {"typ", "JWT"}};
  nlohmann::json payload = {
      {"iss", issuer},      {"aud", kBootstrapAudience}, {"sub", "ns/" + c.ns + "/sa/" + c.service_account},
      {"iat", c.issued_at}, {"nbf", c.issued_at},        {"exp", c.expires_at},
      {"jti", id}};
  if (!c.mesh.empty()) payload["mesh"] = c.mesh;  // absent: the default mesh (older tokens too)
  auto token = jwt::sign_compact(jwt::Alg::ES256, key, header.dump(), payload.dump());
  if (!token) return fail("token.sign_failed", token.error().message);
  return std::move(*token);
}

Result<BootstrapClaims> verify_bootstrap_token(std::string_view token, EVP_PKEY* public_key,
                                               std::string_view issuer, int64_t now) {
  if (auto s = jwt::check_signing_key(jwt::Alg::ES256, public_key); !s) {
    return fail("token.bad_key", "the verification key must be an EC P-256 key");
  }
  if (token.empty() || token.size() > jwt::kMaxTokenBytes) return malformed("empty or too large");
  jwt::Jwt parsed;
  const auto status = jwt::parse_jwt(token, parsed);
  if (status == jwt::JwtStatus::HeaderNotImplementedAlg) {
    return fail("token.bad_algorithm", "bootstrap token: only ES256 is accepted");
  }
  if (status != jwt::JwtStatus::Ok) return malformed(jwt::status_message(status));
  if (parsed.alg != jwt::Alg::ES256)
    return fail("token.bad_algorithm", "bootstrap token: only ES256 is accepted");

  // The signature first: nothing in the payload is looked at before it is known to be ours.
  jwt::Jwk key;
  key.kind = jwt::KeyKind::Ec;
  key.curve = jwt::Curve::P256;
  if (EVP_PKEY_up_ref(public_key) != 1) return fail("token.bad_key", "cannot reference the verification key");
  key.key.reset(public_key);
  if (jwt::verify_signature(jwt::Alg::ES256, key, parsed.signing_input, parsed.signature) !=
      jwt::JwtStatus::Ok) {
    return fail("token.bad_signature", "bootstrap token: signature does not verify");
  }

  if (parsed.iss != issuer)
    return fail("token.wrong_issuer", "bootstrap token: issuer is not this control plane");
  bool audience = false;
  for (const auto& a : parsed.aud) audience = audience || a == kBootstrapAudience;
  if (!audience) return fail("token.wrong_audience", "bootstrap token: audience is not meshguard-bootstrap");
  if (!parsed.exp || !parsed.nbf || !parsed.iat) return malformed("exp, nbf and iat are required");
  switch (jwt::check_time(parsed, now)) {
    case jwt::JwtStatus::Ok:
      break;
    case jwt::JwtStatus::Expired:
      return fail("token.expired", "bootstrap token has expired");
    case jwt::JwtStatus::NotYetValid:
      return fail("token.not_yet_valid", "bootstrap token is not valid yet");
    default:
      return malformed("bad time claims");
  }
  if (*parsed.iat > now + jwt::kClockSkewSeconds)
    return fail("token.not_yet_valid", "bootstrap token is issued in the future");

  // sub is exactly ns/<ns>/sa/<sa>.
  std::string_view sub = parsed.sub;
  BootstrapClaims out;
  const auto sa_at = sub.find("/sa/", 3);  // a namespace may itself be called "sa"
  if (!sub.starts_with("ns/") || sa_at == std::string_view::npos || sa_at < 3) {
    return fail("token.bad_subject", "bootstrap token: subject is not ns/<namespace>/sa/<service-account>");
  }
  out.ns = std::string(sub.substr(3, sa_at - 3));
  out.service_account = std::string(sub.substr(sa_at + 4));
  if (!check_names(out.ns, out.service_account) || out.ns.find('/') != std::string::npos ||
      out.service_account.find('/') != std::string::npos) {
    return fail("token.bad_subject", "bootstrap token: subject is not ns/<namespace>/sa/<service-account>");
  }
  const auto jti = parsed.payload.find("jti");
  if (jti == parsed.payload.end() || !jti->is_string() || jti->get_ref<const std::string&>().empty() ||
      jti->get_ref<const std::string&>().size() > kMaxIdBytes) {
    return malformed("jti must be a non-empty string");
  }
  out.id = jti->get<std::string>();
  if (const auto mesh = parsed.payload.find("mesh"); mesh != parsed.payload.end()) {
    if (!mesh->is_string() || mesh->get_ref<const std::string&>().empty() ||
        mesh->get_ref<const std::string&>().size() > 63) {
      return malformed("mesh must be a mesh name");
    }
    out.mesh = mesh->get<std::string>();
  }
  out.issued_at = *parsed.iat;
  out.expires_at = *parsed.exp;
  return out;
}

Result<BootstrapClaims> verify_service_account_token(std::string_view token, const ServiceAccountIssuer& issuer,
                                                     int64_t now) {
  auto bad = [](const char* code, const std::string& why) { return fail(code, "service-account token: " + why); };
  if (!issuer.keys || issuer.keys->keys.empty()) return bad("token.bad_key", "no keys configured for the issuer");
  if (token.empty() || token.size() > jwt::kMaxTokenBytes) return bad("token.malformed", "empty or too large");
  jwt::Jwt parsed;
  const auto status = jwt::parse_jwt(token, parsed);
  if (status == jwt::JwtStatus::HeaderNotImplementedAlg) return bad("token.bad_algorithm", "algorithm not accepted");
  if (status != jwt::JwtStatus::Ok) return bad("token.malformed", jwt::status_message(status));

  // The signature first, with the issuer's keys that fit the token's alg and kid.
  bool verified = false;
  for (const auto& key : issuer.keys->keys) {
    if (!jwt::key_matches(key, parsed.alg, parsed.kid)) continue;
    if (jwt::verify_signature(parsed.alg, key, parsed.signing_input, parsed.signature) == jwt::JwtStatus::Ok) {
      verified = true;
      break;
    }
  }
  if (!verified) return bad("token.bad_signature", "no key of the issuer verifies the signature");

  if (parsed.iss != issuer.issuer) return bad("token.wrong_issuer", "issuer is not the configured one");
  bool audience = false;
  for (const auto& a : parsed.aud) audience = audience || a == issuer.audience;
  if (!audience) return bad("token.wrong_audience", "audience does not contain " + issuer.audience);
  if (!parsed.exp) return bad("token.malformed", "exp is required (projected tokens only)");
  switch (jwt::check_time(parsed, now)) {
    case jwt::JwtStatus::Ok:
      break;
    case jwt::JwtStatus::Expired:
      return bad("token.expired", "expired");
    case jwt::JwtStatus::NotYetValid:
      return bad("token.not_yet_valid", "not valid yet");
    default:
      return bad("token.malformed", "bad time claims");
  }
  constexpr std::string_view kPrefix = "system:serviceaccount:";
  std::string_view sub = parsed.sub;
  if (!sub.starts_with(kPrefix)) return bad("token.bad_subject", "subject is not system:serviceaccount:<ns>:<sa>");
  sub.remove_prefix(kPrefix.size());
  const auto colon = sub.find(':');
  if (colon == std::string_view::npos || sub.find(':', colon + 1) != std::string_view::npos)
    return bad("token.bad_subject", "subject is not system:serviceaccount:<ns>:<sa>");
  BootstrapClaims out;
  out.ns = std::string(sub.substr(0, colon));
  out.service_account = std::string(sub.substr(colon + 1));
  if (!check_names(out.ns, out.service_account) || out.ns.find('/') != std::string::npos ||
      out.service_account.find('/') != std::string::npos)
    return bad("token.bad_subject", "namespace/service account are not valid names");
  out.issued_at = parsed.iat.value_or(0);
  out.expires_at = *parsed.exp;
  return out;
}

}  // namespace mg::control
