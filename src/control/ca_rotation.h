// control/ca_rotation.h — the CA that signs, and its rotation (AdminService.RotateCa). A rotation
// runs in two phases, as Istio's root-CA rotation does: first the new root joins the trust bundle
// every proxy is sent while the old CA still signs; once every connected proxy has acknowledged
// that bundle, the new CA signs (the built-in CA is then persisted as data_dir/ca, the old one kept
// as ca.previous-<unix time>). A proxy that does not acknowledge in time calls the rotation off
// and the old bundle is pushed back. Owns the current and the pending Authority and the thread
// that waits out phase 2. The default mesh's CA has one; so has each other mesh's built-in CA on
// the data dir (mesh_cas.h), whose rotation waits for that mesh's proxies only.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "ca/authority.h"
#include "common/thread_annotations.h"
#include "identity/trust_bundle.h"
#include "meshguard/v1/meshguard.grpc.pb.h"
#include "telemetry/metrics.h"

namespace mg::control {

class Distributor;

class CaRotation {
 public:
  // `persist`: write a finished rotation to data_dir (the built-in CA; a plugged-in one is
  // rotated where it is issued). `mesh`: the mesh whose CA this is, "" for the default mesh (whose
  // bundle every proxy trusts the control plane with); another mesh's lives in
  // data_dir/meshes/<mesh>, that is the `data_dir` to give it.
  CaRotation(std::shared_ptr<const ca::Authority> authority, std::string data_dir, bool persist,
             telemetry::Registry& metrics, std::string mesh = {});
  ~CaRotation() { join(); }

  // The CA that signs now.
  std::shared_ptr<const ca::Authority> signer() const MG_EXCLUDES(mutex_);
  // The bundle proxies are sent: during a rotation the pending CA's (new and old roots).
  identity::TrustBundle distributed_bundle() const MG_EXCLUDES(mutex_);

  // Phase 1 now (a new CA, its bundle pushed through `distributor`); phase 2 on a thread of its
  // own, which finishes `reactor` with `resp` filled in, within `wait_seconds` (0: 30, at most 600).
  void rotate(Distributor& distributor, grpc::ServerUnaryReactor* reactor, int64_t wait_seconds,
              ::meshguard::v1::RotateCaResponse* resp) MG_EXCLUDES(mutex_);
  // Waits for a rotation's phase 2 (returns soon once the distributor stopped).
  void join();
  // Replicas on etcd: rotate() is handed to `rotator` (EtcdCaRotation, led through etcd), and the
  // CA that signs and the pending one are what etcd says (adopt); false when nothing changed.
  using Rotator = std::function<void(grpc::ServerUnaryReactor*, int64_t wait_seconds,
                                     ::meshguard::v1::RotateCaResponse*)>;
  void delegate_rotation(Rotator rotator) MG_EXCLUDES(mutex_);
  bool adopt(std::shared_ptr<const ca::Authority> current, std::shared_ptr<const ca::Authority> pending)
      MG_EXCLUDES(mutex_);

  // The two renames that replace data_dir/ca; a crash between them leaves ca.new, which
  // complete_interrupted() moves into place at the next start.
  static Status complete_interrupted(const std::string& data_dir);

 private:
  void finish(Distributor& distributor, grpc::ServerUnaryReactor* reactor,
              ::meshguard::v1::RotateCaResponse* resp, std::chrono::steady_clock::time_point deadline)
      MG_EXCLUDES(mutex_);
  Status persist(const ca::Authority& next) const;

  const std::string data_dir_;
  const bool persist_;
  const std::string mesh_;
  telemetry::Registry& metrics_;
  mutable Mutex mutex_;
  std::shared_ptr<const ca::Authority> authority_ MG_GUARDED_BY(mutex_);
  std::shared_ptr<const ca::Authority> pending_ MG_GUARDED_BY(mutex_);
  Rotator rotator_ MG_GUARDED_BY(mutex_);
  std::thread thread_;  // phase 2; started and joined by rotate() (one rotation at a time) and join()
};

}  // namespace mg::control
