// jwt/sign.cpp — JWS signing with OpenSSL 3 EVP (see sign.h).
#include "jwt/sign.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "crypto/openssl.h"
#include "jwt/base64url.h"

namespace mg::jwt {

namespace {

using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, crypto::Deleter<ECDSA_SIG, ECDSA_SIG_free>>;

const EVP_MD* digest_for(Alg alg) {
  switch (alg) {
    case Alg::RS256:
    case Alg::PS256:
    case Alg::ES256:
      return EVP_sha256();
    case Alg::RS384:
    case Alg::PS384:
    case Alg::ES384:
      return EVP_sha384();
    case Alg::RS512:
    case Alg::PS512:
    case Alg::ES512:
      return EVP_sha512();
    case Alg::EdDSA:
      return nullptr;  // Ed25519 hashes internally
  }
  return nullptr;
}

struct EcCurve {
  const char* group;
  int coord_bytes;
};

EcCurve curve_for(Alg alg) {
  switch (alg) {
    case Alg::ES256:
      return {"prime256v1", 32};
    case Alg::ES384:
      return {"secp384r1", 48};
    default:
      return {"secp521r1", 66};
  }
}

bool is_pss(Alg alg) { return alg == Alg::PS256 || alg == Alg::PS384 || alg == Alg::PS512; }

}  // namespace

Status check_signing_key(Alg alg, EVP_PKEY* key) {
  if (!key) return fail("jwt.key_mismatch", "no key");
  switch (key_kind_for(alg)) {
    case KeyKind::Rsa:
      if (EVP_PKEY_is_a(key, "RSA")) return {};
      break;
    case KeyKind::Okp:
      if (EVP_PKEY_is_a(key, "ED25519")) return {};
      break;
    case KeyKind::Ec: {
      if (!EVP_PKEY_is_a(key, "EC")) break;
      char group[64] = {};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1) {
        ERR_clear_error();
        break;
      }
      if (std::string_view(group, len) == curve_for(alg).group) return {};
      break;
    }
  }
  return fail("jwt.key_mismatch", "the key does not fit algorithm " + std::string(alg_name(alg)));
}

Result<std::string> sign_raw(Alg alg, EVP_PKEY* key, std::string_view signing_input) {
  if (auto s = check_signing_key(alg, key); !s) return fail(s.error());
  crypto::MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, digest_for(alg), nullptr, key) != 1) {
    return fail(crypto::openssl_error("jwt.sign_failed", "signature init"));
  }
  if (is_pss(alg) && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
                      EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, digest_for(alg)) != 1)) {
    return fail(crypto::openssl_error("jwt.sign_failed", "PSS parameters"));
  }
  const auto* in = reinterpret_cast<const unsigned char*>(signing_input.data());
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, in, signing_input.size()) != 1) {
    return fail(crypto::openssl_error("jwt.sign_failed", "signature length"));
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                     signing_input.size()) != 1) {
    return fail(crypto::openssl_error("jwt.sign_failed", "signing"));
  }
  sig.resize(len);
  if (key_kind_for(alg) != KeyKind::Ec) return sig;

  // OpenSSL produces DER (SEQUENCE of r, s); JOSE wants the fixed-width concatenation r||s.
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  EcdsaSigPtr es(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
  if (!es) return fail(crypto::openssl_error("jwt.sign_failed", "ECDSA signature decoding"));
  const int n = curve_for(alg).coord_bytes;
  std::string out(static_cast<size_t>(2 * n), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(es.get()), o, n) != n ||
      BN_bn2binpad(ECDSA_SIG_get0_s(es.get()), o + n, n) != n) {
    return fail(crypto::openssl_error("jwt.sign_failed", "ECDSA signature encoding"));
  }
  return out;
}

Result<std::string> sign_compact(Alg alg, EVP_PKEY* key, std::string_view header_json,
                                 std::string_view payload_json) {
  std::string token = base64url_encode(header_json);
  token += '.';
  token += base64url_encode(payload_json);
  auto sig = sign_raw(alg, key, token);
  if (!sig) return fail(sig.error());
  token += '.';
  token += base64url_encode(*sig);
  return token;
}

}  // namespace mg::jwt
