#include "ca/authority.h"

#include <algorithm>
#include <openssl/core_names.h>
#include <openssl/err.h>

#include "common/files.h"
#include "identity/svid.h"

namespace mg::ca {

using crypto::Deleter;
using crypto::openssl_error;
using crypto::X509ExtPtr;
using crypto::X509Ptr;
using identity::SpiffeId;
using identity::TrustBundle;

namespace {

using MdPtr = std::unique_ptr<EVP_MD, Deleter<EVP_MD, EVP_MD_free>>;
using OctetStringPtr = std::unique_ptr<ASN1_OCTET_STRING, Deleter<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>>;
using AuthorityKeyIdPtr = std::unique_ptr<AUTHORITY_KEYID, Deleter<AUTHORITY_KEYID, AUTHORITY_KEYID_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, Deleter<GENERAL_NAME, GENERAL_NAME_free>>;

X509Ptr share(X509* cert) {
  X509_up_ref(cert);
  return X509Ptr(cert);
}

std::string join(const std::string& dir, const char* name) { return dir + "/" + name; }

Result<X509ExtPtr> conf_ext(int nid, const char* value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, nid, value);
  if (!ext) return fail(openssl_error("ca.extension", std::string("cannot build extension ") + value));
  return X509ExtPtr(ext);
}

// RFC 5280 method 1 key identifier: SHA-1 of the subjectPublicKey bits.
Result<OctetStringPtr> key_identifier(X509* cert, const EVP_MD* sha1) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_pubkey_digest(cert, sha1, md, &len) != 1)
    return fail(openssl_error("ca.key_id", "cannot hash the public key"));
  OctetStringPtr oct(ASN1_OCTET_STRING_new());
  if (!oct || ASN1_OCTET_STRING_set(oct.get(), md, static_cast<int>(len)) != 1)
    return fail(openssl_error("ca.key_id", "out of memory"));
  return oct;
}

// A uniformly random, positive 128-bit serial: 16 random bytes read as an unsigned big-endian
// number (DER adds the 0x00 sign octet when the top bit is set, 17 octets <= RFC 5280's 20).
Status set_random_serial(X509* cert) {
  for (;;) {
    auto bytes = crypto::random_bytes(16);
    if (!bytes) return fail(bytes.error());
    crypto::BignumPtr bn(BN_bin2bn(bytes->data(), static_cast<int>(bytes->size()), nullptr));
    if (!bn) return fail(openssl_error("ca.serial", "cannot build serial"));
    if (BN_is_zero(bn.get())) continue;
    if (!BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)))
      return fail(openssl_error("ca.serial", "cannot set serial"));
    return {};
  }
}

Status add_ext(X509* cert, X509_EXTENSION* ext) {
  if (X509_add_ext(cert, ext, -1) != 1) return fail(openssl_error("ca.extension", "cannot add extension"));
  return {};
}

Status push_general_name(GENERAL_NAMES* names, int type, const std::string& value) {
  GeneralNamePtr name(GENERAL_NAME_new());
  ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
  if (!name || !ia5) {
    ASN1_IA5STRING_free(ia5);
    return fail("ca.extension", "out of memory");
  }
  if (ASN1_STRING_set(ia5, value.data(), static_cast<int>(value.size())) != 1) {
    ASN1_IA5STRING_free(ia5);
    return fail(openssl_error("ca.extension", "cannot encode subjectAltName"));
  }
  GENERAL_NAME_set0_value(name.get(), type, ia5);
  if (!sk_GENERAL_NAME_push(names, name.get())) return fail("ca.extension", "out of memory");
  name.release();  // owned by `names` now
  return {};
}

// One subjectAltName extension: the URI (the SPIFFE ID) and any DNS names (allowed beside the one
// URI SAN by the X.509-SVID spec; only the control plane's own serving certificate has them).
Status add_uri_san(X509* cert, const std::string& uri, bool critical, const std::vector<std::string>& dns_names = {}) {
  crypto::GeneralNamesPtr names(GENERAL_NAMES_new());
  if (!names) return fail("ca.extension", "out of memory");
  if (auto st = push_general_name(names.get(), GEN_URI, uri); !st) return st;
  for (const auto& dns : dns_names) {
    if (auto st = push_general_name(names.get(), GEN_DNS, dns); !st) return st;
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), critical ? 1 : 0, X509V3_ADD_APPEND) != 1)
    return fail(openssl_error("ca.extension", "cannot add subjectAltName"));
  return {};
}

// Copies the CSR's SubjectPublicKeyInfo into the certificate byte for byte. X509_set_pubkey would
// re-encode the key through OpenSSL 3.0's encoder framework, which costs several ECDSA signatures.
// The copied key is exactly the one whose strength and CSR signature were checked.
Status copy_public_key_info(X509_REQ* csr, X509* cert) {
  X509_PUBKEY* src = X509_REQ_get_X509_PUBKEY(csr);
  ASN1_OBJECT* key_alg = nullptr;
  const unsigned char* bits = nullptr;
  int bits_len = 0;
  X509_ALGOR* alg = nullptr;
  if (!src || X509_PUBKEY_get0_param(&key_alg, &bits, &bits_len, &alg, src) != 1 || !alg || bits_len <= 0)
    return fail(openssl_error("csr.no_key", "CSR public key does not decode"));
  const ASN1_OBJECT* alg_obj = nullptr;
  int param_type = V_ASN1_UNDEF;
  const void* param = nullptr;
  X509_ALGOR_get0(&alg_obj, &param_type, &param, alg);
  void* param_copy = nullptr;
  if (param_type == V_ASN1_OBJECT) {
    param_copy = OBJ_dup(static_cast<const ASN1_OBJECT*>(param));
    if (!param_copy) return fail("ca.sign", "out of memory");
  } else if (param_type != V_ASN1_NULL && param_type != V_ASN1_UNDEF) {
    // Explicit curve parameters and the like: take OpenSSL's general (slow) path.
    if (X509_set_pubkey(cert, X509_REQ_get0_pubkey(csr)) != 1)
      return fail(openssl_error("ca.sign", "cannot set the public key"));
    return {};
  }
  ASN1_OBJECT* alg_copy = OBJ_dup(alg_obj);
  auto* bits_copy = static_cast<unsigned char*>(OPENSSL_memdup(bits, static_cast<size_t>(bits_len)));
  if (!alg_copy || !bits_copy ||
      X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), alg_copy, param_type, param_copy, bits_copy, bits_len) != 1) {
    ASN1_OBJECT_free(alg_copy);
    if (param_type == V_ASN1_OBJECT) ASN1_OBJECT_free(static_cast<ASN1_OBJECT*>(param_copy));
    OPENSSL_free(bits_copy);
    return fail(openssl_error("ca.sign", "cannot set the public key"));
  }
  return {};
}

Result<MdPtr> fetch_md(const char* name) {
  EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  if (!md) return fail(openssl_error("ca.digest", std::string("digest ") + name + " unavailable"));
  return MdPtr(md);
}

std::string ec_group_name(EVP_PKEY* key) {
  char name[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len) != 1) return "";
  return std::string(name, len);
}

// The signature digest a CA key signs leaves with.
const char* signing_digest_for(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC && ec_group_name(key) == "secp384r1") return "SHA384";
  return "SHA256";
}

Result<X509Ptr> parse_single_cert(std::string_view pem, const char* what) {
  auto certs = crypto::parse_cert_chain_pem(pem);
  if (!certs) return fail(certs.error().code, std::string(what) + ": " + certs.error().message);
  if (certs->size() != 1)
    return fail("ca.bad_ca_cert", std::string(what) + " must hold exactly one certificate, found " +
                                      std::to_string(certs->size()));
  return std::move(certs->front());
}

// Verifies `cert` (with `intermediates`) up to a root in `bundle` at `now`.
Status verify_to_bundle(X509* cert, const std::vector<X509Ptr>& intermediates, const TrustBundle& bundle,
                        std::time_t now) {
  auto store = bundle.make_store();
  if (!store) return fail(store.error());
  crypto::X509StackPtr untrusted(sk_X509_new_null());
  if (!untrusted) return fail("ca.chain_invalid", "out of memory");
  for (const auto& c : intermediates) {
    if (!sk_X509_push(untrusted.get(), c.get())) return fail("ca.chain_invalid", "out of memory");
  }
  crypto::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store->get(), cert, untrusted.get()) != 1)
    return fail(openssl_error("ca.chain_invalid", "cannot set up chain verification"));
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), now);
  if (X509_verify_cert(ctx.get()) == 1) return {};
  int err = X509_STORE_CTX_get_error(ctx.get());
  crypto::last_error();
  std::string why = std::string("certificate at depth ") + std::to_string(X509_STORE_CTX_get_error_depth(ctx.get())) +
                    ": " + X509_verify_cert_error_string(err);
  if (err == X509_V_ERR_CERT_HAS_EXPIRED) return fail("ca.expired", "CA chain has expired (" + why + ")");
  if (err == X509_V_ERR_CERT_NOT_YET_VALID) return fail("ca.not_yet_valid", "CA chain is not valid yet (" + why + ")");
  return fail("ca.chain_invalid", "ca-cert.pem does not chain to a root in root-cert.pem (" + why + ")");
}

// The trust domain a CA certificate names in a spiffe://<td> URI SAN, if any.
std::string trust_domain_of_ca(X509* cert) {
  auto id = identity::spiffe_id_of(cert);
  if (!id || !id->is_trust_domain_id()) return "";
  return std::string(id->trust_domain());
}

crypto::KeyType key_type_of(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
    return EVP_PKEY_get_bits(key) >= 3072 ? crypto::KeyType::Rsa3072 : crypto::KeyType::Rsa2048;
  return crypto::KeyType::EcP256;
}

}  // namespace

Status check_key_strength(EVP_PKEY* key, std::string_view code_prefix) {
  std::string prefix(code_prefix);
  if (!key) return fail(prefix + ".no_key", "no public key");
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: {
      int bits = EVP_PKEY_get_bits(key);
      if (bits < 2048)
        return fail(prefix + ".weak_key", "RSA key of " + std::to_string(bits) + " bits is too weak (minimum 2048)");
      if (bits > 8192)
        return fail(prefix + ".key_too_large", "RSA key of " + std::to_string(bits) + " bits is too large (maximum 8192)");
      return {};
    }
    case EVP_PKEY_EC: {
      std::string group = ec_group_name(key);
      if (group == "prime256v1" || group == "secp384r1") return {};
      return fail(prefix + ".weak_key",
                  "EC curve '" + (group.empty() ? std::string("unknown") : group) + "' is not allowed (use P-256 or P-384)");
    }
    default:
      return fail(prefix + ".unsupported_key",
                  std::string("key type ") + OBJ_nid2sn(EVP_PKEY_get_base_id(key)) + " is not supported (use RSA or ECDSA)");
  }
}

Result<std::chrono::seconds> parse_duration(std::string_view text) {
  if (text.empty()) return fail("duration.invalid", "empty duration");
  long long total = 0;
  size_t i = 0;
  while (i < text.size()) {
    long long n = 0;
    size_t digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (n > 1'000'000'000LL) return fail("duration.invalid", "duration '" + std::string(text) + "' is too large");
      n = n * 10 + (text[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0 || i >= text.size())
      return fail("duration.invalid", "invalid duration '" + std::string(text) + "' (examples: 90s, 30m, 1h, 2h30m, 7d)");
    long long unit = 0;
    switch (text[i]) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      default:
        return fail("duration.invalid", "invalid duration '" + std::string(text) + "' (examples: 90s, 30m, 1h, 2h30m, 7d)");
    }
    ++i;
    total += n * unit;
    if (total > 100LL * 365 * 86400) return fail("duration.invalid", "duration '" + std::string(text) + "' is too large");
  }
  if (total <= 0) return fail("duration.invalid", "duration must be positive");
  return std::chrono::seconds(total);
}

// Everything constant across signatures is built once here, so signing a CSR costs one CSR
// verification, one key-id hash and one signature plus a little DER assembly.
struct Authority::State {
  std::string trust_domain;
  X509Ptr ca_cert;
  crypto::PKeyPtr ca_key;
  std::vector<X509Ptr> chain;  // cert-chain.pem: ca_cert first
  TrustBundle bundle;
  std::time_t not_after = 0;
  std::chrono::seconds max_ttl = kDefaultMaxLeafTtl;
  bool self_signed = false;

  crypto::X509NamePtr issuer;
  X509ExtPtr basic_constraints, key_usage_ec, key_usage_rsa, ext_key_usage, authority_key_id;
  MdPtr sign_md, sha1;
  std::string chain_pem;

  explicit State(TrustBundle b) : bundle(std::move(b)) {}

  Status build_template() {
    issuer.reset(X509_NAME_dup(X509_get_subject_name(ca_cert.get())));
    // Encoding once fills the name's DER cache, so concurrent signers only ever read it.
    if (!issuer || i2d_X509_NAME(issuer.get(), nullptr) <= 0)
      return fail(openssl_error("ca.template", "cannot copy issuer name"));
    auto bc = conf_ext(NID_basic_constraints, "critical,CA:FALSE");
    auto ku_ec = conf_ext(NID_key_usage, "critical,digitalSignature");
    auto ku_rsa = conf_ext(NID_key_usage, "critical,digitalSignature,keyEncipherment");
    auto eku = conf_ext(NID_ext_key_usage, "serverAuth,clientAuth");
    if (!bc || !ku_ec || !ku_rsa || !eku) return fail("ca.template", "cannot build certificate extensions");
    basic_constraints = std::move(*bc);
    key_usage_ec = std::move(*ku_ec);
    key_usage_rsa = std::move(*ku_rsa);
    ext_key_usage = std::move(*eku);
    auto md = fetch_md(signing_digest_for(ca_key.get()));
    if (!md) return fail(md.error());
    sign_md = std::move(*md);
    auto s1 = fetch_md("SHA1");
    if (!s1) return fail(s1.error());
    sha1 = std::move(*s1);

    AuthorityKeyIdPtr akid(AUTHORITY_KEYID_new());
    if (!akid) return fail("ca.template", "out of memory");
    const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(ca_cert.get());
    if (ski) {
      akid->keyid = ASN1_OCTET_STRING_dup(ski);
    } else {
      auto computed = key_identifier(ca_cert.get(), sha1.get());
      if (!computed) return fail(computed.error());
      akid->keyid = computed->release();
    }
    if (!akid->keyid) return fail("ca.template", "out of memory");
    authority_key_id.reset(X509V3_EXT_i2d(NID_authority_key_identifier, 0, akid.get()));
    if (!authority_key_id) return fail(openssl_error("ca.template", "cannot encode authorityKeyIdentifier"));

    not_after = crypto::asn1_to_unix(X509_get0_notAfter(ca_cert.get()));
    for (const auto& c : chain)
      not_after = std::min(not_after, crypto::asn1_to_unix(X509_get0_notAfter(c.get())));
    chain_pem.clear();
    for (const auto& c : chain) chain_pem += crypto::cert_to_pem(c.get());
    return {};
  }
};

Authority::Authority(std::unique_ptr<State> state) : s_(std::move(state)) {}
Authority::Authority(Authority&&) noexcept = default;
Authority& Authority::operator=(Authority&&) noexcept = default;
Authority::~Authority() = default;

const std::string& Authority::trust_domain() const { return s_->trust_domain; }
const TrustBundle& Authority::bundle() const { return s_->bundle; }
X509* Authority::ca_cert() const { return s_->ca_cert.get(); }
std::time_t Authority::ca_not_after() const { return s_->not_after; }
bool Authority::is_self_signed() const { return s_->self_signed; }
void Authority::set_max_ttl(std::chrono::seconds max_ttl) { s_->max_ttl = max_ttl; }

namespace {

// A new self-signed root: CA:TRUE, keyCertSign+cRLSign, SKI=AKI, URI SAN spiffe://<td>.
Result<X509Ptr> make_root(std::string_view trust_domain, EVP_PKEY* key, std::time_t now, std::chrono::seconds validity) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) return fail(openssl_error("ca.root", "out of memory"));
  if (auto st = set_random_serial(cert.get()); !st) return fail(st.error());
  if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), now - kClockSkewBackdate.count()) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert.get()), now + validity.count()))
    return fail(openssl_error("ca.root", "cannot set validity"));
  if (X509_set_pubkey(cert.get(), key) != 1) return fail(openssl_error("ca.root", "cannot set public key"));

  auto sha1 = fetch_md("SHA1");
  if (!sha1) return fail(sha1.error());
  auto ski = key_identifier(cert.get(), sha1->get());
  if (!ski) return fail(ski.error());
  // A distinct subject per root keeps old and new roots apart in every tool during rotation.
  std::string cn = "meshguard root CA " + crypto::hex(ASN1_STRING_get0_data(ski->get()), 4);
  X509_NAME* name = X509_get_subject_name(cert.get());
  std::string td(trust_domain);
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(td.c_str()), -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1)
    return fail(openssl_error("ca.root", "cannot set root name"));

  auto bc = conf_ext(NID_basic_constraints, "critical,CA:TRUE");
  auto ku = conf_ext(NID_key_usage, "critical,keyCertSign,cRLSign");
  if (!bc) return fail(bc.error());
  if (!ku) return fail(ku.error());
  if (auto st = add_ext(cert.get(), bc->get()); !st) return fail(st.error());
  if (auto st = add_ext(cert.get(), ku->get()); !st) return fail(st.error());
  if (X509_add1_ext_i2d(cert.get(), NID_subject_key_identifier, ski->get(), 0, X509V3_ADD_APPEND) != 1)
    return fail(openssl_error("ca.root", "cannot add subjectKeyIdentifier"));
  AuthorityKeyIdPtr akid(AUTHORITY_KEYID_new());
  if (!akid || !(akid->keyid = ASN1_OCTET_STRING_dup(ski->get()))) return fail("ca.root", "out of memory");
  if (X509_add1_ext_i2d(cert.get(), NID_authority_key_identifier, akid.get(), 0, X509V3_ADD_APPEND) != 1)
    return fail(openssl_error("ca.root", "cannot add authorityKeyIdentifier"));
  if (auto st = add_uri_san(cert.get(), "spiffe://" + td, false); !st) return fail(st.error());

  auto md = fetch_md(signing_digest_for(key));
  if (!md) return fail(md.error());
  if (X509_sign(cert.get(), key, md->get()) <= 0) return fail(openssl_error("ca.root", "cannot sign the root"));
  return cert;
}

}  // namespace

Result<Authority> Authority::create_self_signed(std::string_view trust_domain, crypto::KeyType key_type,
                                                std::time_t now, std::chrono::seconds validity) {
  if (auto st = identity::validate_trust_domain(trust_domain); !st) return fail(st.error());
  if (validity <= kClockSkewBackdate) return fail("ca.bad_validity", "root validity is too short");
  auto key = crypto::generate_key(key_type);
  if (!key) return fail(key.error());
  auto root = make_root(trust_domain, key->get(), now, validity);
  if (!root) return fail(root.error());
  auto bundle = TrustBundle::empty(trust_domain);
  if (!bundle) return fail(bundle.error());
  if (auto st = bundle->add_root(root->get()); !st) return fail(st.error());

  auto state = std::make_unique<State>(std::move(*bundle));
  state->trust_domain = std::string(trust_domain);
  state->chain.push_back(share(root->get()));
  state->ca_cert = std::move(*root);
  state->ca_key = std::move(*key);
  state->self_signed = true;
  if (auto st = state->build_template(); !st) return fail(st.error());
  return Authority(std::move(state));
}

Result<Authority> Authority::from_pem(std::string_view trust_domain, const CaPem& pem, std::time_t now) {
  if (auto st = identity::validate_trust_domain(trust_domain); !st) return fail(st.error());
  auto ca_cert = parse_single_cert(pem.ca_cert, kCaCertFile);
  if (!ca_cert) return fail(ca_cert.error());
  auto key = crypto::parse_private_key_pem(pem.ca_key);
  if (!key) return fail(key.error().code, std::string(kCaKeyFile) + ": " + key.error().message);
  if (X509_check_private_key(ca_cert->get(), key->get()) != 1) {
    crypto::last_error();
    return fail("ca.key_mismatch", "ca-key.pem does not match the public key of ca-cert.pem");
  }
  if (auto st = check_key_strength(key->get(), "ca"); !st) return fail(st.error().code, "ca-key.pem: " + st.error().message);
  if (X509_check_ca(ca_cert->get()) != 1)
    return fail("ca.not_ca", "ca-cert.pem is not a CA certificate (needs basicConstraints CA:TRUE)");
  uint32_t ku = X509_get_key_usage(ca_cert->get());
  if (ku != UINT32_MAX && !(ku & KU_KEY_CERT_SIGN))
    return fail("ca.not_ca", "ca-cert.pem key usage does not allow keyCertSign");
  std::string named_td = trust_domain_of_ca(ca_cert->get());
  if (!named_td.empty() && named_td != trust_domain)
    return fail("ca.trust_domain_mismatch",
                "ca-cert.pem names trust domain " + named_td + ", not " + std::string(trust_domain));

  auto roots = TrustBundle::from_pem(trust_domain, pem.root_cert);
  if (!roots) return fail(roots.error().code, std::string(kRootCertFile) + ": " + roots.error().message);
  auto chain = crypto::parse_cert_chain_pem(pem.cert_chain);
  if (!chain) return fail(chain.error().code, std::string(kCertChainFile) + ": " + chain.error().message);
  if (X509_cmp(chain->front().get(), ca_cert->get()) != 0)
    return fail("ca.chain_mismatch", "cert-chain.pem must start with the certificate in ca-cert.pem");
  std::vector<X509Ptr> intermediates;
  for (size_t i = 1; i < chain->size(); ++i) intermediates.push_back(share((*chain)[i].get()));
  if (auto st = verify_to_bundle(ca_cert->get(), intermediates, *roots, now); !st) return fail(st.error());

  bool self_signed = X509_check_issued(ca_cert->get(), ca_cert->get()) == X509_V_OK;
  bool in_bundle = false;
  for (const auto& r : roots->roots()) in_bundle = in_bundle || X509_cmp(r.get(), ca_cert->get()) == 0;

  auto state = std::make_unique<State>(std::move(*roots));
  state->trust_domain = std::string(trust_domain);
  state->ca_cert = std::move(*ca_cert);
  state->ca_key = std::move(*key);
  state->chain = std::move(*chain);
  state->self_signed = self_signed && in_bundle;
  if (auto st = state->build_template(); !st) return fail(st.error());
  return Authority(std::move(state));
}

namespace {
Result<CaPem> read_ca_files(const std::string& dir) {
  std::string key_path = join(dir, kCaKeyFile);
  // Check permissions before reading a single byte of the key.
  if (auto st = files::check_private_key_permissions(key_path); !st) return fail(st.error());
  CaPem pem;
  struct Item {
    const char* name;
    std::string* out;
  } items[] = {{kRootCertFile, &pem.root_cert}, {kCaCertFile, &pem.ca_cert}, {kCaKeyFile, &pem.ca_key},
               {kCertChainFile, &pem.cert_chain}};
  for (auto& item : items) {
    auto data = files::read_file(join(dir, item.name));
    if (!data) return fail(data.error());
    *item.out = std::move(*data);
  }
  return pem;
}
}  // namespace

Result<Authority> Authority::load_dir(const std::string& dir, std::time_t now) {
  auto pem = read_ca_files(dir);
  if (!pem) return fail(pem.error());
  std::string td;
  std::string td_path = join(dir, kTrustDomainFile);
  if (files::exists(td_path)) {
    auto data = files::read_file(td_path);
    if (!data) return fail(data.error());
    td = *data;
    while (!td.empty() && (td.back() == '\n' || td.back() == '\r' || td.back() == ' ')) td.pop_back();
  } else {
    auto cert = parse_single_cert(pem->ca_cert, kCaCertFile);
    if (!cert) return fail(cert.error());
    td = trust_domain_of_ca(cert->get());
    if (td.empty())
      return fail("ca.no_trust_domain", "cannot tell the trust domain of " + dir +
                                            ": no trust-domain file and no spiffe:// URI SAN on ca-cert.pem");
  }
  return from_pem(td, *pem, now);
}

Result<Authority> Authority::load_plug_in_dir(const std::string& cacerts_dir, std::string_view trust_domain,
                                              std::time_t now) {
  auto pem = read_ca_files(cacerts_dir);
  if (!pem) return fail(pem.error());
  return from_pem(trust_domain, *pem, now);
}

CaPem Authority::to_pem() const {
  CaPem pem;
  pem.root_cert = s_->bundle.to_pem();
  pem.ca_cert = crypto::cert_to_pem(s_->ca_cert.get());
  pem.ca_key = crypto::private_key_to_pem(s_->ca_key.get());
  pem.cert_chain = s_->chain_pem;
  return pem;
}

Status Authority::save_dir(const std::string& dir) const {
  if (auto st = files::make_dirs(dir, 0755); !st) return st;
  CaPem pem = to_pem();
  // The bundle goes first: if a crash interrupts the rest, the new root is already trusted and
  // the (mismatched) key/cert pair is refused at the next load instead of being used.
  struct Item {
    const char* name;
    const std::string& data;
    mode_t mode;
  } items[] = {{kRootCertFile, pem.root_cert, 0644},
               {kTrustDomainFile, s_->trust_domain + "\n", 0644},
               {kCertChainFile, pem.cert_chain, 0644},
               {kCaKeyFile, pem.ca_key, 0600},
               {kCaCertFile, pem.ca_cert, 0644}};
  for (const auto& item : items) {
    if (auto st = files::write_file_atomic(join(dir, item.name), item.data, item.mode); !st) return st;
  }
  return {};
}

Result<IssuedSvid> Authority::sign_csr(X509_REQ* csr, const SpiffeId& id, std::chrono::seconds ttl,
                                       std::time_t now, const std::vector<std::string>& dns_names) const {
  const State& s = *s_;
  if (!csr) return fail("csr.missing", "no CSR given");
  if (id.trust_domain() != s.trust_domain)
    return fail("ca.foreign_trust_domain",
                "SPIFFE ID " + id.str() + " is outside this CA's trust domain " + s.trust_domain);
  if (id.is_trust_domain_id())
    return fail("ca.no_workload_path", "SPIFFE ID " + id.str() + " names the trust domain, not a workload");
  if (ttl.count() <= 0) return fail("ca.bad_ttl", "certificate TTL must be positive");

  EVP_PKEY* pub = X509_REQ_get0_pubkey(csr);
  if (!pub) return fail(openssl_error("csr.no_key", "CSR public key does not decode"));
  if (auto st = check_key_strength(pub, "csr"); !st) return fail(st.error());
  int md_nid = NID_undef, pk_nid = NID_undef;
  if (!OBJ_find_sigid_algs(X509_REQ_get_signature_nid(csr), &md_nid, &pk_nid) ||
      (md_nid != NID_sha256 && md_nid != NID_sha384 && md_nid != NID_sha512))
    return fail("csr.weak_signature", "CSR must be signed with SHA-256, SHA-384 or SHA-512 (RSA PKCS#1 v1.5 or ECDSA)");
  if (X509_REQ_verify(csr, pub) != 1) {
    crypto::last_error();
    return fail("csr.bad_signature", "CSR signature does not verify");
  }

  std::time_t not_after = now + std::min(ttl, s.max_ttl).count();
  not_after = std::min(not_after, s.not_after);
  if (now >= s.not_after) return fail("ca.expired", "the CA certificate chain has expired");
  if (not_after <= now) return fail("ca.expired", "the CA certificate chain expires now");

  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) return fail("ca.sign", "out of memory");
  if (auto st = set_random_serial(cert.get()); !st) return fail(st.error());
  if (X509_set_issuer_name(cert.get(), s.issuer.get()) != 1 ||
      !ASN1_TIME_set(X509_getm_notBefore(cert.get()), now - kClockSkewBackdate.count()) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert.get()), not_after))
    return fail(openssl_error("ca.sign", "cannot assemble certificate"));
  if (auto st = copy_public_key_info(csr, cert.get()); !st) return fail(st.error());
  bool rsa = EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA;
  for (X509_EXTENSION* ext : {s.basic_constraints.get(), rsa ? s.key_usage_rsa.get() : s.key_usage_ec.get(),
                              s.ext_key_usage.get(), s.authority_key_id.get()}) {
    if (auto st = add_ext(cert.get(), ext); !st) return fail(st.error());
  }
  auto ski = key_identifier(cert.get(), s.sha1.get());
  if (!ski) return fail(ski.error());
  if (X509_add1_ext_i2d(cert.get(), NID_subject_key_identifier, ski->get(), 0, X509V3_ADD_APPEND) != 1)
    return fail(openssl_error("ca.sign", "cannot add subjectKeyIdentifier"));
  // Empty subject, so the SAN must be critical (RFC 5280 4.2.1.6), as Istio does.
  for (const auto& dns : dns_names) {
    if (dns.empty() || dns.size() > 253 || dns.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-.") != std::string::npos)
      return fail("ca.bad_dns_name", "DNS name \"" + dns + "\" is not a lower-case host name");
  }
  if (auto st = add_uri_san(cert.get(), id.str(), true, dns_names); !st) return fail(st.error());
  if (X509_sign(cert.get(), s.ca_key.get(), s.sign_md.get()) <= 0)
    return fail(openssl_error("ca.sign", "signing failed"));

  IssuedSvid out;
  out.cert_der = crypto::cert_der(cert.get());
  if (out.cert_der.empty()) return fail(openssl_error("ca.sign", "cannot encode the certificate"));
  out.cert_pem = crypto::cert_to_pem(cert.get());
  out.chain_pem = out.cert_pem + s.chain_pem;
  return out;
}

Result<IssuedSvid> Authority::sign_csr_pem(std::string_view csr_pem, std::string_view spiffe_id,
                                           std::chrono::seconds ttl, std::time_t now) const {
  auto id = SpiffeId::parse(spiffe_id);
  if (!id) return fail(id.error());
  auto csr = crypto::parse_csr_pem(csr_pem);
  if (!csr) return fail(csr.error());
  return sign_csr(csr->get(), *id, ttl, now);
}

Result<Authority> Authority::rotate(std::time_t now, std::chrono::seconds validity) const {
  if (!s_->self_signed)
    return fail("ca.rotate_plug_in",
                "this CA was plugged in by the operator; rotate it by running 'ca init --plug-in' with new cacerts");
  auto fresh = create_self_signed(s_->trust_domain, key_type_of(s_->ca_key.get()), now, validity);
  if (!fresh) return fresh;
  // Keep every old root that is still valid, so leaves issued under it keep verifying.
  for (const auto& old : s_->bundle.roots()) {
    if (crypto::asn1_to_unix(X509_get0_notAfter(old.get())) <= now) continue;
    if (auto st = fresh->s_->bundle.add_root(old.get()); !st) return fail(st.error());
  }
  fresh->s_->max_ttl = s_->max_ttl;
  return fresh;
}

}  // namespace mg::ca
