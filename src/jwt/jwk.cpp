#include "jwt/jwk.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "jwt/base64url.h"

namespace mg::jwt {

namespace {

using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, crypto::Deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, crypto::Deleter<OSSL_PARAM, OSSL_PARAM_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, crypto::Deleter<ECDSA_SIG, ECDSA_SIG_free>>;

Result<std::string> b64_member(const nlohmann::json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string()) return fail("jwk.missing_member", std::string("missing string member '") + name + "'");
  auto bytes = base64url_decode(it->get_ref<const std::string&>());
  if (!bytes || bytes->empty()) return fail("jwk.bad_base64url", std::string("member '") + name + "' is not base64url");
  return std::move(*bytes);
}

Result<crypto::PKeyPtr> key_from_params(const char* type, OSSL_PARAM_BLD* bld) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  crypto::PKeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1 || !raw) {
    return fail(crypto::openssl_error("jwk.import_failed", std::string("OpenSSL refused the ") + type + " key"));
  }
  return crypto::PKeyPtr(raw);
}

Result<crypto::PKeyPtr> import_rsa(const nlohmann::json& obj) {
  auto n = b64_member(obj, "n");
  if (!n) return fail(n.error());
  auto e = b64_member(obj, "e");
  if (!e) return fail(e.error());
  if (n->size() > kMaxRsaBits / 8 + 1) return fail("jwk.rsa_too_large", "RSA modulus larger than 16384 bits");
  if (e->size() > 8) return fail("jwk.rsa_bad_exponent", "RSA exponent longer than 64 bits");
  crypto::BignumPtr bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()), static_cast<int>(n->size()), nullptr));
  crypto::BignumPtr bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()), static_cast<int>(e->size()), nullptr));
  if (!bn_n || !bn_e) return fail("jwk.oom", "out of memory");
  if (!BN_is_odd(bn_e.get()) || BN_is_one(bn_e.get())) return fail("jwk.rsa_bad_exponent", "RSA exponent must be odd and > 1");
  int bits = BN_num_bits(bn_n.get());
  if (bits < kMinRsaBits) return fail("jwk.rsa_too_small", "RSA key of " + std::to_string(bits) + " bits (minimum 2048)");
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return fail(crypto::openssl_error("jwk.import_failed", "cannot build RSA parameters"));
  }
  return key_from_params("RSA", bld.get());
}

struct CurveInfo {
  Curve curve;
  const char* jwk_name;
  const char* group_name;
  int nid;
  size_t coord_bytes;
};
constexpr CurveInfo kEcCurves[] = {
    {Curve::P256, "P-256", "prime256v1", NID_X9_62_prime256v1, 32},
    {Curve::P384, "P-384", "secp384r1", NID_secp384r1, 48},
    {Curve::P521, "P-521", "secp521r1", NID_secp521r1, 66},
};

const CurveInfo* curve_info(Curve c) {
  for (const auto& ci : kEcCurves)
    if (ci.curve == c) return &ci;
  return nullptr;
}

Result<crypto::PKeyPtr> import_ec(const nlohmann::json& obj, Curve& curve_out) {
  auto crv = obj.find("crv");
  if (crv == obj.end() || !crv->is_string()) return fail("jwk.missing_member", "missing string member 'crv'");
  const CurveInfo* info = nullptr;
  for (const auto& ci : kEcCurves)
    if (*crv == ci.jwk_name) info = &ci;
  if (!info) return fail("jwk.unsupported_curve", "unsupported EC curve '" + crv->get<std::string>() + "'");
  auto x = b64_member(obj, "x");
  if (!x) return fail(x.error());
  auto y = b64_member(obj, "y");
  if (!y) return fail(y.error());
  // RFC 7518 §6.2.1.2: coordinates are the full field size, so a length check catches
  // truncated or padded keys before OpenSSL does.
  if (x->size() != info->coord_bytes || y->size() != info->coord_bytes)
    return fail("jwk.ec_bad_coordinate", std::string("EC coordinates must be ") + std::to_string(info->coord_bytes) + " bytes for " + info->jwk_name);
  std::string point;
  point.reserve(1 + 2 * info->coord_bytes);
  point.push_back('\x04');
  point += *x;
  point += *y;
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, info->group_name, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    return fail(crypto::openssl_error("jwk.import_failed", "cannot build EC parameters"));
  }
  auto key = key_from_params("EC", bld.get());
  if (!key) return fail("jwk.ec_not_on_curve", "EC point is not on " + std::string(info->jwk_name) + " (" + key.error().message + ")");
  // Belt and braces: import already decodes the point on the curve; the public check also
  // refuses the point at infinity and points outside the prime-order subgroup.
  crypto::PKeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key->get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    ERR_clear_error();
    return fail("jwk.ec_not_on_curve", "EC point is not a valid " + std::string(info->jwk_name) + " public key");
  }
  curve_out = info->curve;
  return std::move(*key);
}

Result<crypto::PKeyPtr> import_okp(const nlohmann::json& obj) {
  auto crv = obj.find("crv");
  if (crv == obj.end() || !crv->is_string()) return fail("jwk.missing_member", "missing string member 'crv'");
  if (*crv != "Ed25519") return fail("jwk.unsupported_curve", "unsupported OKP curve '" + crv->get<std::string>() + "' (only Ed25519)");
  auto x = b64_member(obj, "x");
  if (!x) return fail(x.error());
  if (x->size() != 32) return fail("jwk.okp_bad_length", "Ed25519 public key must be 32 bytes");
  EVP_PKEY* raw = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                              reinterpret_cast<const unsigned char*>(x->data()), x->size());
  if (!raw) return fail(crypto::openssl_error("jwk.import_failed", "OpenSSL refused the Ed25519 key"));
  return crypto::PKeyPtr(raw);
}

bool alg_fits(Alg alg, KeyKind kind, Curve curve) {
  if (key_kind_for(alg) != kind) return false;
  switch (alg) {
    case Alg::ES256: return curve == Curve::P256;
    case Alg::ES384: return curve == Curve::P384;
    case Alg::ES512: return curve == Curve::P521;
    case Alg::EdDSA: return curve == Curve::Ed25519;
    default: return true;
  }
}

}  // namespace

Result<Jwk> parse_jwk(const nlohmann::json& obj) {
  if (!obj.is_object()) return fail("jwk.not_object", "a JWK must be a JSON object");
  // Private or symmetric material never belongs in a verification key set: refuse the key so
  // a leaked signing key is noticed instead of silently used.
  for (const char* member : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
    if (obj.contains(member)) return fail("jwk.private_material", std::string("key contains private member '") + member + "'");
  }
  auto kty = obj.find("kty");
  if (kty == obj.end() || !kty->is_string()) return fail("jwk.missing_kty", "missing string member 'kty'");
  Jwk out;
  if (auto kid = obj.find("kid"); kid != obj.end()) {
    if (!kid->is_string()) return fail("jwk.bad_kid", "'kid' is not a string");
    out.kid = kid->get<std::string>();
  }
  if (auto use = obj.find("use"); use != obj.end()) {
    if (!use->is_string() || *use != "sig") return fail("jwk.not_signature_key", "'use' is not \"sig\"");
  }
  if (auto ops = obj.find("key_ops"); ops != obj.end()) {
    bool verify = false;
    if (ops->is_array())
      for (const auto& op : *ops) verify = verify || (op.is_string() && op == "verify");
    if (!verify) return fail("jwk.not_signature_key", "'key_ops' does not allow \"verify\"");
  }
  std::optional<Alg> key_alg;
  if (auto alg = obj.find("alg"); alg != obj.end()) {
    if (!alg->is_string()) return fail("jwk.bad_alg", "'alg' is not a string");
    key_alg = parse_alg(alg->get_ref<const std::string&>());
    if (!key_alg) return fail("jwk.unsupported_alg", "unsupported key alg '" + alg->get<std::string>() + "'");
    out.alg = alg->get<std::string>();
  }

  Result<crypto::PKeyPtr> key = fail("jwk.unsupported_kty", "unsupported kty '" + kty->get<std::string>() + "'");
  if (*kty == "RSA") {
    out.kind = KeyKind::Rsa;
    key = import_rsa(obj);
  } else if (*kty == "EC") {
    out.kind = KeyKind::Ec;
    key = import_ec(obj, out.curve);
  } else if (*kty == "OKP") {
    out.kind = KeyKind::Okp;
    out.curve = Curve::Ed25519;
    key = import_okp(obj);
  }
  if (!key) return fail(key.error());
  if (key_alg && !alg_fits(*key_alg, out.kind, out.curve))
    return fail("jwk.alg_kty_mismatch", "key alg '" + out.alg + "' does not fit kty '" + kty->get<std::string>() + "'");
  out.key = std::move(*key);
  return out;
}

Result<Jwks> parse_jwks(std::string_view json_text) {
  if (json_text.size() > kMaxJwksBytes) return fail("jwks.too_large", "JWKS larger than 1 MiB");
  auto doc = nlohmann::json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return fail("jwks.bad_json", "JWKS is not valid JSON");
  if (!doc.is_object()) return fail("jwks.bad_json", "JWKS is not a JSON object");
  auto keys = doc.find("keys");
  if (keys == doc.end() || !keys->is_array()) return fail("jwks.no_keys", "JWKS has no \"keys\" array");
  if (keys->size() > kMaxJwksKeys) return fail("jwks.too_many_keys", "JWKS has more than 256 keys");
  Jwks out;
  size_t i = 0;
  for (const auto& k : *keys) {
    auto jwk = parse_jwk(k);
    if (jwk) {
      out.keys.push_back(std::move(*jwk));
    } else {
      out.skipped.push_back("key #" + std::to_string(i) + ": " + jwk.error().message);
    }
    ++i;
  }
  if (out.keys.empty()) {
    std::string why = out.skipped.empty() ? std::string("the set is empty") : out.skipped.front();
    return fail("jwks.no_valid_key", "Jwks doesn't have any valid public key (" + why + ")");
  }
  return out;
}

bool key_matches(const Jwk& key, Alg alg, std::string_view token_kid) {
  if (!alg_fits(alg, key.kind, key.curve)) return false;
  if (!key.alg.empty() && key.alg != alg_name(alg)) return false;
  if (!token_kid.empty() && !key.kid.empty() && key.kid != token_kid) return false;
  return true;
}

namespace {

const EVP_MD* digest_for(Alg alg) {
  // Fetched once: implicit fetching inside every EVP_DigestVerifyInit costs measurable time.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static EVP_MD* const sha384 = EVP_MD_fetch(nullptr, "SHA384", nullptr);
  static EVP_MD* const sha512 = EVP_MD_fetch(nullptr, "SHA512", nullptr);
  switch (alg) {
    case Alg::RS256:
    case Alg::PS256:
    case Alg::ES256: return sha256;
    case Alg::RS384:
    case Alg::PS384:
    case Alg::ES384: return sha384;
    case Alg::RS512:
    case Alg::PS512:
    case Alg::ES512: return sha512;
    case Alg::EdDSA: return nullptr;
  }
  return nullptr;
}

// Group orders, computed once and kept for the life of the process.
const BIGNUM* curve_order(Curve c) {
  struct Orders {
    BIGNUM* p256;
    BIGNUM* p384;
    BIGNUM* p521;
  };
  static const Orders orders = [] {
    auto order_of = [](int nid) -> BIGNUM* {
      EC_GROUP* g = EC_GROUP_new_by_curve_name(nid);
      BIGNUM* o = g ? BN_dup(EC_GROUP_get0_order(g)) : nullptr;
      EC_GROUP_free(g);
      return o;
    };
    return Orders{order_of(NID_X9_62_prime256v1), order_of(NID_secp384r1), order_of(NID_secp521r1)};
  }();
  switch (c) {
    case Curve::P256: return orders.p256;
    case Curve::P384: return orders.p384;
    case Curve::P521: return orders.p521;
    default: return nullptr;
  }
}

bool digest_verify(EVP_PKEY* key, const EVP_MD* md, bool pss, std::string_view data, const unsigned char* sig, size_t sig_len) {
  crypto::MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key) != 1) {
    ERR_clear_error();
    return false;
  }
  if (pss) {
    // RFC 7518 §3.5: MGF1 with the same hash, salt length equal to the hash output.
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1) {
      ERR_clear_error();
      return false;
    }
  }
  int rc = EVP_DigestVerify(ctx.get(), sig, sig_len, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  if (rc != 1) ERR_clear_error();
  return rc == 1;
}

}  // namespace

JwtStatus verify_signature(Alg alg, const Jwk& key, std::string_view signing_input, std::string_view signature) {
  if (!key.key || !alg_fits(alg, key.kind, key.curve)) return JwtStatus::VerificationFail;
  const auto* sig = reinterpret_cast<const unsigned char*>(signature.data());
  switch (key.kind) {
    case KeyKind::Rsa: {
      if (signature.size() != static_cast<size_t>(EVP_PKEY_get_size(key.key.get()))) return JwtStatus::SignatureWrongLength;
      bool pss = alg == Alg::PS256 || alg == Alg::PS384 || alg == Alg::PS512;
      return digest_verify(key.key.get(), digest_for(alg), pss, signing_input, sig, signature.size()) ? JwtStatus::Ok
                                                                                                    : JwtStatus::VerificationFail;
    }
    case KeyKind::Okp: {
      if (signature.size() != 64) return JwtStatus::SignatureWrongLength;
      return digest_verify(key.key.get(), nullptr, false, signing_input, sig, signature.size()) ? JwtStatus::Ok
                                                                                              : JwtStatus::VerificationFail;
    }
    case KeyKind::Ec: {
      const CurveInfo* info = curve_info(key.curve);
      const BIGNUM* order = curve_order(key.curve);
      if (!info || !order) return JwtStatus::VerificationFail;
      size_t n = info->coord_bytes;
      if (signature.size() != 2 * n) return JwtStatus::SignatureWrongLength;
      crypto::BignumPtr r(BN_bin2bn(sig, static_cast<int>(n), nullptr));
      crypto::BignumPtr s(BN_bin2bn(sig + n, static_cast<int>(n), nullptr));
      if (!r || !s || BN_is_zero(r.get()) || BN_is_zero(s.get()) || BN_cmp(r.get(), order) >= 0 || BN_cmp(s.get(), order) >= 0)
        return JwtStatus::VerificationFail;
      EcdsaSigPtr es(ECDSA_SIG_new());
      if (!es || ECDSA_SIG_set0(es.get(), r.get(), s.get()) != 1) return JwtStatus::VerificationFail;
      (void)r.release();  // now owned by es
      (void)s.release();
      unsigned char der[256];
      int der_len = i2d_ECDSA_SIG(es.get(), nullptr);
      if (der_len <= 0 || der_len > static_cast<int>(sizeof der)) return JwtStatus::VerificationFail;
      unsigned char* p = der;
      i2d_ECDSA_SIG(es.get(), &p);
      return digest_verify(key.key.get(), digest_for(alg), false, signing_input, der, static_cast<size_t>(der_len))
                 ? JwtStatus::Ok
                 : JwtStatus::VerificationFail;
    }
  }
  return JwtStatus::VerificationFail;
}

}  // namespace mg::jwt
