#include "identity/svid.h"

#include <gtest/gtest.h>

#include "test_certs.h"

namespace {

using mg::crypto::PKeyPtr;
using mg::crypto::X509Ptr;
using mg::identity::SvidErrorKind;
using mg::identity::TrustBundle;
using mg::identity::verify_svid;
using mg::testcerts::CertSpec;

constexpr std::time_t kNow = 1'800'000'000;  // fixed clock: tests never read the wall clock
constexpr const char* kId = "spiffe://cluster.local/ns/default/sa/sleep";

class SvidTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_key_ = mg::testcerts::ec_key();
    root_ = mg::testcerts::make_cert(mg::testcerts::ca_spec("root", kNow), root_key_.get(), nullptr, nullptr);
    leaf_key_ = mg::testcerts::ec_key();
    auto b = TrustBundle::from_pem("cluster.local", mg::crypto::cert_to_pem(root_.get()));
    ASSERT_TRUE(b);
    bundle_.emplace(std::move(*b));
  }

  X509Ptr leaf(const CertSpec& spec) { return mg::testcerts::make_cert(spec, leaf_key_.get(), root_.get(), root_key_.get()); }

  // Verifies [cert] against the bundle at kNow and returns the error kind (or nullopt when valid).
  std::optional<SvidErrorKind> verify(X509Ptr cert, std::time_t now = kNow) {
    std::vector<X509Ptr> chain;
    chain.push_back(std::move(cert));
    auto r = verify_svid(chain, *bundle_, now);
    if (r) return std::nullopt;
    EXPECT_FALSE(r.error().message.empty());
    return r.error().kind;
  }

  PKeyPtr root_key_, leaf_key_;
  X509Ptr root_;
  std::optional<TrustBundle> bundle_;
};

TEST_F(SvidTest, ValidLeafVerifiesAndYieldsItsId) {
  std::vector<X509Ptr> chain;
  chain.push_back(leaf(mg::testcerts::leaf_spec(kId, kNow)));
  auto r = verify_svid(chain, *bundle_, kNow);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->str(), kId);
}

TEST_F(SvidTest, DnsSanAlongsideOneUriIsFine) {
  auto spec = mg::testcerts::leaf_spec(kId, kNow);
  spec.extra_san = "DNS:sleep.default.svc";
  EXPECT_EQ(verify(leaf(spec)), std::nullopt);
}

TEST_F(SvidTest, NoUriSan) {
  auto spec = mg::testcerts::leaf_spec(kId, kNow);
  spec.uris.clear();
  EXPECT_EQ(verify(leaf(spec)), SvidErrorKind::NoUriSan);
}

TEST_F(SvidTest, TwoUriSans) {
  auto spec = mg::testcerts::leaf_spec(kId, kNow);
  spec.uris.push_back("spiffe://cluster.local/ns/default/sa/other");
  EXPECT_EQ(verify(leaf(spec)), SvidErrorKind::MultipleUriSans);
}

TEST_F(SvidTest, UriSanThatIsNotASpiffeId) {
  EXPECT_EQ(verify(leaf(mg::testcerts::leaf_spec("https://cluster.local/x", kNow))), SvidErrorKind::BadSpiffeId);
  EXPECT_EQ(verify(leaf(mg::testcerts::leaf_spec("spiffe://Cluster.local/x", kNow))), SvidErrorKind::BadSpiffeId);
}

TEST_F(SvidTest, CaLeafIsRefused) {
  auto spec = mg::testcerts::leaf_spec(kId, kNow);
  spec.basic_constraints = "critical,CA:TRUE";
  EXPECT_EQ(verify(leaf(spec)), SvidErrorKind::LeafIsCa);
}

TEST_F(SvidTest, MissingKeyUsage) {
  auto spec = mg::testcerts::leaf_spec(kId, kNow);
  spec.key_usage = std::nullopt;
  EXPECT_EQ(verify(leaf(spec)), SvidErrorKind::NoKeyUsage);
}

TEST_F(SvidTest, KeyUsageNotCritical) {
  auto spec = mg::testcerts::leaf_spec(kId, kNow);
  spec.key_usage = "digitalSignature";
  EXPECT_EQ(verify(leaf(spec)), SvidErrorKind::KeyUsageNotCritical);
}

TEST_F(SvidTest, NoDigitalSignature) {
  auto spec = mg::testcerts::leaf_spec(kId, kNow);
  spec.key_usage = "critical,keyEncipherment";
  EXPECT_EQ(verify(leaf(spec)), SvidErrorKind::NoDigitalSignature);
}

TEST_F(SvidTest, KeyCertSignPresent) {
  auto spec = mg::testcerts::leaf_spec(kId, kNow);
  spec.key_usage = "critical,digitalSignature,keyCertSign";
  EXPECT_EQ(verify(leaf(spec)), SvidErrorKind::HasCertSign);
}

TEST_F(SvidTest, CrlSignPresent) {
  auto spec = mg::testcerts::leaf_spec(kId, kNow);
  spec.key_usage = "critical,digitalSignature,cRLSign";
  EXPECT_EQ(verify(leaf(spec)), SvidErrorKind::HasCrlSign);
}

TEST_F(SvidTest, ExpiredAndNotYetValidAtTheBoundaries) {
  auto spec = mg::testcerts::leaf_spec(kId, kNow);
  spec.not_before = kNow - 100;
  spec.not_after = kNow + 100;
  auto cert = leaf(spec);
  auto pem = mg::crypto::cert_to_pem(cert.get());
  auto again = [&] { return std::move(mg::crypto::parse_cert_chain_pem(pem)->front()); };
  // OpenSSL's chain check (X509_cmp_time) treats the notAfter second itself as expired; the leaf
  // check agrees with it so both layers report the same thing.
  EXPECT_EQ(verify(again(), kNow + 99), std::nullopt);
  EXPECT_EQ(verify(again(), kNow + 100), SvidErrorKind::Expired);
  EXPECT_EQ(verify(again(), kNow - 100), std::nullopt);
  EXPECT_EQ(verify(again(), kNow - 101), SvidErrorKind::NotYetValid);
}

TEST_F(SvidTest, WrongRoot) {
  auto other_key = mg::testcerts::ec_key();
  auto other_root = mg::testcerts::make_cert(mg::testcerts::ca_spec("root", kNow), other_key.get(), nullptr, nullptr);
  auto cert = mg::testcerts::make_cert(mg::testcerts::leaf_spec(kId, kNow), leaf_key_.get(), other_root.get(),
                                       other_key.get());
  EXPECT_EQ(verify(std::move(cert)), SvidErrorKind::ChainInvalid);
}

TEST_F(SvidTest, OtherTrustDomain) {
  EXPECT_EQ(verify(leaf(mg::testcerts::leaf_spec("spiffe://evil.example/ns/default/sa/sleep", kNow))),
            SvidErrorKind::WrongTrustDomain);
}

TEST_F(SvidTest, SelfSignedLeafIsNotTrusted) {
  auto cert = mg::testcerts::make_cert(mg::testcerts::leaf_spec(kId, kNow), leaf_key_.get(), nullptr, nullptr);
  EXPECT_EQ(verify(std::move(cert)), SvidErrorKind::ChainInvalid);
}

TEST_F(SvidTest, EmptyChain) {
  std::vector<X509Ptr> chain;
  auto r = verify_svid(chain, *bundle_, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, SvidErrorKind::EmptyChain);
  EXPECT_EQ(r.error().code(), "svid.empty_chain");
}

TEST_F(SvidTest, IntermediateChainAndExpiredIntermediate) {
  auto inter_key = mg::testcerts::ec_key();
  auto inter = mg::testcerts::make_cert(mg::testcerts::ca_spec("intermediate", kNow), inter_key.get(), root_.get(),
                                        root_key_.get());
  auto cert = mg::testcerts::make_cert(mg::testcerts::leaf_spec(kId, kNow), leaf_key_.get(), inter.get(), inter_key.get());
  std::vector<X509*> chain{cert.get(), inter.get()};
  auto ok = verify_svid(chain, *bundle_, kNow);
  ASSERT_TRUE(ok) << ok.error().to_string();
  // Without the intermediate the leaf does not reach the root.
  std::vector<X509*> leaf_only{cert.get()};
  EXPECT_EQ(verify_svid(leaf_only, *bundle_, kNow).error().kind, SvidErrorKind::ChainInvalid);

  auto old_spec = mg::testcerts::ca_spec("old-intermediate", kNow);
  old_spec.not_after = kNow + 10;
  auto old_inter = mg::testcerts::make_cert(old_spec, inter_key.get(), root_.get(), root_key_.get());
  auto spec = mg::testcerts::leaf_spec(kId, kNow);
  spec.not_after = kNow + 1000;
  auto cert2 = mg::testcerts::make_cert(spec, leaf_key_.get(), old_inter.get(), inter_key.get());
  std::vector<X509*> chain2{cert2.get(), old_inter.get()};
  EXPECT_EQ(verify_svid(chain2, *bundle_, kNow + 500).error().kind, SvidErrorKind::Expired);
}

TEST_F(SvidTest, ErrorCodesAreStable) {
  EXPECT_EQ(mg::identity::svid_error_code(SvidErrorKind::NoUriSan), "svid.no_uri_san");
  EXPECT_EQ(mg::identity::svid_error_code(SvidErrorKind::LeafIsCa), "svid.leaf_is_ca");
  EXPECT_EQ(mg::identity::svid_error_code(SvidErrorKind::ChainInvalid), "svid.chain_invalid");
  mg::identity::SvidError e{SvidErrorKind::Expired, "gone"};
  EXPECT_EQ(e.to_error().code, "svid.expired");
  EXPECT_EQ(e.to_string(), "svid.expired: gone");
}

}  // namespace
