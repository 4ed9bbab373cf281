// control/etcd_lease.cpp — see etcd_lease.h.
#include "control/etcd_lease.h"

#include "control/etcd_client.h"
#include "control/support.h"

namespace mg::control {

Result<std::unique_ptr<ReplicaLease>> ReplicaLease::start(EtcdClient& client, std::chrono::seconds ttl) {
  std::unique_ptr<ReplicaLease> lease(new ReplicaLease(client, ttl));
  auto id = client.lease_grant(ttl.count());
  if (!id) return fail(id.error());
  lease->id_ = *id;
  lease->thread_ = std::thread([self = lease.get()] { self->loop(); });
  return lease;
}

void ReplicaLease::stop() {
  {
    MutexLock lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  (void)client_.lease_revoke(id_.load());  // this replica's keys go at once
}

void ReplicaLease::loop() {
  while (true) {
    {
      MutexLock lock(mutex_);
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ttl_) / 3;
      while (!stopping_ && cv_.wait_until(lock, until)) {
      }
      if (stopping_) return;
    }
    keep_alive();
  }
}

void ReplicaLease::keep_alive() {
  auto ttl = client_.lease_keep_alive(id_.load());
  if (!ttl) {
    log_line("cannot renew this replica's etcd lease: " + ttl.error().to_string());
    return;
  }
  if (*ttl > 0) return;
  log_line("this replica's etcd lease expired; taking a new one");
  auto fresh = client_.lease_grant(ttl_.count());
  if (!fresh) {
    log_line("etcd lease: " + fresh.error().to_string());
    return;
  }
  id_ = *fresh;
  ++generation_;
}

}  // namespace mg::control
