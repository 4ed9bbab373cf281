// control/etcd_ca.h — the CA material replicas on etcd share (docs/ETCD.md): the --seal-key file,
// the built-in CA at <prefix>shared/ca (shared_ca.h; created by the first replica to start, in one
// create-if-absent transaction, so replicas starting together agree on one CA) and the
// bootstrap-token signing key at <prefix>shared/token-key. Nothing of it is written to the data dir.
#pragma once

#include <optional>
#include <string>

#include "control/etcd_store.h"
#include "control/sealed_secret.h"
#include "control/shared_ca.h"

namespace mg::control {

// The --seal-key file: refused (control.seal_key, naming the flag) when group or others can read
// it, or when it is shorter than kMinSealKeyBytes.
Result<SealKey> read_seal_key_file(const std::string& path);

// The built-in CA kept in etcd, created (a new self-signed root for `trust_domain`) when absent.
// `seal`: the --seal-key key, or null (the CA's key is then stored in clear). `created` is set when
// this call stored it.
Result<SharedCa> open_shared_ca(EtcdStore& etcd, const std::string& prefix, const std::string& trust_domain,
                                const SealKey* seal, bool* created);
// A replica plugging in its own CA refuses to join replicas that keep a built-in one in etcd
// (they would sign with two CAs).
Status check_no_shared_ca(EtcdStore& etcd, const std::string& prefix);

// The bootstrap-token signing key (PEM), created when absent. `seal`: the plugged-in CA's key, the
// --seal-key key, or null (stored in clear); as for the CA, a value stored sealed needs the key and
// one stored in clear is refused to a replica given one.
Result<std::string> open_shared_token_key(EtcdStore& etcd, const std::string& prefix, const SealKey* seal);

}  // namespace mg::control
