// Feeds arbitrary bytes as a token (parse_jwt directly, then through the Authenticator as a
// bearer header, a query parameter and a cookie) against Istio's sample key set.
#include <cstddef>
#include <cstdint>
#include <string>

#include "jwt/authenticator.h"

namespace {
const char* const kJwks =
    R"({"keys":[{"e":"AQAB","kid":"DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ","kty":"RSA","n":"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX-P7KfIupjf59vsdo91bSP9C8H07pSAGQO1MV_xFj9VswgsCg4R6otmg5PV2He95lZdHtOcU5DXIg_pbhLdKXbi66GlVeK6ABZOUW3WYtnNHD-91gVuoeJT_DwtGGcp4ignkgXfkiEm4sw-4sfb4qdt5oLbyVpmW6x9cfa7vs2WTfURiCrBoUqgBo_-4WTiULmmHSGZHOjzwa8WtrtOQGsAFjIbno85jp6MnGGGZPYZbDAa_b3y5u-YpW7ypZrvD8BgtKVjgtQgZhLAGezMt0ua3DRrWnKqTZ0BJ_EyxOGuHJrLsn00fnMQ"},)"
    R"({"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})";

const mg::jwt::Authenticator& authenticator() {
  static const mg::jwt::Authenticator* auth = [] {
    mg::jwt::JwtRule a;
    a.issuer = "testing@secure.istio.io";
    a.jwks = kJwks;
    mg::jwt::JwtRule b;
    b.issuer = "joe";
    b.jwks = kJwks;
    b.audiences = {"x"};
    b.from_cookies = {"session"};
    b.from_params = {"token"};
    b.output_claim_to_headers = {{"x-sub", "sub"}};
    return new mg::jwt::Authenticator({a, b});
  }();
  return *auth;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  mg::jwt::Jwt jwt;
  if (mg::jwt::parse_jwt(input, jwt) == mg::jwt::JwtStatus::Ok) (void)mg::jwt::check_time(jwt, 1700000000);
  const auto& auth = authenticator();
  auto r = auth.authenticate_shared({{"Authorization", "Bearer " + input}, {"cookie", "session=" + input}}, "/p?token=" + input, 1700000000);
  (void)auth.header_mutations(r);
  (void)r.to_request_auth();
  return 0;
}
