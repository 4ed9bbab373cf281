// control/shared_ca.h — the built-in CA of replicas on etcd, kept at <prefix>shared/ca
// (docs/ETCD.md): every replica signs with it. This file is its value's encoding — the CA's PEM
// files, the private key sealed under the operator's --seal-key key (sealed_secret.h) or, without
// one, in clear — and the state of a rotation (the pending CA of phase 1, the replica leading it
// and its deadline). Pure: no I/O.
//
// Value (JSON): {"trustDomain": TD,
//                "current": {"rootCert", "caCert", "certChain", "caKey"},
//                "pending": {...same...},                         (a rotation in phase 1 only)
//                "rotation": {"leader": REPLICA, "deadlineUnix": N}} (idem)
// "caKey" is "mg-sealed-v1:..." (sealed, label "ca") or the key's PEM; both CAs alike.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ca/authority.h"
#include "common/result.h"
#include "control/sealed_secret.h"

namespace mg::control {

inline constexpr const char* kSharedCaName = "ca";  // <prefix>shared/ca

// The name under <prefix>shared/ of mesh `mesh`'s built-in CA: "ca" for the default mesh ("" or
// "default"), "meshes/<mesh>/ca" for another (mesh_cas.h). It is also the label its keys are
// sealed bound to.
std::string shared_ca_name(std::string_view mesh);

struct SharedCa {
  std::string trust_domain;
  ca::CaPem current;                   // the CA that signs
  std::optional<ca::CaPem> pending;    // phase 1 of a rotation: the next CA (its bundle: new + old roots)
  std::string rotation_leader;         // the replica leading that rotation
  int64_t rotation_deadline_unix = 0;  // past it, the rotation is called off
};

// `seal`: null stores the private keys in clear (etcd's access control is then their only guard).
// `label`: what the sealed keys are bound to (sealed_secret.h): "ca" for <prefix>shared/ca, the
// key's name under shared/ for another CA kept the same way (a mesh's: mesh_cas.h), so a sealed
// key copied to another etcd key does not open there.
Result<std::string> encode_shared_ca(const SharedCa& shared, const SealKey* seal,
                                     std::string_view label = "ca");

// `seal` must match how the value was stored (fail closed, control.seal_key): a sealed CA needs the
// key, and a CA stored in clear is refused to a replica given one (so replicas started with and
// without --seal-key never mix). control.sealed: the key does not open it; control.shared_ca: not
// a value encode_shared_ca writes. `etcd_key` names the key in messages.
Result<SharedCa> decode_shared_ca(std::string_view value, const SealKey* seal, std::string_view etcd_key,
                                  std::string_view label = "ca");

}  // namespace mg::control
