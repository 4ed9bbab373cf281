// control/etcd_keys.h — the pure pieces of the etcd store (etcd_store.cpp): the `--store
// etcd://HOST:PORT[,HOST:PORT...]` URL, the key layout under the store's prefix, and the values
// kept there. No I/O.
//
// Key layout (prefix "/meshguard/" unless --etcd-prefix says otherwise):
//   <prefix>resources/<kind>/<namespace>/<name>   one applied document (Mesh: empty namespace)
//   <prefix>registrations/<namespace>/<name>      one proxy's registration (StoredRegistration)
//   <prefix>shared/<name>                         material every replica shares (the token-signing
//                                                 key, sealed: sealed_secret.h; the built-in CA
//                                                 and its rotation: shared_ca.h)
//   <prefix>election/ca                           the replica leading a CA rotation, under its lease
//   <prefix>ca-acks/<replica>                     the bundle a replica's proxies all acknowledged,
//                                                 under its lease (etcd_ca_rotation.h)
//   <prefix>election/meshes/<mesh>/ca,            the same for another mesh's built-in CA, kept at
//   <prefix>mesh-ca-acks/<mesh>/<replica>         <prefix>shared/meshes/<mesh>/ca (mesh_cas.h)
//   <prefix>retired/meshes/<mesh>/ca-<revision>   a deleted mesh's built-in CA, kept aside
//   <prefix>live/<replica>/<namespace>/<name>     one proxy registered at that replica (its stream
//                                                 there, or its grace period after), under the
//                                                 replica's lease (etcd_live.h, live_endpoints.h)
// The etcd revision of a resource key's last change is the resource's revision; the newest one the
// replica has seen is the store's revision (the config version proxies are told).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "control/store.h"

namespace mg::control {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // HOST:PORT each
  std::string prefix = "/meshguard/";  // ends with '/'
  // TLS to etcd: all empty → plaintext. ca_file alone → server-authenticated TLS; with cert_file
  // and key_file → client certificates too (etcd --client-cert-auth).
  std::string ca_file, cert_file, key_file;
};

// Operations meshguard puts in one etcd transaction at most: under etcd's default --max-txn-ops (128).
inline constexpr size_t kEtcdMaxOpsPerTxn = 100;

bool is_etcd_url(std::string_view store);
// "etcd://127.0.0.1:2379,10.0.0.2:2379" → the endpoints. Each must be HOST:PORT (IPv6 as [addr]:port)
// with a port 1..65535; no path, query or credentials (TLS files are flags of their own).
Result<std::vector<std::string>> parse_etcd_url(std::string_view url);
// A prefix must start and end with '/' and hold no empty segment ("//").
Status check_etcd_prefix(std::string_view prefix);
// Refused: any file of a TLS pair without the other, a client certificate without a CA.
Status check_etcd_tls(const EtcdOptions& options);

// The smallest key greater than every key starting with `prefix` (etcd's range_end for a prefix).
std::string etcd_prefix_end(std::string_view prefix);

std::string etcd_resources_prefix(std::string_view prefix);
std::string etcd_resource_key(std::string_view prefix, const ResourceKey& key);
// nullopt: not a resource key under `prefix` (or a malformed one: not exactly kind/ns/name).
std::optional<ResourceKey> parse_etcd_resource_key(std::string_view prefix, std::string_view key);
// store.bad_key when a part holds '/' or is empty where it may not be (kind and name never are).
Status check_etcd_key_parts(const ResourceKey& key);

std::string etcd_registrations_prefix(std::string_view prefix);

// The live registrations every replica publishes (etcd_live.h).
std::string etcd_live_prefix(std::string_view prefix);
std::string etcd_live_key(std::string_view prefix, std::string_view replica, std::string_view ns,
                          std::string_view name);
struct LiveKey {
  std::string replica, ns, name;
  bool operator==(const LiveKey&) const = default;
};
// nullopt: not a live key under `prefix`, or not exactly replica/namespace/name with no part empty.
std::optional<LiveKey> parse_etcd_live_key(std::string_view prefix, std::string_view key);
std::string etcd_shared_key(std::string_view prefix, std::string_view name);

// A resource's value: {"yaml": the document as applied, "updatedUnix": when}.
std::string encode_etcd_resource(std::string_view yaml, int64_t updated_unix);
// store.bad_stored when the value is not what encode_etcd_resource writes.
Result<StoredResource> decode_etcd_resource(const ResourceKey& key, std::string_view value, int64_t mod_revision);

// A registration's value: StoredRegistration as JSON (its key is the etcd key's tail).
std::string encode_etcd_registration(const StoredRegistration& r);
Result<StoredRegistration> decode_etcd_registration(std::string_view key, std::string_view value);

}  // namespace mg::control
