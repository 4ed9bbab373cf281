// control/distributor.h — distribution of per-workload snapshots. Owns which proxies are (or
// were) connected and what each was sent and acknowledged (ProxyRecord), and the thread that,
// after a change (mark_dirty), waits out a debounce, rebuilds the model once and pushes each
// connected proxy the snapshot whose version changed — rendered once per selection key
// (control/snapshot.h) and shared by the streams it goes to; a round to many streams starts their
// writes from two threads. Proxy streams (the Watch service's
// reactors, watch_service.cpp) register with hello() and reach back only through ProxyStream.
// The same thread writes the registry's changed registrations to the store (batched: one
// transaction per wake-up, never on a gRPC thread), so a restarted control plane restores them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/thread_annotations.h"
#include "control/model.h"
#include "control/registry.h"
#include "identity/spiffe_id.h"
#include "meshguard/v1/meshguard.grpc.pb.h"
#include "telemetry/metrics.h"

namespace mg::control {

// A snapshot as pushed: rendered once per selection key (snapshot.h selection_key) and change, and
// shared by every stream it goes to until their writes complete.
using SharedSnapshot = std::shared_ptr<const ::meshguard::v1::ConfigSnapshot>;

// One proxy's config stream, as the distributor uses it. gRPC may run a reaction (even the end
// of the stream) inline inside a write or a finish, so the distributor never calls push() or
// finish() with its lock held, and holds a reference (ref/unref) across each call.
class ProxyStream {
 public:
  // Coalesces: the newest waits. `order` is numbered under the distributor's lock, where the
  // snapshot was chosen; the calls themselves run outside it and may arrive out of that order (a
  // Hello's first snapshot against a push round), so a snapshot older than one already taken is
  // dropped — a proxy's configuration never goes back to an older model.
  virtual void push(SharedSnapshot snapshot, uint64_t order) = 0;
  virtual void finish(grpc::Status status) = 0;                     // a write in flight completes first
  virtual void ref() = 0;
  virtual void unref() = 0;

 protected:
  ~ProxyStream() = default;
};

// One connected (or once connected) proxy, keyed by namespace/name.
struct ProxyRecord {
  WorkloadView workload;
  std::string spiffe_id;
  std::string peer;
  bool connected = false;
  std::string cert_state, cert_serial;
  int64_t cert_not_after = 0;
  std::string sent_version, acked_version, nack_error;
  std::string sent_bundle, acked_bundle;  // hashes of the trust bundle in those snapshots
  // ... and of its mesh's own roots (the same bundle for the default mesh; another mesh's proxy
  // trusts the control plane with the default mesh's bundle, its peers with its mesh's).
  std::string sent_mesh_bundle, acked_mesh_bundle;
  // ... and of the other meshes' bundles it accepts (federation: MeshView::federated_hash).
  std::string sent_federated, acked_federated;
  int64_t sent_revision = 0;     // store revision the last snapshot sent was computed at
  int64_t acked_revision = 0;    // store revision of the snapshot in force (ACKed)
  int64_t evaluated_revision = 0;  // newest model revision this proxy's snapshot was computed at
  // Newest store revision whose configuration the proxy enforces: the snapshot computed at it was
  // ACKed, or was the one already in force (the change did not select this proxy).
  int64_t synced_revision = 0;
  std::string admin_address;
  std::chrono::steady_clock::time_point change_at{};  // the change the in-flight snapshot carries
  bool awaiting_ack = false;
  int64_t last_seen = 0;
  std::string proxy_version;  // its release, from its Hello
  std::chrono::steady_clock::time_point disconnected_at{};  // when `connected` last became false
  // Its meshguard_proxy_config_revision series, looked up once (removed with the record).
  telemetry::Gauge* revision_gauge = nullptr;
};

// How far a trust bundle has reached the proxies (CA rotation, phase 2).
struct BundleRollout {
  int acknowledged = 0;                    // connected proxies that ACKed a snapshot with it
  std::vector<std::string> waiting;        // connected (or just reconnecting) proxies that did not yet
  std::vector<std::string> not_connected;  // gone for a while: not waited for
  bool change_pending = false;             // a change not yet pushed (the bundle may be in it)
  bool stopping = false;
};

class Distributor {
 public:
  // `registry` learns every proxy's registration from its Hello and its leaving from its stream's
  // end; each push sends the endpoints it computes (a change there is a change to push). `store`
  // keeps the registrations (Store::save_registrations). A stream ended by stop() is not a
  // leaving: the registration stays as it was, for the next start to restore. A proxy whose
  // stream ended stays among proxies() (connected false) for `forget_after`, then is dropped
  // (`meshguard-control --forget-disconnected`).
  Distributor(ConfigModel& model, Registry& registry, Store& store, telemetry::Registry& metrics,
              std::chrono::milliseconds push_debounce,
              std::chrono::milliseconds forget_after = std::chrono::minutes(5));
  ~Distributor();

  // Told, on the distribution thread and without its lock, which ServiceEndpoints documents each
  // recompute changed (the admin service's watchers). Set before start().
  using EndpointsListener = std::function<void(int64_t revision, const std::vector<Registry::Change>&)>;
  void on_endpoints_changed(EndpointsListener listener) { endpoints_listener_ = std::move(listener); }

  void start();  // the distribution thread
  // Ends every stream ("shutting down") and the thread's loop; join() waits for the thread.
  void stop() MG_EXCLUDES(mutex_);
  void join();

  // Something the snapshots are computed from changed: rebuild and push after the debounce.
  void mark_dirty() MG_EXCLUDES(mutex_);

  // A stream's Hello from `id` at `peer`: registers `stream` for the workload it speaks for (a
  // stream of the same workload and identity is replaced) and pushes it its first snapshot.
  // Sets *key to the workload's "namespace/name". An error status ends the stream.
  grpc::Status hello(ProxyStream* stream, const identity::SpiffeId& id, const std::string& peer,
                     const ::meshguard::v1::Hello& hello, std::string* key) MG_EXCLUDES(mutex_);
  void ack(const std::string& key, const ::meshguard::v1::Ack& ack) MG_EXCLUDES(mutex_);
  // The stream registered for `key` ended.
  void stream_done(ProxyStream* stream, const std::string& key) MG_EXCLUDES(mutex_);

  // Every proxy connected now or disconnected for less than `forget_after`.
  std::map<std::string, ProxyRecord> proxies() const MG_EXCLUDES(mutex_);
  // Which proxies ACKed a snapshot with the bundle hashed `bundle_hash`: every proxy's control-plane
  // (default mesh) bundle, or, for `mesh` other than the default, that mesh's proxies' own bundle
  // and the federated bundles of the proxies of every mesh federating with it (they verify its
  // workloads' certificates too: once its new root signs, they must hold it). Those count once the
  // model distributes that bundle (`bundle_hash` is `mesh`'s there) and they ACKed what it gives
  // their mesh to accept.
  BundleRollout bundle_rollout(const std::string& bundle_hash, std::string_view mesh = {}) const
      MG_EXCLUDES(mutex_);
  // Sleeps up to `d`; false once stopping.
  bool sleep_unless_stopping(std::chrono::milliseconds d) MG_EXCLUDES(mutex_);

 private:
  using Clock = std::chrono::steady_clock;
  void run() MG_EXCLUDES(mutex_);
  // Snapshots of one model and endpoints list by selection key: a push round renders each once.
  using SnapshotCache = std::unordered_map<std::string, SharedSnapshot>;
  // The snapshot to send `record`'s proxy, if it differs from the last one sent (taken from, or
  // rendered into, `cache`). Sets *revoke instead when the workload's registration now names
  // another service account.
  SharedSnapshot snapshot_if_changed(ProxyRecord& record, const Model& m, const EndpointsList& endpoints,
                                     Clock::time_point change_at, SnapshotCache& cache, bool* revoke)
      MG_REQUIRES(mutex_);
  void mark_dirty_locked() MG_REQUIRES(mutex_);
  // Disconnected for `forget_after` or more: no longer shown, and erased at the next change.
  bool forgotten(const ProxyRecord& record, Clock::time_point now) const;
  Clock::time_point forget_due(const ProxyRecord& record) const;  // when a disconnected one is
  void forget_disconnected(Clock::time_point now) MG_REQUIRES(mutex_);
  void save_registrations() MG_EXCLUDES(mutex_);

  ConfigModel& model_;
  Registry& registry_;
  Store& store_;
  telemetry::Registry& metrics_;
  // The series every push and ACK updates, looked up at their first use rather than per proxy and
  // change (a lookup renders the labels and searches the registry under its lock: at 10,000
  // proxies, a few percent of a push round's CPU).
  struct Series {
    telemetry::Histogram* convergence = nullptr;                       // pilot_proxy_convergence_time
    telemetry::Counter* pushes = nullptr;                              // pilot_xds_pushes{type="snapshot"}
    std::unordered_map<std::string, telemetry::Counter*> mesh_pushes;  // meshguard_mesh_pushes_total
    telemetry::Histogram* ack_latency = nullptr;  // meshguard_push_ack_latency_milliseconds
    telemetry::Counter* acks = nullptr;           // meshguard_config_acks_total{result="ack"}
    telemetry::Counter* nacks = nullptr;          // ... {result="nack"}
    telemetry::Counter* rejects = nullptr;        // pilot_total_xds_rejects{type="snapshot"}
  };
  Series series_ MG_GUARDED_BY(mutex_);
  const std::chrono::milliseconds push_debounce_;
  const std::chrono::milliseconds forget_after_;
  EndpointsListener endpoints_listener_;
  std::thread thread_;

  mutable Mutex mutex_;
  CondVar cv_;
  // An open stream: the record it speaks for, and the mesh it was counted in.
  struct StreamEntry {
    std::string key;
    std::string mesh;
  };
  // Bookkeeping of one stream opening or ending, kept incremental (at 10,000 proxies a scan of
  // every stream per Hello is a reconnect storm's quadratic cost): the per-key index and
  // meshguard_mesh_proxies_connected{mesh}.
  void add_stream_locked(ProxyStream* stream, const std::string& key, const std::string& mesh)
      MG_REQUIRES(mutex_);
  void remove_stream_locked(ProxyStream* stream) MG_REQUIRES(mutex_);
  // Every mesh of the model has its series, 0 when none of its proxies is connected.
  void publish_connected_locked(const Model& m) MG_REQUIRES(mutex_);
  std::map<ProxyStream*, StreamEntry> streams_ MG_GUARDED_BY(mutex_);
  // record key → its open streams (two only while a newer one replaces the older).
  std::unordered_map<std::string, std::vector<ProxyStream*>> streams_by_key_ MG_GUARDED_BY(mutex_);
  std::map<std::string, int64_t> connected_per_mesh_ MG_GUARDED_BY(mutex_);
  std::map<std::string, ProxyRecord> records_ MG_GUARDED_BY(mutex_);
  // The earliest time a disconnected record can be forgotten (max: none is disconnected).
  Clock::time_point next_forget_at_ MG_GUARDED_BY(mutex_) = Clock::time_point::max();
  bool dirty_ MG_GUARDED_BY(mutex_) = false;
  Clock::time_point dirty_since_ MG_GUARDED_BY(mutex_){};
  bool stopping_ MG_GUARDED_BY(mutex_) = false;
  uint64_t push_order_ MG_GUARDED_BY(mutex_) = 0;  // numbers every push chosen (ProxyStream::push)
};

}  // namespace mg::control
