// crypto/openssl.h — one RAII owner per OpenSSL object type, plus PEM, digest and error helpers.
// Every OpenSSL object in meshguard lives in one of these; nothing calls *_free by hand.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mg::crypto {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const noexcept {
    if (p) Free(p);
  }
};

using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using X509ReqPtr = std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME, X509_NAME_free>>;
using X509ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using PKeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using PKeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using MacPtr = std::unique_ptr<EVP_MAC, Deleter<EVP_MAC, EVP_MAC_free>>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, Deleter<EVP_MAC_CTX, EVP_MAC_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER, ASN1_INTEGER_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME, ASN1_TIME_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES, GENERAL_NAMES_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX, SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Deleter<SSL, SSL_free>>;
// A STACK_OF(X509) that does NOT own its certificates (freed with sk_X509_free, not pop_free):
// for handing borrowed intermediates to X509_STORE_CTX_init.
inline void free_x509_stack_shallow(STACK_OF(X509)* s) { sk_X509_free(s); }
using X509StackPtr = std::unique_ptr<STACK_OF(X509), Deleter<STACK_OF(X509), free_x509_stack_shallow>>;

// Drains OpenSSL's thread-local error queue into one line ("" when empty).
std::string last_error();

// Builds an Error whose message ends with OpenSSL's own explanation, and clears the queue.
Error openssl_error(std::string code, std::string what);

// PEM: every CERTIFICATE block in order. Fails on malformed PEM or when there is none.
Result<std::vector<X509Ptr>> parse_cert_chain_pem(std::string_view pem);
Result<X509ReqPtr> parse_csr_pem(std::string_view pem);
Result<PKeyPtr> parse_private_key_pem(std::string_view pem);

std::string cert_to_pem(X509* cert);
std::string csr_to_pem(X509_REQ* req);
std::string private_key_to_pem(EVP_PKEY* key);  // PKCS#8, unencrypted: callers write it 0600
std::string public_key_to_pem(EVP_PKEY* key);

// Digest helpers.
std::vector<unsigned char> sha256(std::string_view data);
// Any EVP digest / HMAC over `data` (raw bytes). md: EVP_md5(), EVP_sha1(), EVP_sha256(), ...
std::string digest(const EVP_MD* md, std::string_view data);
// hmac() keeps one HMAC context per digest and thread, its algorithm and digest fetched once:
// OpenSSL 3 otherwise fetches both (a locked provider lookup) on every call, which showed in the
// per-request profile of an OPAPolicy verifying an HS256 token. "" on failure.
std::string hmac(const EVP_MD* md, std::string_view key, std::string_view data);
std::string hex(const unsigned char* data, size_t len, char sep = 0);  // lower case
std::string cert_sha256_fingerprint(X509* cert);                     // "AB:CD:..." upper case, like openssl
std::string cert_der(X509* cert);
// A certificate time as Unix seconds (UTC); 0 when absent or unreadable.
std::time_t asn1_to_unix(const ASN1_TIME* t);
// The serial number in upper-case hex, as openssl prints it ("" if unreadable).
std::string cert_serial_hex(X509* cert);
// A distinguished name as RFC 2253 text (non-ASCII escaped: always printable).
std::string name_text(const X509_NAME* name);

// What operators are shown of one certificate (proxy-config secret, /config_dump).
struct CertSummary {
  std::string subject, issuer, serial_hex, fingerprint;
  std::time_t not_before = 0, not_after = 0;
  bool is_ca = false;
};
CertSummary summarize(X509* cert);

// Cryptographically secure random bytes (RAND_bytes); fails closed.
Result<std::vector<unsigned char>> random_bytes(size_t n);

// Key generation.
enum class KeyType { EcP256, Rsa2048, Rsa3072 };
Result<KeyType> parse_key_type(std::string_view s);  // "ec-p256" | "rsa-2048" | "rsa-3072"
Result<PKeyPtr> generate_key(KeyType type);

// A PKCS#10 CSR for `key`, signed with SHA-256. When `uri_san` is given it is requested as the
// only subjectAltName (a CA may ignore it: meshguard's CA decides the identity itself).
Result<X509ReqPtr> make_csr(EVP_PKEY* key, std::string_view uri_san = {});

}  // namespace mg::crypto
