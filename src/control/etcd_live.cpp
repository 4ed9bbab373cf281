// control/etcd_live.cpp — see etcd_live.h.
#include "control/etcd_live.h"

#include "control/distributor.h"
#include "control/etcd_client.h"
#include "control/etcd_lease.h"
#include "control/registry.h"
#include "control/support.h"

namespace mg::control {

namespace pb = ::etcdserverpb;

namespace {
constexpr auto kTick = std::chrono::milliseconds(100);    // a registry change is published within it
constexpr auto kRetry = std::chrono::milliseconds(1000);  // after etcd refused a write
}  // namespace

std::unique_ptr<EtcdLive> EtcdLive::start(Deps deps, std::string replica) {
  std::unique_ptr<EtcdLive> live(new EtcdLive(deps, std::move(replica)));
  deps.etcd.on_live_change([self = live.get()](const std::vector<EtcdStore::LiveEvent>& events, bool reset) {
    self->follow(events, reset);
  });
  live->thread_ = std::thread([self = live.get()] { self->loop(); });
  return live;
}

void EtcdLive::stop() {
  {
    MutexLock lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  d_.etcd.on_live_change(nullptr);  // waits for a call in progress
  if (thread_.joinable()) thread_.join();
}

void EtcdLive::loop() {
  while (true) {
    const auto wait = publish() ? kTick : kRetry;
    MutexLock lock(mutex_);
    const auto until = std::chrono::steady_clock::now() + wait;
    while (!stopping_ && cv_.wait_until(lock, until)) {
    }
    if (stopping_) return;
  }
}

bool EtcdLive::publish() {
  const uint64_t generation = d_.lease.generation();
  if (generation != published_generation_) {
    // A new lease: the keys written under the last one are gone with it.
    published_.clear();
    published_generation_ = generation;
    published_once_ = false;
  }
  if (published_once_ && d_.registry.live_version() == published_version_) return true;
  const Registry::Live live = d_.registry.live();
  const std::string& prefix = d_.etcd.prefix();
  std::map<std::string, std::string> want;
  for (const auto& [key, r] : live.registrations)
    want[etcd_live_key(prefix, replica_, r.ns, r.name)] = encode_live_entry(r);
  std::vector<pb::RequestOp> ops;
  for (const auto& [key, value] : published_) {
    if (want.count(key)) continue;
    pb::RequestOp op;
    op.mutable_request_delete_range()->set_key(key);
    ops.push_back(std::move(op));
  }
  const int64_t lease = d_.lease.id();
  for (const auto& [key, value] : want) {
    if (auto it = published_.find(key); it != published_.end() && it->second == value) continue;
    pb::RequestOp op;
    auto* put = op.mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    put->set_lease(lease);
    ops.push_back(std::move(op));
  }
  for (size_t i = 0; i < ops.size(); i += kEtcdMaxOpsPerTxn) {
    pb::TxnRequest txn;
    const size_t end = std::min(ops.size(), i + kEtcdMaxOpsPerTxn);
    for (size_t j = i; j < end; ++j) *txn.add_success() = ops[j];
    if (auto done = d_.etcd.client().txn(txn); !done) {
      log_line("live endpoints: cannot publish " + std::to_string(ops.size() - i) +
               " changes (tried again in a moment): " + done.error().to_string());
      return false;
    }
    for (size_t j = i; j < end; ++j) {
      if (ops[j].has_request_put())
        published_[ops[j].request_put().key()] = ops[j].request_put().value();
      else
        published_.erase(ops[j].request_delete_range().key());
    }
  }
  published_version_ = live.version;
  published_once_ = true;
  return true;
}

void EtcdLive::follow(const std::vector<EtcdStore::LiveEvent>& events, bool reset) {
  std::vector<PeerRegistration> merged;
  {
    MutexLock lock(mutex_);
    bool changed = reset && !peers_.empty();
    if (reset) peers_.clear();
    for (const auto& ev : events) {
      auto key = parse_etcd_live_key(d_.etcd.prefix(), ev.key);
      if (!key) {
        if (!ev.deleted)
          log_line("live endpoints: ignoring " + ev.key + ": not live/<replica>/<namespace>/<name>");
        continue;
      }
      if (key->replica == replica_) continue;  // this replica's own: its registry has them first-hand
      auto it = peers_.find(ev.key);
      if (ev.deleted) {
        if (it != peers_.end()) {
          peers_.erase(it);
          changed = true;
        }
        continue;
      }
      auto registration = decode_live_entry(*key, ev.value);
      if (!registration) {
        log_line("live endpoints: ignoring " + ev.key + ": " + registration.error().to_string());
        if (it != peers_.end()) {
          peers_.erase(it);
          changed = true;
        }
        continue;
      }
      PeerRegistration peer{key->replica, std::move(*registration)};
      if (it != peers_.end() && it->second == peer) continue;  // the same again (a resumed watch)
      peers_.insert_or_assign(ev.key, std::move(peer));
      changed = true;
    }
    if (!changed) return;
    merged.reserve(peers_.size());
    for (const auto& [key, peer] : peers_) merged.push_back(peer);
  }
  d_.registry.set_peers(std::move(merged));
  d_.distributor.mark_dirty();
}

}  // namespace mg::control
