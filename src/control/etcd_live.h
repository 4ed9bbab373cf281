// control/etcd_live.h — live service endpoints shared by the replicas on etcd (docs/ETCD.md,
// "Live endpoints"). Each replica publishes its registry's live registrations — one key per proxy
// whose stream is (or, within the grace period, was) at it: <prefix>live/<replica>/<ns>/<name>,
// value live_endpoints.h's — under its lease (etcd_lease.h), so a dead replica's vanish when the
// lease expires, and follows every other replica's through the etcd store's listing and watch
// (etcd_store.h on_live_change). The registry merges them with its own (merge_registrations), and
// a change there is pushed to the proxies as a local one is. An entry that does not read back (a
// foreign or malformed key or value) is left out with a log line.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "common/thread_annotations.h"
#include "control/etcd_store.h"
#include "control/live_endpoints.h"

namespace mg::control {

class Distributor;
class Registry;
class ReplicaLease;

class EtcdLive {
 public:
  struct Deps {
    EtcdStore& etcd;
    Registry& registry;
    Distributor& distributor;
    ReplicaLease& lease;
  };
  // Follows the other replicas' entries from now on and publishes this one's (`replica`: its id,
  // its keys' name) within a tick of each change.
  static std::unique_ptr<EtcdLive> start(Deps deps, std::string replica);
  ~EtcdLive() { stop(); }
  // Stops publishing and following; the keys stay until the lease goes (its owner revokes it).
  void stop() MG_EXCLUDES(mutex_);

 private:
  EtcdLive(Deps deps, std::string replica) : d_(deps), replica_(std::move(replica)) {}
  void loop() MG_EXCLUDES(mutex_);
  // Writes what changed in the registry since the last call (all of it under a new lease); false
  // when etcd refused a write (tried again later).
  bool publish();
  void follow(const std::vector<EtcdStore::LiveEvent>& events, bool reset) MG_EXCLUDES(mutex_);

  Deps d_;
  const std::string replica_;
  // The publishing side (loop thread only): etcd key → value written, and what it reflects.
  std::map<std::string, std::string> published_;
  uint64_t published_version_ = 0;
  uint64_t published_generation_ = 0;
  bool published_once_ = false;

  Mutex mutex_;
  CondVar cv_;
  bool stopping_ MG_GUARDED_BY(mutex_) = false;
  // The other replicas' entries that read back, by etcd key.
  std::map<std::string, PeerRegistration> peers_ MG_GUARDED_BY(mutex_);
  std::thread thread_;
};

}  // namespace mg::control
