// control/sealed_secret.h: what replicas share through etcd opens only with the CA key it was
// sealed under, and only under its own label; damaged or foreign values are refused.
#include "control/sealed_secret.h"

#include <gtest/gtest.h>

#include "crypto/openssl.h"

namespace mg::control {
namespace {

std::string new_key_pem() {
  auto key = crypto::generate_key(crypto::KeyType::EcP256);
  EXPECT_TRUE(key);
  return crypto::private_key_to_pem(key->get());
}

SealKey new_ca_seal() {
  auto seal = SealKey::from_ca_key(new_key_pem());
  EXPECT_TRUE(seal);
  return *seal;
}

TEST(SealedSecret, RoundTripsUnderTheSameKeyAndLabel) {
  const SealKey ca = new_ca_seal();
  const std::string secret = "-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n";
  auto sealed = seal_secret(ca, "token-key", secret);
  ASSERT_TRUE(sealed) << sealed.error().to_string();
  EXPECT_TRUE(sealed->starts_with("mg-sealed-v1:"));
  EXPECT_EQ(sealed->find("not really"), std::string::npos);
  auto opened = open_secret(ca, "token-key", *sealed);
  ASSERT_TRUE(opened) << opened.error().to_string();
  EXPECT_EQ(*opened, secret);
  // A fresh nonce each time: sealing twice gives two different values that both open.
  auto again = seal_secret(ca, "token-key", secret);
  ASSERT_TRUE(again);
  EXPECT_NE(*again, *sealed);
  EXPECT_EQ(*open_secret(ca, "token-key", *again), secret);
}

TEST(SealedSecret, RefusesAnotherKeyLabelOrDamage) {
  const SealKey ca = new_ca_seal();
  auto sealed = seal_secret(ca, "token-key", "secret");
  ASSERT_TRUE(sealed);
  auto other_key = open_secret(new_ca_seal(), "token-key", *sealed);
  ASSERT_FALSE(other_key);
  EXPECT_EQ(other_key.error().code, "control.sealed");
  EXPECT_FALSE(open_secret(ca, "other-label", *sealed));
  std::string flipped = *sealed;
  flipped[flipped.size() - 3] = flipped[flipped.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(open_secret(ca, "token-key", flipped));
  for (const char* bad : {"", "secret", "mg-sealed-v1:", "mg-sealed-v1:AAAA", "mg-sealed-v1:!!!"})
    EXPECT_FALSE(open_secret(ca, "token-key", bad)) << bad;
  EXPECT_FALSE(SealKey::from_ca_key("not a key"));
}

// The same CA key in another PEM form (traditional EC vs PKCS#8) seals under the same key.
TEST(SealedSecret, CaKeyIsCanonicalized) {
  auto key = crypto::generate_key(crypto::KeyType::EcP256);
  ASSERT_TRUE(key);
  const std::string pkcs8 = crypto::private_key_to_pem(key->get());
  auto a = SealKey::from_ca_key(pkcs8);
  ASSERT_TRUE(a);
  auto sealed = seal_secret(*a, "token-key", "s");
  ASSERT_TRUE(sealed);
  auto b = SealKey::from_ca_key(pkcs8 + "\n");
  ASSERT_TRUE(b);
  EXPECT_EQ(*open_secret(*b, "token-key", *sealed), "s");
}

TEST(SealedSecret, SealKeyFileContent) {
  const std::string text = "q1aN0tR3allyRand0mButL0ngEnough1234567890AB=";
  auto plain = SealKey::from_file_content(text);
  auto with_newline = SealKey::from_file_content(text + "\n");
  auto with_crlf = SealKey::from_file_content(text + "\r\n");
  ASSERT_TRUE(plain && with_newline && with_crlf);
  auto sealed = seal_secret(*plain, "ca", "the CA key");
  ASSERT_TRUE(sealed);
  EXPECT_TRUE(is_sealed(*sealed));
  EXPECT_EQ(*open_secret(*with_newline, "ca", *sealed), "the CA key");
  EXPECT_EQ(*open_secret(*with_crlf, "ca", *sealed), "the CA key");
  EXPECT_EQ(plain->description(), "the --seal-key key");
  // Another file, a text one byte different: does not open, and says which key it tried.
  std::string other = text;
  other[0] = 'r';
  auto wrong = open_secret(*SealKey::from_file_content(other), "ca", *sealed);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, "control.sealed");
  EXPECT_NE(wrong.error().message.find("--seal-key"), std::string::npos);
  EXPECT_EQ(wrong.error().message.find(text), std::string::npos);  // the key is never in a message
  // Binary content is taken whole (a trailing 0x0a byte included).
  std::string binary(31, '\x01');
  binary += '\n';
  auto raw = SealKey::from_file_content(binary);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->material().size(), 32u);
  // Too short, after the line break is dropped.
  for (std::string_view short_key : {"", "short", "0123456789012345678901234567890\n"}) {
    auto refused = SealKey::from_file_content(short_key);
    ASSERT_FALSE(refused) << short_key;
    EXPECT_EQ(refused.error().code, "control.seal_key");
  }
  EXPECT_FALSE(is_sealed("-----BEGIN PRIVATE KEY-----"));
}

// Read back from etcd: sealed opens only with the key it was sealed under; clear meets no key.
TEST(SealedSecret, AStoredSecretOpensOnlyTheWayItWasStored) {
  auto key = SealKey::from_file_content(std::string(40, 'k'));
  auto other = SealKey::from_file_content(std::string(40, 'o'));
  ASSERT_TRUE(key && other);
  auto sealed = seal_secret(*key, "token-key", "the PEM");
  ASSERT_TRUE(sealed);
  auto stored = [](std::string_view value) {
    return StoredSecret{.value = value,
                        .label = "token-key",
                        .etcd_key = "/mg/shared/token-key",
                        .what = "the token key",
                        .sealed_by = "--seal-key FILE",
                        .clear_remedy = " (clear remedy)",
                        .wrong_key_remedy = " (wrong key remedy)"};
  };
  EXPECT_EQ(*open_stored_secret(stored(*sealed), &*key), "the PEM");
  EXPECT_EQ(*open_stored_secret(stored("clear PEM"), nullptr), "clear PEM");

  auto no_key = open_stored_secret(stored(*sealed), nullptr);
  ASSERT_FALSE(no_key);
  EXPECT_EQ(no_key.error().code, "control.seal_key");
  EXPECT_NE(no_key.error().message.find("/mg/shared/token-key holds the token key sealed: start this "
                                        "replica with --seal-key FILE"),
            std::string::npos);

  auto key_on_clear = open_stored_secret(stored("clear PEM"), &*key);
  ASSERT_FALSE(key_on_clear);
  EXPECT_EQ(key_on_clear.error().code, "control.seal_key");
  EXPECT_NE(key_on_clear.error().message.find("in clear"), std::string::npos);
  EXPECT_NE(key_on_clear.error().message.find("(clear remedy)"), std::string::npos);

  auto wrong = open_stored_secret(stored(*sealed), &*other);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, "control.sealed");
  EXPECT_NE(wrong.error().message.find("(wrong key remedy)"), std::string::npos);
  EXPECT_EQ(wrong.error().message.find("(clear remedy)"), std::string::npos);
}

}  // namespace
}  // namespace mg::control
