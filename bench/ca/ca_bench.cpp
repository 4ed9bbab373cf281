// ca_bench — how fast the CA turns a CSR into an X.509-SVID, next to the raw ECDSA P-256
// operations it cannot avoid, measured in the same run (compare items_per_second).
//
//   BM_RawEcdsaP256Sign     one ECDSA P-256 signature over a 32-byte digest (like `openssl speed ecdsap256`)
//   BM_RawEcdsaP256Verify   one ECDSA P-256 verification of such a signature
//   BM_RawEcdsaP256SignPlusVerify   one verify + one sign: the cryptographic floor of issuing from a CSR
//   BM_IssueSvid            Authority::sign_csr end to end: key-policy checks, CSR signature
//                           verification (one ECDSA verify), certificate assembly, one ECDSA sign,
//                           PEM encoding of leaf and chain. The CSR is built once, outside the loop.
//   BM_IssueSvidFromPem     the same, starting from CSR PEM text (what arrives over the wire)
//
// The floor for BM_IssueSvid is one sign + one verify (BM_RawEcdsaP256SignPlusVerify): a CA must
// check the CSR's proof of possession, and a P-256 verify costs about three signatures, so
// "issued/s" can never reach half the raw signing rate; compare it with the floor instead.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>

#include "ca/authority.h"

namespace {

constexpr std::time_t kNow = 1'800'000'000;

mg::crypto::PKeyPtr p256() {
  auto key = mg::crypto::generate_key(mg::crypto::KeyType::EcP256);
  if (!key) std::abort();
  return std::move(*key);
}

void BM_RawEcdsaP256Sign(benchmark::State& state) {
  auto key = p256();
  mg::crypto::PKeyCtxPtr ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1) std::abort();
  unsigned char digest[32] = {1, 2, 3};
  unsigned char sig[80];
  for (auto _ : state) {
    size_t len = sizeof sig;
    if (EVP_PKEY_sign(ctx.get(), sig, &len, digest, sizeof digest) != 1) std::abort();
    benchmark::DoNotOptimize(sig);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawEcdsaP256Sign);

void BM_RawEcdsaP256Verify(benchmark::State& state) {
  auto key = p256();
  mg::crypto::PKeyCtxPtr sctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  unsigned char digest[32] = {1, 2, 3};
  unsigned char sig[80];
  size_t len = sizeof sig;
  if (!sctx || EVP_PKEY_sign_init(sctx.get()) != 1 || EVP_PKEY_sign(sctx.get(), sig, &len, digest, 32) != 1) std::abort();
  mg::crypto::PKeyCtxPtr vctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  if (!vctx || EVP_PKEY_verify_init(vctx.get()) != 1) std::abort();
  for (auto _ : state) {
    if (EVP_PKEY_verify(vctx.get(), sig, len, digest, sizeof digest) != 1) std::abort();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawEcdsaP256Verify);

// The floor for issuing from a CSR: the CA must verify the CSR's signature and sign the leaf.
void BM_RawEcdsaP256SignPlusVerify(benchmark::State& state) {
  auto ca_key = p256();
  auto csr_key = p256();
  mg::crypto::PKeyCtxPtr sctx(EVP_PKEY_CTX_new(ca_key.get(), nullptr));
  mg::crypto::PKeyCtxPtr csr_sctx(EVP_PKEY_CTX_new(csr_key.get(), nullptr));
  mg::crypto::PKeyCtxPtr vctx(EVP_PKEY_CTX_new(csr_key.get(), nullptr));
  unsigned char digest[32] = {4, 5, 6};
  unsigned char csr_sig[80];
  size_t csr_sig_len = sizeof csr_sig;
  if (!sctx || !csr_sctx || !vctx || EVP_PKEY_sign_init(sctx.get()) != 1 || EVP_PKEY_sign_init(csr_sctx.get()) != 1 ||
      EVP_PKEY_sign(csr_sctx.get(), csr_sig, &csr_sig_len, digest, 32) != 1 || EVP_PKEY_verify_init(vctx.get()) != 1)
    std::abort();
  unsigned char sig[80];
  for (auto _ : state) {
    if (EVP_PKEY_verify(vctx.get(), csr_sig, csr_sig_len, digest, sizeof digest) != 1) std::abort();
    size_t len = sizeof sig;
    if (EVP_PKEY_sign(sctx.get(), sig, &len, digest, sizeof digest) != 1) std::abort();
    benchmark::DoNotOptimize(sig);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawEcdsaP256SignPlusVerify);

const mg::ca::Authority& authority() {
  static auto* ca = [] {
    auto created = mg::ca::Authority::create_self_signed("cluster.local", mg::crypto::KeyType::EcP256, kNow);
    if (!created) std::abort();
    return new mg::ca::Authority(std::move(*created));
  }();
  return *ca;
}

void BM_IssueSvid(benchmark::State& state) {
  const auto& ca = authority();
  auto key = p256();
  auto csr = mg::crypto::make_csr(key.get());
  auto id = mg::identity::SpiffeId::parse("spiffe://cluster.local/ns/default/sa/sleep");
  if (!csr || !id) std::abort();
  for (auto _ : state) {
    auto svid = ca.sign_csr(csr->get(), *id, std::chrono::hours(24), kNow);
    if (!svid) std::abort();
    benchmark::DoNotOptimize(svid->chain_pem.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IssueSvid);

void BM_IssueSvidFromPem(benchmark::State& state) {
  const auto& ca = authority();
  auto key = p256();
  auto csr = mg::crypto::make_csr(key.get());
  if (!csr) std::abort();
  std::string pem = mg::crypto::csr_to_pem(csr->get());
  for (auto _ : state) {
    auto svid = ca.sign_csr_pem(pem, "spiffe://cluster.local/ns/default/sa/sleep", std::chrono::hours(24), kNow);
    if (!svid) std::abort();
    benchmark::DoNotOptimize(svid->chain_pem.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IssueSvidFromPem);

}  // namespace

BENCHMARK_MAIN();
