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

TEST(SealedSecret, RoundTripsUnderTheSameKeyAndLabel) {
  const std::string ca = new_key_pem();
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
  const std::string ca = new_key_pem();
  auto sealed = seal_secret(ca, "token-key", "secret");
  ASSERT_TRUE(sealed);
  auto other_key = open_secret(new_key_pem(), "token-key", *sealed);
  ASSERT_FALSE(other_key);
  EXPECT_EQ(other_key.error().code, "control.sealed");
  EXPECT_FALSE(open_secret(ca, "other-label", *sealed));
  std::string flipped = *sealed;
  flipped[flipped.size() - 3] = flipped[flipped.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(open_secret(ca, "token-key", flipped));
  for (const char* bad : {"", "secret", "mg-sealed-v1:", "mg-sealed-v1:AAAA", "mg-sealed-v1:!!!"})
    EXPECT_FALSE(open_secret(ca, "token-key", bad)) << bad;
  EXPECT_FALSE(seal_secret("not a key", "token-key", "secret"));
}

}  // namespace
}  // namespace mg::control
