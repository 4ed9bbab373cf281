// control/etcd_ca_rotation.h — `ca rotate` for replicas on etcd sharing a built-in CA
// (docs/ETCD.md): the default mesh's, and each other mesh's (`ca rotate --mesh`, docs/MESHES.md),
// one EtcdCaRotation per mesh, each on keys of its own. The two phases of ca_rotation.h — the new
// root joins every proxy's bundle; once every proxy holds it, the new CA signs; a deadline calls
// it off — with the state in <prefix>shared/ca (shared_ca.h: current CA, pending CA, leader,
// deadline; another mesh's: <prefix>shared/meshes/<mesh>/ca), which every replica watches and
// adopts (signer and bundle), pushing the bundle to its own proxies (of that mesh).
//
// One replica leads a rotation: the one whose transaction created <prefix>election/ca (another
// mesh's: <prefix>election/meshes/<mesh>/ca; value: its replica id) under its etcd lease, in the
// same transaction that stored the pending CA. Every later write of the rotation compares that
// key's create revision (the fence), so a leader whose lease expired — paused, or cut off from
// etcd — cannot write: its write fails and it reports losing the election. Each replica keeps
// <prefix>ca-acks/<replica id> (another mesh's: <prefix>mesh-ca-acks/<mesh>/<replica id>) under its
// lease at the hash of the newest bundle all of its connected proxies (of that mesh) acknowledged;
// the leader lets the new CA sign once every live replica's key (a dead replica's vanishes with its
// lease) shows the new bundle, else rolls back at the deadline. A pending rotation whose election
// key is gone (its leader died) is rolled back by the first replica that notices, in a transaction
// conditioned on nobody leading.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/result.h"
#include "common/thread_annotations.h"
#include "control/etcd_store.h"
#include "control/sealed_secret.h"
#include "meshguard/v1/meshguard.grpc.pb.h"
#include "telemetry/metrics.h"

namespace mg::control {

class CaRotation;
class Distributor;
class ReplicaLease;

// The etcd transactions of a rotation (on their own: tests drive them against a real etcd).
class CaElection {
 public:
  // `mesh`: whose CA ("" or "default": the default mesh's, at <prefix>shared/ca).
  CaElection(EtcdClient& client, const std::string& prefix, std::string replica, std::string_view mesh = {});

  struct State {
    std::optional<std::string> value;  // <prefix>shared/ca (or the mesh's)
    int64_t mod_revision = 0;          // its mod revision (0: absent)
    std::string leader;                // <prefix>election/ca's value; empty: nobody leads
  };
  Result<State> read() const;
  // Leads: creates the election key under `lease` and stores `value` (the pending CA) in one
  // transaction, only if nobody leads and shared/ca is still at `mod_revision`. Returns the fence
  // (the election key's create revision); control.ca_rotation_busy, naming the leader, otherwise.
  Result<int64_t> begin(int64_t lease, int64_t mod_revision, const std::string& value) const;
  // Stores `value` (the rotation's end: new CA or rolled back) and resigns, only while the election
  // key is the one created at `fence`: control.ca_rotation_deposed otherwise.
  Status finish(int64_t fence, const std::string& value) const;
  // A pending rotation whose leader is gone: stores `value` (rolled back) only if still nobody
  // leads and shared/ca is at `mod_revision`. False: someone else wrote first.
  Result<bool> recover(int64_t mod_revision, const std::string& value) const;
  // This replica's acknowledgement key, and every live replica's (replica id → bundle hash).
  Status put_ack(int64_t lease, const std::string& bundle_hash) const;
  Result<std::map<std::string, std::string>> acks() const;

  const std::string& replica() const { return replica_; }
  const std::string& election_key() const { return election_key_; }
  const std::string& shared_key() const { return shared_key_; }  // <prefix>shared/ca or the mesh's

 private:
  EtcdClient& client_;
  const std::string replica_;
  const std::string shared_key_, election_key_, acks_prefix_;
};

class EtcdCaRotation {
 public:
  struct Deps {
    EtcdStore& etcd;
    CaRotation& ca;
    Distributor& distributor;
    const SealKey* seal;  // the --seal-key key, or null (the CA kept in clear)
    telemetry::Registry& metrics;
    ReplicaLease& lease;    // this replica's (etcd_lease.h): the election and acknowledgement keys' lease
    std::string mesh = {};  // whose CA: "" the default mesh's; another mesh's (its CaRotation is `ca`)
  };
  // Writes this replica's acknowledgement key and follows shared/ca from now on; `replica`: this
  // replica's id (its etcd keys' name, shown to operators).
  static Result<std::unique_ptr<EtcdCaRotation>> start(Deps deps, std::string replica);
  ~EtcdCaRotation() { stop(); }

  // AdminService.RotateCa on this replica: leads a rotation, or refuses (FAILED_PRECONDITION)
  // while another is in progress, naming its leader. Finishes `reactor` from a thread of its own.
  void rotate(grpc::ServerUnaryReactor* reactor, int64_t wait_seconds,
              ::meshguard::v1::RotateCaResponse* resp) MG_EXCLUDES(mutex_);
  // Calls a rotation this replica leads off (fenced). The lease is its owner's to revoke.
  void stop() MG_EXCLUDES(mutex_);

 private:
  EtcdCaRotation(Deps deps, std::string replica);
  void loop() MG_EXCLUDES(mutex_);
  void follow_lease();
  void follow() MG_EXCLUDES(mutex_);
  void acknowledge();
  bool adopt(const std::string& value);
  void lead(grpc::ServerUnaryReactor* reactor, int64_t wait_seconds, ::meshguard::v1::RotateCaResponse* resp);
  bool sleep_unless_stopping(std::chrono::milliseconds d) MG_EXCLUDES(mutex_);
  // meshguard_ca_rotations_total{result} for the default mesh, as before several meshes; another
  // mesh's meshguard_mesh_ca_rotations_total{mesh,result}, as on the data dir.
  telemetry::Counter& rotations(const char* result);

  Deps d_;
  CaElection election_;
  const std::string shared_name_;  // the CA's name under <prefix>shared/, also its sealing label
  const std::string ca_key_;       // <prefix>shared/<shared_name_>, for messages
  const std::string whose_;        // "" or "mesh NAME: ", before log lines
  std::atomic<bool> leading_{false};
  uint64_t lease_generation_ = 0;  // the lease's generation the ack key was written under (loop thread)
  std::chrono::steady_clock::time_point next_read_{};
  int64_t adopted_revision_ = 0;  // shared/ca's mod revision last adopted (loop thread)
  std::string acked_;             // this replica's acknowledgement key's value (loop thread)

  Mutex mutex_;
  CondVar cv_;
  bool stopping_ MG_GUARDED_BY(mutex_) = false;
  bool shared_changed_ MG_GUARDED_BY(mutex_) = true;
  bool rotating_ MG_GUARDED_BY(mutex_) = false;
  std::thread loop_thread_, rotation_thread_;
};

}  // namespace mg::control
