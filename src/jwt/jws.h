// jwt/jws.h — JWS compact serialization (RFC 7515 §7.1) and the registered claims Envoy's
// jwt_authn looks at. Parsing only: no key, no clock. JwtStatus messages are Envoy's wording so
// that 401 bodies and logs read the same as Istio's.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mg::jwt {

// Longest token accepted anywhere (header value, query parameter, cookie).
inline constexpr size_t kMaxTokenBytes = 16 * 1024;
// exp/nbf/iat beyond 9999-12-31T23:59:59Z are refused as absurd (and can never overflow math).
inline constexpr int64_t kMaxTimestamp = 253402300799;
// Allowed clock skew for exp/nbf, as Envoy's default.
inline constexpr int64_t kClockSkewSeconds = 60;

enum class JwtStatus {
  Ok,
  Missing,
  TooLarge,
  BadFormat,
  HeaderBadBase64,
  HeaderBadJson,
  HeaderBadAlg,
  HeaderNotImplementedAlg,
  HeaderBadKid,
  HeaderUnsupportedCrit,
  PayloadBadBase64,
  PayloadBadJson,
  IssNotString,
  SubNotString,
  AudNotStringOrList,
  AzpNotString,
  ExpInvalid,
  NbfInvalid,
  IatInvalid,
  SignatureBadBase64,
  UnknownIssuer,
  Expired,
  NotYetValid,
  AudienceNotAllowed,
  JwksKidAlgMismatch,
  JwksFetchFail,
  VerificationFail,
  SignatureWrongLength,
};

// Envoy's text for the status (e.g. "Jwt is expired").
const char* status_message(JwtStatus s);
// What the client sees: 403 for a disallowed audience (as Envoy), otherwise 401.
int http_status(JwtStatus s);

enum class Alg { RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA };

// Only the asymmetric algorithms above; "none", HS*, and everything else are refused.
std::optional<Alg> parse_alg(std::string_view name);
std::string_view alg_name(Alg a);

enum class KeyKind { Rsa, Ec, Okp };
KeyKind key_kind_for(Alg a);

// A parsed token. The *_b64 and signing_input views point into the token passed to parse_jwt:
// keep that string alive while using them.
struct Jwt {
  Alg alg = Alg::RS256;
  std::string kid;  // empty: no kid
  nlohmann::json header;
  nlohmann::json payload;
  std::string_view header_b64;
  std::string_view payload_b64;
  std::string_view signing_input;  // header_b64 + "." + payload_b64
  std::string signature;           // decoded bytes

  std::string iss;
  std::string sub;
  std::vector<std::string> aud;
  std::string azp;
  std::optional<int64_t> exp;
  std::optional<int64_t> nbf;
  std::optional<int64_t> iat;
};

// Structural parse: three segments, strict base64url, JSON objects, a supported alg, well-typed
// registered claims. Embedded key headers (jwk, jku, x5u, x5c, x5t) are ignored on purpose:
// keys come only from the configured JWKS. Never throws.
JwtStatus parse_jwt(std::string_view token, Jwt& out);

// exp/nbf against `now` with kClockSkewSeconds, as Envoy: expired when now > exp + skew,
// not yet valid when now + skew < nbf.
JwtStatus check_time(const Jwt& jwt, int64_t now);

}  // namespace mg::jwt
