// Test-only certificate factory: builds deliberately right or wrong certificates with OpenSSL so
// the SVID verifier and the CA can be tested against every rule. Never used by production code.
#pragma once

#include <ctime>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "crypto/openssl.h"

namespace mg::testcerts {

struct CertSpec {
  std::string common_name = "test";
  std::vector<std::string> uris;                                   // URI SANs
  std::string extra_san;                                           // e.g. "DNS:x" (added to the same SAN)
  std::optional<std::string> basic_constraints = "critical,CA:FALSE";  // X509V3 conf text; nullopt = absent
  std::optional<std::string> key_usage = "critical,digitalSignature";
  std::optional<std::string> ext_key_usage = "serverAuth,clientAuth";
  std::time_t not_before = 0;
  std::time_t not_after = 0;
};

inline crypto::PKeyPtr ec_key() { return std::move(*crypto::generate_key(crypto::KeyType::EcP256)); }

inline void add_conf_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  crypto::X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) throw std::runtime_error("extension " + value);
}

// issuer == nullptr: self-signed with `key`.
inline crypto::X509Ptr make_cert(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  crypto::X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  static long serial = 1000;
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), spec.not_before);
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), spec.not_after);
  X509_set_pubkey(cert.get(), key);
  X509* issuer_cert = issuer ? issuer : cert.get();
  if (spec.basic_constraints) add_conf_ext(cert.get(), issuer_cert, NID_basic_constraints, *spec.basic_constraints);
  if (spec.key_usage) add_conf_ext(cert.get(), issuer_cert, NID_key_usage, *spec.key_usage);
  if (spec.ext_key_usage) add_conf_ext(cert.get(), issuer_cert, NID_ext_key_usage, *spec.ext_key_usage);
  add_conf_ext(cert.get(), issuer_cert, NID_subject_key_identifier, "hash");
  add_conf_ext(cert.get(), issuer_cert, NID_authority_key_identifier, "keyid:always");
  if (!spec.uris.empty() || !spec.extra_san.empty()) {
    std::string san = spec.extra_san;
    for (const auto& u : spec.uris) san += (san.empty() ? "URI:" : ",URI:") + u;
    add_conf_ext(cert.get(), issuer_cert, NID_subject_alt_name, san);
  }
  if (X509_sign(cert.get(), issuer ? issuer_key : key, EVP_sha256()) <= 0) throw std::runtime_error("sign");
  return cert;
}

// A CA certificate spec (root or intermediate).
inline CertSpec ca_spec(const std::string& cn, std::time_t now) {
  CertSpec s;
  s.common_name = cn;
  s.basic_constraints = "critical,CA:TRUE";
  s.key_usage = "critical,keyCertSign,cRLSign";
  s.ext_key_usage = std::nullopt;
  s.not_before = now - 3600;
  s.not_after = now + 365 * 86400;
  return s;
}

inline CertSpec leaf_spec(const std::string& uri, std::time_t now) {
  CertSpec s;
  s.common_name = "leaf";
  s.uris = {uri};
  s.not_before = now - 60;
  s.not_after = now + 3600;
  return s;
}

// A CSR for `key`, signed with `md` (EVP_sha256() unless a test wants something else).
inline crypto::X509ReqPtr make_csr(EVP_PKEY* key, const EVP_MD* md = nullptr) {
  crypto::X509ReqPtr req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("csr"), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key);
  if (X509_REQ_sign(req.get(), key, md ? md : EVP_sha256()) <= 0) throw std::runtime_error("csr sign");
  return req;
}

}  // namespace mg::testcerts
