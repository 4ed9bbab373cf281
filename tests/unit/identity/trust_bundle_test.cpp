#include "identity/trust_bundle.h"

#include <gtest/gtest.h>

#include "test_certs.h"

namespace {

using mg::identity::TrustBundle;
constexpr std::time_t kNow = 1'800'000'000;

TEST(TrustBundle, PemRoundTripKeepsOrderAndDropsDuplicates) {
  auto k1 = mg::testcerts::ec_key();
  auto k2 = mg::testcerts::ec_key();
  auto r1 = mg::testcerts::make_cert(mg::testcerts::ca_spec("r1", kNow), k1.get(), nullptr, nullptr);
  auto r2 = mg::testcerts::make_cert(mg::testcerts::ca_spec("r2", kNow), k2.get(), nullptr, nullptr);
  std::string pem = mg::crypto::cert_to_pem(r1.get()) + mg::crypto::cert_to_pem(r2.get()) +
                    mg::crypto::cert_to_pem(r1.get());
  auto b = TrustBundle::from_pem("cluster.local", pem);
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_EQ(b->trust_domain(), "cluster.local");
  ASSERT_EQ(b->roots().size(), 2u);
  EXPECT_EQ(X509_cmp(b->roots()[0].get(), r1.get()), 0);
  auto again = TrustBundle::from_pem("cluster.local", b->to_pem());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->to_pem(), b->to_pem());

  TrustBundle copy = *b;  // copies share the certificates
  EXPECT_EQ(copy.roots().size(), 2u);
  EXPECT_EQ(copy.roots()[1].get(), b->roots()[1].get());
}

TEST(TrustBundle, RefusesNonCaCertificatesBadPemAndBadTrustDomain) {
  auto key = mg::testcerts::ec_key();
  auto leaf = mg::testcerts::make_cert(mg::testcerts::leaf_spec("spiffe://td/x", kNow), key.get(), nullptr, nullptr);
  auto b = TrustBundle::from_pem("td", mg::crypto::cert_to_pem(leaf.get()));
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, "bundle.not_ca");

  EXPECT_EQ(TrustBundle::from_pem("td", "").error().code, "pem.no_certificate");
  EXPECT_EQ(TrustBundle::from_pem("td", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").error().code,
            "pem.malformed");
  EXPECT_EQ(TrustBundle::from_pem("TD", "x").error().code, "spiffe.uppercase_trust_domain");
}

TEST(TrustBundle, EmptyBundleHasNoStore) {
  auto b = TrustBundle::empty("td");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->make_store().error().code, "bundle.empty");
}

}  // namespace

namespace {

using mg::identity::TrustBundle;

// SPIFFE federation (docs/MESHES.md): each trust domain keeps its own roots.
TEST(FederatedBundles, TextRoundTripAndLookupByTrustDomain) {
  constexpr std::time_t kNow = 1'800'000'000;
  auto k1 = mg::testcerts::ec_key();
  auto k2 = mg::testcerts::ec_key();
  auto r1 = mg::testcerts::make_cert(mg::testcerts::ca_spec("b-root", kNow), k1.get(), nullptr, nullptr);
  auto r2 = mg::testcerts::make_cert(mg::testcerts::ca_spec("c-root", kNow), k2.get(), nullptr, nullptr);
  auto b = TrustBundle::from_pem("b.example", mg::crypto::cert_to_pem(r1.get()));
  auto c = TrustBundle::from_pem("c.example", mg::crypto::cert_to_pem(r2.get()));
  ASSERT_TRUE(b && c);
  const std::string text = mg::identity::federated_bundles_to_text({*b, *c});
  auto parsed = mg::identity::parse_federated_bundles(text);
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].trust_domain(), "b.example");
  EXPECT_EQ((*parsed)[1].trust_domain(), "c.example");
  EXPECT_EQ(X509_cmp((*parsed)[1].roots()[0].get(), r2.get()), 0);
  EXPECT_EQ(mg::identity::federated_bundles_to_text(*parsed), text);

  auto own = TrustBundle::from_pem("a.example", mg::crypto::cert_to_pem(r1.get()));
  ASSERT_TRUE(own);
  EXPECT_EQ(mg::identity::bundle_for("a.example", *own, *parsed), &*own);
  EXPECT_EQ(mg::identity::bundle_for("c.example", *own, *parsed)->trust_domain(), "c.example");
  EXPECT_EQ(mg::identity::bundle_for("d.example", *own, *parsed), nullptr);

  auto none = mg::identity::parse_federated_bundles("");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(mg::identity::parse_federated_bundles(mg::crypto::cert_to_pem(r1.get())).error().code,
            "bundle.federated");
  EXPECT_EQ(mg::identity::parse_federated_bundles("# trust domain: b.example\n").error().code,
            "bundle.federated");
  EXPECT_EQ(mg::identity::parse_federated_bundles(text + text).error().code, "bundle.federated");
  EXPECT_FALSE(mg::identity::parse_federated_bundles("# trust domain: B.EXAMPLE\n" +
                                                     mg::crypto::cert_to_pem(r1.get())));
}

}  // namespace
