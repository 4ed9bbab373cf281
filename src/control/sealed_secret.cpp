// control/sealed_secret.cpp — see sealed_secret.h.
#include "control/sealed_secret.h"

#include <openssl/evp.h>

#include "crypto/openssl.h"
#include "jwt/base64url.h"

namespace mg::control {

namespace {

constexpr std::string_view kPrefix = "mg-sealed-v1:";
constexpr size_t kNonce = 12, kTag = 16;

using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, crypto::Deleter<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;

Unexpected<Error> sealed_error(std::string message) { return fail("control.sealed", std::move(message)); }

// One AES key per label, so the same SealKey never encrypts two labels' values under one key.
Result<std::string> sealing_key(const SealKey& key, std::string_view label) {
  std::string derived =
      crypto::hmac(EVP_sha256(), key.material(), "meshguard sealed secret v1: " + std::string(label));
  if (derived.size() != 32) return sealed_error("cannot derive the sealing key");
  return derived;
}

bool printable_text(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace

Result<SealKey> SealKey::from_ca_key(std::string_view ca_key_pem) {
  auto key = crypto::parse_private_key_pem(ca_key_pem);
  if (!key) return sealed_error("the CA key does not parse: " + key.error().message);
  return SealKey(crypto::private_key_to_pem(key->get()), "the plugged-in CA's key");
}

Result<SealKey> SealKey::from_file_content(std::string_view content) {
  std::string_view material = content;
  std::string_view text = content;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  if (printable_text(text)) material = text;  // base64/hex text: its line break is not key
  if (material.size() < kMinSealKeyBytes)
    return fail("control.seal_key", "the seal key is " + std::to_string(material.size()) +
                                        " bytes; at least " + std::to_string(kMinSealKeyBytes) +
                                        " random bytes are needed (e.g. openssl rand -base64 32 > FILE)");
  return SealKey(std::string(material), "the --seal-key key");
}

bool is_sealed(std::string_view value) { return value.starts_with(kPrefix); }

Result<std::string> seal_secret(const SealKey& seal, std::string_view label, std::string_view plaintext) {
  auto key = sealing_key(seal, label);
  if (!key) return fail(key.error());
  auto nonce = crypto::random_bytes(kNonce);
  if (!nonce) return fail(nonce.error());
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  std::string out(reinterpret_cast<const char*>(nonce->data()), kNonce);
  out.resize(kNonce + plaintext.size() + kTag);
  auto* ct = reinterpret_cast<unsigned char*>(out.data()) + kNonce;
  int len = 0, fin = 0;
  const bool ok =
      ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(*key), nonce->data()) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(label), static_cast<int>(label.size())) == 1 &&
      EVP_EncryptUpdate(ctx.get(), ct, &len, bytes(plaintext), static_cast<int>(plaintext.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx.get(), ct + len, &fin) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, ct + plaintext.size()) == 1;
  if (!ok) return fail(crypto::openssl_error("control.sealed", "seal"));
  return std::string(kPrefix) + jwt::base64url_encode(out);
}

Result<std::string> open_secret(const SealKey& seal, std::string_view label, std::string_view sealed) {
  if (!sealed.starts_with(kPrefix)) return sealed_error(std::string(label) + ": not a sealed value");
  auto raw = jwt::base64url_decode(sealed.substr(kPrefix.size()));
  if (!raw || raw->size() < kNonce + kTag)
    return sealed_error(std::string(label) + ": a damaged sealed value");
  auto key = sealing_key(seal, label);
  if (!key) return fail(key.error());
  const size_t n = raw->size() - kNonce - kTag;
  std::string plain(n, '\0');
  std::string tag = raw->substr(kNonce + n);
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0, fin = 0;
  const bool ok =
      ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(*key), bytes(*raw)) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(label), static_cast<int>(label.size())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len, bytes(*raw) + kNonce,
                        static_cast<int>(n)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len, &fin) == 1;
  if (!ok)
    return sealed_error(std::string(label) + ": does not open with " + seal.description() +
                        " (sealed by replicas given another one?)");
  return plain;
}

Result<std::string> open_stored_secret(const StoredSecret& stored, const SealKey* seal) {
  const std::string where(stored.etcd_key);
  const std::string what(stored.what);
  const std::string flags(stored.sealed_by);
  const bool sealed = is_sealed(stored.value);
  if (sealed && !seal)
    return fail("control.seal_key", where + " holds " + what + " sealed: start this replica with " + flags +
                                        ", as the replicas that stored it were started");
  if (!sealed && seal)
    return fail("control.seal_key",
                where + " holds " + what + " in clear (the replicas that stored it ran without " + flags +
                    "): start this replica as they are" + std::string(stored.clear_remedy));
  if (!sealed) return std::string(stored.value);
  auto opened = open_secret(*seal, stored.label, stored.value);
  if (!opened)
    return fail(opened.error().code, opened.error().message + ": " + seal->description() +
                                         " of this replica is not the one the replicas that stored " + where +
                                         " were given" + std::string(stored.wrong_key_remedy));
  return opened;
}

}  // namespace mg::control
