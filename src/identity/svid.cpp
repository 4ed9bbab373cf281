#include "identity/svid.h"

namespace mg::identity {

std::string_view svid_error_code(SvidErrorKind kind) {
  switch (kind) {
    case SvidErrorKind::EmptyChain: return "svid.empty_chain";
    case SvidErrorKind::Malformed: return "svid.malformed";
    case SvidErrorKind::NoUriSan: return "svid.no_uri_san";
    case SvidErrorKind::MultipleUriSans: return "svid.multiple_uri_sans";
    case SvidErrorKind::BadSpiffeId: return "svid.bad_spiffe_id";
    case SvidErrorKind::LeafIsCa: return "svid.leaf_is_ca";
    case SvidErrorKind::NoKeyUsage: return "svid.no_key_usage";
    case SvidErrorKind::KeyUsageNotCritical: return "svid.key_usage_not_critical";
    case SvidErrorKind::NoDigitalSignature: return "svid.no_digital_signature";
    case SvidErrorKind::HasCertSign: return "svid.has_cert_sign";
    case SvidErrorKind::HasCrlSign: return "svid.has_crl_sign";
    case SvidErrorKind::NotYetValid: return "svid.not_yet_valid";
    case SvidErrorKind::Expired: return "svid.expired";
    case SvidErrorKind::WrongTrustDomain: return "svid.wrong_trust_domain";
    case SvidErrorKind::ChainInvalid: return "svid.chain_invalid";
  }
  return "svid.unknown";
}

namespace {

Unexpected<SvidError> svid_fail(SvidErrorKind kind, std::string message) {
  return fail(SvidError{kind, std::move(message)});
}

using GeneralNamesOwner = crypto::GeneralNamesPtr;

}  // namespace

Result<SpiffeId, SvidError> spiffe_id_of(X509* cert) {
  if (!cert) return svid_fail(SvidErrorKind::EmptyChain, "no certificate");
  int san_extensions = 0;
  for (int idx = -1; (idx = X509_get_ext_by_NID(cert, NID_subject_alt_name, idx)) >= 0;) ++san_extensions;
  if (san_extensions == 0) return svid_fail(SvidErrorKind::NoUriSan, "certificate has no subjectAltName extension");
  if (san_extensions > 1)
    return svid_fail(SvidErrorKind::MultipleUriSans, "certificate has more than one subjectAltName extension");
  int crit = 0;
  GeneralNamesOwner names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, nullptr)));
  if (!names) return svid_fail(SvidErrorKind::Malformed, "subjectAltName extension does not decode");
  const ASN1_IA5STRING* uri = nullptr;
  int uri_count = 0;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != GEN_URI) continue;
    ++uri_count;
    uri = gn->d.uniformResourceIdentifier;
  }
  if (uri_count == 0) return svid_fail(SvidErrorKind::NoUriSan, "certificate has no URI subjectAltName");
  if (uri_count > 1)
    return svid_fail(SvidErrorKind::MultipleUriSans,
                     "certificate has " + std::to_string(uri_count) + " URI subjectAltNames; an SVID has exactly one");
  std::string_view text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                        static_cast<size_t>(ASN1_STRING_length(uri)));
  auto id = SpiffeId::parse(text);
  if (!id) return svid_fail(SvidErrorKind::BadSpiffeId, "URI SAN is not a valid SPIFFE ID: " + id.error().to_string());
  return std::move(*id);
}

namespace {

Result<void, SvidError> check_leaf_shape(X509* leaf) {
  uint32_t flags = X509_get_extension_flags(leaf);
  if (flags & EXFLAG_INVALID) return svid_fail(SvidErrorKind::Malformed, "leaf certificate has malformed extensions");
  if (flags & EXFLAG_CA) return svid_fail(SvidErrorKind::LeafIsCa, "leaf certificate is a CA (basicConstraints CA:TRUE)");
  if (!(flags & EXFLAG_KUSAGE)) return svid_fail(SvidErrorKind::NoKeyUsage, "leaf certificate has no key usage extension");
  int ku_index = X509_get_ext_by_NID(leaf, NID_key_usage, -1);
  X509_EXTENSION* ku_ext = ku_index >= 0 ? X509_get_ext(leaf, ku_index) : nullptr;
  if (!ku_ext || X509_EXTENSION_get_critical(ku_ext) != 1)
    return svid_fail(SvidErrorKind::KeyUsageNotCritical, "leaf key usage extension is not marked critical");
  uint32_t ku = X509_get_key_usage(leaf);
  if (!(ku & KU_DIGITAL_SIGNATURE))
    return svid_fail(SvidErrorKind::NoDigitalSignature, "leaf key usage lacks digitalSignature");
  if (ku & KU_KEY_CERT_SIGN) return svid_fail(SvidErrorKind::HasCertSign, "leaf key usage includes keyCertSign");
  if (ku & KU_CRL_SIGN) return svid_fail(SvidErrorKind::HasCrlSign, "leaf key usage includes cRLSign");
  return {};
}

Result<void, SvidError> check_validity(X509* cert, std::time_t now, const char* which) {
  std::time_t t = now;
  int nb = X509_cmp_time(X509_get0_notBefore(cert), &t);
  int na = X509_cmp_time(X509_get0_notAfter(cert), &t);
  if (nb == 0 || na == 0) return svid_fail(SvidErrorKind::Malformed, std::string(which) + " has an unreadable validity time");
  if (nb > 0) return svid_fail(SvidErrorKind::NotYetValid, std::string(which) + " is not valid yet (notBefore is in the future)");
  if (na < 0) return svid_fail(SvidErrorKind::Expired, std::string(which) + " has expired (notAfter is in the past)");
  return {};
}

}  // namespace

Result<SpiffeId, SvidError> verify_svid(std::span<X509* const> chain, const TrustBundle& bundle, std::time_t now) {
  if (chain.empty() || !chain[0]) return svid_fail(SvidErrorKind::EmptyChain, "empty certificate chain");
  X509* leaf = chain[0];
  auto id = spiffe_id_of(leaf);
  if (!id) return id;
  if (auto st = check_leaf_shape(leaf); !st) return fail(st.error());
  if (auto st = check_validity(leaf, now, "leaf certificate"); !st) return fail(st.error());
  if (id->trust_domain() != bundle.trust_domain())
    return svid_fail(SvidErrorKind::WrongTrustDomain, "SPIFFE ID " + id->str() + " is not in trust domain " +
                                                          bundle.trust_domain());

  auto store = bundle.make_store();
  if (!store) return svid_fail(SvidErrorKind::ChainInvalid, store.error().message);
  crypto::X509StackPtr untrusted(sk_X509_new_null());
  if (!untrusted) return svid_fail(SvidErrorKind::ChainInvalid, "out of memory");
  for (size_t i = 1; i < chain.size(); ++i) {
    if (!chain[i] || !sk_X509_push(untrusted.get(), chain[i]))
      return svid_fail(SvidErrorKind::ChainInvalid, "cannot assemble the certificate chain");
  }
  crypto::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store->get(), leaf, untrusted.get()) != 1)
    return svid_fail(SvidErrorKind::ChainInvalid, crypto::openssl_error("svid.chain_invalid", "cannot set up chain verification").message);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, now);
  X509_VERIFY_PARAM_set_depth(param, 8);
  int ok = X509_verify_cert(ctx.get());
  if (ok == 1) return id;
  int err = X509_STORE_CTX_get_error(ctx.get());
  int depth = X509_STORE_CTX_get_error_depth(ctx.get());
  crypto::last_error();  // drop queued details: the verify error code is the explanation
  std::string where = "certificate at depth " + std::to_string(depth) + ": " + X509_verify_cert_error_string(err);
  if (err == X509_V_ERR_CERT_HAS_EXPIRED) return svid_fail(SvidErrorKind::Expired, where);
  if (err == X509_V_ERR_CERT_NOT_YET_VALID) return svid_fail(SvidErrorKind::NotYetValid, where);
  return svid_fail(SvidErrorKind::ChainInvalid, "chain does not verify to the trust bundle of " +
                                                    bundle.trust_domain() + " (" + where + ")");
}

Result<SpiffeId, SvidError> verify_svid(const std::vector<crypto::X509Ptr>& chain, const TrustBundle& bundle,
                                        std::time_t now) {
  std::vector<X509*> raw;
  raw.reserve(chain.size());
  for (const auto& c : chain) raw.push_back(c.get());
  return verify_svid(std::span<X509* const>(raw), bundle, now);
}

}  // namespace mg::identity
