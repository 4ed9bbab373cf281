// Bootstrap-token verification on arbitrary input. Input starting with '{' is taken as a JWT
// payload and signed here with the fuzzer's key first, so the claim checks behind the signature
// are explored too (a fuzzer cannot forge ES256). Invariant: whatever verifies mints again into a
// token that verifies to the same claims.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "control/token.h"
#include "crypto/openssl.h"
#include "jwt/sign.h"

namespace {

// A fixed P-256 test key, only ever used by this fuzzer (the seed corpus is signed with it).
const char* const kKeyPem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg30h8vIxYtJcrGBDk\n"
    "VMP0QMJ2taHiSpYD/4TNxcGrosahRANCAAR2XS96o7TYaYU3sgnfe0jkhp5d2OC5\n"
    "VtDfvRu4LV+TSKi7L1UT9MT9/R6qi55MrwyCo74iynO5BTvqjWidjw2c\n"
    "-----END PRIVATE KEY-----\n";
constexpr const char* kIssuer = "meshguard-control";
constexpr int64_t kNow = 1700000100;

EVP_PKEY* key() {
  static mg::crypto::PKeyPtr* k = [] {
    auto parsed = mg::crypto::parse_private_key_pem(kKeyPem);
    if (!parsed) std::abort();
    return new mg::crypto::PKeyPtr(std::move(*parsed));
  }();
  return k->get();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  if (!input.empty() && input[0] == '{') {
    auto signed_token = mg::jwt::sign_compact(mg::jwt::Alg::ES256, key(), R"({"alg":"ES256"})", input);
    if (!signed_token) std::abort();
    input = std::move(*signed_token);
  }
  auto claims = mg::control::verify_bootstrap_token(input, key(), kIssuer, kNow);
  if (!claims) return 0;
  auto again = mg::control::mint_bootstrap_token(key(), kIssuer, *claims);
  if (!again) std::abort();
  auto round = mg::control::verify_bootstrap_token(*again, key(), kIssuer, kNow);
  if (!round || round->ns != claims->ns || round->service_account != claims->service_account ||
      round->id != claims->id || round->expires_at != claims->expires_at) {
    std::abort();
  }
  return 0;
}
