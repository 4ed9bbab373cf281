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

Result<std::string> sealing_key(std::string_view ca_key_pem, std::string_view label) {
  auto key = crypto::parse_private_key_pem(ca_key_pem);
  if (!key) return sealed_error("the CA key does not parse: " + key.error().message);
  const std::string canonical = crypto::private_key_to_pem(key->get());
  std::string derived = crypto::hmac(EVP_sha256(), canonical, "meshguard sealed secret v1: " + std::string(label));
  if (derived.size() != 32) return sealed_error("cannot derive the sealing key");
  return derived;
}

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace

Result<std::string> seal_secret(std::string_view ca_key_pem, std::string_view label, std::string_view plaintext) {
  auto key = sealing_key(ca_key_pem, label);
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

Result<std::string> open_secret(std::string_view ca_key_pem, std::string_view label, std::string_view sealed) {
  if (!sealed.starts_with(kPrefix)) return sealed_error(std::string(label) + ": not a sealed value");
  auto raw = jwt::base64url_decode(sealed.substr(kPrefix.size()));
  if (!raw || raw->size() < kNonce + kTag) return sealed_error(std::string(label) + ": a damaged sealed value");
  auto key = sealing_key(ca_key_pem, label);
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
    return sealed_error(std::string(label) +
                        ": does not open with this CA's key (sealed by replicas with another plugged-in CA key?)");
  return plain;
}

}  // namespace mg::control
