// control/shared_ca.h: the built-in CA replicas share through etcd round-trips (with a pending
// rotation), its key is sealed under the --seal-key key and never stored in clear then, and a
// replica started differently from the ones that stored it is refused with a sentence naming
// --seal-key.
#include "control/shared_ca.h"

#include <gtest/gtest.h>

#include <ctime>

namespace mg::control {
namespace {

constexpr const char* kKey = "/meshguard/shared/ca";

SealKey seal_key(char fill) { return *SealKey::from_file_content(std::string(40, fill)); }

SharedCa new_shared() {
  auto ca = ca::Authority::create_self_signed("cluster.local", crypto::KeyType::EcP256, std::time(nullptr));
  EXPECT_TRUE(ca);
  return SharedCa{"cluster.local", ca->to_pem(), std::nullopt, "", 0};
}

TEST(SharedCa, SealedRoundTripKeepsTheKeyOutOfTheValue) {
  const SharedCa shared = new_shared();
  const SealKey seal = seal_key('a');
  auto value = encode_shared_ca(shared, &seal);
  ASSERT_TRUE(value) << value.error().to_string();
  EXPECT_EQ(value->find("PRIVATE KEY"), std::string::npos);
  EXPECT_NE(value->find("mg-sealed-v1:"), std::string::npos);
  auto back = decode_shared_ca(*value, &seal, kKey);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->trust_domain, "cluster.local");
  EXPECT_EQ(back->current.ca_key, shared.current.ca_key);
  EXPECT_EQ(back->current.root_cert, shared.current.root_cert);
  EXPECT_FALSE(back->pending);
  auto authority = ca::Authority::from_pem(back->trust_domain, back->current, std::time(nullptr));
  ASSERT_TRUE(authority) << authority.error().to_string();
}

TEST(SharedCa, AMeshCaIsSealedToItsOwnKeyName) {
  // Another mesh's CA (mesh_cas.h) is sealed bound to its name: copied over the default CA's key,
  // or another mesh's, it does not open.
  const SharedCa shared = new_shared();
  const SealKey seal = seal_key('a');
  auto value = encode_shared_ca(shared, &seal, "meshes/payments/ca");
  ASSERT_TRUE(value) << value.error().to_string();
  EXPECT_EQ(value->find("PRIVATE KEY"), std::string::npos);
  auto back = decode_shared_ca(*value, &seal, "/meshguard/shared/meshes/payments/ca", "meshes/payments/ca");
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->current.ca_key, shared.current.ca_key);
  EXPECT_FALSE(decode_shared_ca(*value, &seal, kKey));
  EXPECT_FALSE(decode_shared_ca(*value, &seal, "/meshguard/shared/meshes/other/ca", "meshes/other/ca"));
}

TEST(SharedCa, PendingRotationRoundTrips) {
  SharedCa shared = new_shared();
  auto current = ca::Authority::from_pem("cluster.local", shared.current, std::time(nullptr));
  ASSERT_TRUE(current);
  auto next = current->rotate(std::time(nullptr));
  ASSERT_TRUE(next);
  shared.pending = next->to_pem();
  shared.rotation_leader = "replica-a";
  shared.rotation_deadline_unix = 12345;
  const SealKey sealed_with = seal_key('b');
  for (const SealKey* seal : {static_cast<const SealKey*>(nullptr), &sealed_with}) {
    auto value = encode_shared_ca(shared, seal);
    ASSERT_TRUE(value);
    auto back = decode_shared_ca(*value, seal, kKey);
    ASSERT_TRUE(back) << back.error().to_string();
    ASSERT_TRUE(back->pending);
    EXPECT_EQ(back->pending->ca_key, shared.pending->ca_key);
    EXPECT_EQ(back->rotation_leader, "replica-a");
    EXPECT_EQ(back->rotation_deadline_unix, 12345);
  }
}

TEST(SharedCa, AReplicaStartedDifferentlyIsRefused) {
  const SharedCa shared = new_shared();
  const SealKey seal = seal_key('a');
  auto sealed = encode_shared_ca(shared, &seal);
  auto clear = encode_shared_ca(shared, nullptr);
  ASSERT_TRUE(sealed && clear);
  EXPECT_NE(clear->find("PRIVATE KEY"), std::string::npos);
  // Sealed, opened without a key.
  auto no_key = decode_shared_ca(*sealed, nullptr, kKey);
  ASSERT_FALSE(no_key);
  EXPECT_EQ(no_key.error().code, "control.seal_key");
  EXPECT_NE(no_key.error().message.find("--seal-key"), std::string::npos);
  // Sealed, another key.
  const SealKey other = seal_key('c');
  auto wrong = decode_shared_ca(*sealed, &other, kKey);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, "control.sealed");
  EXPECT_NE(wrong.error().message.find("--seal-key"), std::string::npos);
  // In clear, a replica given a key: fail closed.
  auto given = decode_shared_ca(*clear, &seal, kKey);
  ASSERT_FALSE(given);
  EXPECT_EQ(given.error().code, "control.seal_key");
  EXPECT_NE(given.error().message.find("in clear"), std::string::npos);
  EXPECT_TRUE(decode_shared_ca(*clear, nullptr, kKey));
}

TEST(SharedCa, MalformedValuesAreRefused) {
  for (const char* bad : {"", "[]", "{}", "not json", R"({"trustDomain":"td"})",
                          R"({"trustDomain":"td","current":{"rootCert":"x","caCert":"x","certChain":"x"}})",
                          R"({"trustDomain":"td","current":1})"}) {
    auto r = decode_shared_ca(bad, nullptr, kKey);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, "control.shared_ca") << bad;
  }
  // A pending CA without its rotation's leader and deadline.
  auto clear = encode_shared_ca(new_shared(), nullptr);
  auto j = *clear;
  j.insert(j.size() - 1, R"(,"pending":{"rootCert":"x","caCert":"x","certChain":"x","caKey":"k"})");
  auto r = decode_shared_ca(j, nullptr, kKey);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "control.shared_ca");
}

}  // namespace
}  // namespace mg::control
