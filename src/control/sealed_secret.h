// control/sealed_secret.h — material the replicas share through etcd, sealed so that reading etcd
// is not enough to use it: AES-256-GCM under a key derived (HMAC-SHA256) from the plugged-in CA's
// private key, which every replica holds and whose holder could sign certificates anyway. The
// label (the etcd key's name) is the associated data: a sealed value moved to another name does
// not open. Pure: no I/O.
//
// Sealed form: "mg-sealed-v1:" + base64url(12-byte nonce | ciphertext | 16-byte tag).
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace mg::control {

// `ca_key_pem`: the CA's private key (any PEM form OpenSSL reads; re-encoded canonically first, so
// replicas reading the same key from differently formatted files derive the same sealing key).
Result<std::string> seal_secret(std::string_view ca_key_pem, std::string_view label, std::string_view plaintext);
// control.sealed: not a sealed value, or sealed under another key or label (the CA was replaced?).
Result<std::string> open_secret(std::string_view ca_key_pem, std::string_view label, std::string_view sealed);

}  // namespace mg::control
