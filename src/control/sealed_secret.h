// control/sealed_secret.h — material the replicas share through etcd, sealed so that reading etcd
// is not enough to use it: AES-256-GCM under a key derived (HMAC-SHA256) from a SealKey, which is
// either the plugged-in CA's private key (every replica holds it, and its holder could sign
// certificates anyway) or the bytes of the operator's --seal-key file (the built-in CA kept in
// etcd: docs/ETCD.md). The label (the etcd key's name) is the associated data: a sealed value
// moved to another name does not open. Pure: no I/O.
//
// Sealed form: "mg-sealed-v1:" + base64url(12-byte nonce | ciphertext | 16-byte tag).
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace mg::control {

// What values are sealed under. Its material never appears in an error or a log line.
class SealKey {
 public:
  // The CA's private key (any PEM form OpenSSL reads; re-encoded canonically first, so replicas
  // reading the same key from differently formatted files derive the same sealing key).
  static Result<SealKey> from_ca_key(std::string_view ca_key_pem);
  // The content of a --seal-key file: at least 32 bytes (e.g. `openssl rand -base64 32`, or 32
  // raw random bytes). A text file's trailing line break is not part of the key, so a file saved
  // by an editor and one written by `printf` give the same key. control.seal_key when too short.
  static Result<SealKey> from_file_content(std::string_view content);

  // "the plugged-in CA's key" / "the --seal-key key": for messages.
  const std::string& description() const { return description_; }
  const std::string& material() const { return material_; }

 private:
  SealKey(std::string material, std::string description)
      : material_(std::move(material)), description_(std::move(description)) {}
  std::string material_;
  std::string description_;
};

inline constexpr size_t kMinSealKeyBytes = 32;

// True when `value` has the sealed form's prefix (it may still be damaged).
bool is_sealed(std::string_view value);
Result<std::string> seal_secret(const SealKey& key, std::string_view label, std::string_view plaintext);
// control.sealed: not a sealed value, or sealed under another key or label.
Result<std::string> open_secret(const SealKey& key, std::string_view label, std::string_view sealed);

// How a secret read back from etcd was stored, for the sentences below.
struct StoredSecret {
  std::string_view value;              // as stored: sealed form or clear PEM
  std::string_view label;              // what it was sealed under (seal_secret's label)
  std::string_view etcd_key;           // where it is, named in every refusal
  std::string_view what;               // "the CA's key", "the token key"
  std::string_view sealed_by;          // the flags that seal: "--seal-key FILE" (or "… or --plug-in-ca")
  std::string_view clear_remedy = {};  // appended when a clear value meets a key
  std::string_view wrong_key_remedy = {};  // appended when the key does not open the value
};
// The one decision for a stored secret: sealed needs this replica's key to open it, clear must not
// meet a key (a replica started with --seal-key on a clear secret would otherwise silently run
// unsealed). control.seal_key names the flag to change; control.sealed when the key is not the one
// the value was sealed under.
Result<std::string> open_stored_secret(const StoredSecret& stored, const SealKey* seal);

}  // namespace mg::control
