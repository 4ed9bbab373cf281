#include "control/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include <openssl/x509.h>

#include "api/grpc_tls.h"
#include "ca/authority.h"
#include "common/files.h"
#include "control/snapshot.h"
#include "control/store.h"
#include "control/token.h"
#include "crypto/openssl.h"
#include "identity/spiffe_id.h"
#include "identity/svid.h"
#include "meshguard/v1/meshguard.grpc.pb.h"
#include "policy/parse.h"
#include "telemetry/metrics.h"

namespace mg::control {
namespace pb = ::meshguard::v1;
using Clock = std::chrono::steady_clock;

namespace {

std::time_t unix_now() { return std::time(nullptr); }

void log_line(const std::string& line) {
  std::fprintf(stderr, "meshguard-control: %s\n", line.c_str());
  std::fflush(stderr);
}

grpc::Status status_of(grpc::StatusCode code, const Error& e) { return grpc::Status(code, e.to_string()); }

pb::ResourceKey to_pb(const ResourceKey& k) {
  pb::ResourceKey out;
  out.set_kind(k.kind);
  out.set_namespace_(k.ns);
  out.set_name(k.name);
  return out;
}

// The immutable view every snapshot is computed from; rebuilt after each change.
struct Model {
  policy::ResourceSet set;
  int64_t revision = 0;
  MeshSettings mesh;  // points into `set`
  std::string bundle_pem;
  std::shared_ptr<const identity::TrustBundle> bundle;  // parsed once: PEM decoding is dear
};

std::string bundle_hash(const std::string& pem) {
  auto d = crypto::sha256(pem);
  return crypto::hex(d.data(), d.size());
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

class WatchReactor;
class AdminWatchReactor;

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
  int64_t sent_revision = 0;
  Clock::time_point change_at{};  // the change the in-flight snapshot carries
  bool awaiting_ack = false;
  int64_t last_seen = 0;
};

struct ControlPlane::Impl {
  ServerOptions options;
  std::unique_ptr<Store> store;
  std::string td;  // the trust domain: fixed for the life of the CA
  // The signing CA, and during a rotation the new one whose root is being distributed first.
  mutable std::mutex ca_mutex;
  std::shared_ptr<const ca::Authority> authority, pending;
  std::thread rotation_thread;
  crypto::PKeyPtr token_key;
  std::thread housekeeping_thread;  // housekeeping_loop
  std::string token_issuer;
  // Kubernetes service-account tokens, when configured; its keys are replaced when the JWKS file
  // changes (housekeeping_loop), so handlers take a copy under the lock.
  mutable std::mutex k8s_mutex;
  std::optional<ServiceAccountIssuer> k8s;
  std::string k8s_jwks_text;  // the file's content the keys were last read from (or refused for)
  std::optional<ServiceAccountIssuer> k8s_issuer() const {
    std::lock_guard lock(k8s_mutex);
    return k8s;
  }
  void reload_k8s_jwks();
  telemetry::Registry metrics;

  std::mutex model_mutex;
  std::shared_ptr<const Model> model;

  // Distribution state.
  std::mutex mutex;
  std::condition_variable cv;
  std::map<WatchReactor*, std::string> streams;  // reactor → record key
  std::map<std::string, ProxyRecord> records;
  bool dirty = false;
  Clock::time_point dirty_since{};
  bool stopping = false;
  std::thread distributor;

  // Admin watchers (AdminService.WatchResources).
  std::mutex watch_mutex;
  std::set<AdminWatchReactor*> watchers;
  void publish(std::vector<pb::ResourceEvent> events);

  std::unique_ptr<grpc::Server> server;
  int bound_port = 0;
  std::unique_ptr<grpc::Service> certificate_service, config_service, admin_service;

  int metrics_fd = -1;
  int metrics_port = 0;
  std::thread metrics_thread;

  std::shared_ptr<const ca::Authority> signer() const {
    std::lock_guard lock(ca_mutex);
    return authority;
  }
  std::shared_ptr<const Model> current_model() {
    std::lock_guard lock(model_mutex);
    return model;
  }
  Status rebuild_model();
  Status renew_own_identities(bool at_start);
  void housekeeping_loop();
  void mark_dirty();
  void distribute_loop();
  // The snapshot to send `record`'s proxy, if it differs from the last one sent. Caller holds `mutex`.
  // Sets *revoke instead when the workload's registration now names another service account.
  std::optional<pb::ConfigSnapshot> snapshot_if_changed(ProxyRecord& record, const Model& m,
                                                         Clock::time_point change_at, bool* revoke = nullptr);
  pb::ConfigSnapshot snapshot_message(const Model& m, const WorkloadView& w) const;
  // Resolves the workload a proxy speaks for; registered Workloads win over the proxy's own labels.
  Result<WorkloadView> resolve_workload(const Model& m, const identity::SpiffeId& id, const pb::Hello& hello) const;
  Result<identity::SpiffeId> require_peer(grpc::CallbackServerContext* ctx) const;
  Status require_admin(grpc::CallbackServerContext* ctx) const;
  void serve_metrics();
  // CA rotation, phase 2: once every connected proxy has the new bundle, sign with the new root.
  void finish_rotation(grpc::ServerUnaryReactor* reactor, pb::RotateCaResponse* resp, Clock::time_point deadline);
  Status persist_rotation(const ca::Authority& next);
};

// ---------------------------------------------------------------------------------------- watch

class WatchReactor : public grpc::ServerBidiReactor<pb::WatchRequest, pb::ConfigSnapshot> {
 public:
  WatchReactor(ControlPlane::Impl* cp, grpc::CallbackServerContext* ctx) : cp_(cp), ctx_(ctx) {
    auto id = cp_->require_peer(ctx_);
    if (!id) {
      Finish(status_of(grpc::StatusCode::UNAUTHENTICATED, id.error()));
      return;
    }
    id_ = std::move(*id);
    StartRead(&request_);
  }

  // Thread-safe; never called with the control plane's mutex held. Coalesces: only the newest
  // snapshot waits behind a write in flight.
  void push(pb::ConfigSnapshot snapshot) {
    {
      std::lock_guard lock(mutex_);
      if (finishing_) return;
      if (writing_) {
        pending_ = std::move(snapshot);
        return;
      }
      writing_ = true;
      current_ = std::move(snapshot);
    }
    StartWrite(&current_);
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
      auto st = on_hello(request_.hello());
      if (!st.ok()) {
        finish(st);
        return;
      }
    } else if (request_.has_ack()) {
      if (!registered_) {
        finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Ack before Hello"));
        return;
      }
      on_ack(request_.ack());
    } else {
      finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty WatchRequest"));
      return;
    }
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mutex_);
    if (ok && pending_ && !finishing_) {
      current_ = std::move(*pending_);
      pending_.reset();
      lock.unlock();
      StartWrite(&current_);
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
    if (registered_) {
      std::lock_guard lock(cp_->mutex);
      cp_->streams.erase(this);
      cp_->metrics.gauge("meshguard_connected_proxies").set(static_cast<int64_t>(cp_->streams.size()));
      auto it = cp_->records.find(key_);
      if (it != cp_->records.end()) {
        it->second.connected = false;
        it->second.last_seen = unix_now();
      }
    }
    unref();
  }

  // gRPC may run a reaction (even OnDone) inline inside StartWrite/Finish, so those are never
  // called with the control plane's mutex held; whoever calls them from outside a reaction holds
  // a reference, taken under that mutex, so the reactor outlives the call.
  void ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Ends the stream (also from shutdown); a write in flight completes first.
  void finish(grpc::Status status) {
    std::unique_lock lock(mutex_);
    if (finishing_) return;
    finishing_ = true;
    finish_status_ = std::move(status);
    if (writing_) return;
    finished_ = true;
    lock.unlock();
    Finish(finish_status_);
  }

 private:
  grpc::Status on_hello(const pb::Hello& hello) {
    std::vector<WatchReactor*> replaced;
    std::optional<pb::ConfigSnapshot> first;
    {
      std::lock_guard lock(cp_->mutex);
      // The model is read under the lock the distributor pushes under: either it already pushed
      // the newest model to the streams (this one not among them) and we read that model here, or
      // it pushes after we registered.
      auto model = cp_->current_model();
      auto workload = cp_->resolve_workload(*model, *id_, hello);
      if (!workload) return status_of(grpc::StatusCode::PERMISSION_DENIED, workload.error());
      key_ = workload->ns + "/" + workload->name;
      // A connected workload's name belongs to its identity: another SVID of the namespace cannot
      // take it over (a registered Workload binds it for good).
      if (auto it = cp_->records.find(key_);
          it != cp_->records.end() && it->second.connected && it->second.spiffe_id != id_->str())
        return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                            "hello.name_in_use: workload " + key_ + " is connected as " + it->second.spiffe_id);
      // A second stream for the same workload and identity replaces the first (a restarted proxy).
      for (auto& [reactor, key] : cp_->streams) {
        if (key == key_ && reactor != this) {
          reactor->ref();
          replaced.push_back(reactor);
        }
      }
      ProxyRecord& rec = cp_->records[key_];
      rec.workload = *workload;
      rec.spiffe_id = id_->str();
      rec.peer = ctx_->peer();
      rec.connected = true;
      rec.cert_state = hello.cert_state();
      rec.cert_serial = hello.cert_serial();
      rec.cert_not_after = hello.cert_not_after_unix();
      rec.last_seen = unix_now();
      rec.acked_version = hello.last_version();
      rec.sent_version.clear();
      rec.nack_error.clear();
      cp_->streams[this] = key_;
      cp_->metrics.gauge("meshguard_connected_proxies").set(static_cast<int64_t>(cp_->streams.size()));
      registered_ = true;
      bool revoke = false;
      first = cp_->snapshot_if_changed(rec, *model, Clock::now(), &revoke);
      if (revoke) first.reset();  // cannot happen with this model (resolve_workload checked); kept fail-closed
    }
    for (auto* r : replaced) {
      r->finish(grpc::Status(grpc::StatusCode::ABORTED, "replaced by a newer stream"));
      r->unref();
    }
    if (first) push(std::move(*first));
    return grpc::Status::OK;
  }

  void on_ack(const pb::Ack& ack) {
    std::lock_guard lock(cp_->mutex);
    auto it = cp_->records.find(key_);
    if (it == cp_->records.end()) return;
    ProxyRecord& rec = it->second;
    rec.last_seen = unix_now();
    if (ack.accepted()) {
      rec.acked_version = ack.version();
      if (ack.version() == rec.sent_version) {
        rec.acked_bundle = rec.sent_bundle;
        // Which store revision each proxy enforces: a proxy lagging behind shows here.
        cp_->metrics.gauge("meshguard_proxy_config_revision", {{"workload", key_}}).set(rec.sent_revision);
      }
      rec.nack_error.clear();
    } else {
      rec.nack_error = ack.error().substr(0, 1024);
      log_line("NACK from " + key_ + " for version " + ack.version() + ": " + rec.nack_error);
    }
    if (rec.awaiting_ack && ack.version() == rec.sent_version) {
      rec.awaiting_ack = false;
      cp_->metrics.histogram("meshguard_push_ack_latency_milliseconds").observe_ms(ms_between(rec.change_at, Clock::now()));
    }
    cp_->metrics.counter("meshguard_config_acks_total", {{"result", ack.accepted() ? "ack" : "nack"}}).inc();
  }

  ControlPlane::Impl* cp_;
  grpc::CallbackServerContext* ctx_;
  std::optional<identity::SpiffeId> id_;
  pb::WatchRequest request_;
  bool registered_ = false;
  std::string key_;

  std::mutex mutex_;
  pb::ConfigSnapshot current_;
  std::optional<pb::ConfigSnapshot> pending_;
  bool writing_ = false, finishing_ = false, finished_ = false;
  grpc::Status finish_status_;
  std::atomic<int> refs_{1};  // gRPC's (dropped in OnDone) + one per outside caller
};

// ---------------------------------------------------------------------------------------- admin watch

class AdminWatchReactor : public grpc::ServerWriteReactor<pb::ResourceEvent> {
 public:
  static constexpr size_t kMaxQueued = 4096;

  AdminWatchReactor(ControlPlane::Impl* cp, grpc::CallbackServerContext* ctx, const pb::WatchResourcesRequest& req)
      : cp_(cp), kind_(req.kind()), ns_(req.namespace_()) {
    if (auto admin = cp_->require_admin(ctx); !admin) {
      finish(status_of(grpc::StatusCode::PERMISSION_DENIED, admin.error()));
      return;
    }
    {
      std::lock_guard lock(cp_->watch_mutex);
      cp_->watchers.insert(this);
      registered_ = true;
    }
    // Tells the client it is registered: a listing it makes after this cannot miss a change.
    StartSendInitialMetadata();
  }

  void OnSendInitialMetadataDone(bool) override {}

  // Never called with watch_mutex held (gRPC may run reactions inline); the caller holds a ref.
  void enqueue(const std::vector<pb::ResourceEvent>& events) {
    std::unique_lock lock(mutex_);
    if (finishing_) return;
    for (const auto& e : events) {
      if (!kind_.empty() && e.key().kind() != kind_) continue;
      if (!ns_.empty() && e.key().namespace_() != ns_) continue;
      queue_.push_back(e);
    }
    if (queue_.size() > kMaxQueued) {
      lock.unlock();
      finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "watcher too slow: more than 4096 events queued"));
      return;
    }
    if (writing_ || queue_.empty()) return;
    writing_ = true;
    const pb::ResourceEvent* next = &queue_.front();  // deque: stays put while others are appended
    lock.unlock();
    StartWrite(next);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mutex_);
    queue_.pop_front();
    if (ok && !queue_.empty() && !finishing_) {
      const pb::ResourceEvent* next = &queue_.front();
      lock.unlock();
      StartWrite(next);
      return;
    }
    writing_ = false;
    if (finishing_ && !finished_) {
      finished_ = true;
      lock.unlock();
      Finish(status_);
    }
  }

  void OnCancel() override { finish(grpc::Status::CANCELLED); }

  void OnDone() override {
    if (registered_) {
      std::lock_guard lock(cp_->watch_mutex);
      cp_->watchers.erase(this);
    }
    unref();
  }

  void finish(grpc::Status status) {
    std::unique_lock lock(mutex_);
    if (finishing_) return;
    finishing_ = true;
    status_ = std::move(status);
    if (writing_) return;
    finished_ = true;
    lock.unlock();
    Finish(status_);
  }

  void ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 private:
  ControlPlane::Impl* cp_;
  std::string kind_, ns_;
  bool registered_ = false;
  std::mutex mutex_;
  std::deque<pb::ResourceEvent> queue_;
  bool writing_ = false, finishing_ = false, finished_ = false;
  grpc::Status status_;
  std::atomic<int> refs_{1};
};

void ControlPlane::Impl::publish(std::vector<pb::ResourceEvent> events) {
  if (events.empty()) return;
  std::vector<AdminWatchReactor*> targets;
  {
    std::lock_guard lock(watch_mutex);
    for (auto* w : watchers) {
      w->ref();
      targets.push_back(w);
    }
  }
  for (auto* w : targets) {
    w->enqueue(events);
    w->unref();
  }
}

// ---------------------------------------------------------------------------------------- impl

Result<identity::SpiffeId> ControlPlane::Impl::require_peer(grpc::CallbackServerContext* ctx) const {
  auto auth = ctx->auth_context();
  if (!auth) return fail("auth.no_tls", "no TLS peer information");
  auto model_ptr = const_cast<Impl*>(this)->current_model();
  const auto& bundle = model_ptr->bundle;
  auto id = api::peer_identity(*auth, *bundle, unix_now());
  if (!id) return fail("auth.bad_certificate", "client certificate refused: " + id.error().to_string());
  if (!*id) return fail("auth.no_certificate", "a client certificate (the caller's SVID) is required");
  return std::move(**id);
}

Status ControlPlane::Impl::require_admin(grpc::CallbackServerContext* ctx) const {
  auto id = require_peer(ctx);
  if (!id) return fail(id.error());
  if (!(*id == api::admin_id(td)))
    return fail("auth.not_admin", id->str() + " is not the admin identity");
  return {};
}

Result<WorkloadView> ControlPlane::Impl::resolve_workload(const Model& m, const identity::SpiffeId& id,
                                                          const pb::Hello& hello) const {
  auto ns = id.istio_namespace();
  auto sa = id.istio_service_account();
  if (!ns || !sa) return fail("auth.not_workload", id.str() + " is not a workload identity (ns/<ns>/sa/<sa>)");
  if (*ns == api::kSystemNamespace) return fail("auth.reserved", "namespace meshguard-system runs no workloads");
  const std::string& name = hello.workload();
  if (name.empty() || name.size() > 253 ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-.") != std::string::npos)
    return fail("hello.bad_name", "workload name must be a lower-case DNS name");
  WorkloadView w;
  w.name = name;
  w.ns = std::string(*ns);
  w.service_account = std::string(*sa);
  if (const auto* reg = find_workload(m.set, w.ns, name)) {
    if (!reg->service_account.empty() && reg->service_account != w.service_account)
      return fail("hello.wrong_service_account", "Workload " + w.ns + "/" + name + " runs as service account " +
                                                     reg->service_account + ", not " + w.service_account);
    w.labels = reg->labels;
    w.registered = true;
  } else {
    for (const auto& [k, v] : hello.labels()) w.labels[k] = v;
  }
  return w;
}

pb::ConfigSnapshot ControlPlane::Impl::snapshot_message(const Model& m, const WorkloadView& w) const {
  auto snap = snapshot_for(m.set, w, m.mesh, m.bundle_pem);
  pb::ConfigSnapshot out;
  out.set_version(snap.version);
  out.set_revision(m.revision);
  out.set_policies_yaml(std::move(snap.policies_yaml));
  out.set_trust_bundle_pem(m.bundle_pem);
  auto* mesh = out.mutable_mesh();
  mesh->set_trust_domain(m.mesh.config.trust_domain);
  mesh->set_root_namespace(m.mesh.config.root_namespace);
  mesh->set_path_normalization(std::string(policy::to_string(m.mesh.config.path_normalization)));
  mesh->set_certificate_ttl_seconds(m.mesh.certificate_ttl_seconds);
  for (const auto& [k, v] : w.labels) (*out.mutable_labels())[k] = v;
  return out;
}

std::optional<pb::ConfigSnapshot> ControlPlane::Impl::snapshot_if_changed(ProxyRecord& record, const Model& m,
                                                                         Clock::time_point change_at, bool* revoke) {
  // A Workload registered (or changed) after the proxy said Hello binds its name to a service
  // account: a stream of another service account loses it, never its configuration.
  if (const auto* reg = find_workload(m.set, record.workload.ns, record.workload.name)) {
    if (!reg->service_account.empty() && reg->service_account != record.workload.service_account) {
      if (revoke) *revoke = true;
      return std::nullopt;
    }
    record.workload.labels = reg->labels;
    record.workload.registered = true;
  }
  auto message = snapshot_message(m, record.workload);
  if (message.version() == record.sent_version) return std::nullopt;
  record.sent_version = message.version();
  record.sent_bundle = bundle_hash(m.bundle_pem);
  record.sent_revision = m.revision;
  record.change_at = change_at;
  record.awaiting_ack = true;
  metrics.histogram("meshguard_push_latency_milliseconds").observe_ms(ms_between(change_at, Clock::now()));
  metrics.counter("meshguard_config_pushes_total").inc();
  return message;
}

Status ControlPlane::Impl::rebuild_model() {
  auto set = store->resources();
  if (!set) return fail(set.error());
  auto m = std::make_shared<Model>();
  m->set = std::move(*set);
  m->revision = store->revision();
  m->mesh = mesh_settings(m->set, td);
  {
    std::lock_guard ca_lock(ca_mutex);
    const auto& bundle = (pending ? pending : authority)->bundle();
    m->bundle_pem = bundle.to_pem();
    m->bundle = std::make_shared<const identity::TrustBundle>(bundle);
  }
  std::lock_guard lock(model_mutex);
  model = std::move(m);
  metrics.gauge("meshguard_store_revision").set(model->revision);
  return {};
}

void ControlPlane::Impl::mark_dirty() {
  std::lock_guard lock(mutex);
  if (!dirty) dirty_since = Clock::now();
  dirty = true;
  cv.notify_all();
}

void ControlPlane::Impl::distribute_loop() {
  std::unique_lock lock(mutex);
  while (!stopping) {
    cv.wait(lock, [&] { return dirty || stopping; });
    if (stopping) break;
    // Debounce: let a burst of applies settle into one push.
    cv.wait_for(lock, options.push_debounce, [&] { return stopping; });
    if (stopping) break;
    auto change_at = dirty_since;
    dirty = false;
    lock.unlock();
    auto st = rebuild_model();
    lock.lock();
    if (!st) {
      log_line("cannot rebuild the configuration model: " + st.error().to_string());
      continue;
    }
    auto m = current_model();
    std::vector<std::pair<WatchReactor*, pb::ConfigSnapshot>> out;
    std::vector<WatchReactor*> revoked;
    for (auto& [reactor, key] : streams) {
      bool revoke = false;
      if (auto message = snapshot_if_changed(records[key], *m, change_at, &revoke)) {
        reactor->ref();
        out.emplace_back(reactor, std::move(*message));
      } else if (revoke) {
        reactor->ref();
        revoked.push_back(reactor);
        log_line("stream for " + key + " (" + records[key].spiffe_id +
                 ") ended: the Workload is now registered for another service account");
      }
    }
    lock.unlock();
    for (auto& [reactor, message] : out) {
      reactor->push(std::move(message));
      reactor->unref();
    }
    for (auto* reactor : revoked) {
      reactor->finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                   "hello.wrong_service_account: the Workload is registered for another service account"));
      reactor->unref();
    }
    lock.lock();
  }
}

void ControlPlane::Impl::serve_metrics() {
  while (true) {
    pollfd p{metrics_fd, POLLIN, 0};
    int r = ::poll(&p, 1, 200);
    {
      std::lock_guard lock(mutex);
      if (stopping) return;
    }
    if (r <= 0) continue;
    int fd = ::accept(metrics_fd, nullptr, nullptr);
    if (fd < 0) continue;
    // One small request, read with a deadline, then one response: a scrape endpoint, not a server.
    std::string head;
    char buf[2048];
    auto deadline = Clock::now() + std::chrono::seconds(2);
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 8192 && Clock::now() < deadline) {
      pollfd q{fd, POLLIN, 0};
      if (::poll(&q, 1, 100) <= 0) continue;
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      head.append(buf, static_cast<size_t>(n));
    }
    std::string status = "200 OK", body;
    if (head.rfind("GET /metrics ", 0) == 0 || head.rfind("GET /metrics?", 0) == 0) {
      body = metrics.render_prometheus();
    } else if (head.rfind("GET /healthz/ready ", 0) == 0) {
      body = "ready\n";
    } else {
      status = "404 Not Found";
      body = "not found\n";
    }
    std::string response = "HTTP/1.1 " + status + "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    size_t off = 0;
    while (off < response.size()) {
      ssize_t n = ::send(fd, response.data() + off, response.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(fd);
  }
}

Status ControlPlane::Impl::persist_rotation(const ca::Authority& next) {
  // Two renames: a crash between them leaves ca.new, which open() completes.
  const std::string dir = options.data_dir;
  const std::string staged = dir + "/ca.new", live = dir + "/ca",
                    previous = dir + "/ca.previous-" + std::to_string(unix_now());
  if (auto st = next.save_dir(staged); !st) return st;
  if (::rename(live.c_str(), previous.c_str()) != 0)
    return fail("control.ca_dir", "cannot move " + live + " aside to " + previous);
  if (::rename(staged.c_str(), live.c_str()) != 0)
    return fail("control.ca_dir", "cannot move " + staged + " to " + live);
  return {};
}

void ControlPlane::Impl::finish_rotation(grpc::ServerUnaryReactor* reactor, pb::RotateCaResponse* resp,
                                         Clock::time_point deadline) {
  std::shared_ptr<const ca::Authority> next;
  {
    std::lock_guard lock(ca_mutex);
    next = pending;
  }
  const std::string want = bundle_hash(next->bundle().to_pem());
  std::vector<std::string> waiting;
  bool all = false;
  while (true) {
    {
      std::unique_lock lock(mutex);
      waiting.clear();
      int acked = 0;
      resp->clear_not_connected();
      const int64_t now = unix_now();
      for (const auto& [key, rec] : records) {
        // A proxy that dropped its stream moments ago is most likely reconnecting (it does after
        // every renewal): wait for it like a connected one rather than sign past it.
        const bool reconnecting = !rec.connected && now - rec.last_seen < 15;
        if (!rec.connected && !reconnecting) {
          resp->add_not_connected(key);
        } else if (rec.connected && rec.acked_bundle == want) {
          ++acked;
        } else {
          waiting.push_back(key);
        }
      }
      resp->set_proxies_acknowledged(acked);
      all = waiting.empty() && !dirty;
      if (all || stopping || Clock::now() >= deadline) break;
      cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return stopping; });
    }
  }
  grpc::Status result = grpc::Status::OK;
  if (all) {
    if (auto st = options.plug_in_ca_dir.empty() ? persist_rotation(*next) : Status(); !st) {
      result = status_of(grpc::StatusCode::INTERNAL, st.error());
      all = false;
    }
  }
  {
    std::lock_guard lock(ca_mutex);
    if (all) authority = next;  // the bundle (new + old roots) is already everywhere
    pending.reset();
  }
  if (all) {
    log_line("CA rotated: new root " + crypto::cert_sha256_fingerprint(next->ca_cert()) + "; " +
             std::to_string(resp->proxies_acknowledged()) + " proxies hold the new bundle");
    metrics.counter("meshguard_ca_rotations_total", {{"result", "success"}}).inc();
  } else {
    metrics.counter("meshguard_ca_rotations_total", {{"result", "abandoned"}}).inc();
    if (result.ok()) {
      std::string who;
      for (const auto& w : waiting) who += (who.empty() ? "" : ", ") + w;
      result = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                            "rotation called off, the old bundle is restored: not acknowledged by " + who);
    }
    log_line("CA rotation abandoned: " + result.error_message());
  }
  mark_dirty();  // abandoned: push the old bundle back; done: nothing changes for the proxies
  reactor->Finish(result);
}

// ---------------------------------------------------------------------------------------- services

namespace {

class CertificateServiceImpl final : public pb::CertificateService::CallbackService {
 public:
  explicit CertificateServiceImpl(ControlPlane::Impl* cp) : cp_(cp) {}

  grpc::ServerUnaryReactor* Sign(grpc::CallbackServerContext* ctx, const pb::SignRequest* req,
                                 pb::SignResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(sign(ctx, *req, *resp));
    return reactor;
  }

 private:
  grpc::Status sign(grpc::CallbackServerContext* ctx, const pb::SignRequest& req, pb::SignResponse& resp) {
    const auto now = unix_now();
    const std::string& td = cp_->td;
    auto auth = ctx->auth_context();
    auto model = cp_->current_model();
    const auto& bundle = model->bundle;
    if (!auth) return grpc::Status(grpc::StatusCode::INTERNAL, "no TLS context");
    auto peer = api::peer_identity(*auth, *bundle, now);
    if (!peer) return status_of(grpc::StatusCode::UNAUTHENTICATED, peer.error());

    std::optional<identity::SpiffeId> id;
    std::string how;
    if (*peer) {
      // The control plane's own and the admin identity are issued from its data dir only; a copied
      // admin SVID must not be able to extend itself here.
      if ((*peer)->istio_namespace() == std::string_view(api::kSystemNamespace))
        return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                            "identities of namespace meshguard-system are not renewed through this API");
      id = **peer;  // renewal: the caller's current, valid SVID names it
      how = "renewal";
    } else {
      const auto& md = ctx->client_metadata();
      auto it = md.find("authorization");
      if (it == md.end())
        return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "a bootstrap token or a client certificate is required");
      std::string value(it->second.data(), it->second.size());
      if (value.rfind("Bearer ", 0) != 0)
        return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "authorization must be \"Bearer <token>\"");
      const std::string_view token = std::string_view(value).substr(7);
      auto claims = verify_bootstrap_token(token, cp_->token_key.get(), cp_->token_issuer, now);
      if (auto k8s = claims ? std::nullopt : cp_->k8s_issuer()) {
        auto sa = verify_service_account_token(token, *k8s, now);
        if (sa) {
          claims = std::move(*sa);
          how = "k8s-token";
        } else {
          claims = fail(sa.error().code, claims.error().message + "; as a service-account token: " + sa.error().message);
        }
      }
      if (!claims) {
        cp_->metrics.counter("meshguard_csr_total", {{"result", "bad_token"}}).inc();
        return status_of(grpc::StatusCode::UNAUTHENTICATED, claims.error());
      }
      if (claims->ns == api::kSystemNamespace)
        return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "namespace meshguard-system is reserved");
      auto made = identity::SpiffeId::istio(td, claims->ns, claims->service_account);
      if (!made) return status_of(grpc::StatusCode::INVALID_ARGUMENT, made.error());
      id = std::move(*made);
      if (how.empty()) how = "bootstrap";
    }

    const std::string& der = req.csr_der();
    if (der.empty() || der.size() > 16 * 1024)
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "csr_der must be a DER CSR of at most 16 KiB");
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    crypto::X509ReqPtr csr(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
    if (!csr || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
      crypto::last_error();
      cp_->metrics.counter("meshguard_csr_total", {{"result", "bad_csr"}}).inc();
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "csr_der is not a DER PKCS#10 request");
    }
    int64_t ttl = model->mesh.certificate_ttl_seconds;
    if (req.requested_ttl_seconds() > 0) ttl = std::min<int64_t>(ttl, req.requested_ttl_seconds());
    const auto signer_now = cp_->signer();
    auto issued = signer_now->sign_csr(csr.get(), *id, std::chrono::seconds(ttl), now);
    if (!issued) {
      cp_->metrics.counter("meshguard_csr_total", {{"result", "refused"}}).inc();
      return status_of(grpc::StatusCode::INVALID_ARGUMENT, issued.error());
    }
    cp_->metrics.counter("meshguard_csr_total", {{"result", "signed"}, {"kind", how}}).inc();
    // The CA's own rule (ca/authority.h), so no need to decode the certificate just issued.
    const int64_t not_after = std::min<int64_t>(now + ttl, signer_now->ca_not_after());
    resp.set_cert_chain_pem(issued->chain_pem);
    resp.set_trust_bundle_pem(model->bundle_pem);
    resp.set_spiffe_id(id->str());
    resp.set_not_after_unix(not_after);
    return grpc::Status::OK;
  }

  ControlPlane::Impl* cp_;
};

class ConfigServiceImpl final : public pb::ConfigService::CallbackService {
 public:
  explicit ConfigServiceImpl(ControlPlane::Impl* cp) : cp_(cp) {}
  grpc::ServerBidiReactor<pb::WatchRequest, pb::ConfigSnapshot>* Watch(grpc::CallbackServerContext* ctx) override {
    return new WatchReactor(cp_, ctx);
  }

 private:
  ControlPlane::Impl* cp_;
};

class AdminServiceImpl final : public pb::AdminService::CallbackService {
 public:
  explicit AdminServiceImpl(ControlPlane::Impl* cp) : cp_(cp) {}

  grpc::ServerUnaryReactor* Apply(grpc::CallbackServerContext* ctx, const pb::ApplyRequest* req,
                                  pb::ApplyResponse* resp) override {
    return finish(ctx, [&]() -> grpc::Status {
      if (req->files_size() == 0) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "nothing to apply");
      // Mesh-level checks the store cannot know about: the trust domain is the CA's.
      std::vector<ApplyInput> inputs;
      std::vector<std::string> sources;  // ApplyInput holds views: keep the names alive
      sources.reserve(static_cast<size_t>(req->files_size()));
      for (const auto& file : req->files()) {
        const std::string& source = sources.emplace_back(file.source().empty() ? "<apply>" : file.source());
        auto parsed = policy::parse_resources(file.yaml(), source);
        if (!parsed) return status_of(grpc::StatusCode::INVALID_ARGUMENT, parsed.error());
        for (const auto& mesh : parsed->meshes) {
          if (mesh.trust_domain != cp_->td)
            return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                mesh.meta.source + ":" + std::to_string(mesh.meta.line) + ": trustDomain " +
                                    mesh.trust_domain + " differs from the CA's trust domain " +
                                    cp_->td + " (changing it needs a new CA)");
        }
        inputs.push_back(ApplyInput{file.yaml(), source});
      }
      // Every file in one transaction: all or nothing, each error naming its file and line.
      auto result = cp_->store->apply_all(inputs);
      if (!result) return status_of(grpc::StatusCode::INVALID_ARGUMENT, result.error());
      resp->set_revision(result->revision);
      for (const auto& k : result->created) *resp->add_created() = to_pb(k);
      for (const auto& k : result->configured) *resp->add_configured() = to_pb(k);
      for (const auto& k : result->unchanged) *resp->add_unchanged() = to_pb(k);
      if (!result->created.empty() || !result->configured.empty()) cp_->mark_dirty();
      std::vector<pb::ResourceEvent> events;
      for (const auto& [keys, change] : {std::pair{&result->created, "created"}, std::pair{&result->configured, "configured"}}) {
        for (const auto& k : *keys) {
          auto& e = events.emplace_back();
          e.set_revision(result->revision);
          *e.mutable_key() = to_pb(k);
          e.set_change(change);
        }
      }
      cp_->publish(std::move(events));
      cp_->metrics.counter("meshguard_applies_total").inc();
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx, const pb::DeleteRequest* req,
                                   pb::DeleteResponse* resp) override {
    return finish(ctx, [&]() -> grpc::Status {
      ResourceKey key{req->key().kind(), req->key().namespace_(), req->key().name()};
      auto rev = cp_->store->remove(key);
      if (!rev) {
        auto code = rev.error().code == "store.not_found" ? grpc::StatusCode::NOT_FOUND : grpc::StatusCode::INTERNAL;
        return status_of(code, rev.error());
      }
      resp->set_revision(*rev);
      cp_->mark_dirty();
      pb::ResourceEvent e;
      e.set_revision(*rev);
      *e.mutable_key() = to_pb(key);
      e.set_change("deleted");
      cp_->publish({e});
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const pb::GetRequest* req,
                                pb::GetResponse* resp) override {
    return finish(ctx, [&]() -> grpc::Status {
      std::optional<std::string> kind, ns;
      if (!req->kind().empty()) kind = req->kind();
      if (!req->namespace_().empty()) ns = req->namespace_();
      auto list = cp_->store->list(kind, ns);
      if (!list) return status_of(grpc::StatusCode::INTERNAL, list.error());
      for (const auto& r : *list) {
        if (!req->name().empty() && r.key.name != req->name()) continue;
        auto* out = resp->add_resources();
        *out->mutable_key() = to_pb(r.key);
        out->set_yaml(r.yaml);
        out->set_revision(r.revision);
        out->set_updated_unix(r.updated_unix);
      }
      resp->set_revision(cp_->store->revision());
      if (!req->name().empty() && resp->resources_size() == 0)
        return grpc::Status(grpc::StatusCode::NOT_FOUND, req->kind() + " " + req->name() + " not found");
      return grpc::Status::OK;
    });
  }

  grpc::ServerWriteReactor<pb::ResourceEvent>* WatchResources(grpc::CallbackServerContext* ctx,
                                                              const pb::WatchResourcesRequest* req) override {
    return new AdminWatchReactor(cp_, ctx, *req);
  }

  grpc::ServerUnaryReactor* ListWorkloads(grpc::CallbackServerContext* ctx, const pb::ListWorkloadsRequest*,
                                          pb::ListWorkloadsResponse* resp) override {
    return finish(ctx, [&]() -> grpc::Status {
      auto model = cp_->current_model();
      std::set<std::string> seen;
      std::lock_guard lock(cp_->mutex);
      for (const auto& [key, rec] : cp_->records) {
        auto* w = resp->add_workloads();
        w->set_name(rec.workload.name);
        w->set_namespace_(rec.workload.ns);
        w->set_service_account(rec.workload.service_account);
        w->set_spiffe_id(rec.spiffe_id);
        w->set_connected(rec.connected);
        w->set_cert_state(rec.cert_state);
        w->set_cert_serial(rec.cert_serial);
        w->set_cert_not_after_unix(rec.cert_not_after);
        w->set_config_version(rec.sent_version);
        w->set_acked_version(rec.acked_version);
        w->set_nack_error(rec.nack_error);
        w->set_last_seen_unix(rec.last_seen);
        w->set_registered(find_workload(model->set, rec.workload.ns, rec.workload.name) != nullptr);
        w->set_peer_address(rec.peer);
        seen.insert(key);
      }
      // Registered workloads whose proxy never connected.
      for (const auto& reg : model->set.workloads) {
        if (seen.count(reg.meta.ns + "/" + reg.meta.name)) continue;
        auto* w = resp->add_workloads();
        w->set_name(reg.meta.name);
        w->set_namespace_(reg.meta.ns);
        w->set_service_account(reg.service_account);
        w->set_registered(true);
      }
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* ctx, const pb::CreateTokenRequest* req,
                                        pb::CreateTokenResponse* resp) override {
    return finish(ctx, [&]() -> grpc::Status {
      if (req->namespace_() == api::kSystemNamespace)
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "namespace meshguard-system is reserved");
      auto id = identity::SpiffeId::istio(cp_->td, req->namespace_(), req->service_account());
      if (!id) return status_of(grpc::StatusCode::INVALID_ARGUMENT, id.error());
      int64_t ttl = req->ttl_seconds() > 0 ? req->ttl_seconds() : 3600;
      if (ttl > 7 * 24 * 3600)
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a bootstrap token lives at most 7 days");
      BootstrapClaims claims;
      claims.ns = req->namespace_();
      claims.service_account = req->service_account();
      claims.issued_at = unix_now();
      claims.expires_at = claims.issued_at + ttl;
      auto token = mint_bootstrap_token(cp_->token_key.get(), cp_->token_issuer, claims);
      if (!token) return status_of(grpc::StatusCode::INTERNAL, token.error());
      resp->set_token(*token);
      resp->set_expires_unix(claims.expires_at);
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* RotateCa(grpc::CallbackServerContext* ctx, const pb::RotateCaRequest* req,
                                     pb::RotateCaResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    if (auto admin = cp_->require_admin(ctx); !admin) {
      reactor->Finish(status_of(grpc::StatusCode::PERMISSION_DENIED, admin.error()));
      return reactor;
    }
    int64_t wait = req->wait_seconds() > 0 ? std::min<int64_t>(req->wait_seconds(), 600) : 30;
    {
      std::lock_guard lock(cp_->ca_mutex);
      if (cp_->pending) {
        reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "a rotation is in progress"));
        return reactor;
      }
      if (!cp_->authority->is_self_signed()) {
        reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                     "the CA is plugged in: rotate it where it is issued, then restart with it"));
        return reactor;
      }
      auto next = cp_->authority->rotate(unix_now());
      if (!next) {
        reactor->Finish(status_of(grpc::StatusCode::INTERNAL, next.error()));
        return reactor;
      }
      cp_->pending = std::make_shared<const ca::Authority>(std::move(*next));
      resp->set_new_root_fingerprint(crypto::cert_sha256_fingerprint(cp_->pending->ca_cert()));
    }
    // Phase 1: the new bundle goes out; phase 2 (finish_rotation) waits for the ACKs off this thread.
    cp_->mark_dirty();
    if (cp_->rotation_thread.joinable()) cp_->rotation_thread.join();
    auto deadline = Clock::now() + std::chrono::seconds(wait);
    cp_->rotation_thread = std::thread([cp = cp_, reactor, resp, deadline] { cp->finish_rotation(reactor, resp, deadline); });
    return reactor;
  }

 private:
  template <class F>
  grpc::ServerUnaryReactor* finish(grpc::CallbackServerContext* ctx, F&& body) {
    auto* reactor = ctx->DefaultReactor();
    auto admin = cp_->require_admin(ctx);
    if (!admin) {
      reactor->Finish(status_of(grpc::StatusCode::PERMISSION_DENIED, admin.error()));
      return reactor;
    }
    reactor->Finish(body());
    return reactor;
  }

  ControlPlane::Impl* cp_;
};

// A fresh serving or admin SVID from the CA (key generated here, written 0600) in the layout of
// api::load_svid_dir; a serving one also as serving.pem, chain and key in one file (0600), which
// gRPC re-reads (api::server_credentials). Returns the new certificate's notAfter.
Result<std::time_t> issue_local_svid(const ca::Authority& authority, const identity::SpiffeId& id,
                                     const std::string& dir, std::chrono::seconds ttl,
                                     const std::vector<std::string>& dns_names, bool serving) {
  auto key = crypto::generate_key(crypto::KeyType::EcP256);
  if (!key) return fail(key.error());
  auto csr = crypto::make_csr(key->get());
  if (!csr) return fail(csr.error());
  auto issued = authority.sign_csr(csr->get(), id, ttl, unix_now(), dns_names);
  if (!issued) return fail(issued.error());
  auto leaf = crypto::parse_cert_chain_pem(issued->cert_pem);
  if (!leaf || leaf->empty())
    return fail("control.own_certificate", "cannot read the certificate just issued");
  const std::string key_pem = crypto::private_key_to_pem(key->get());
  if (auto st = files::make_dirs(dir, 0700); !st) return fail(st.error());
  // serving.pem first: cert-chain.pem, which own_svid_state judges, is replaced only once what
  // gRPC serves has been, so a failed write is retried at the next check.
  if (serving) {
    if (auto st = files::write_file_atomic(dir + "/serving.pem", issued->chain_pem + key_pem, 0600); !st)
      return fail(st.error());
  }
  if (auto st = files::write_file_atomic(dir + "/key.pem", key_pem, 0600); !st) return fail(st.error());
  if (auto st = files::write_file_atomic(dir + "/cert-chain.pem", issued->chain_pem, 0644); !st)
    return fail(st.error());
  if (auto st = files::write_file_atomic(dir + "/root-cert.pem", authority.bundle().to_pem(), 0644); !st)
    return fail(st.error());
  return crypto::asn1_to_unix(X509_get0_notAfter(leaf->front().get()));
}

// What an own identity directory needs. `reissue`: it is missing or unreadable, not a valid SVID
// under `authority`'s bundle at `now`, or past half of its life counted from its issuance (the CA
// backdates notBefore by kClockSkewBackdate) — renewal at half-life, as every mesh agent does.
// A CA rotation alone does not re-issue it: the serving certificate moves to the new CA at its
// next renewal, so proxies that missed the rotation can still connect and receive the new bundle
// until then. `stale_bundle`: root-cert.pem is not the current bundle (rewritten on its own).
struct OwnSvidState {
  bool reissue = true;
  bool stale_bundle = false;
  std::time_t not_after = 0;
};
OwnSvidState own_svid_state(const std::string& dir, const ca::Authority& authority, std::time_t now) {
  OwnSvidState out;
  auto files = api::load_svid_dir(dir);
  if (!files) return out;
  auto chain = crypto::parse_cert_chain_pem(files->cert_chain_pem);
  if (!chain || chain->empty() || !identity::verify_svid(*chain, authority.bundle(), now)) return out;
  X509* leaf = chain->front().get();
  const std::time_t issued = crypto::asn1_to_unix(X509_get0_notBefore(leaf)) + ca::kClockSkewBackdate.count();
  out.not_after = crypto::asn1_to_unix(X509_get0_notAfter(leaf));
  out.reissue = now >= issued + (out.not_after - issued) / 2;
  out.stale_bundle = files->bundle_pem != authority.bundle().to_pem();
  return out;
}

}  // namespace

Status ControlPlane::Impl::renew_own_identities(bool at_start) {
  const auto authority = signer();
  const std::time_t now = unix_now();
  struct Own {
    const char* name;
    identity::SpiffeId id;
    std::vector<std::string> dns_names;
  };
  // admin/ first: meshguardctl checks the serving certificate with admin/root-cert.pem, which
  // must already hold the CA that signs the next serving certificate.
  const Own owns[] = {{"admin", api::admin_id(td), {}},
                      {"control", api::control_plane_id(td), {api::kControlPlaneHost}}};
  for (const Own& own : owns) {
    const bool serving = std::string_view(own.name) == "control";
    const std::string dir = options.data_dir + "/" + own.name;
    auto& expiry = metrics.gauge("meshguard_own_certificate_expiry_seconds", {{"identity", own.name}});
    const OwnSvidState state = own_svid_state(dir, *authority, now);
    if (!state.reissue && !(at_start && serving)) {
      expiry.set(static_cast<double>(state.not_after));
      if (state.stale_bundle) {
        if (auto st = files::write_file_atomic(dir + "/root-cert.pem", authority->bundle().to_pem(), 0644);
            !st)
          log_line("cannot update " + dir + "/root-cert.pem (retrying): " + st.error().to_string());
      }
      continue;
    }
    auto not_after =
        issue_local_svid(*authority, own.id, dir, options.own_certificate_ttl, own.dns_names, serving);
    metrics
        .counter("meshguard_own_certificate_issued_total",
                 {{"identity", own.name}, {"result", not_after ? "success" : "error"}})
        .inc();
    if (!not_after) {
      if (at_start) return fail(not_after.error());
      if (state.not_after > 0) expiry.set(static_cast<double>(state.not_after));
      log_line("cannot renew " + own.id.str() + " (retrying): " + not_after.error().to_string());
      continue;
    }
    expiry.set(static_cast<double>(*not_after));
    if (!at_start) log_line("renewed " + own.id.str() + ", valid until " + std::to_string(*not_after));
  }
  return {};
}

// A cluster rotates its service-account signing keys by publishing a new JWKS: the file is read
// again when its content changes; one that does not parse keeps the keys in use (logged once).
void ControlPlane::Impl::reload_k8s_jwks() {
  if (options.k8s_jwks_file.empty()) return;
  auto text = files::read_file(options.k8s_jwks_file);
  std::lock_guard lock(k8s_mutex);
  if (!k8s) return;
  // k8s_jwks_text doubles as "what was last seen": a read error is reported once, not every pass.
  // (A NUL first: no JSON file's content.)
  const std::string seen = text ? *text : std::string(1, '\0') + "unreadable: " + text.error().to_string();
  if (seen == k8s_jwks_text) return;
  k8s_jwks_text = seen;
  if (!text) {
    metrics.counter("meshguard_config_reload_total", {{"resource", "k8s_jwks"}, {"result", "error"}}).inc();
    log_line("Kubernetes JWKS " + options.k8s_jwks_file +
             " cannot be read, keeping the previous keys: " + text.error().to_string());
    return;
  }
  auto jwks = jwt::parse_jwks(*text);
  metrics
      .counter("meshguard_config_reload_total",
               {{"resource", "k8s_jwks"}, {"result", jwks ? "success" : "error"}})
      .inc();
  if (!jwks) {
    log_line("Kubernetes JWKS " + options.k8s_jwks_file +
             " does not parse, keeping the previous keys: " + jwks.error().message);
    return;
  }
  log_line("Kubernetes JWKS " + options.k8s_jwks_file + " reloaded: " + std::to_string(jwks->keys.size()) +
           " key(s)");
  k8s->keys = std::make_shared<const jwt::Jwks>(std::move(*jwks));
}

void ControlPlane::Impl::housekeeping_loop() {
  while (true) {
    {
      std::unique_lock lock(mutex);
      if (cv.wait_for(lock, options.housekeeping_interval, [&] { return stopping; })) return;
    }
    (void)renew_own_identities(/*at_start=*/false);
    reload_k8s_jwks();
  }
}

// ---------------------------------------------------------------------------------------- lifecycle

ControlPlane::ControlPlane(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ControlPlane::~ControlPlane() { shutdown(); }

Result<std::unique_ptr<ControlPlane>> ControlPlane::open(const ServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  const std::string& dir = options.data_dir;
  if (dir.empty()) return fail("control.no_data_dir", "--data-dir is required");
  if (auto st = files::make_dirs(dir, 0700); !st) return fail(st.error());
  const auto now = unix_now();

  // CA: an operator's plugged-in CA, or the built-in one (created on first start).
  const std::string ca_dir = dir + "/ca";
  if (options.plug_in_ca_dir.empty() && !files::exists(ca_dir + "/" + ca::kCaKeyFile) &&
      files::exists(dir + "/ca.new/" + ca::kCaKeyFile)) {
    // A rotation stopped between its two renames (see persist_rotation): finish it.
    if (::rename((dir + "/ca.new").c_str(), ca_dir.c_str()) != 0)
      return fail("control.ca_dir", "cannot move " + dir + "/ca.new to " + ca_dir);
  }
  Result<ca::Authority> loaded = fail("control.ca", "no CA");
  if (!options.plug_in_ca_dir.empty()) {
    loaded = ca::Authority::load_plug_in_dir(options.plug_in_ca_dir, options.trust_domain, now);
  } else if (files::exists(ca_dir + "/" + ca::kCaKeyFile)) {
    loaded = ca::Authority::load_dir(ca_dir, now);
  } else {
    loaded = ca::Authority::create_self_signed(options.trust_domain, crypto::KeyType::EcP256, now);
    if (loaded) {
      if (auto st = loaded->save_dir(ca_dir); !st) return fail(st.error());
    }
  }
  if (!loaded) return fail(loaded.error());
  impl->authority = std::make_shared<const ca::Authority>(std::move(*loaded));
  impl->td = impl->authority->trust_domain();
  const std::string td = impl->td;
  impl->token_issuer = api::control_plane_id(td).str();

  // Bootstrap-token signing key.
  const std::string token_key_path = dir + "/token-key.pem";
  if (files::exists(token_key_path)) {
    if (auto st = files::check_private_key_permissions(token_key_path); !st) return fail(st.error());
    auto pem = files::read_file(token_key_path);
    if (!pem) return fail(pem.error());
    auto key = crypto::parse_private_key_pem(*pem);
    if (!key) return fail(key.error());
    impl->token_key = std::move(*key);
  } else {
    auto key = crypto::generate_key(crypto::KeyType::EcP256);
    if (!key) return fail(key.error());
    if (auto st = files::write_file_atomic(token_key_path, crypto::private_key_to_pem(key->get()), 0600); !st)
      return fail(st.error());
    impl->token_key = std::move(*key);
  }

  if (!options.k8s_issuer.empty() || !options.k8s_jwks_file.empty()) {
    if (options.k8s_issuer.empty() || options.k8s_jwks_file.empty())
      return fail("control.k8s", "--k8s-issuer and --k8s-jwks go together");
    auto text = files::read_file(options.k8s_jwks_file);
    if (!text) return fail(text.error());
    auto jwks = jwt::parse_jwks(*text);
    if (!jwks) return fail("control.k8s", options.k8s_jwks_file + ": " + jwks.error().message);
    impl->k8s = ServiceAccountIssuer{options.k8s_issuer, options.k8s_audience,
                                     std::make_shared<const jwt::Jwks>(std::move(*jwks))};
    impl->k8s_jwks_text = std::move(*text);
  }

  auto store = open_sqlite_store(dir + "/store.db");
  if (!store) return fail(store.error());
  impl->store = std::move(*store);
  if (auto st = impl->rebuild_model(); !st) return fail(st.error());
  if (const auto* mesh = impl->model->mesh.resource; mesh && mesh->trust_domain != td)
    return fail("control.trust_domain_mismatch",
                "the stored Mesh names trust domain " + mesh->trust_domain + " but the CA's is " + td);
  auto ttl = std::chrono::seconds(impl->model->mesh.certificate_ttl_seconds);
  (void)ttl;

  // Own serving certificate (issued at every start) and an admin identity for meshguardctl;
  // both renewed while running (housekeeping_loop).
  if (auto st = impl->renew_own_identities(/*at_start=*/true); !st) return fail(st.error());
  return std::unique_ptr<ControlPlane>(new ControlPlane(std::move(impl)));
}

Status ControlPlane::start() {
  Impl& s = *impl_;
  s.certificate_service = std::make_unique<CertificateServiceImpl>(&s);
  s.config_service = std::make_unique<ConfigServiceImpl>(&s);
  s.admin_service = std::make_unique<AdminServiceImpl>(&s);
  grpc::ServerBuilder builder;
  const std::string own_dir = s.options.data_dir + "/control";
  builder.AddListeningPort(s.options.listen,
                           api::server_credentials(own_dir + "/serving.pem", own_dir + "/root-cert.pem",
                                                   s.options.housekeeping_interval),
                           &s.bound_port);
  builder.RegisterService(s.certificate_service.get());
  builder.RegisterService(s.config_service.get());
  builder.RegisterService(s.admin_service.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(api::kMaxMessageBytes));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  s.server = builder.BuildAndStart();
  if (!s.server || s.bound_port == 0) return fail("control.bind", "cannot listen on " + s.options.listen);

  if (!s.options.metrics_listen.empty()) {
    auto colon = s.options.metrics_listen.rfind(':');
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    if (colon == std::string::npos ||
        inet_pton(AF_INET, s.options.metrics_listen.substr(0, colon).c_str(), &addr.sin_addr) != 1)
      return fail("control.bad_metrics_address", "metrics address must be IPv4:PORT: " + s.options.metrics_listen);
    addr.sin_port = htons(static_cast<uint16_t>(std::stoi(s.options.metrics_listen.substr(colon + 1))));
    s.metrics_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(s.metrics_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s.metrics_fd < 0 || ::bind(s.metrics_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(s.metrics_fd, 16) != 0)
      return fail("control.bind", "cannot listen on " + s.options.metrics_listen);
    socklen_t len = sizeof addr;
    ::getsockname(s.metrics_fd, reinterpret_cast<sockaddr*>(&addr), &len);
    s.metrics_port = ntohs(addr.sin_port);
    s.metrics_thread = std::thread([&s] { s.serve_metrics(); });
  }
  s.metrics.describe("meshguard_connected_proxies", "Proxies with an open config stream");
  s.metrics.describe("meshguard_push_latency_milliseconds", "From a change (apply/delete) to its snapshot being sent");
  s.metrics.describe("meshguard_push_ack_latency_milliseconds", "From a change to the proxy's ACK of it");
  s.metrics.describe("meshguard_proxy_config_revision", "Store revision of the snapshot each proxy last ACKed");
  s.metrics.describe("meshguard_csr_total", "Certificate requests by result and kind (bootstrap|renewal)");
  s.metrics.describe("meshguard_config_acks_total", "Snapshot ACKs and NACKs");
  s.metrics.describe("meshguard_config_reload_total",
                     "Re-reads of the Kubernetes JWKS file (resource=k8s_jwks) by result");
  s.metrics.describe("meshguard_own_certificate_issued_total",
                     "The control plane's own identities issued: identity (control|admin), result");
  s.metrics.describe("meshguard_own_certificate_expiry_seconds",
                     "notAfter (Unix seconds) of the control plane's own identities");
  s.distributor = std::thread([&s] { s.distribute_loop(); });
  s.housekeeping_thread = std::thread([&s] { s.housekeeping_loop(); });
  log_line("trust domain " + s.td + ", store revision " + std::to_string(s.model->revision));
  return {};
}

std::string ControlPlane::address() const {
  auto colon = impl_->options.listen.rfind(':');
  return impl_->options.listen.substr(0, colon) + ":" + std::to_string(impl_->bound_port);
}

std::string ControlPlane::metrics_address() const {
  if (impl_->metrics_port == 0) return "";
  auto colon = impl_->options.metrics_listen.rfind(':');
  return impl_->options.metrics_listen.substr(0, colon) + ":" + std::to_string(impl_->metrics_port);
}

const std::string& ControlPlane::trust_domain() const { return impl_->td; }

void ControlPlane::shutdown() {
  Impl& s = *impl_;
  std::vector<WatchReactor*> open_streams;
  {
    std::lock_guard lock(s.mutex);
    if (s.stopping) return;
    s.stopping = true;
    for (auto& [reactor, key] : s.streams) {
      reactor->ref();
      open_streams.push_back(reactor);
    }
    s.cv.notify_all();
  }
  for (auto* reactor : open_streams) {
    reactor->finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
    reactor->unref();
  }
  std::vector<AdminWatchReactor*> open_watchers;
  {
    std::lock_guard lock(s.watch_mutex);
    for (auto* w : s.watchers) {
      w->ref();
      open_watchers.push_back(w);
    }
  }
  for (auto* w : open_watchers) {
    w->finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
    w->unref();
  }
  if (s.server) s.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (s.distributor.joinable()) s.distributor.join();
  if (s.rotation_thread.joinable()) s.rotation_thread.join();
  if (s.housekeeping_thread.joinable()) s.housekeeping_thread.join();
  if (s.metrics_thread.joinable()) s.metrics_thread.join();
  if (s.metrics_fd >= 0) ::close(s.metrics_fd);
  s.metrics_fd = -1;
}

void ControlPlane::wait() {
  if (impl_->server) impl_->server->Wait();
}

}  // namespace mg::control
