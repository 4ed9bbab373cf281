// rego/builtins_crypto.cpp — crypto.md5 / sha1 / sha256 / sha384 / sha512 and crypto.hmac.* (hex
// digests of the string's bytes, OpenSSL via src/crypto), crypto.hmac.equal (constant time).
#include <openssl/crypto.h>

#include "crypto/openssl.h"
#include "rego/builtins_util.h"
#include "rego/go_encoding.h"

namespace mg::rego {
namespace {

using bi::Args;
using bi::want;

const EVP_MD* md_named(std::string_view n) {
  if (n == "md5") return EVP_md5();
  if (n == "sha1") return EVP_sha1();
  if (n == "sha256") return EVP_sha256();
  if (n == "sha384") return EVP_sha384();
  return EVP_sha512();
}

template <const char* kName>
BuiltinResult hash(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  return Value::string(go::hex_encode(crypto::digest(md_named(kName), a[0].as_string())));
}

template <const char* kName>
BuiltinResult hmac(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  if (auto e = want(a, 2, Kind::String)) return *e;
  return Value::string(go::hex_encode(crypto::hmac(md_named(kName), a[1].as_string(), a[0].as_string())));
}

BuiltinResult hmac_equal(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  if (auto e = want(a, 2, Kind::String)) return *e;
  const std::string& x = a[0].as_string();
  const std::string& y = a[1].as_string();
  return Value::boolean(x.size() == y.size() && CRYPTO_memcmp(x.data(), y.data(), x.size()) == 0);
}

constexpr char kMd5[] = "md5";
constexpr char kSha1[] = "sha1";
constexpr char kSha256[] = "sha256";
constexpr char kSha384[] = "sha384";
constexpr char kSha512[] = "sha512";

}  // namespace

void register_crypto(Registry& r) {
  const uint8_t S = kStringType;
  r.add({"crypto.md5", 1, hash<kMd5>, false, false, false, {S}});
  r.add({"crypto.sha1", 1, hash<kSha1>, false, false, false, {S}});
  r.add({"crypto.sha256", 1, hash<kSha256>, false, false, false, {S}});
  r.add({"crypto.sha384", 1, hash<kSha384>, false, false, false, {S}});
  r.add({"crypto.sha512", 1, hash<kSha512>, false, false, false, {S}});
  r.add({"crypto.hmac.md5", 2, hmac<kMd5>, false, false, false, {S, S}});
  r.add({"crypto.hmac.sha1", 2, hmac<kSha1>, false, false, false, {S, S}});
  r.add({"crypto.hmac.sha256", 2, hmac<kSha256>, false, false, false, {S, S}});
  r.add({"crypto.hmac.sha512", 2, hmac<kSha512>, false, false, false, {S, S}});
  r.add({"crypto.hmac.equal", 2, hmac_equal, false, false, false, {S, S}});
}

}  // namespace mg::rego
