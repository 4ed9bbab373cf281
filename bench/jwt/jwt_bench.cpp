// Run: jwt_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// Compare BM_Authenticate_Uncached/<alg> with BM_RawEvpVerify/<alg>: the difference is what the
// JWT layer (extraction, base64url, JSON, checks, key selection, result) costs on top of the
// signature check itself.
#include <benchmark/benchmark.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "jwt/authenticator.h"
#include "jwt/base64url.h"
#include "jwt_test_util.h"

namespace {

using namespace mg::jwt;

constexpr int64_t kNow = 1700000000;

struct Fixture {
  testing::TestKey key;
  std::string token;
  std::string signing_input;
  std::string raw_signature;  // what EVP verifies: PKCS#1 bytes for RSA, DER for ECDSA
  mg::crypto::PKeyPtr public_key;
  JwtRule rule;
};

Fixture make_fixture(Alg alg) {
  Fixture f{testing::make_key(alg, "bench"), {}, {}, {}, nullptr, {}};
  nlohmann::json claims = {{"iss", "https://issuer.example"}, {"sub", "alice"}, {"aud", "bookinfo"},
                           {"exp", kNow + 3600}, {"iat", kNow}, {"scope", "read write"}};
  f.token = testing::sign_token(f.key, {{"typ", "JWT"}}, claims);
  f.signing_input = f.token.substr(0, f.token.rfind('.'));
  std::string jose = *base64url_decode(f.token.substr(f.token.rfind('.') + 1));
  if (alg == Alg::ES256) {
    ECDSA_SIG* sig = ECDSA_SIG_new();
    ECDSA_SIG_set0(sig, BN_bin2bn(reinterpret_cast<const unsigned char*>(jose.data()), 32, nullptr),
                   BN_bin2bn(reinterpret_cast<const unsigned char*>(jose.data()) + 32, 32, nullptr));
    unsigned char der[128];
    unsigned char* p = der;
    int len = i2d_ECDSA_SIG(sig, &p);
    ECDSA_SIG_free(sig);
    f.raw_signature.assign(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  } else {
    f.raw_signature = jose;
  }
  auto jwk = parse_jwk(f.key.jwk);
  f.public_key = std::move(jwk->key);
  f.rule.issuer = "https://issuer.example";
  f.rule.audiences = {"bookinfo"};
  f.rule.jwks = testing::jwks_of({&f.key});
  return f;
}

const Fixture& fixture(Alg alg) {
  static Fixture rs = make_fixture(Alg::RS256);
  static Fixture es = make_fixture(Alg::ES256);
  return alg == Alg::RS256 ? rs : es;
}

void BM_RawEvpVerify(benchmark::State& state) {
  const Fixture& f = fixture(static_cast<Alg>(state.range(0)));
  for (auto _ : state) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, f.public_key.get());
    int ok = EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(f.raw_signature.data()), f.raw_signature.size(),
                              reinterpret_cast<const unsigned char*>(f.signing_input.data()), f.signing_input.size());
    EVP_MD_CTX_free(ctx);
    if (ok != 1) state.SkipWithError("raw verify failed");
    benchmark::DoNotOptimize(ok);
  }
}

// The JWT layer's own signature step (JOSE r||s → DER for ECDSA, pre-fetched digest).
void BM_VerifySignatureOnly(benchmark::State& state) {
  const Fixture& f = fixture(static_cast<Alg>(state.range(0)));
  auto jwk = parse_jwk(f.key.jwk);
  std::string jose = *base64url_decode(f.token.substr(f.token.rfind('.') + 1));
  Alg alg = static_cast<Alg>(state.range(0));
  for (auto _ : state) {
    auto st = verify_signature(alg, *jwk, f.signing_input, jose);
    if (st != JwtStatus::Ok) state.SkipWithError("verify failed");
    benchmark::DoNotOptimize(st);
  }
}

// Structure only: base64url + JSON + claim checks, no signature.
void BM_ParseOnly(benchmark::State& state) {
  const Fixture& f = fixture(static_cast<Alg>(state.range(0)));
  for (auto _ : state) {
    Jwt jwt;
    auto st = parse_jwt(f.token, jwt);
    benchmark::DoNotOptimize(st);
  }
}

void BM_Authenticate_Uncached(benchmark::State& state) {
  const Fixture& f = fixture(static_cast<Alg>(state.range(0)));
  Authenticator auth({f.rule}, nullptr, Authenticator::Options{0});
  HeaderList headers = {{":authority", "details:9080"}, {"user-agent", "curl/8"}, {"authorization", "Bearer " + f.token}};
  for (auto _ : state) {
    auto r = auth.authenticate_shared(headers, "/details/1", kNow);
    if (r.status != JwtStatus::Ok) state.SkipWithError(status_message(r.status));
    benchmark::DoNotOptimize(r);
  }
}

void BM_Authenticate_CachedHit(benchmark::State& state) {
  const Fixture& f = fixture(static_cast<Alg>(state.range(0)));
  Authenticator auth({f.rule});
  HeaderList headers = {{":authority", "details:9080"}, {"user-agent", "curl/8"}, {"authorization", "Bearer " + f.token}};
  (void)auth.authenticate_shared(headers, "/details/1", kNow);
  for (auto _ : state) {
    auto r = auth.authenticate_shared(headers, "/details/1", kNow);
    if (r.status != JwtStatus::Ok) state.SkipWithError(status_message(r.status));
    benchmark::DoNotOptimize(r);
  }
  state.counters["verifications"] = static_cast<double>(auth.signature_verifications());
}

// The same hit, but materializing the RequestAuth (claims copied) as authz check does.
void BM_Authenticate_CachedHitRequestAuth(benchmark::State& state) {
  const Fixture& f = fixture(static_cast<Alg>(state.range(0)));
  Authenticator auth({f.rule});
  HeaderList headers = {{"authorization", "Bearer " + f.token}};
  (void)auth.authenticate(headers, "/details/1", kNow);
  for (auto _ : state) {
    auto r = auth.authenticate(headers, "/details/1", kNow);
    benchmark::DoNotOptimize(r);
  }
}

#define ALGS ->Arg(static_cast<int>(Alg::RS256))->Arg(static_cast<int>(Alg::ES256))
BENCHMARK(BM_RawEvpVerify) ALGS;
BENCHMARK(BM_VerifySignatureOnly) ALGS;
BENCHMARK(BM_ParseOnly)->Arg(static_cast<int>(Alg::ES256));
BENCHMARK(BM_Authenticate_Uncached) ALGS;
BENCHMARK(BM_Authenticate_CachedHit) ALGS;
BENCHMARK(BM_Authenticate_CachedHitRequestAuth)->Arg(static_cast<int>(Alg::ES256));

}  // namespace

BENCHMARK_MAIN();
