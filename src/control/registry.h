// control/registry.h — the service registry's state: which proxies are registered (from their
// Hello: address, inbound ports, labels) and, once a proxy's stream ends, how long it stays listed
// (unhealthy) before it leaves — the grace period (`meshguard-control --endpoint-grace`). Holds the
// endpoints last computed from them (control/endpoints.h, pure), which the distributor pushes and
// `meshguardctl get endpoints` shows. The registrations outlive a control-plane restart: the
// distributor writes what changed to the store (take_unsaved) and the server restores them at
// start (restore). Replicas on etcd also hold the other replicas' live registrations (set_peers,
// from control/etcd_live.h), merged with this one's (live_endpoints.h) at each recompute.
// Thread-safe; calls nothing outside itself (no I/O: the caller does the store's).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/thread_annotations.h"
#include "control/endpoints.h"
#include "control/live_endpoints.h"
#include "control/store.h"
#include "policy/resources.h"

namespace mg::control {

using EndpointsList = std::vector<policy::ServiceEndpoints>;

class Registry {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Registry(std::chrono::milliseconds grace) : grace_(grace) {}

  // The proxy `key` ("namespace/name") registered (again: it replaces what was there).
  void join(const std::string& key, Registration registration) MG_EXCLUDES(mutex_);
  // Its stream ended at `now`: listed unhealthy until now + grace, then it leaves (expire()).
  void leave(const std::string& key, Clock::time_point now) MG_EXCLUDES(mutex_);
  // Drops the registrations whose grace period ended by `now`; true when one did.
  bool expire(Clock::time_point now) MG_EXCLUDES(mutex_);
  // When the next grace period ends, if any is running.
  std::optional<Clock::time_point> next_expiry() const MG_EXCLUDES(mutex_);

  // The registrations the store kept, at a start at `now` (`now_unix` by the wall clock). One whose
  // stream was up when the control plane went away is listed healthy until now + grace: its proxy
  // kept serving meanwhile (fail static) and reconnects within the grace, which replaces it
  // (join); one that does not leaves as a disconnected one does. One already within its grace
  // period keeps what remained of it by the wall clock (and its health), or is dropped. An
  // unreadable record is dropped. Each is written back at the next take_unsaved — a restored one
  // as last seen now, so restarting again cannot stretch its grace.
  struct Restored {
    size_t restored = 0, expired = 0;
    std::vector<std::string> errors;  // one per unreadable record
  };
  Restored restore(const std::vector<StoredRegistration>& stored, Clock::time_point now, int64_t now_unix)
      MG_EXCLUDES(mutex_);
  // What changed since the last call (a join, a leave, an expiry, a restore), as the store keeps it.
  struct Unsaved {
    std::vector<StoredRegistration> save;
    std::vector<std::string> remove;
  };
  Unsaved take_unsaved(Clock::time_point now, int64_t now_unix) MG_EXCLUDES(mutex_);
  bool has_unsaved() const MG_EXCLUDES(mutex_);

  // The registrations of the proxies whose streams are (or, within the grace period, were) at this
  // replica, keyed "namespace/name" — what it publishes for the other replicas on etcd; restored
  // ones are not among them. `version` changes whenever they may have (join, leave, expiry).
  struct Live {
    uint64_t version = 0;
    std::map<std::string, Registration> registrations;
  };
  uint64_t live_version() const MG_EXCLUDES(mutex_);
  Live live() const MG_EXCLUDES(mutex_);
  // The other replicas' live registrations (replaces the last ones): merged with this replica's at
  // the next recompute (merge_registrations). Never set on SQLite: nothing to merge.
  void set_peers(std::vector<PeerRegistration> peers) MG_EXCLUDES(mutex_);
  // Another identity than `spiffe_id` that some other replica reports workload `key` connected
  // with (its stream up there), if one does: a workload's name belongs to the identity connected
  // with it on every replica, as on one (Distributor::hello).
  std::optional<std::string> connected_at_peer_as_other(const std::string& key,
                                                        const std::string& spiffe_id) const
      MG_EXCLUDES(mutex_);

  // One ServiceEndpoints document that a recompute created (its Service appeared), configured
  // (its content changed) or deleted (its Service went): what `get endpoints -w` prints.
  struct Change {
    std::string ns, name, change;
    int64_t generation = 0;  // generation() after it
  };
  // The endpoints of every Service of `set` (at store revision `revision`, computed at `unix_time`)
  // from the current registrations, kept for endpoints(). Appends to `changes` (if given) what
  // differs from the last computed; each change bumps generation().
  std::shared_ptr<const EndpointsList> recompute(const policy::ResourceSet& set, int64_t revision = 0,
                                                 int64_t unix_time = 0, std::vector<Change>* changes = nullptr)
      MG_EXCLUDES(mutex_);
  // The last computed (empty before the first recompute).
  std::shared_ptr<const EndpointsList> endpoints() const MG_EXCLUDES(mutex_);
  // How many document changes the recomputes found so far (0 at start).
  int64_t generation() const MG_EXCLUDES(mutex_);
  // When the endpoints of service "ns/name" last changed (what `get endpoints` shows as its age).
  struct Changed {
    int64_t revision = 0, unix_time = 0;
  };
  Changed changed(const std::string& service) const MG_EXCLUDES(mutex_);

 private:
  struct Entry {
    Registration registration;
    std::optional<Clock::time_point> leaves_at;  // set while in the grace period
    bool restored = false;                       // by restore(), its proxy not back here since
  };
  const std::chrono::milliseconds grace_;
  mutable Mutex mutex_;
  std::map<std::string, Entry> entries_ MG_GUARDED_BY(mutex_);
  std::set<std::string> unsaved_ MG_GUARDED_BY(mutex_);  // keys changed since take_unsaved
  uint64_t live_version_ MG_GUARDED_BY(mutex_) = 0;
  std::vector<PeerRegistration> peers_ MG_GUARDED_BY(mutex_);
  // "ns/name" → the SPIFFE IDs other replicas report it connected with
  std::map<std::string, std::set<std::string>> peer_connected_ MG_GUARDED_BY(mutex_);
  std::shared_ptr<const EndpointsList> endpoints_ MG_GUARDED_BY(mutex_) = std::make_shared<const EndpointsList>();
  std::map<std::string, std::pair<std::string, Changed>> changed_ MG_GUARDED_BY(mutex_);  // document, when
  int64_t generation_ MG_GUARDED_BY(mutex_) = 0;
};

}  // namespace mg::control
