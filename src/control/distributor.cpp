// control/distributor.cpp — see distributor.h.
#include "control/distributor.h"

#include <algorithm>

#include "api/grpc_tls.h"
#include "control/support.h"
#include "policy/match.h"
#include "policy/mesh.h"

namespace mg::control {
namespace pb = ::meshguard::v1;

namespace {

double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// The workload a proxy speaks for; a registered Workload wins over the proxy's own labels.
Result<WorkloadView> resolve_workload(const Model& m, const identity::SpiffeId& id, const pb::Hello& hello) {
  // The certificate's trust domain says which mesh the proxy belongs to (docs/MESHES.md).
  const MeshView* view = m.view_for_trust_domain(id.trust_domain());
  if (!view) return fail("auth.unknown_mesh", id.str() + " belongs to no mesh this control plane serves");
  auto ns = id.istio_namespace();
  auto sa = id.istio_service_account();
  if (!ns || !sa)
    return fail("auth.not_workload", id.str() + " is not a workload identity (ns/<ns>/sa/<sa>)");
  if (*ns == api::kSystemNamespace)
    return fail("auth.reserved", "namespace meshguard-system runs no workloads");
  const std::string& name = hello.workload();
  if (name.empty() || name.size() > 253 ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-.") != std::string::npos)
    return fail("hello.bad_name", "workload name must be a lower-case DNS name");
  WorkloadView w;
  w.mesh = view->name;
  w.name = name;
  w.ns = std::string(*ns);
  w.service_account = std::string(*sa);
  if (const auto* reg = find_workload(*view->set, w.ns, name)) {
    if (!reg->service_account.empty() && reg->service_account != w.service_account)
      return fail("hello.wrong_service_account", "Workload " + w.ns + "/" + name +
                                                     " runs as service account " + reg->service_account +
                                                     ", not " + w.service_account);
    w.labels = reg->labels;
    w.registered = true;
  } else {
    for (const auto& [k, v] : hello.labels()) w.labels[k] = v;
  }
  return w;
}

// The view of the proxy's mesh; a mesh deleted since its Hello leaves the proxy nothing (null).
const MeshView* view_of(const Model& m, const WorkloadView& w) { return m.view(w.mesh); }

pb::ConfigSnapshot snapshot_message(const Model& m, const MeshView& v, const WorkloadView& w,
                                    const EndpointsList& endpoints) {
  // The version covers every bundle sent: the mesh's, the federated ones and the control plane's
  // (the same text as before several meshes for the default mesh without federation).
  const std::string bundles = v.bundle_pem + v.federated_text + v.control_plane_bundle_pem;
  auto snap = snapshot_for(*v.set, w, v.mesh, bundles, &endpoints);
  pb::ConfigSnapshot out;
  out.set_version(snap.version);
  out.set_revision(m.revision);
  out.set_policies_yaml(std::move(snap.policies_yaml));
  out.set_trust_bundle_pem(v.bundle_pem);
  out.set_federated_bundles(v.federated_text);
  out.set_control_plane_bundle_pem(v.control_plane_bundle_pem);
  if (v.name != policy::kDefaultMesh) out.set_mesh_name(v.name);
  auto* mesh = out.mutable_mesh();
  mesh->set_trust_domain(v.mesh.config.trust_domain);
  mesh->set_root_namespace(v.mesh.config.root_namespace);
  mesh->set_path_normalization(std::string(policy::to_string(v.mesh.config.path_normalization)));
  mesh->set_certificate_ttl_seconds(v.mesh.certificate_ttl_seconds);
  for (const auto& [k, v] : w.labels) (*out.mutable_labels())[k] = v;
  return out;
}

// What a proxy's Hello registers: its address (checked: an IP, else the stream's peer address) and
// its inbound listeners (ports checked).
Result<Registration> registration_of(const WorkloadView& w, const pb::Hello& hello, const std::string& peer) {
  Registration r;
  if (w.mesh != policy::kDefaultMesh) r.mesh = w.mesh;
  r.name = w.name;
  r.ns = w.ns;
  r.service_account = w.service_account;
  for (const auto& [k, v] : hello.labels()) r.labels[k] = v;
  if (!hello.address().empty() && !policy::parse_ip(hello.address()))
    return fail("hello.bad_address", "address \"" + hello.address().substr(0, 64) + "\" is not an IP address");
  r.address = hello.address().empty() ? peer_ip(peer) : hello.address();
  if (hello.inbound_ports_size() > 1024) return fail("hello.bad_ports", "more than 1024 inbound ports");
  for (const auto& p : hello.inbound_ports()) {
    if (p.port() == 0 || p.port() > 65535 || p.app_port() == 0 || p.app_port() > 65535)
      return fail("hello.bad_ports", "inbound port " + std::to_string(p.port()) + " → app port " +
                                         std::to_string(p.app_port()) + " is out of range 1..65535");
    r.inbound.push_back({p.port(), p.app_port(), p.protocol().substr(0, 16)});
  }
  return r;
}

}  // namespace

Distributor::Distributor(ConfigModel& model, Registry& registry, Store& store, telemetry::Registry& metrics,
                         std::chrono::milliseconds push_debounce, std::chrono::milliseconds forget_after)
    : model_(model),
      registry_(registry),
      store_(store),
      metrics_(metrics),
      push_debounce_(push_debounce),
      forget_after_(forget_after) {}

Distributor::Clock::time_point Distributor::forget_due(const ProxyRecord& record) const {
  // --forget-disconnected takes up to a billion hours: beyond the clock, never.
  const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() -
                                                                          record.disconnected_at);
  return forget_after_ >= room ? Clock::time_point::max() : record.disconnected_at + forget_after_;
}

bool Distributor::forgotten(const ProxyRecord& record, Clock::time_point now) const {
  return !record.connected && now >= forget_due(record);
}

void Distributor::forget_disconnected(Clock::time_point now) {
  // Called at every stream's end: a scan of every record each time would make N proxies leaving
  // at once cost N², so it runs only once the earliest disconnected record can be due.
  if (now < next_forget_at_) return;
  auto next = Clock::time_point::max();  // a local: the lambda is not seen to run under the lock
  std::erase_if(records_, [&](const auto& entry) {
    if (!forgotten(entry.second, now)) {
      if (!entry.second.connected) next = std::min(next, forget_due(entry.second));
      return false;
    }
    // A control plane up for months sees every workload that ever ran: its series go with it.
    metrics_.remove("meshguard_proxy_config_revision", {{"workload", entry.first}});
    return true;
  });
  next_forget_at_ = next;
}

Distributor::~Distributor() {
  stop();
  join();
}

void Distributor::start() {
  // Every Service has its (maybe empty) endpoints from the start, before any proxy registers.
  const auto m = model_.current();
  registry_.recompute(m->set, m->revision, unix_now());
  {
    MutexLock lock(mutex_);
    publish_connected_locked(*m);
  }
  thread_ = std::thread([this] { run(); });
}

void Distributor::join() {
  if (thread_.joinable()) thread_.join();
}

void Distributor::stop() {
  std::vector<ProxyStream*> open_streams;
  {
    MutexLock lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [stream, entry] : streams_) {
      stream->ref();
      open_streams.push_back(stream);
    }
    cv_.notify_all();
  }
  for (auto* stream : open_streams) {
    stream->finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
    stream->unref();
  }
}

void Distributor::mark_dirty() {
  MutexLock lock(mutex_);
  mark_dirty_locked();
}

void Distributor::mark_dirty_locked() {
  if (!dirty_) dirty_since_ = Clock::now();
  dirty_ = true;
  cv_.notify_all();
}

bool Distributor::sleep_unless_stopping(std::chrono::milliseconds d) {
  const auto until = Clock::now() + d;
  MutexLock lock(mutex_);
  while (!stopping_ && cv_.wait_until(lock, until)) {
  }
  return !stopping_;
}

SharedSnapshot Distributor::snapshot_if_changed(ProxyRecord& record, const Model& m, const EndpointsList& endpoints,
                                                Clock::time_point change_at, SnapshotCache& cache, bool* revoke) {
  const MeshView* view = view_of(m, record.workload);
  if (!view) {  // its Mesh was deleted: it keeps enforcing what it has (fail static)
    record.evaluated_revision = m.revision;
    return nullptr;
  }
  // A Workload registered (or changed) after the proxy said Hello binds its name to a service
  // account: a stream of another service account loses it, never its configuration.
  if (const auto* reg = find_workload(*view->set, record.workload.ns, record.workload.name)) {
    if (!reg->service_account.empty() && reg->service_account != record.workload.service_account) {
      if (revoke) *revoke = true;
      return nullptr;
    }
    record.workload.labels = reg->labels;
    record.workload.registered = true;
  }
  record.evaluated_revision = m.revision;
  auto& cached = cache[selection_key(*view->set, record.workload)];
  if (!cached)
    cached =
        std::make_shared<const pb::ConfigSnapshot>(snapshot_message(m, *view, record.workload, endpoints));
  const pb::ConfigSnapshot& message = *cached;
  if (message.version() == record.sent_version) {
    // Not selected by the change: what it enforces is what this revision gives it.
    if (record.acked_version == record.sent_version) record.synced_revision = m.revision;
    return nullptr;
  }
  record.sent_version = message.version();
  record.nack_error.clear();  // a NACK is about the snapshot this one supersedes
  record.sent_bundle = m.bundle_hash;
  record.sent_mesh_bundle = view->bundle_hash;
  record.sent_federated = view->federated_hash;
  record.sent_revision = m.revision;
  record.change_at = change_at;
  record.awaiting_ack = true;
  if (!series_.convergence) {
    series_.convergence = &metrics_.histogram("pilot_proxy_convergence_time", {},
                                              telemetry::Histogram::kConvergenceBucketsSeconds);
    series_.pushes = &metrics_.counter("pilot_xds_pushes", {{"type", "snapshot"}});
  }
  series_.convergence->observe(ms_between(change_at, Clock::now()) / 1000.0);
  series_.pushes->inc();
  auto& mesh_pushes = series_.mesh_pushes[view->name];
  if (!mesh_pushes) mesh_pushes = &metrics_.counter("meshguard_mesh_pushes_total", {{"mesh", view->name}});
  mesh_pushes->inc();
  return cached;
}

void Distributor::save_registrations() {
  auto unsaved = registry_.take_unsaved(Clock::now(), unix_now());
  if (auto st = store_.save_registrations(unsaved.save, unsaved.remove); !st)
    log_line("cannot save " + std::to_string(unsaved.save.size() + unsaved.remove.size()) +
             " registration changes (kept in memory; each is written again at its next change): " +
             st.error().to_string());
}

// A push round to at least this many streams writes from two threads (run()).
constexpr size_t kParallelPushStreams = 512;

void Distributor::run() {
  MutexLock lock(mutex_);
  while (!stopping_) {
    // Besides a change, the end of a registration's grace period (it leaves the endpoints), and
    // registrations to save.
    while (!dirty_ && !stopping_) {
      const auto expiry = registry_.next_expiry();
      if (registry_.has_unsaved()) {
        lock.unlock();
        save_registrations();
        lock.lock();
      } else if (!expiry) {
        cv_.wait(lock);
      } else if (!cv_.wait_until(lock, *expiry) && registry_.expire(Clock::now())) {
        mark_dirty_locked();
      }
    }
    if (stopping_) break;
    // Debounce: let a burst of applies settle into one push.
    const auto settled = Clock::now() + push_debounce_;
    while (!stopping_ && cv_.wait_until(lock, settled)) {
    }
    if (stopping_) break;
    auto change_at = dirty_since_;
    dirty_ = false;
    lock.unlock();
    auto st = model_.rebuild();
    lock.lock();
    if (!st) {
      log_line("cannot rebuild the configuration model: " + st.error().to_string());
      continue;
    }
    auto m = model_.current();
    registry_.expire(Clock::now());
    forget_disconnected(Clock::now());
    publish_connected_locked(*m);
    std::vector<Registry::Change> endpoint_changes;
    const auto endpoints = registry_.recompute(m->set, m->revision, unix_now(), &endpoint_changes);
    struct Push {
      ProxyStream* stream;
      SharedSnapshot snapshot;
      uint64_t order;
    };
    std::vector<Push> out;
    std::vector<ProxyStream*> revoked;
    SnapshotCache cache;
    for (auto& [stream, entry] : streams_) {
      const std::string& key = entry.key;
      bool revoke = false;
      if (auto message = snapshot_if_changed(records_[key], *m, *endpoints, change_at, cache, &revoke)) {
        stream->ref();
        out.push_back({stream, std::move(message), ++push_order_});
      } else if (revoke) {
        stream->ref();
        revoked.push_back(stream);
        log_line("stream for " + key + " (" + records_[key].spiffe_id +
                 ") ended: the Workload is now registered for another service account");
      }
    }
    lock.unlock();
    // gRPC performs a write on the thread that starts it when it can (framing, TLS, sendmsg): at
    // thousands of streams the writes are most of a round's CPU, and on one thread they are the
    // round's critical path while gRPC's threads read the ACKs. A large round shares them with a
    // second thread; each stream still gets one push, and its order (taken above) settles races.
    const auto push_all = [](Push* first, Push* last) {
      for (Push* p = first; p != last; ++p) {
        p->stream->push(std::move(p->snapshot), p->order);
        p->stream->unref();
      }
    };
    Push* const begin = out.data();
    Push* const end = begin + out.size();
    if (out.size() >= kParallelPushStreams) {
      Push* const middle = begin + out.size() / 2;
      std::thread helper(push_all, middle, end);
      push_all(begin, middle);
      helper.join();
    } else {
      push_all(begin, end);
    }
    for (auto* stream : revoked) {
      stream->finish(grpc::Status(
          grpc::StatusCode::PERMISSION_DENIED,
          "hello.wrong_service_account: the Workload is registered for another service account"));
      stream->unref();
    }
    save_registrations();
    if (endpoints_listener_ && !endpoint_changes.empty()) endpoints_listener_(m->revision, endpoint_changes);
    lock.lock();
  }
  lock.unlock();
  save_registrations();  // what the last moments changed, for the next start
}

grpc::Status Distributor::hello(ProxyStream* stream, const identity::SpiffeId& id, const std::string& peer,
                                const pb::Hello& hello, std::string* key_out) {
  std::vector<ProxyStream*> replaced;
  SharedSnapshot first;
  uint64_t first_order = 0;
  {
    MutexLock lock(mutex_);
    // The model is read under the lock the distributor pushes under: either it already pushed
    // the newest model to the streams (this one not among them) and we read that model here, or
    // it pushes after we registered.
    auto model = model_.current();
    auto workload = resolve_workload(*model, id, hello);
    if (!workload) return status_of(grpc::StatusCode::PERMISSION_DENIED, workload.error());
    const std::string key = workload->ns + "/" + workload->name;
    *key_out = key;
    auto registration = registration_of(*workload, hello, peer);
    if (!registration) return status_of(grpc::StatusCode::INVALID_ARGUMENT, registration.error());
    registration->spiffe_id = id.str();
    // A connected workload's name belongs to its identity: another SVID of the namespace cannot
    // take it over (a registered Workload binds it for good).
    if (auto it = records_.find(key);
        it != records_.end() && it->second.connected && it->second.spiffe_id != id.str())
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          "hello.name_in_use: workload " + key + " is connected as " + it->second.spiffe_id);
    // The same across replicas on etcd: connected at another replica as another identity.
    if (auto other = registry_.connected_at_peer_as_other(key, id.str()))
      return grpc::Status(
          grpc::StatusCode::PERMISSION_DENIED,
          "hello.name_in_use: workload " + key + " is connected at another replica as " + *other);
    // A second stream for the same workload and identity replaces the first (a restarted proxy).
    if (auto it = streams_by_key_.find(key); it != streams_by_key_.end()) {
      for (auto* other : it->second) {
        if (other == stream) continue;
        other->ref();
        replaced.push_back(other);
      }
    }
    ProxyRecord& rec = records_[key];
    rec.workload = *workload;
    rec.spiffe_id = id.str();
    rec.peer = peer;
    rec.connected = true;
    rec.cert_state = hello.cert_state();
    rec.cert_serial = hello.cert_serial();
    rec.cert_not_after = hello.cert_not_after_unix();
    rec.last_seen = unix_now();
    rec.proxy_version = hello.proxy_version();
    rec.acked_version = hello.last_version();
    rec.acked_revision = hello.last_revision();
    rec.synced_revision = 0;  // known again at its first ACK on this stream
    rec.admin_address = hello.admin_address().substr(0, 256);
    rec.sent_version.clear();
    rec.nack_error.clear();
    add_stream_locked(stream, key, workload->mesh);
    registry_.join(key, std::move(*registration));
    cv_.notify_all();  // to save it
    // Its endpoints (and so the other proxies' snapshots) change only if some Service exists.
    if (!model->set.services.empty()) mark_dirty_locked();
    bool revoke = false;
    SnapshotCache cache;  // one proxy: nothing to share with
    first = snapshot_if_changed(rec, *model, *registry_.endpoints(), Clock::now(), cache, &revoke);
    if (revoke) first.reset();  // cannot happen with this model (resolve_workload checked); kept fail-closed
    // Pushed after the lock is released: a push round that starts meanwhile may reach the stream
    // first with a newer model, and then this one is dropped (ProxyStream::push).
    first_order = ++push_order_;
  }
  for (auto* r : replaced) {
    r->finish(grpc::Status(grpc::StatusCode::ABORTED, "replaced by a newer stream"));
    r->unref();
  }
  if (first) stream->push(std::move(first), first_order);
  return grpc::Status::OK;
}

void Distributor::ack(const std::string& key, const pb::Ack& ack) {
  MutexLock lock(mutex_);
  auto it = records_.find(key);
  if (it == records_.end()) return;
  ProxyRecord& rec = it->second;
  rec.last_seen = unix_now();
  if (ack.accepted()) {
    rec.acked_version = ack.version();
    if (ack.version() == rec.sent_version) {
      rec.acked_bundle = rec.sent_bundle;
      rec.acked_mesh_bundle = rec.sent_mesh_bundle;
      rec.acked_federated = rec.sent_federated;
      rec.acked_revision = rec.sent_revision;
      rec.synced_revision = rec.evaluated_revision;
      // Which store revision each proxy enforces: a proxy lagging behind shows here.
      if (!rec.revision_gauge)
        rec.revision_gauge = &metrics_.gauge("meshguard_proxy_config_revision", {{"workload", key}});
      rec.revision_gauge->set(rec.sent_revision);
    }
    rec.nack_error.clear();
  } else {
    rec.nack_error = ack.error().substr(0, 1024);
    log_line("NACK from " + key + " for version " + ack.version() + ": " + rec.nack_error);
  }
  if (rec.awaiting_ack && ack.version() == rec.sent_version) {
    rec.awaiting_ack = false;
    if (!series_.ack_latency)
      series_.ack_latency = &metrics_.histogram("meshguard_push_ack_latency_milliseconds");
    series_.ack_latency->observe_ms(ms_between(rec.change_at, Clock::now()));
  }
  if (ack.accepted()) {
    if (!series_.acks) series_.acks = &metrics_.counter("meshguard_config_acks_total", {{"result", "ack"}});
    series_.acks->inc();
  } else {
    if (!series_.nacks) {
      series_.nacks = &metrics_.counter("meshguard_config_acks_total", {{"result", "nack"}});
      series_.rejects = &metrics_.counter("pilot_total_xds_rejects", {{"type", "snapshot"}});
    }
    series_.nacks->inc();
    series_.rejects->inc();
  }
}

void Distributor::stream_done(ProxyStream* stream, const std::string& key) {
  MutexLock lock(mutex_);
  remove_stream_locked(stream);
  // A stream replaced by a newer one of the same workload (a reconnecting or restarted proxy)
  // ends after the newer one registered: the workload is still connected through that one.
  if (streams_by_key_.contains(key)) return;
  auto it = records_.find(key);
  if (it != records_.end()) {
    it->second.connected = false;
    it->second.last_seen = unix_now();
    it->second.disconnected_at = Clock::now();
    next_forget_at_ = std::min(next_forget_at_, forget_due(it->second));
  }
  forget_disconnected(Clock::now());  // the others whose time is up (this one's has just begun)
  // Streams ended by stop(): the control plane leaves, not the workload — its registration is
  // saved as connected, for the next start to restore.
  if (stopping_) return;
  registry_.leave(key, Clock::now());
  cv_.notify_all();  // to save it
  if (!model_.current()->set.services.empty()) mark_dirty_locked();
}

void Distributor::add_stream_locked(ProxyStream* stream, const std::string& key, const std::string& mesh) {
  auto [it, added] = streams_.try_emplace(stream, StreamEntry{key, mesh});
  if (!added) return;  // one Hello per stream (the Watch service refuses a second)
  streams_by_key_[key].push_back(stream);
  metrics_.gauge("pilot_xds").set(static_cast<int64_t>(streams_.size()));
  metrics_.gauge("meshguard_mesh_proxies_connected", {{"mesh", mesh}}).set(++connected_per_mesh_[mesh]);
}

void Distributor::remove_stream_locked(ProxyStream* stream) {
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  const StreamEntry entry = std::move(it->second);
  streams_.erase(it);
  if (auto by_key = streams_by_key_.find(entry.key); by_key != streams_by_key_.end()) {
    std::erase(by_key->second, stream);
    if (by_key->second.empty()) streams_by_key_.erase(by_key);
  }
  metrics_.gauge("pilot_xds").set(static_cast<int64_t>(streams_.size()));
  metrics_.gauge("meshguard_mesh_proxies_connected", {{"mesh", entry.mesh}})
      .set(--connected_per_mesh_[entry.mesh]);
}

void Distributor::publish_connected_locked(const Model& m) {
  for (const auto& [name, view] : m.meshes)
    metrics_.gauge("meshguard_mesh_proxies_connected", {{"mesh", name}}).set(connected_per_mesh_[name]);
}

std::map<std::string, ProxyRecord> Distributor::proxies() const {
  MutexLock lock(mutex_);
  const auto now = Clock::now();
  std::map<std::string, ProxyRecord> out;
  for (const auto& [key, rec] : records_) {
    if (!forgotten(rec, now)) out.emplace(key, rec);
  }
  return out;
}

BundleRollout Distributor::bundle_rollout(const std::string& want, std::string_view mesh) const {
  BundleRollout out;
  const bool one_mesh = !mesh.empty() && mesh != policy::kDefaultMesh;
  // Every proxy holds the default mesh's bundle (it trusts the control plane with it), so only
  // another mesh's rotation has federating meshes to wait for: mesh → what their proxies must ACK.
  std::map<std::string, std::string, std::less<>> federating;
  if (one_mesh) {
    const auto model = model_.current();
    const MeshView* rotated = model->view(mesh);
    const bool distributed = rotated && rotated->bundle_hash == want;
    for (const auto& [name, v] : model->meshes) {
      if (name == mesh) continue;
      if (std::find(v.federated_meshes.begin(), v.federated_meshes.end(), mesh) != v.federated_meshes.end())
        federating[name] = distributed ? v.federated_hash : std::string();  // "": nothing ACKs it yet
    }
  }
  MutexLock lock(mutex_);
  const int64_t now = unix_now();
  const auto steady_now = Clock::now();
  for (const auto& [key, rec] : records_) {
    if (forgotten(rec, steady_now)) continue;
    const std::string_view rec_mesh = rec.workload.mesh.empty() ? policy::kDefaultMesh : rec.workload.mesh;
    const std::string* acked_must_be = &want;
    const std::string* acked = one_mesh ? &rec.acked_mesh_bundle : &rec.acked_bundle;
    if (one_mesh && rec_mesh != mesh) {
      auto f = federating.find(rec_mesh);
      if (f == federating.end()) continue;
      acked_must_be = &f->second;
      acked = &rec.acked_federated;
    }
    // A proxy that dropped its stream moments ago is most likely reconnecting (it does after
    // every renewal): wait for it like a connected one rather than sign past it.
    const bool reconnecting = !rec.connected && now - rec.last_seen < 15;
    if (!rec.connected && !reconnecting) {
      out.not_connected.push_back(key);
    } else if (rec.connected && !acked_must_be->empty() && *acked == *acked_must_be) {
      ++out.acknowledged;
    } else {
      out.waiting.push_back(key);
    }
  }
  out.change_pending = dirty_;
  out.stopping = stopping_;
  return out;
}

}  // namespace mg::control
