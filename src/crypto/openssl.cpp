#include "crypto/openssl.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

namespace mg::crypto {

std::string last_error() {
  std::string out;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

Error openssl_error(std::string code, std::string what) {
  std::string detail = last_error();
  if (!detail.empty()) what += " (" + detail + ")";
  return Error{std::move(code), std::move(what)};
}

namespace {
void free_extension_stack(STACK_OF(X509_EXTENSION)* s) { sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free); }

BioPtr mem_bio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string bio_to_string(BIO* bio) {
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  return n > 0 ? std::string(p, static_cast<size_t>(n)) : std::string();
}
}  // namespace

Result<std::vector<X509Ptr>> parse_cert_chain_pem(std::string_view pem) {
  if (pem.size() > (1u << 24)) return fail("pem.too_large", "PEM input larger than 16 MiB");
  ERR_clear_error();
  BioPtr bio = mem_bio(pem);
  std::vector<X509Ptr> out;
  for (;;) {
    X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (!raw) break;
    out.emplace_back(raw);
  }
  unsigned long err = ERR_peek_last_error();
  // End of input shows up as PEM_R_NO_START_LINE; anything else means a damaged block.
  if (err != 0 && !(ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE)) {
    return fail(openssl_error("pem.malformed", "malformed certificate PEM"));
  }
  ERR_clear_error();
  if (out.empty()) return fail("pem.no_certificate", "no CERTIFICATE block found");
  return out;
}

Result<X509ReqPtr> parse_csr_pem(std::string_view pem) {
  if (pem.size() > (1u << 20)) return fail("pem.too_large", "CSR PEM larger than 1 MiB");
  ERR_clear_error();
  BioPtr bio = mem_bio(pem);
  X509ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) return fail(openssl_error("pem.malformed_csr", "malformed CERTIFICATE REQUEST PEM"));
  return req;
}

Result<PKeyPtr> parse_private_key_pem(std::string_view pem) {
  if (pem.size() > (1u << 20)) return fail("pem.too_large", "key PEM larger than 1 MiB");
  ERR_clear_error();
  BioPtr bio = mem_bio(pem);
  // An empty passphrase callback: encrypted keys fail instead of prompting on a terminal.
  auto no_pass = [](char*, int, int, void*) -> int { return -1; };
  PKeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_pass, nullptr));
  // Never include key bytes in the message.
  if (!key) {
    ERR_clear_error();
    return fail("pem.malformed_key", "malformed or encrypted PRIVATE KEY PEM");
  }
  return key;
}

std::string cert_to_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return bio_to_string(bio.get());
}

std::string csr_to_pem(X509_REQ* req) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req);
  return bio_to_string(bio.get());
}

std::string private_key_to_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return bio_to_string(bio.get());
}

std::string public_key_to_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), key);
  return bio_to_string(bio.get());
}

std::vector<unsigned char> sha256(std::string_view data) {
  std::vector<unsigned char> out(32);
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  out.resize(len);
  return out;
}

std::string digest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) return {};
  return std::string(reinterpret_cast<const char*>(out), len);
}

namespace {

// The HMAC algorithm, fetched once per process (immutable and thread-safe once fetched).
EVP_MAC* hmac_algorithm() {
  static const MacPtr mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  return mac.get();
}

// One thread's HMAC context for one digest, and the key it was last initialised with.
struct HmacContext {
  int type = 0;  // EVP_MD_get_type
  MacCtxPtr ctx;
  std::string key;
  bool keyed = false;
};

// This thread's HMAC context for `md`, its digest set once.
HmacContext* hmac_context(const EVP_MD* md) {
  thread_local std::vector<HmacContext> contexts;  // by digest type: a handful
  const int type = EVP_MD_get_type(md);
  for (auto& c : contexts)
    if (c.type == type) return &c;
  EVP_MAC* mac = hmac_algorithm();
  if (!mac) return nullptr;
  MacCtxPtr ctx(EVP_MAC_CTX_new(mac));
  if (!ctx) return nullptr;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(EVP_MD_get0_name(md)), 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(ctx.get(), params) != 1) return nullptr;
  return &contexts.emplace_back(HmacContext{type, std::move(ctx), {}, false});
}

}  // namespace

std::string hmac(const EVP_MD* md, std::string_view key, std::string_view data) {
  HmacContext* c = hmac_context(md);
  if (!c) return {};
  // The same key as last time (one policy's secret, request after request): a null key makes
  // EVP_MAC_init restart from the keyed state it kept, skipping the key schedule and its copy.
  const bool same_key =
      c->keyed && c->key.size() == key.size() && CRYPTO_memcmp(c->key.data(), key.data(), key.size()) == 0;
  static const unsigned char kEmpty = 0;  // an empty key still needs a non-null pointer
  const auto* k = same_key      ? nullptr
                  : key.empty() ? &kEmpty
                                : reinterpret_cast<const unsigned char*>(key.data());
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t len = 0;
  if (EVP_MAC_init(c->ctx.get(), k, same_key ? 0 : key.size(), nullptr) != 1 ||
      EVP_MAC_update(c->ctx.get(), reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
      EVP_MAC_final(c->ctx.get(), out, &len, sizeof out) != 1) {
    c->keyed = false;
    ERR_clear_error();
    return {};
  }
  if (!same_key) {
    c->key.assign(key);
    c->keyed = true;
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string hex(const unsigned char* data, size_t len, char sep) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(len * 3);
  for (size_t i = 0; i < len; ++i) {
    if (sep && i) out += sep;
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0xf];
  }
  return out;
}

std::string cert_der(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len <= 0) return {};
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::time_t asn1_to_unix(const ASN1_TIME* t) {
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return timegm(&tm);
}

std::string cert_sha256_fingerprint(X509* cert) {
  auto digest = sha256(cert_der(cert));
  std::string s = hex(digest.data(), digest.size(), ':');
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string cert_serial_hex(X509* cert) {
  BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) return "";
  char* text = BN_bn2hex(bn.get());
  std::string out = text ? text : "";
  OPENSSL_free(text);
  return out;
}

std::string name_text(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return "";
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* p = nullptr;
  long n = BIO_get_mem_data(bio.get(), &p);
  return n > 0 ? std::string(p, static_cast<size_t>(n)) : std::string();
}

CertSummary summarize(X509* cert) {
  return {name_text(X509_get_subject_name(cert)),
          name_text(X509_get_issuer_name(cert)),
          cert_serial_hex(cert),
          cert_sha256_fingerprint(cert),
          asn1_to_unix(X509_get0_notBefore(cert)),
          asn1_to_unix(X509_get0_notAfter(cert)),
          X509_check_ca(cert) == 1};
}

Result<std::vector<unsigned char>> random_bytes(size_t n) {
  std::vector<unsigned char> out(n);
  if (RAND_bytes(out.data(), static_cast<int>(n)) != 1)
    return fail(openssl_error("rand.failed", "RAND_bytes failed"));
  return out;
}

Result<KeyType> parse_key_type(std::string_view s) {
  if (s == "ec-p256") return KeyType::EcP256;
  if (s == "rsa-2048") return KeyType::Rsa2048;
  if (s == "rsa-3072") return KeyType::Rsa3072;
  return fail("key.bad_type", "unknown key type '" + std::string(s) + "' (want ec-p256, rsa-2048 or rsa-3072)");
}

Result<PKeyPtr> generate_key(KeyType type) {
  EVP_PKEY* raw = nullptr;
  switch (type) {
    case KeyType::EcP256: raw = EVP_EC_gen("P-256"); break;
    case KeyType::Rsa2048: raw = EVP_RSA_gen(2048); break;
    case KeyType::Rsa3072: raw = EVP_RSA_gen(3072); break;
  }
  if (!raw) return fail(openssl_error("key.generate", "key generation failed"));
  return PKeyPtr(raw);
}

Result<X509ReqPtr> make_csr(EVP_PKEY* key, std::string_view uri_san) {
  if (!key) return fail("csr.no_key", "no key given");
  X509ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1 || X509_REQ_set_pubkey(req.get(), key) != 1)
    return fail(openssl_error("csr.create", "cannot build CSR"));
  if (!uri_san.empty()) {
    GeneralNamesPtr names(GENERAL_NAMES_new());
    GENERAL_NAME* name = GENERAL_NAME_new();
    ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
    if (!names || !name || !ia5 ||
        ASN1_STRING_set(ia5, uri_san.data(), static_cast<int>(uri_san.size())) != 1) {
      GENERAL_NAME_free(name);
      ASN1_IA5STRING_free(ia5);
      return fail(openssl_error("csr.create", "cannot encode URI SAN"));
    }
    GENERAL_NAME_set0_value(name, GEN_URI, ia5);
    if (!sk_GENERAL_NAME_push(names.get(), name)) {
      GENERAL_NAME_free(name);
      return fail("csr.create", "out of memory");
    }
    using ExtStackPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), Deleter<STACK_OF(X509_EXTENSION), free_extension_stack>>;
    ExtStackPtr exts(sk_X509_EXTENSION_new_null());
    X509ExtPtr ext(X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get()));
    if (!exts || !ext || !sk_X509_EXTENSION_push(exts.get(), ext.get()))
      return fail(openssl_error("csr.create", "cannot build CSR extension"));
    ext.release();  // owned by `exts`
    if (X509_REQ_add_extensions(req.get(), exts.get()) != 1)
      return fail(openssl_error("csr.create", "cannot add CSR extensions"));
  }
  if (X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) return fail(openssl_error("csr.sign", "cannot sign CSR"));
  return req;
}

}  // namespace mg::crypto
