#include "ca/authority.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <openssl/rand.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include "common/files.h"
#include "identity/svid.h"
#include "test_certs.h"

namespace {

using mg::ca::Authority;
using mg::crypto::KeyType;
using mg::crypto::X509Ptr;
using mg::identity::SpiffeId;
using mg::identity::SvidErrorKind;
using mg::identity::TrustBundle;
using namespace std::chrono_literals;

constexpr std::time_t kNow = 1'800'000'000;
constexpr const char* kTd = "cluster.local";
constexpr const char* kId = "spiffe://cluster.local/ns/default/sa/sleep";

SpiffeId id(const char* s) { return std::move(*SpiffeId::parse(s)); }

std::time_t to_time(const ASN1_TIME* t) {
  struct tm tm {};
  ASN1_TIME_to_tm(t, &tm);
  return timegm(&tm);
}

std::vector<X509Ptr> parse_chain(const std::string& pem) { return std::move(*mg::crypto::parse_cert_chain_pem(pem)); }

X509Ptr leaf_of(const mg::ca::IssuedSvid& svid) {
  auto chain = parse_chain(svid.cert_pem);
  EXPECT_EQ(chain.size(), 1u);
  EXPECT_EQ(mg::crypto::cert_der(chain.front().get()), svid.cert_der);
  return std::move(chain.front());
}

Authority new_ca(KeyType type = KeyType::EcP256, std::chrono::seconds validity = mg::ca::kDefaultRootValidity,
                 std::time_t now = kNow) {
  auto ca = Authority::create_self_signed(kTd, type, now, validity);
  if (!ca) throw std::runtime_error(ca.error().to_string());
  return std::move(*ca);
}

mg::ca::IssuedSvid issue(const Authority& ca, const char* spiffe_id = kId, std::chrono::seconds ttl = 24h,
                         std::time_t now = kNow) {
  auto key = mg::testcerts::ec_key();
  auto csr = mg::testcerts::make_csr(key.get());
  auto svid = ca.sign_csr(csr.get(), id(spiffe_id), ttl, now);
  if (!svid) throw std::runtime_error(svid.error().to_string());
  return std::move(*svid);
}

bool ext_critical(X509* cert, int nid) {
  int idx = X509_get_ext_by_NID(cert, nid, -1);
  return idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

TEST(Authority, SelfSignedRootShape) {
  auto ca = new_ca();
  X509* root = ca.ca_cert();
  EXPECT_TRUE(ca.is_self_signed());
  EXPECT_EQ(ca.trust_domain(), kTd);
  EXPECT_EQ(X509_check_ca(root), 1);
  EXPECT_TRUE(ext_critical(root, NID_basic_constraints));
  EXPECT_TRUE(ext_critical(root, NID_key_usage));
  EXPECT_TRUE(X509_get_key_usage(root) & KU_KEY_CERT_SIGN);
  EXPECT_EQ(X509_check_issued(root, root), X509_V_OK);
  auto root_id = mg::identity::spiffe_id_of(root);
  ASSERT_TRUE(root_id);
  EXPECT_EQ(root_id->str(), "spiffe://cluster.local");
  ASSERT_EQ(ca.bundle().roots().size(), 1u);
  auto pem = ca.to_pem();
  EXPECT_EQ(pem.ca_cert, pem.root_cert);
  EXPECT_EQ(pem.cert_chain, pem.ca_cert);
}

TEST(Authority, IssuedSvidHasExactlyTheRequiredShape) {
  auto ca = new_ca();
  auto svid = issue(ca);
  auto leaf_cert = leaf_of(svid);
  X509* leaf = leaf_cert.get();

  auto chain = parse_chain(svid.chain_pem);
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(X509_cmp(chain[0].get(), leaf), 0);
  auto verified = mg::identity::verify_svid(chain, ca.bundle(), kNow);
  ASSERT_TRUE(verified) << verified.error().to_string();
  EXPECT_EQ(verified->str(), kId);

  EXPECT_EQ(X509_get_version(leaf), X509_VERSION_3);
  EXPECT_EQ(X509_check_ca(leaf), 0);
  EXPECT_TRUE(ext_critical(leaf, NID_basic_constraints));
  EXPECT_TRUE(ext_critical(leaf, NID_key_usage));
  EXPECT_EQ(X509_get_key_usage(leaf), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(leaf), static_cast<uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  EXPECT_TRUE(ext_critical(leaf, NID_subject_alt_name));  // subject is empty
  EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(leaf)), 0);
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(ca.ca_cert())), 0);

  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(leaf);
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(leaf);
  ASSERT_TRUE(ski && aki);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(ca.ca_cert())), 0);
  EXPECT_NE(ASN1_OCTET_STRING_cmp(ski, aki), 0);

  EXPECT_EQ(to_time(X509_get0_notBefore(leaf)), kNow - 300);
  EXPECT_EQ(to_time(X509_get0_notAfter(leaf)), kNow + 24 * 3600);

  mg::crypto::BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), nullptr));
  EXPECT_FALSE(BN_is_negative(serial.get()));
  EXPECT_FALSE(BN_is_zero(serial.get()));
  EXPECT_LE(BN_num_bits(serial.get()), 128);
}

TEST(Authority, LeafCarriesExactlyTheCsrPublicKey) {
  auto ca = new_ca();
  std::vector<mg::crypto::PKeyPtr> keys;
  keys.push_back(mg::testcerts::ec_key());
  keys.push_back(mg::crypto::PKeyPtr(EVP_EC_gen("P-384")));
  keys.push_back(std::move(*mg::crypto::generate_key(KeyType::Rsa2048)));
  for (auto& key : keys) {
    auto csr = mg::testcerts::make_csr(key.get());
    auto svid = ca.sign_csr(csr.get(), id(kId), 1h, kNow);
    ASSERT_TRUE(svid) << svid.error().to_string();
    auto leaf = leaf_of(*svid);
    ASSERT_NE(X509_get0_pubkey(leaf.get()), nullptr);
    EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(leaf.get()), key.get()), 1);
    EXPECT_EQ(X509_check_private_key(leaf.get(), key.get()), 1);
  }
}

TEST(Authority, SerialsAreRandomAndSometimesUseAllBits) {
  auto ca = new_ca();
  std::set<std::string> serials;
  bool saw_top_bit = false;
  for (int i = 0; i < 64; ++i) {
    auto svid = issue(ca);
    mg::crypto::BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf_of(svid).get()), nullptr));
    EXPECT_FALSE(BN_is_negative(serial.get()));
    saw_top_bit = saw_top_bit || BN_num_bits(serial.get()) == 128;
    char* hex = BN_bn2hex(serial.get());
    serials.insert(hex);
    OPENSSL_free(hex);
  }
  EXPECT_EQ(serials.size(), 64u);
  EXPECT_TRUE(saw_top_bit);  // 64 draws all missing bit 127 has probability 2^-64
}

TEST(Authority, RsaLeafGetsKeyEnciphermentAndRsaCaWorks) {
  auto ca = new_ca(KeyType::Rsa2048);
  auto key = std::move(*mg::crypto::generate_key(KeyType::Rsa2048));
  auto csr = mg::testcerts::make_csr(key.get());
  auto svid = ca.sign_csr(csr.get(), id(kId), 1h, kNow);
  ASSERT_TRUE(svid) << svid.error().to_string();
  EXPECT_EQ(X509_get_key_usage(leaf_of(*svid).get()),
            static_cast<uint32_t>(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
  EXPECT_EQ(X509_get_signature_nid(leaf_of(*svid).get()), NID_sha256WithRSAEncryption);
  EXPECT_TRUE(mg::identity::verify_svid(parse_chain(svid->chain_pem), ca.bundle(), kNow));
}

TEST(Authority, TtlIsCappedByMaximumAndByCaExpiry) {
  auto ca = new_ca();
  auto long_ttl = issue(ca, kId, std::chrono::hours(24 * 365));
  EXPECT_EQ(to_time(X509_get0_notAfter(leaf_of(long_ttl).get())), kNow + mg::ca::kDefaultMaxLeafTtl.count());
  ca.set_max_ttl(1h);
  auto capped = issue(ca, kId, 24h);
  EXPECT_EQ(to_time(X509_get0_notAfter(leaf_of(capped).get())), kNow + 3600);
  auto short_ttl = issue(ca, kId, 10min);
  EXPECT_EQ(to_time(X509_get0_notAfter(leaf_of(short_ttl).get())), kNow + 600);

  auto short_ca = new_ca(KeyType::EcP256, 2h);
  auto svid = issue(short_ca, kId, 24h);
  EXPECT_EQ(to_time(X509_get0_notAfter(leaf_of(svid).get())), kNow + 7200);
  EXPECT_EQ(short_ca.ca_not_after(), kNow + 7200);

  auto key = mg::testcerts::ec_key();
  auto csr = mg::testcerts::make_csr(key.get());
  auto after = short_ca.sign_csr(csr.get(), id(kId), 1h, kNow + 7200);
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, "ca.expired");
  EXPECT_EQ(ca.sign_csr(csr.get(), id(kId), 0s, kNow).error().code, "ca.bad_ttl");
}

TEST(Authority, RefusesTamperedCsr) {
  auto ca = new_ca();
  auto key = mg::testcerts::ec_key();
  auto csr = mg::testcerts::make_csr(key.get());
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(csr.get(), &der);
  ASSERT_GT(len, 0);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  size_t pos = bytes.find("csr");  // the subject CN, inside the signed part
  ASSERT_NE(pos, std::string::npos);
  bytes[pos] = 'X';
  const unsigned char* p = reinterpret_cast<const unsigned char*>(bytes.data());
  mg::crypto::X509ReqPtr tampered(d2i_X509_REQ(nullptr, &p, static_cast<long>(bytes.size())));
  ASSERT_TRUE(tampered);
  auto r = ca.sign_csr(tampered.get(), id(kId), 1h, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "csr.bad_signature");
}

TEST(Authority, RefusesWeakKeysAndWeakCsrSignatures) {
  auto ca = new_ca();
  mg::crypto::PKeyPtr rsa1024(EVP_RSA_gen(1024));
  ASSERT_TRUE(rsa1024);
  auto csr = mg::testcerts::make_csr(rsa1024.get());
  auto r = ca.sign_csr(csr.get(), id(kId), 1h, kNow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "csr.weak_key");
  EXPECT_NE(r.error().message.find("1024"), std::string::npos);

  mg::crypto::PKeyPtr p224(EVP_EC_gen("P-224"));
  ASSERT_TRUE(p224);
  EXPECT_EQ(ca.sign_csr(mg::testcerts::make_csr(p224.get()).get(), id(kId), 1h, kNow).error().code, "csr.weak_key");

  mg::crypto::PKeyPtr ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  ASSERT_TRUE(ed);
  mg::crypto::X509ReqPtr ed_csr(X509_REQ_new());
  X509_REQ_set_pubkey(ed_csr.get(), ed.get());
  ASSERT_GT(X509_REQ_sign(ed_csr.get(), ed.get(), nullptr), 0);
  EXPECT_EQ(ca.sign_csr(ed_csr.get(), id(kId), 1h, kNow).error().code, "csr.unsupported_key");

  auto key = mg::testcerts::ec_key();
  auto sha1_csr = mg::testcerts::make_csr(key.get(), EVP_sha1());
  EXPECT_EQ(ca.sign_csr(sha1_csr.get(), id(kId), 1h, kNow).error().code, "csr.weak_signature");

  // The boundary: RSA 2048 and P-384 are accepted.
  auto rsa2048 = std::move(*mg::crypto::generate_key(KeyType::Rsa2048));
  EXPECT_TRUE(ca.sign_csr(mg::testcerts::make_csr(rsa2048.get()).get(), id(kId), 1h, kNow));
  mg::crypto::PKeyPtr p384(EVP_EC_gen("P-384"));
  EXPECT_TRUE(ca.sign_csr(mg::testcerts::make_csr(p384.get()).get(), id(kId), 1h, kNow));
}

TEST(Authority, RefusesForeignTrustDomainInvalidIdAndTrustDomainId) {
  auto ca = new_ca();
  auto key = mg::testcerts::ec_key();
  auto csr = mg::testcerts::make_csr(key.get());
  EXPECT_EQ(ca.sign_csr(csr.get(), id("spiffe://evil.example/ns/default/sa/x"), 1h, kNow).error().code,
            "ca.foreign_trust_domain");
  EXPECT_EQ(ca.sign_csr(csr.get(), id("spiffe://cluster.local"), 1h, kNow).error().code, "ca.no_workload_path");
  std::string pem = mg::crypto::csr_to_pem(csr.get());
  EXPECT_EQ(ca.sign_csr_pem(pem, "spiffe://cluster.local/ns/a/../b", 1h, kNow).error().code, "spiffe.dot_segment");
  EXPECT_EQ(ca.sign_csr_pem("not a csr", kId, 1h, kNow).error().code, "pem.malformed_csr");
  auto ok = ca.sign_csr_pem(pem, kId, 1h, kNow);
  EXPECT_TRUE(ok);
}

TEST(Authority, CsrSubjectAndSansAreIgnoredTheCaDecidesTheId) {
  auto ca = new_ca();
  auto key = mg::testcerts::ec_key();
  auto csr = mg::testcerts::make_csr(key.get());
  auto svid = ca.sign_csr(csr.get(), id("spiffe://cluster.local/ns/a/sa/b"), 1h, kNow);
  ASSERT_TRUE(svid);
  EXPECT_EQ(mg::identity::spiffe_id_of(leaf_of(*svid).get())->str(), "spiffe://cluster.local/ns/a/sa/b");
  EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(leaf_of(*svid).get())), 0);
}

TEST(Authority, RootRotationKeepsOldLeavesValidAndChainsNewLeavesToNewRoot) {
  auto old_ca = new_ca(KeyType::EcP256, 24h * 30);
  auto old_leaf = issue(old_ca);
  auto rotated = old_ca.rotate(kNow + 3600);
  ASSERT_TRUE(rotated) << rotated.error().to_string();
  ASSERT_EQ(rotated->bundle().roots().size(), 2u);
  EXPECT_EQ(X509_cmp(rotated->bundle().roots()[0].get(), rotated->ca_cert()), 0);  // newest first
  EXPECT_EQ(X509_cmp(rotated->bundle().roots()[1].get(), old_ca.ca_cert()), 0);
  EXPECT_NE(X509_NAME_cmp(X509_get_subject_name(rotated->ca_cert()), X509_get_subject_name(old_ca.ca_cert())), 0);

  auto new_leaf = issue(*rotated, kId, 1h, kNow + 3600);
  EXPECT_TRUE(mg::identity::verify_svid(parse_chain(old_leaf.chain_pem), rotated->bundle(), kNow + 3600));
  EXPECT_TRUE(mg::identity::verify_svid(parse_chain(new_leaf.chain_pem), rotated->bundle(), kNow + 3600));
  // New leaves chain to the new root only.
  auto old_only = TrustBundle::from_pem(kTd, mg::crypto::cert_to_pem(old_ca.ca_cert()));
  EXPECT_EQ(mg::identity::verify_svid(parse_chain(new_leaf.chain_pem), *old_only, kNow + 3600).error().kind,
            SvidErrorKind::ChainInvalid);

  // Rotating again after the first root expired drops it from the bundle.
  auto again = rotated->rotate(kNow + 24 * 3600 * 31);
  ASSERT_TRUE(again);
  ASSERT_EQ(again->bundle().roots().size(), 2u);
  for (const auto& r : again->bundle().roots()) EXPECT_NE(X509_cmp(r.get(), old_ca.ca_cert()), 0);
}

class PlugInTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_key_ = mg::testcerts::ec_key();
    root_ = mg::testcerts::make_cert(mg::testcerts::ca_spec("operator root", kNow), root_key_.get(), nullptr, nullptr);
    inter_key_ = mg::testcerts::ec_key();
    inter_ = mg::testcerts::make_cert(mg::testcerts::ca_spec("operator intermediate", kNow), inter_key_.get(),
                                      root_.get(), root_key_.get());
    pem_.root_cert = mg::crypto::cert_to_pem(root_.get());
    pem_.ca_cert = mg::crypto::cert_to_pem(inter_.get());
    pem_.ca_key = mg::crypto::private_key_to_pem(inter_key_.get());
    pem_.cert_chain = pem_.ca_cert + pem_.root_cert;
  }
  mg::crypto::PKeyPtr root_key_, inter_key_;
  X509Ptr root_, inter_;
  mg::ca::CaPem pem_;
};

TEST_F(PlugInTest, IssuesLeavesThatChainThroughTheIntermediate) {
  auto ca = Authority::from_pem(kTd, pem_, kNow);
  ASSERT_TRUE(ca) << ca.error().to_string();
  EXPECT_FALSE(ca->is_self_signed());
  auto svid = issue(*ca);
  auto chain = parse_chain(svid.chain_pem);
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(X509_cmp(chain[1].get(), inter_.get()), 0);
  EXPECT_TRUE(mg::identity::verify_svid(chain, ca->bundle(), kNow));
  EXPECT_EQ(ca->rotate(kNow).error().code, "ca.rotate_plug_in");
  EXPECT_EQ(ca->ca_not_after(), kNow + 365 * 86400);
}

TEST_F(PlugInTest, RefusesKeyThatDoesNotMatch) {
  auto other = mg::testcerts::ec_key();
  pem_.ca_key = mg::crypto::private_key_to_pem(other.get());
  EXPECT_EQ(Authority::from_pem(kTd, pem_, kNow).error().code, "ca.key_mismatch");
}

TEST_F(PlugInTest, RefusesCaCertThatDoesNotChainToRoot) {
  auto other_key = mg::testcerts::ec_key();
  auto other_root = mg::testcerts::make_cert(mg::testcerts::ca_spec("other root", kNow), other_key.get(), nullptr, nullptr);
  pem_.root_cert = mg::crypto::cert_to_pem(other_root.get());
  pem_.cert_chain = pem_.ca_cert;
  EXPECT_EQ(Authority::from_pem(kTd, pem_, kNow).error().code, "ca.chain_invalid");
}

TEST_F(PlugInTest, RefusesChainNotStartingWithCaCertAndNonCaCert) {
  pem_.cert_chain = pem_.root_cert;
  EXPECT_EQ(Authority::from_pem(kTd, pem_, kNow).error().code, "ca.chain_mismatch");

  auto leaf_key = mg::testcerts::ec_key();
  auto leaf = mg::testcerts::make_cert(mg::testcerts::leaf_spec(kId, kNow), leaf_key.get(), root_.get(), root_key_.get());
  pem_.ca_cert = mg::crypto::cert_to_pem(leaf.get());
  pem_.ca_key = mg::crypto::private_key_to_pem(leaf_key.get());
  pem_.cert_chain = pem_.ca_cert;
  EXPECT_EQ(Authority::from_pem(kTd, pem_, kNow).error().code, "ca.not_ca");
}

TEST_F(PlugInTest, RefusesExpiredIntermediateAndBadPem) {
  EXPECT_EQ(Authority::from_pem(kTd, pem_, kNow + 366 * 86400).error().code, "ca.expired");
  auto bad = pem_;
  bad.ca_key = "garbage";
  EXPECT_EQ(Authority::from_pem(kTd, bad, kNow).error().code, "pem.malformed_key");
  bad = pem_;
  bad.ca_cert = pem_.ca_cert + pem_.root_cert;
  EXPECT_EQ(Authority::from_pem(kTd, bad, kNow).error().code, "ca.bad_ca_cert");
  EXPECT_EQ(Authority::from_pem("Bad", pem_, kNow).error().code, "spiffe.uppercase_trust_domain");
}

TEST_F(PlugInTest, RefusesWeakCaKey) {
  mg::crypto::PKeyPtr weak(EVP_RSA_gen(1024));
  auto spec = mg::testcerts::ca_spec("weak intermediate", kNow);
  auto weak_inter = mg::testcerts::make_cert(spec, weak.get(), root_.get(), root_key_.get());
  pem_.ca_cert = mg::crypto::cert_to_pem(weak_inter.get());
  pem_.ca_key = mg::crypto::private_key_to_pem(weak.get());
  pem_.cert_chain = pem_.ca_cert;
  EXPECT_EQ(Authority::from_pem(kTd, pem_, kNow).error().code, "ca.weak_key");
}

class CaDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("mg-ca-" + std::to_string(::getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

mode_t mode_of(const std::filesystem::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 07777;
}

TEST_F(CaDirTest, SaveAndLoadRoundTripWithKeyModes) {
  auto ca = new_ca();
  ASSERT_TRUE(ca.save_dir(dir_.string()));
  EXPECT_EQ(mode_of(dir_ / "ca-key.pem"), 0600u);
  for (const char* f : {"root-cert.pem", "ca-cert.pem", "cert-chain.pem", "trust-domain"})
    EXPECT_TRUE(std::filesystem::exists(dir_ / f)) << f;
  auto loaded = Authority::load_dir(dir_.string(), kNow);
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  EXPECT_EQ(loaded->trust_domain(), kTd);
  EXPECT_TRUE(loaded->is_self_signed());
  EXPECT_EQ(X509_cmp(loaded->ca_cert(), ca.ca_cert()), 0);
  auto svid = issue(*loaded);
  EXPECT_TRUE(mg::identity::verify_svid(parse_chain(svid.chain_pem), ca.bundle(), kNow));

  // Without the trust-domain file the root's spiffe:// URI SAN names it.
  std::filesystem::remove(dir_ / "trust-domain");
  auto again = Authority::load_dir(dir_.string(), kNow);
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->trust_domain(), kTd);
}

TEST_F(CaDirTest, RefusesGroupReadableKeyWithAClearMessage) {
  auto ca = new_ca();
  ASSERT_TRUE(ca.save_dir(dir_.string()));
  ASSERT_EQ(::chmod((dir_ / "ca-key.pem").c_str(), 0644), 0);
  auto loaded = Authority::load_dir(dir_.string(), kNow);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, "key.permissions");
  EXPECT_NE(loaded.error().message.find("0644"), std::string::npos);
  EXPECT_NE(loaded.error().message.find("chmod 600"), std::string::npos);
  EXPECT_EQ(loaded.error().message.find("PRIVATE KEY"), std::string::npos);
}

TEST_F(CaDirTest, MissingFilesAreReported) {
  auto loaded = Authority::load_dir(dir_.string(), kNow);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, "file.open");
  auto ca = new_ca();
  ASSERT_TRUE(ca.save_dir(dir_.string()));
  std::filesystem::remove(dir_ / "cert-chain.pem");
  EXPECT_EQ(Authority::load_dir(dir_.string(), kNow).error().code, "file.open");
}

TEST(Duration, ParsesGoStyleDurations) {
  using mg::ca::parse_duration;
  EXPECT_EQ(*parse_duration("1h"), 3600s);
  EXPECT_EQ(*parse_duration("90s"), 90s);
  EXPECT_EQ(*parse_duration("30m"), 1800s);
  EXPECT_EQ(*parse_duration("2h30m"), 9000s);
  EXPECT_EQ(*parse_duration("7d"), std::chrono::seconds(7 * 86400));
  for (const char* bad : {"", "h", "1", "1x", "-1h", "0s", "1h ", "99999999999999h", "1.5h"})
    EXPECT_EQ(parse_duration(bad).error().code, "duration.invalid") << bad;
}

}  // namespace
