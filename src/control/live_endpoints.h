// control/live_endpoints.h — the pure side of sharing live service endpoints between replicas on
// etcd (docs/ETCD.md, "Live endpoints"): the value a replica publishes for each proxy registered
// at it (<prefix>live/<replica>/<namespace>/<name>, etcd_keys.h), that value read back — checked
// as a stored registration is, since etcd is input like any other — and the merge of this
// replica's registrations with the other replicas' that the registry computes endpoints from.
// No I/O: control/etcd_live.h publishes and follows the keys.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "control/endpoints.h"
#include "control/etcd_keys.h"

namespace mg::control {

// One registration of this replica's registry. `restored`: read back from the store at start (a
// proxy that was connected to some replica before; not seen here since), not a stream of its own.
struct LocalRegistration {
  Registration registration;
  bool restored = false;
};

// One registration another replica published.
struct PeerRegistration {
  std::string replica;
  Registration registration;
  bool operator==(const PeerRegistration&) const = default;
};

// The value of a live key: the registration record (registration_record) plus the SPIFFE ID the
// publishing replica verified on the proxy's certificate ("spiffeId") and whether its stream is up
// ("healthy": false within the grace period after it ended).
std::string encode_live_entry(const Registration& registration);
// registry.bad_live_entry unless the value is such a record, names the key's namespace and name,
// and its SPIFFE ID is a workload ID (ns/<ns>/sa/<sa>) of the record's namespace and service
// account — an entry cannot claim an identity other than the one its certificate proved.
Result<Registration> decode_live_entry(const LiveKey& key, std::string_view value);

// The registrations endpoints are computed from, one per workload ("namespace/name"), in key
// order. When several know one workload, the first of:
//   1. this replica's, its stream up here (the proxy is connected here: fresher than any report);
//   2. another replica's whose stream is up there (the proxy moved there from here, or is there);
//   3. this replica's within its grace period (the proxy left here and is connected nowhere else);
//   4. another replica's within its grace period;
//   5. this replica's restored at start (the others report what they see now).
// Between other replicas' of one rank, the smallest replica id: every replica picks the same.
std::vector<Registration> merge_registrations(const std::vector<LocalRegistration>& own,
                                              const std::vector<PeerRegistration>& peers);

}  // namespace mg::control
