// control/watch_service.cpp — see watch_service.h.
#include "control/watch_service.h"

#include <atomic>
#include <optional>

#include "control/console_service.h"
#include "control/distributor.h"
#include "control/model.h"
#include "control/support.h"
#include "meshguard/v1/meshguard.grpc.pb.h"

namespace mg::control {
namespace pb = ::meshguard::v1;

namespace {

class WatchReactor final : public grpc::ServerBidiReactor<pb::WatchRequest, pb::ConfigSnapshot>,
                           public ProxyStream {
 public:
  WatchReactor(Distributor& distributor, const ConfigModel& model, ConsoleService& console,
               grpc::CallbackServerContext* ctx)
      : distributor_(distributor), console_(console), ctx_(ctx) {
    auto id = require_mesh_peer(ctx_, *model.current());
    if (!id) {
      Finish(status_of(grpc::StatusCode::UNAUTHENTICATED, id.error()));
      return;
    }
    id_ = std::move(*id);
    StartRead(&request_);
  }

  // Thread-safe; never called with the distributor's lock held. Coalesces: only the newest
  // snapshot waits behind a write in flight; an older one than already taken is dropped.
  void push(SharedSnapshot snapshot, uint64_t order) override {
    {
      MutexLock lock(mutex_);
      if (finishing_ || order <= newest_order_) return;
      newest_order_ = order;
      if (writing_) {
        pending_ = std::move(snapshot);
        return;
      }
      writing_ = true;
      current_ = std::move(snapshot);
    }
    StartWrite(current_.get());
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      finish(grpc::Status::OK);
      return;
    }
    if (request_.has_hello()) {
      if (registered_) {
        finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Hello sent twice"));
        return;
      }
      auto st = distributor_.hello(this, *id_, ctx_->peer(), request_.hello(), &key_);
      if (!st.ok()) {
        finish(st);
        return;
      }
      registered_ = true;
    } else if (request_.has_ack()) {
      if (!registered_) {
        finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Ack before Hello"));
        return;
      }
      distributor_.ack(key_, request_.ack());
    } else if (request_.has_telemetry()) {
      if (!registered_) {
        finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Telemetry before Hello"));
        return;
      }
      // Counted for the workload the stream's Hello registered (its SVID vouched for it).
      console_.report(key_, request_.telemetry());
    } else {
      finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty WatchRequest"));
      return;
    }
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    MutexLock lock(mutex_);
    if (ok && pending_ && !finishing_) {
      current_ = std::move(pending_);
      lock.unlock();
      StartWrite(current_.get());
      return;
    }
    writing_ = false;
    if (finishing_ && !finished_) {
      finished_ = true;
      lock.unlock();
      Finish(finish_status_);
    }
  }

  void OnDone() override {
    if (registered_) distributor_.stream_done(this, key_);
    unref();
  }

  // Whoever calls push/finish from outside a reaction holds a reference, so the reactor outlives
  // the call.
  void ref() override { refs_.fetch_add(1, std::memory_order_relaxed); }
  void unref() override {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Ends the stream (also from shutdown); a write in flight completes first.
  void finish(grpc::Status status) override {
    MutexLock lock(mutex_);
    if (finishing_) return;
    finishing_ = true;
    finish_status_ = std::move(status);
    if (writing_) return;
    finished_ = true;
    lock.unlock();
    Finish(finish_status_);
  }

 private:
  Distributor& distributor_;
  ConsoleService& console_;
  grpc::CallbackServerContext* ctx_;
  std::optional<identity::SpiffeId> id_;
  pb::WatchRequest request_;
  bool registered_ = false;  // touched by reactions only, which gRPC runs one at a time
  std::string key_;

  Mutex mutex_;
  // current_ is written under mutex_ and read by gRPC while the write is in flight; the snapshot
  // is shared with the other streams it went to (immutable).
  SharedSnapshot current_;
  SharedSnapshot pending_ MG_GUARDED_BY(mutex_);
  uint64_t newest_order_ MG_GUARDED_BY(mutex_) = 0;  // of the snapshot written or waiting
  bool writing_ MG_GUARDED_BY(mutex_) = false;
  bool finishing_ MG_GUARDED_BY(mutex_) = false;
  bool finished_ MG_GUARDED_BY(mutex_) = false;
  grpc::Status finish_status_;  // written once under mutex_ before Finish(), never again
  std::atomic<int> refs_{1};    // gRPC's (dropped in OnDone) + one per outside caller
};

class ConfigServiceImpl final : public pb::ConfigService::CallbackService {
 public:
  ConfigServiceImpl(Distributor& distributor, const ConfigModel& model, ConsoleService& console)
      : distributor_(distributor), model_(model), console_(console) {}
  grpc::ServerBidiReactor<pb::WatchRequest, pb::ConfigSnapshot>* Watch(
      grpc::CallbackServerContext* ctx) override {
    return new WatchReactor(distributor_, model_, console_, ctx);
  }

 private:
  Distributor& distributor_;
  const ConfigModel& model_;
  ConsoleService& console_;
};

}  // namespace

std::unique_ptr<grpc::Service> make_watch_service(Distributor& distributor, const ConfigModel& model,
                                                  ConsoleService& console) {
  return std::make_unique<ConfigServiceImpl>(distributor, model, console);
}

}  // namespace mg::control
