#include "jwt/jws.h"

#include <cmath>

#include "jwt/base64url.h"

namespace mg::jwt {

const char* status_message(JwtStatus s) {
  switch (s) {
    case JwtStatus::Ok: return "OK";
    case JwtStatus::Missing: return "Jwt is missing";
    case JwtStatus::TooLarge: return "Jwt is too large";
    case JwtStatus::BadFormat:
      return "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections";
    case JwtStatus::HeaderBadBase64: return "Jwt header is an invalid Base64url encoded";
    case JwtStatus::HeaderBadJson: return "Jwt header is an invalid JSON";
    case JwtStatus::HeaderBadAlg: return "Jwt header [alg] field is required and must be a string";
    case JwtStatus::HeaderNotImplementedAlg: return "Jwt header [alg] is not supported";
    case JwtStatus::HeaderBadKid: return "Jwt header [kid] field is not a string";
    case JwtStatus::HeaderUnsupportedCrit: return "Jwt header [crit] names an unsupported extension";
    case JwtStatus::PayloadBadBase64: return "Jwt payload is an invalid Base64url encoded";
    case JwtStatus::PayloadBadJson: return "Jwt payload is an invalid JSON";
    case JwtStatus::IssNotString: return "Jwt payload [iss] field is not a string";
    case JwtStatus::SubNotString: return "Jwt payload [sub] field is not a string";
    case JwtStatus::AudNotStringOrList: return "Jwt payload [aud] field is not a string or string list";
    case JwtStatus::AzpNotString: return "Jwt payload [azp] field is not a string";
    case JwtStatus::ExpInvalid: return "Jwt payload [exp] field is not a positive 64 bit integer";
    case JwtStatus::NbfInvalid: return "Jwt payload [nbf] field is not a positive 64 bit integer";
    case JwtStatus::IatInvalid: return "Jwt payload [iat] field is not a positive 64 bit integer";
    case JwtStatus::SignatureBadBase64: return "Jwt signature is an invalid Base64url encoded";
    case JwtStatus::UnknownIssuer: return "Jwt issuer is not configured";
    case JwtStatus::Expired: return "Jwt is expired";
    case JwtStatus::NotYetValid: return "Jwt not yet valid";
    case JwtStatus::AudienceNotAllowed: return "Audiences in Jwt are not allowed";
    case JwtStatus::JwksKidAlgMismatch: return "Jwks doesn't have key to match kid or alg from Jwt";
    case JwtStatus::JwksFetchFail: return "Jwks remote fetch is failed";
    case JwtStatus::VerificationFail: return "Jwt verification fails";
    case JwtStatus::SignatureWrongLength: return "Jwt signature is wrong length";
  }
  return "Jwt verification fails";
}

int http_status(JwtStatus s) {
  if (s == JwtStatus::Ok || s == JwtStatus::Missing) return 200;
  return s == JwtStatus::AudienceNotAllowed ? 403 : 401;
}

std::optional<Alg> parse_alg(std::string_view n) {
  if (n == "RS256") return Alg::RS256;
  if (n == "RS384") return Alg::RS384;
  if (n == "RS512") return Alg::RS512;
  if (n == "PS256") return Alg::PS256;
  if (n == "PS384") return Alg::PS384;
  if (n == "PS512") return Alg::PS512;
  if (n == "ES256") return Alg::ES256;
  if (n == "ES384") return Alg::ES384;
  if (n == "ES512") return Alg::ES512;
  if (n == "EdDSA") return Alg::EdDSA;
  return std::nullopt;
}

std::string_view alg_name(Alg a) {
  switch (a) {
    case Alg::RS256: return "RS256";
    case Alg::RS384: return "RS384";
    case Alg::RS512: return "RS512";
    case Alg::PS256: return "PS256";
    case Alg::PS384: return "PS384";
    case Alg::PS512: return "PS512";
    case Alg::ES256: return "ES256";
    case Alg::ES384: return "ES384";
    case Alg::ES512: return "ES512";
    case Alg::EdDSA: return "EdDSA";
  }
  return "";
}

KeyKind key_kind_for(Alg a) {
  switch (a) {
    case Alg::ES256:
    case Alg::ES384:
    case Alg::ES512: return KeyKind::Ec;
    case Alg::EdDSA: return KeyKind::Okp;
    default: return KeyKind::Rsa;
  }
}

namespace {

// JSON number → whole seconds in [0, kMaxTimestamp]; anything else (strings, fractions, NaN,
// negatives, year > 9999) is refused rather than clamped.
bool read_timestamp(const nlohmann::json& v, int64_t& out) {
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(kMaxTimestamp)) return false;
    out = static_cast<int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    auto i = v.get<int64_t>();
    if (i < 0 || i > kMaxTimestamp) return false;
    out = i;
    return true;
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (!std::isfinite(d) || d < 0 || d > static_cast<double>(kMaxTimestamp) || std::floor(d) != d) return false;
    out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}

JwtStatus read_time_claim(const nlohmann::json& payload, const char* name, JwtStatus bad, std::optional<int64_t>& out) {
  auto it = payload.find(name);
  if (it == payload.end()) return JwtStatus::Ok;
  int64_t t = 0;
  if (!read_timestamp(*it, t)) return bad;
  out = t;
  return JwtStatus::Ok;
}

bool parse_object(std::string_view text, nlohmann::json& out) {
  out = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  return out.is_object();
}

}  // namespace

JwtStatus parse_jwt(std::string_view token, Jwt& out) {
  if (token.empty()) return JwtStatus::Missing;
  if (token.size() > kMaxTokenBytes) return JwtStatus::TooLarge;
  size_t d1 = token.find('.');
  if (d1 == std::string_view::npos) return JwtStatus::BadFormat;
  size_t d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) return JwtStatus::BadFormat;

  out.header_b64 = token.substr(0, d1);
  out.payload_b64 = token.substr(d1 + 1, d2 - d1 - 1);
  out.signing_input = token.substr(0, d2);
  std::string_view sig_b64 = token.substr(d2 + 1);
  if (out.header_b64.empty() || out.payload_b64.empty()) return JwtStatus::BadFormat;

  std::string buf;
  if (!base64url_decode_into(out.header_b64, buf)) return JwtStatus::HeaderBadBase64;
  if (!parse_object(buf, out.header)) return JwtStatus::HeaderBadJson;

  auto alg = out.header.find("alg");
  if (alg == out.header.end() || !alg->is_string()) return JwtStatus::HeaderBadAlg;
  auto parsed_alg = parse_alg(alg->get_ref<const std::string&>());
  if (!parsed_alg) return JwtStatus::HeaderNotImplementedAlg;
  out.alg = *parsed_alg;

  out.kid.clear();
  if (auto kid = out.header.find("kid"); kid != out.header.end()) {
    if (!kid->is_string()) return JwtStatus::HeaderBadKid;
    out.kid = kid->get<std::string>();
  }
  // RFC 7515 §4.1.11: a recipient must reject a JWS whose "crit" lists an extension it does
  // not understand; we understand none. RFC 7797 unencoded payloads ("b64": false) likewise.
  if (out.header.contains("crit")) return JwtStatus::HeaderUnsupportedCrit;
  if (auto b64 = out.header.find("b64"); b64 != out.header.end() && *b64 != true) return JwtStatus::HeaderUnsupportedCrit;

  if (!base64url_decode_into(out.payload_b64, buf)) return JwtStatus::PayloadBadBase64;
  if (!parse_object(buf, out.payload)) return JwtStatus::PayloadBadJson;

  const auto& p = out.payload;
  out.iss.clear();
  out.sub.clear();
  out.azp.clear();
  out.aud.clear();
  out.exp.reset();
  out.nbf.reset();
  out.iat.reset();
  if (auto it = p.find("iss"); it != p.end()) {
    if (!it->is_string()) return JwtStatus::IssNotString;
    out.iss = it->get<std::string>();
  }
  if (auto it = p.find("sub"); it != p.end()) {
    if (!it->is_string()) return JwtStatus::SubNotString;
    out.sub = it->get<std::string>();
  }
  if (auto it = p.find("azp"); it != p.end()) {
    if (!it->is_string()) return JwtStatus::AzpNotString;
    out.azp = it->get<std::string>();
  }
  if (auto it = p.find("aud"); it != p.end()) {
    if (it->is_string()) {
      out.aud.push_back(it->get<std::string>());
    } else if (it->is_array()) {
      for (const auto& a : *it) {
        if (!a.is_string()) return JwtStatus::AudNotStringOrList;
        out.aud.push_back(a.get<std::string>());
      }
    } else {
      return JwtStatus::AudNotStringOrList;
    }
  }
  if (auto s = read_time_claim(p, "exp", JwtStatus::ExpInvalid, out.exp); s != JwtStatus::Ok) return s;
  if (auto s = read_time_claim(p, "nbf", JwtStatus::NbfInvalid, out.nbf); s != JwtStatus::Ok) return s;
  if (auto s = read_time_claim(p, "iat", JwtStatus::IatInvalid, out.iat); s != JwtStatus::Ok) return s;

  if (sig_b64.empty() || !base64url_decode_into(sig_b64, out.signature)) return JwtStatus::SignatureBadBase64;
  return JwtStatus::Ok;
}

JwtStatus check_time(const Jwt& jwt, int64_t now) {
  // Arithmetic only on the claim side (bounded by kMaxTimestamp), so no `now` can overflow it.
  if (jwt.nbf && now < *jwt.nbf - kClockSkewSeconds) return JwtStatus::NotYetValid;
  if (jwt.exp && now > *jwt.exp + kClockSkewSeconds) return JwtStatus::Expired;
  return JwtStatus::Ok;
}

}  // namespace mg::jwt
