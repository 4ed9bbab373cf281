// Arbitrary bytes as a JWKS document; every key that imports is exercised once for each
// algorithm it may serve, with a junk signature (must never verify, never crash). The same bytes
// as an OpenID discovery document: a jwks_uri it yields is always a URL the fetcher accepts.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "jwt/jwk.h"
#include "jwt/jwks_fetcher.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto uri = mg::jwt::jwks_uri_of_discovery(text); uri && !mg::jwt::parse_url(*uri)) __builtin_trap();
  auto set = mg::jwt::parse_jwks(text);
  if (!set) return 0;
  using mg::jwt::Alg;
  for (const auto& key : set->keys) {
    for (Alg alg : {Alg::RS256, Alg::PS512, Alg::ES256, Alg::ES384, Alg::ES512, Alg::EdDSA}) {
      if (!mg::jwt::key_matches(key, alg, "")) continue;
      auto st = mg::jwt::verify_signature(alg, key, "a.b", text.substr(0, 64));
      if (st == mg::jwt::JwtStatus::Ok) __builtin_trap();  // a document cannot sign "a.b" by itself
    }
  }
  return 0;
}
