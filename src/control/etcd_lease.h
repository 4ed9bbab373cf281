// control/etcd_lease.h — this replica's etcd lease (docs/ETCD.md): granted at start, kept alive
// every TTL/3 on a thread of its own, taken anew when it expired (the process was paused, or cut
// off from etcd, past the TTL: every key under it is gone) and revoked at stop. The keys saying
// this replica is alive live under it — the CA rotation's election and acknowledgement keys
// (etcd_ca_rotation.h) and the live registrations (etcd_live.h); their writers notice a new lease
// by its generation and write them again.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>

#include "common/result.h"
#include "common/thread_annotations.h"

namespace mg::control {

class EtcdClient;

class ReplicaLease {
 public:
  // Grants the lease (store.etcd when etcd does not answer) and starts keeping it alive.
  static Result<std::unique_ptr<ReplicaLease>> start(EtcdClient& client, std::chrono::seconds ttl);
  ~ReplicaLease() { stop(); }

  int64_t id() const { return id_.load(); }
  // Bumped each time the lease is taken anew (the keys under the last one are gone).
  uint64_t generation() const { return generation_.load(); }
  std::chrono::seconds ttl() const { return ttl_; }
  // Stops keeping it alive and revokes it: every key under it vanishes at once.
  void stop() MG_EXCLUDES(mutex_);

 private:
  ReplicaLease(EtcdClient& client, std::chrono::seconds ttl) : client_(client), ttl_(ttl) {}
  void loop() MG_EXCLUDES(mutex_);
  void keep_alive();

  EtcdClient& client_;
  const std::chrono::seconds ttl_;
  std::atomic<int64_t> id_{0};
  std::atomic<uint64_t> generation_{0};
  Mutex mutex_;
  CondVar cv_;
  bool stopping_ MG_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace mg::control
