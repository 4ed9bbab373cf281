// Tests for the crypto helpers this module added to src/crypto: make_csr and X509StackPtr.
#include <gtest/gtest.h>
#include <thread>

#include "ca/authority.h"
#include "crypto/openssl.h"
#include "identity/svid.h"

namespace {

using namespace std::chrono_literals;

TEST(CryptoMakeCsr, SignedWithTheKeyAndCarriesTheRequestedUri) {
  auto key = mg::crypto::generate_key(mg::crypto::KeyType::EcP256);
  ASSERT_TRUE(key);
  auto csr = mg::crypto::make_csr(key->get(), "spiffe://cluster.local/ns/a/sa/b");
  ASSERT_TRUE(csr) << csr.error().to_string();
  EXPECT_EQ(X509_REQ_verify(csr->get(), key->get()), 1);
  EXPECT_EQ(EVP_PKEY_eq(X509_REQ_get0_pubkey(csr->get()), key->get()), 1);
  mg::crypto::GeneralNamesPtr names;
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(csr->get());
  ASSERT_NE(exts, nullptr);
  int idx = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
  ASSERT_GE(idx, 0);
  names.reset(static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(sk_X509_EXTENSION_value(exts, idx))));
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  ASSERT_TRUE(names);
  ASSERT_EQ(sk_GENERAL_NAME_num(names.get()), 1);
  const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), 0);
  ASSERT_EQ(gn->type, GEN_URI);
  std::string uri(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier)),
                  static_cast<size_t>(ASN1_STRING_length(gn->d.uniformResourceIdentifier)));
  EXPECT_EQ(uri, "spiffe://cluster.local/ns/a/sa/b");

  // PEM round trip.
  auto back = mg::crypto::parse_csr_pem(mg::crypto::csr_to_pem(csr->get()));
  ASSERT_TRUE(back);
  EXPECT_EQ(X509_REQ_verify(back->get(), key->get()), 1);
}

TEST(CryptoMakeCsr, WithoutUriHasNoExtensionsAndNullKeyFails) {
  auto key = mg::crypto::generate_key(mg::crypto::KeyType::Rsa2048);
  ASSERT_TRUE(key);
  auto csr = mg::crypto::make_csr(key->get());
  ASSERT_TRUE(csr);
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(csr->get());
  EXPECT_TRUE(exts == nullptr || sk_X509_EXTENSION_num(exts) == 0);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  EXPECT_EQ(mg::crypto::make_csr(nullptr).error().code, "csr.no_key");
}

TEST(CryptoX509Stack, DoesNotOwnItsCertificates) {
  auto ca = mg::ca::Authority::create_self_signed("td", mg::crypto::KeyType::EcP256, 1'800'000'000);
  ASSERT_TRUE(ca);
  {
    mg::crypto::X509StackPtr stack(sk_X509_new_null());
    ASSERT_TRUE(sk_X509_push(stack.get(), ca->ca_cert()));
  }
  // Still alive and usable after the stack is gone (ASan would flag a double free otherwise).
  EXPECT_EQ(X509_check_ca(ca->ca_cert()), 1);
}

TEST(AuthorityThreads, ConcurrentSigningProducesValidDistinctCertificates) {
  auto ca = mg::ca::Authority::create_self_signed("td", mg::crypto::KeyType::EcP256, 1'800'000'000);
  ASSERT_TRUE(ca);
  auto key = mg::crypto::generate_key(mg::crypto::KeyType::EcP256);
  auto csr = mg::crypto::make_csr(key->get());
  auto id = mg::identity::SpiffeId::parse("spiffe://td/ns/a/sa/b");
  ASSERT_TRUE(csr && id);
  std::vector<std::string> out[2];
  auto work = [&](int t) {
    for (int i = 0; i < 25; ++i) {
      auto svid = ca->sign_csr(csr->get(), *id, 1h, 1'800'000'000);
      if (svid) out[t].push_back(svid->chain_pem);
    }
  };
  std::thread a(work, 0), b(work, 1);
  a.join();
  b.join();
  ASSERT_EQ(out[0].size(), 25u);
  ASSERT_EQ(out[1].size(), 25u);
  for (auto& list : out) {
    for (auto& pem : list) {
      auto chain = mg::crypto::parse_cert_chain_pem(pem);
      ASSERT_TRUE(chain);
      EXPECT_TRUE(mg::identity::verify_svid(*chain, ca->bundle(), 1'800'000'000));
    }
  }
  EXPECT_NE(out[0][0], out[1][0]);
}

}  // namespace
