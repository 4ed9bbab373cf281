// control/etcd_ca.cpp — see etcd_ca.h.
#include "control/etcd_ca.h"

#include "common/files.h"
#include "control/support.h"
#include "crypto/openssl.h"

namespace mg::control {

namespace {
constexpr const char* kSharedTokenKey = "token-key";  // <prefix>shared/token-key
}  // namespace

Result<SealKey> read_seal_key_file(const std::string& path) {
  if (auto st = files::check_private_key_permissions(path); !st)
    return fail("control.seal_key", "--seal-key: " + st.error().message);
  auto content = files::read_file(path);
  if (!content) return fail("control.seal_key", "--seal-key: " + content.error().message);
  auto key = SealKey::from_file_content(*content);
  if (!key) return fail("control.seal_key", "--seal-key " + path + ": " + key.error().message);
  return key;
}

Result<SharedCa> open_shared_ca(EtcdStore& etcd, const std::string& prefix, const std::string& trust_domain,
                                const SealKey* seal, bool* created) {
  const std::string etcd_key = etcd_shared_key(prefix, kSharedCaName);
  // Most starts find it: read first, so that only a first start generates a key.
  auto existing = etcd.shared_get(kSharedCaName);
  if (!existing) return fail(existing.error());
  std::string value;
  *created = false;
  if (*existing) {
    value = std::move(**existing);
  } else {
    auto fresh = ca::Authority::create_self_signed(trust_domain, crypto::KeyType::EcP256, unix_now());
    if (!fresh) return fail(fresh.error());
    auto encoded = encode_shared_ca({trust_domain, fresh->to_pem(), std::nullopt, "", 0}, seal);
    if (!encoded) return fail(encoded.error());
    auto stored = etcd.shared_value(kSharedCaName, *encoded);  // another replica may have been first
    if (!stored) return fail(stored.error());
    *created = *stored == *encoded;
    value = std::move(*stored);
  }
  return decode_shared_ca(value, seal, etcd_key);
}

Status check_no_shared_ca(EtcdStore& etcd, const std::string& prefix) {
  auto existing = etcd.shared_get(kSharedCaName);
  if (!existing) return fail(existing.error());
  if (*existing)
    return fail("control.shared_ca",
                "the replicas on this etcd prefix sign with the built-in CA kept at " +
                    etcd_shared_key(prefix, kSharedCaName) +
                    ": start this replica without --plug-in-ca, or give every replica the "
                    "same --plug-in-ca on a fresh prefix");
  return {};
}

Result<std::string> open_shared_token_key(EtcdStore& etcd, const std::string& prefix, const SealKey* seal) {
  const std::string etcd_key = etcd_shared_key(prefix, kSharedTokenKey);
  auto fresh = crypto::generate_key(crypto::KeyType::EcP256);
  if (!fresh) return fail(fresh.error());
  std::string create_with = crypto::private_key_to_pem(fresh->get());
  if (seal) {
    auto sealed = seal_secret(*seal, kSharedTokenKey, create_with);
    if (!sealed) return fail(sealed.error());
    create_with = std::move(*sealed);
  }
  auto stored = etcd.shared_value(kSharedTokenKey, create_with);
  if (!stored) return fail(stored.error());
  const std::string if_replaced =
      " — if the key was replaced, delete " + etcd_key +
      " (bootstrap tokens minted before stop working) and start the replicas again";
  return open_stored_secret({.value = *stored,
                             .label = kSharedTokenKey,
                             .etcd_key = etcd_key,
                             .what = "the token key",
                             .sealed_by = "--seal-key FILE (or --plug-in-ca)",
                             .wrong_key_remedy = if_replaced},
                            seal);
}

}  // namespace mg::control
