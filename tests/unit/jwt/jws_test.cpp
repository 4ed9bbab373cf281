#include "jwt/jws.h"

#include <gtest/gtest.h>

#include "jwt/base64url.h"

namespace mg::jwt {
namespace {

std::string b64(std::string_view s) { return base64url_encode(s); }

std::string token(const std::string& header, const std::string& payload, const std::string& sig = "c2ln") {
  return b64(header) + "." + b64(payload) + "." + sig;
}

JwtStatus parse(const std::string& t) {
  Jwt jwt;
  return parse_jwt(t, jwt);
}

TEST(JwtJws, ParsesRegisteredClaims) {
  std::string t = token(R"({"alg":"ES256","kid":"k1","typ":"JWT"})",
                        R"({"iss":"i","sub":"s","aud":["a","b"],"azp":"p","exp":200,"nbf":100,"iat":50,"x":{"y":1}})");
  Jwt jwt;
  ASSERT_EQ(parse_jwt(t, jwt), JwtStatus::Ok);
  EXPECT_EQ(jwt.alg, Alg::ES256);
  EXPECT_EQ(jwt.kid, "k1");
  EXPECT_EQ(jwt.iss, "i");
  EXPECT_EQ(jwt.sub, "s");
  EXPECT_EQ(jwt.aud, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(jwt.azp, "p");
  EXPECT_EQ(*jwt.exp, 200);
  EXPECT_EQ(*jwt.nbf, 100);
  EXPECT_EQ(*jwt.iat, 50);
  EXPECT_EQ(jwt.signature, "sig");
  EXPECT_EQ(jwt.signing_input, t.substr(0, t.rfind('.')));
  EXPECT_EQ(jwt.payload["x"]["y"], 1);
}

TEST(JwtJws, AudAsString) {
  Jwt jwt;
  ASSERT_EQ(parse_jwt(token(R"({"alg":"RS256"})", R"({"aud":"one"})"), jwt), JwtStatus::Ok);
  EXPECT_EQ(jwt.aud, std::vector<std::string>{"one"});
}

TEST(JwtJws, RequiresExactlyThreeSegments) {
  EXPECT_EQ(parse("badtoken"), JwtStatus::BadFormat);
  EXPECT_EQ(parse("a.b"), JwtStatus::BadFormat);
  EXPECT_EQ(parse("a.b.c.d"), JwtStatus::BadFormat);
  EXPECT_EQ(parse(".."), JwtStatus::BadFormat);
  EXPECT_EQ(parse(""), JwtStatus::Missing);
  // JWE compact (five segments) is not a JWS.
  EXPECT_EQ(parse("a.b.c.d.e"), JwtStatus::BadFormat);
}

TEST(JwtJws, EmptySignatureRefused) {
  EXPECT_EQ(parse(b64(R"({"alg":"RS256"})") + "." + b64("{}") + "."), JwtStatus::SignatureBadBase64);
}

TEST(JwtJws, BadBase64AndJson) {
  EXPECT_EQ(parse("e30=." + b64("{}") + ".c2ln"), JwtStatus::HeaderBadBase64);
  EXPECT_EQ(parse(b64("not json") + "." + b64("{}") + ".c2ln"), JwtStatus::HeaderBadJson);
  EXPECT_EQ(parse(b64("[1]") + "." + b64("{}") + ".c2ln"), JwtStatus::HeaderBadJson);
  EXPECT_EQ(parse(b64(R"({"alg":"RS256"})") + ".e30=.c2ln"), JwtStatus::PayloadBadBase64);
  EXPECT_EQ(parse(token(R"({"alg":"RS256"})", "[]")), JwtStatus::PayloadBadJson);
  EXPECT_EQ(parse(token(R"({"alg":"RS256"})", "{}", "c2ln=")), JwtStatus::SignatureBadBase64);
  EXPECT_EQ(parse(token(R"({"alg":"RS256"})", "{}", "c2l+")), JwtStatus::SignatureBadBase64);
}

TEST(JwtJws, RefusesNoneHmacAndUnknownAlgorithms) {
  for (const char* alg : {"none", "None", "NONE", "HS256", "HS384", "HS512", "RS1", "ES256K", "Ed25519", "", "rs256"}) {
    EXPECT_EQ(parse(token(std::string(R"({"alg":")") + alg + "\"}", "{}")), JwtStatus::HeaderNotImplementedAlg) << alg;
  }
  EXPECT_EQ(parse(token(R"({"typ":"JWT"})", "{}")), JwtStatus::HeaderBadAlg);
  EXPECT_EQ(parse(token(R"({"alg":256})", "{}")), JwtStatus::HeaderBadAlg);
  EXPECT_EQ(parse(token(R"({"alg":"RS256","kid":7})", "{}")), JwtStatus::HeaderBadKid);
}

TEST(JwtJws, RefusesCriticalExtensions) {
  EXPECT_EQ(parse(token(R"({"alg":"RS256","crit":["exp"],"exp":1})", "{}")), JwtStatus::HeaderUnsupportedCrit);
  EXPECT_EQ(parse(token(R"({"alg":"RS256","b64":false})", "{}")), JwtStatus::HeaderUnsupportedCrit);
}

TEST(JwtJws, ClaimTypesChecked) {
  const std::string h = R"({"alg":"RS256"})";
  EXPECT_EQ(parse(token(h, R"({"iss":1})")), JwtStatus::IssNotString);
  EXPECT_EQ(parse(token(h, R"({"sub":["x"]})")), JwtStatus::SubNotString);
  EXPECT_EQ(parse(token(h, R"({"aud":["x",1]})")), JwtStatus::AudNotStringOrList);
  EXPECT_EQ(parse(token(h, R"({"aud":{}})")), JwtStatus::AudNotStringOrList);
  EXPECT_EQ(parse(token(h, R"({"azp":false})")), JwtStatus::AzpNotString);
}

TEST(JwtJws, TimestampsMustBeSaneWholeSeconds) {
  const std::string h = R"({"alg":"RS256"})";
  EXPECT_EQ(parse(token(h, R"({"exp":"1700000000"})")), JwtStatus::ExpInvalid);
  EXPECT_EQ(parse(token(h, R"({"exp":-1})")), JwtStatus::ExpInvalid);
  EXPECT_EQ(parse(token(h, R"({"exp":1.5})")), JwtStatus::ExpInvalid);
  EXPECT_EQ(parse(token(h, R"({"exp":253402300800})")), JwtStatus::ExpInvalid);         // year 10000
  EXPECT_EQ(parse(token(h, R"({"exp":18446744073709551615})")), JwtStatus::ExpInvalid);  // uint64 max
  EXPECT_EQ(parse(token(h, R"({"exp":1e300})")), JwtStatus::ExpInvalid);
  EXPECT_EQ(parse(token(h, R"({"exp":99999999999999999999999})")), JwtStatus::ExpInvalid);
  EXPECT_EQ(parse(token(h, R"({"nbf":-9223372036854775808})")), JwtStatus::NbfInvalid);
  EXPECT_EQ(parse(token(h, R"({"nbf":null})")), JwtStatus::NbfInvalid);
  EXPECT_EQ(parse(token(h, R"({"iat":true})")), JwtStatus::IatInvalid);
  EXPECT_EQ(parse(token(h, R"({"exp":253402300799,"nbf":0,"iat":1700000000.0})")), JwtStatus::Ok);
}

TEST(JwtJws, TimeChecksUseSixtySecondSkew) {
  Jwt jwt;
  jwt.exp = 1000;
  jwt.nbf = 500;
  EXPECT_EQ(check_time(jwt, 1060), JwtStatus::Ok);
  EXPECT_EQ(check_time(jwt, 1061), JwtStatus::Expired);
  EXPECT_EQ(check_time(jwt, 440), JwtStatus::Ok);
  EXPECT_EQ(check_time(jwt, 439), JwtStatus::NotYetValid);
  EXPECT_EQ(check_time(jwt, INT64_MAX), JwtStatus::Expired);
  EXPECT_EQ(check_time(jwt, INT64_MIN), JwtStatus::NotYetValid);
  Jwt open;  // no exp/nbf: always within time
  EXPECT_EQ(check_time(open, INT64_MAX), JwtStatus::Ok);
}

TEST(JwtJws, OversizedTokenIsAClearError) {
  std::string big = token(R"({"alg":"RS256"})", "{\"x\":\"" + std::string(20000, 'a') + "\"}");
  EXPECT_EQ(parse(big), JwtStatus::TooLarge);
  EXPECT_STREQ(status_message(JwtStatus::TooLarge), "Jwt is too large");
  EXPECT_EQ(http_status(JwtStatus::TooLarge), 401);
}

TEST(JwtJws, EnvoyMessagesAndStatuses) {
  EXPECT_STREQ(status_message(JwtStatus::Expired), "Jwt is expired");
  EXPECT_STREQ(status_message(JwtStatus::VerificationFail), "Jwt verification fails");
  EXPECT_STREQ(status_message(JwtStatus::UnknownIssuer), "Jwt issuer is not configured");
  EXPECT_STREQ(status_message(JwtStatus::AudienceNotAllowed), "Audiences in Jwt are not allowed");
  EXPECT_STREQ(status_message(JwtStatus::JwksKidAlgMismatch), "Jwks doesn't have key to match kid or alg from Jwt");
  EXPECT_EQ(http_status(JwtStatus::AudienceNotAllowed), 403);
  EXPECT_EQ(http_status(JwtStatus::Expired), 401);
}

TEST(JwtJws, DeeplyNestedJsonDoesNotCrash) {
  std::string nested = std::string(5000, '[') + std::string(5000, ']');
  std::string t = b64(R"({"alg":"RS256"})") + "." + b64("{\"a\":" + nested + "}") + ".c2ln";
  Jwt jwt;
  EXPECT_EQ(parse_jwt(t, jwt), JwtStatus::Ok);
}

}  // namespace
}  // namespace mg::jwt
