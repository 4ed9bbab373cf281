// control/admin_service.cpp — see admin_service.h.
#include "control/admin_service.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "api/grpc_tls.h"
#include "common/thread_annotations.h"
#include "common/version.h"
#include "control/bootstrap_credentials.h"
#include "control/ca_rotation.h"
#include "control/distributor.h"
#include "control/mesh_cas.h"
#include "control/model.h"
#include "control/registry.h"
#include "control/store.h"
#include "control/support.h"
#include "crypto/openssl.h"
#include "meshguard/v1/meshguard.grpc.pb.h"
#include "policy/mesh.h"
#include "policy/parse.h"
#include "policy/select.h"

namespace mg::control {
namespace pb = ::meshguard::v1;

namespace {

pb::ResourceKey to_pb(const ResourceKey& k) {
  pb::ResourceKey out;
  out.set_kind(k.kind);
  out.set_namespace_(k.ns);
  out.set_name(k.name);
  return out;
}

class AdminWatchReactor;

// The open WatchResources streams. A reactor is registered for its life; publishing or closing
// never calls into one with the lock held (gRPC may run reactions inline) and holds a reference.
class Watchers {
 public:
  void add(AdminWatchReactor* w) MG_EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    watchers_.insert(w);
  }
  void remove(AdminWatchReactor* w) MG_EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    watchers_.erase(w);
  }
  void publish(const std::vector<pb::ResourceEvent>& events) MG_EXCLUDES(mutex_);
  void close_all() MG_EXCLUDES(mutex_);

 private:
  std::vector<AdminWatchReactor*> referenced() MG_EXCLUDES(mutex_);

  Mutex mutex_;
  std::set<AdminWatchReactor*> watchers_ MG_GUARDED_BY(mutex_);
};

class AdminWatchReactor final : public grpc::ServerWriteReactor<pb::ResourceEvent> {
 public:
  static constexpr size_t kMaxQueued = 4096;

  AdminWatchReactor(Watchers& watchers, const Status& admin, const pb::WatchResourcesRequest& req)
      : watchers_(watchers), kind_(req.kind()), ns_(req.namespace_()), mesh_(req.mesh()) {
    if (!admin) {
      finish(status_of(grpc::StatusCode::PERMISSION_DENIED, admin.error()));
      return;
    }
    watchers_.add(this);
    registered_ = true;
    // Tells the client it is registered: a listing it makes after this cannot miss a change.
    StartSendInitialMetadata();
  }

  void OnSendInitialMetadataDone(bool) override {}

  // The caller holds a ref.
  void enqueue(const std::vector<pb::ResourceEvent>& events) {
    MutexLock lock(mutex_);
    if (finishing_) return;
    for (const auto& e : events) {
      if (!kind_.empty() && e.key().kind() != kind_) continue;
      if (!ns_.empty() && e.key().namespace_() != ns_) continue;
      if (!mesh_.empty() && e.mesh() != mesh_) continue;
      queue_.push_back(e);
    }
    if (queue_.size() > kMaxQueued) {
      lock.unlock();
      finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "watcher too slow: more than 4096 events queued"));
      return;
    }
    if (writing_ || queue_.empty()) return;
    writing_ = true;
    const pb::ResourceEvent* next = &queue_.front();  // deque: stays put while others are appended
    lock.unlock();
    StartWrite(next);
  }

  void OnWriteDone(bool ok) override {
    MutexLock lock(mutex_);
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
    if (registered_) watchers_.remove(this);
    unref();
  }

  void finish(grpc::Status status) {
    MutexLock lock(mutex_);
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
  Watchers& watchers_;
  std::string kind_, ns_, mesh_;
  bool registered_ = false;
  Mutex mutex_;
  std::deque<pb::ResourceEvent> queue_ MG_GUARDED_BY(mutex_);
  bool writing_ MG_GUARDED_BY(mutex_) = false;
  bool finishing_ MG_GUARDED_BY(mutex_) = false;
  bool finished_ MG_GUARDED_BY(mutex_) = false;
  grpc::Status status_;  // written once under mutex_ before Finish(), never again
  std::atomic<int> refs_{1};
};

std::vector<AdminWatchReactor*> Watchers::referenced() {
  std::vector<AdminWatchReactor*> out;
  MutexLock lock(mutex_);
  for (auto* w : watchers_) {
    w->ref();
    out.push_back(w);
  }
  return out;
}

void Watchers::publish(const std::vector<pb::ResourceEvent>& events) {
  if (events.empty()) return;
  for (auto* w : referenced()) {
    w->enqueue(events);
    w->unref();
  }
}

void Watchers::close_all() {
  for (auto* w : referenced()) {
    w->finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
    w->unref();
  }
}

// The mesh of every resource of `set` by key: what an event says, for watchers of one mesh.
std::map<ResourceKey, std::string> meshes_by_key(const policy::ResourceSet& set) {
  std::map<ResourceKey, std::string> out;
  policy::for_each_kind([&](const char* kind, auto member) {
    for (const auto& r : set.*member)
      out[{kind, r.meta.ns, r.meta.name}] = policy::mesh_of(r.meta);  // a Mesh's ns is "" (cluster-scoped)
  });
  return out;
}

std::string mesh_in(const std::map<ResourceKey, std::string>& meshes, const ResourceKey& key) {
  auto it = meshes.find(key);
  return it == meshes.end() ? std::string(policy::kDefaultMesh) : it->second;
}

class AdminServiceImpl final : public pb::AdminService::CallbackService, public AdminService {
 public:
  explicit AdminServiceImpl(const AdminServiceDeps& deps) : d_(deps) {}

  grpc::Service* service() override { return this; }
  void close_watchers() override { watchers_.close_all(); }

  void publish_endpoint_changes(int64_t revision, const std::vector<Registry::Change>& changes) override {
    std::vector<pb::ResourceEvent> events;
    std::map<std::pair<std::string, std::string>, std::string> service_mesh;  // ServiceEndpoints: its Service's
    for (const auto& svc : d_.model.current()->set.services)
      service_mesh[{svc.meta.ns, svc.meta.name}] = policy::mesh_of(svc.meta);
    for (const auto& c : changes) {
      auto& e = events.emplace_back();
      e.set_revision(revision);
      auto mesh = service_mesh.find({c.ns, c.name});
      e.set_mesh(mesh == service_mesh.end() ? std::string(policy::kDefaultMesh) : mesh->second);
      e.mutable_key()->set_kind("ServiceEndpoints");
      e.mutable_key()->set_namespace_(c.ns);
      e.mutable_key()->set_name(c.name);
      e.set_change(c.change);
      e.set_generation(c.generation);
    }
    watchers_.publish(events);
  }

  grpc::ServerUnaryReactor* Apply(grpc::CallbackServerContext* ctx, const pb::ApplyRequest* req,
                                  pb::ApplyResponse* resp) override {
    return finish(ctx, [&]() -> grpc::Status {
      if (req->files_size() == 0) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "nothing to apply");
      // Each file parsed once, here: the mesh-level checks the store cannot know about (the trust
      // domain is the CA's) read this parse, and the store stores it.
      std::vector<ParsedFile> files;
      files.reserve(static_cast<size_t>(req->files_size()));
      for (const auto& file : req->files()) {
        auto parsed = parse_apply_file(
            {file.yaml(), file.source().empty() ? "<apply>" : file.source(), req->namespace_(), req->mesh()});
        if (!parsed) return status_of(grpc::StatusCode::INVALID_ARGUMENT, parsed.error());
        for (const auto& mesh : parsed->resources.meshes) {
          if (mesh.meta.name != policy::kDefaultMesh) {
            // Another mesh: its own CA, kept for the trust domain it was made for, built-in or
            // plugged in from one directory — as the stored Mesh says too (whose CA may not be
            // loaded here: a pluginDir unreadable at start).
            Status ok = d_.mesh_cas ? same_ca_source(mesh)
                                    : Status(fail("control.meshes_unsupported",
                                                  "this control plane serves only the default mesh"));
            if (ok) ok = d_.mesh_cas->check(mesh.meta.name, mesh.trust_domain, mesh.ca_plugin_dir);
            if (!ok)
              return status_of(grpc::StatusCode::INVALID_ARGUMENT,
                               Error{ok.error().code, mesh.meta.source + ":" + std::to_string(mesh.meta.line) +
                                                          ": " + ok.error().message});
            continue;
          }
          if (mesh.trust_domain != d_.trust_domain)
            return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                mesh.meta.source + ":" + std::to_string(mesh.meta.line) + ": trustDomain " +
                                    mesh.trust_domain + " differs from the CA's trust domain " +
                                    d_.trust_domain + " (changing it needs a new CA)");
        }
        files.push_back(std::move(*parsed));
      }
      if (auto st = check_custom_providers(files); !st.ok()) return st;
      if (auto st = check_meshes_after(files); !st.ok()) return st;
      if (req->dry_run()) {
        auto plan = d_.store.plan(files);
        if (!plan) return status_of(grpc::StatusCode::INVALID_ARGUMENT, plan.error());
        fill(*plan, resp);
        return grpc::Status::OK;
      }
      std::map<ResourceKey, std::string> meshes;
      for (const auto& f : files) meshes.merge(meshes_by_key(f.resources));
      // Every file in one transaction: all or nothing, each error naming its file and line.
      auto result = d_.store.apply_parsed(std::move(files), req->if_revision());
      if (!result) {
        const auto code = is(result.error(), StoreError::Conflict) ? grpc::StatusCode::ABORTED
                          : is(result.error(), StoreError::Etcd)   ? grpc::StatusCode::UNAVAILABLE
                                                                   : grpc::StatusCode::INVALID_ARGUMENT;
        return status_of(code, result.error());
      }
      fill(*result, resp);
      if (!result->created.empty() || !result->configured.empty()) d_.distributor.mark_dirty();
      std::vector<pb::ResourceEvent> events;
      for (const auto& [keys, change] :
           {std::pair{&result->created, "created"}, std::pair{&result->configured, "configured"}}) {
        for (const auto& k : *keys) {
          auto& e = events.emplace_back();
          e.set_revision(result->revision);
          *e.mutable_key() = to_pb(k);
          e.set_change(change);
          e.set_mesh(mesh_in(meshes, k));
        }
      }
      watchers_.publish(events);
      d_.metrics.counter("meshguard_applies_total").inc();
      return grpc::Status::OK;
    });
  }

  static void fill(const ApplyResult& result, pb::ApplyResponse* resp) {
    resp->set_revision(result.revision);
    for (const auto& k : result.created) *resp->add_created() = to_pb(k);
    for (const auto& k : result.configured) *resp->add_configured() = to_pb(k);
    for (const auto& k : result.unchanged) *resp->add_unchanged() = to_pb(k);
  }

  // A CUSTOM AuthorizationPolicy must name a provider of its mesh's Mesh in force after this
  // apply: the last Mesh of that name in the files, else the stored one. Checked before anything
  // is stored.
  grpc::Status check_custom_providers(const std::vector<ParsedFile>& files) {
    std::set<std::string> custom_meshes;
    for (const auto& f : files) {
      for (const auto& p : f.resources.authorization_policies) {
        if (p.action == policy::Action::Custom) custom_meshes.insert(std::string(policy::mesh_of(p.meta)));
      }
    }
    if (custom_meshes.empty()) return grpc::Status::OK;
    std::optional<policy::ResourceSet> stored;
    for (const auto& name : custom_meshes) {
      const policy::Mesh* applied_mesh = nullptr;
      for (const auto& f : files) {
        if (const auto* m = policy::find_mesh(f.resources, name)) applied_mesh = m;
      }
      policy::MeshConfig mesh;
      if (applied_mesh) {
        mesh.extension_providers = applied_mesh->extension_providers;
      } else {
        if (!stored) {
          auto all = d_.store.resources();
          if (!all) return status_of(grpc::StatusCode::INTERNAL, all.error());
          stored = std::move(*all);
        }
        if (const auto* m = policy::find_mesh(*stored, name))
          mesh.extension_providers = m->extension_providers;
      }
      for (const auto& f : files) {
        if (auto st = policy::check_custom_providers(policy::resources_of_mesh(f.resources, name), mesh); !st)
          return status_of(grpc::StatusCode::INVALID_ARGUMENT, st.error());
      }
    }
    return grpc::Status::OK;
  }

  // Several meshes (policy::check_meshes) over what the store would hold after this apply: trust
  // domains unique, federatesWith and every resource's mesh naming meshes that exist. Only when
  // another mesh than the default is involved, so a one-mesh apply costs nothing more.
  grpc::Status check_meshes_after(const std::vector<ParsedFile>& files) {
    bool involved = false;
    for (const auto& f : files) involved |= policy::has_other_meshes(f.resources);
    auto model = d_.model.current();
    involved |= model->meshes.size() > 1 || policy::has_other_meshes(model->set);
    if (!involved) return grpc::Status::OK;
    auto stored = d_.store.resources();
    if (!stored) return status_of(grpc::StatusCode::INTERNAL, stored.error());
    for (const auto& f : files) {
      policy::ResourceSet copy = f.resources;
      stored->append(std::move(copy));
    }
    if (auto st = policy::check_meshes(*stored, d_.trust_domain); !st)
      return status_of(grpc::StatusCode::INVALID_ARGUMENT, st.error());
    return grpc::Status::OK;
  }

  // The mesh a stored document belongs to ("default" when it does not parse: it is then no
  // other mesh's either).
  static std::string stored_mesh(const StoredResource& r) {
    auto parsed = policy::parse_resources(r.yaml, r.key.str());
    std::string mesh(policy::kDefaultMesh);
    if (!parsed) return mesh;
    policy::for_each_kind(*parsed, [&](const char*, const auto& list) {
      for (const auto& x : list) mesh = std::string(policy::mesh_of(x.meta));
    });
    return mesh;
  }
  static bool in_mesh(const StoredResource& r, const std::string& want) {
    return want.empty() || stored_mesh(r) == want;
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx, const pb::DeleteRequest* req,
                                   pb::DeleteResponse* resp) override {
    return finish(ctx, [&]() -> grpc::Status {
      std::vector<ResourceKey> keys;
      if (req->has_key()) keys.push_back({req->key().kind(), req->key().namespace_(), req->key().name()});
      for (const auto& k : req->keys()) keys.push_back({k.kind(), k.namespace_(), k.name()});
      if (keys.empty())
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no resource named to delete");
      // --mesh: a resource of another mesh is not there for this command (not found).
      std::vector<ResourceKey> missing_here;
      if (!req->mesh().empty()) {
        std::vector<ResourceKey> mine;
        for (const auto& k : keys) {
          auto got = d_.store.get(k);
          if (!got) return status_of(grpc::StatusCode::INTERNAL, got.error());
          if (*got && !in_mesh(**got, req->mesh())) {
            missing_here.push_back(k);
          } else {
            mine.push_back(k);
          }
        }
        if (!missing_here.empty() && !req->ignore_not_found())
          return status_of(grpc::StatusCode::NOT_FOUND, not_found(missing_here).error);
        keys = std::move(mine);
        for (const auto& k : missing_here) *resp->add_not_found() = to_pb(k);
        if (keys.empty()) {
          resp->set_revision(d_.store.revision());
          return grpc::Status::OK;
        }
      }
      // A Mesh still holding resources (or named by another's federatesWith) stays.
      if (std::any_of(keys.begin(), keys.end(), [](const ResourceKey& k) { return k.kind == "Mesh"; })) {
        auto stored = d_.store.resources();
        if (!stored) return status_of(grpc::StatusCode::INTERNAL, stored.error());
        policy::ResourceSet after;
        policy::for_each_kind([&](const char* kind, auto member) {
          for (const auto& r : (*stored).*member) {
            const ResourceKey key{kind, r.meta.ns, r.meta.name};
            if (std::find(keys.begin(), keys.end(), key) == keys.end()) (after.*member).push_back(r);
          }
        });
        if (auto st = policy::check_meshes(after, d_.trust_domain); !st)
          return status_of(grpc::StatusCode::FAILED_PRECONDITION, st.error());
      }
      const auto meshes = meshes_by_key(d_.model.current()->set);  // before: a deleted resource's mesh
      auto removed = d_.store.remove_all(keys, req->ignore_not_found());
      if (!removed) {
        auto code = is(removed.error(), StoreError::NotFound)   ? grpc::StatusCode::NOT_FOUND
                    : is(removed.error(), StoreError::TooLarge) ? grpc::StatusCode::INVALID_ARGUMENT
                    : is(removed.error(), StoreError::Conflict) ? grpc::StatusCode::ABORTED
                                                                : grpc::StatusCode::INTERNAL;
        return status_of(code, removed.error());
      }
      resp->set_revision(removed->revision);
      for (const auto& k : removed->missing) *resp->add_not_found() = to_pb(k);
      if (removed->removed.empty()) return grpc::Status::OK;
      for (const auto& k : removed->removed) {
        if (k.kind != "Mesh" || k.name == policy::kDefaultMesh || !d_.mesh_cas) continue;
        // Its CA goes with it, kept aside: the same name applied again is a new mesh, with a new CA.
        if (auto aside = d_.mesh_cas->retire(k.name); !aside)
          log_line("mesh " + k.name + " deleted, but its CA was not moved aside (" +
                   aside.error().to_string() + "): a Mesh applied again under this name would sign with it");
        else if (!aside->empty())
          log_line("mesh " + k.name + " deleted: its CA is kept aside at " + *aside);
      }
      d_.distributor.mark_dirty();
      std::vector<pb::ResourceEvent> events;
      for (const auto& k : removed->removed) {
        *resp->add_deleted() = to_pb(k);
        pb::ResourceEvent& e = events.emplace_back();
        e.set_revision(removed->revision);
        *e.mutable_key() = to_pb(k);
        e.set_change("deleted");
        e.set_mesh(mesh_in(meshes, k));
      }
      watchers_.publish(events);
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const pb::GetRequest* req,
                                pb::GetResponse* resp) override {
    return finish(ctx, [&]() -> grpc::Status {
      // Read before the listing: a change between the two is then shown twice (listed, and its
      // event), never missed.
      resp->set_endpoints_generation(d_.registry.generation());
      if (req->kind() == "ServiceEndpoints") return get_endpoints(*req, resp);
      std::optional<std::string> kind, ns;
      if (!req->kind().empty()) kind = req->kind();
      if (!req->namespace_().empty()) ns = req->namespace_();
      auto list = d_.store.list(kind, ns);
      if (!list) return status_of(grpc::StatusCode::INTERNAL, list.error());
      for (const auto& r : *list) {
        if (!req->name().empty() && r.key.name != req->name()) continue;
        if (!in_mesh(r, req->mesh())) continue;
        auto* out = resp->add_resources();
        *out->mutable_key() = to_pb(r.key);
        out->set_yaml(r.yaml);
        out->set_revision(r.revision);
        out->set_updated_unix(r.updated_unix);
      }
      resp->set_revision(d_.store.revision());
      if (!req->name().empty() && resp->resources_size() == 0)
        return grpc::Status(grpc::StatusCode::NOT_FOUND, req->kind() + " " + req->name() + " not found");
      return grpc::Status::OK;
    });
  }

  // ServiceEndpoints live in the registry, not the store: the last computed ones, each at the
  // store revision and time its content last changed.
  grpc::Status get_endpoints(const pb::GetRequest& req, pb::GetResponse* resp) {
    for (const auto& e : *d_.registry.endpoints()) {
      if (!req.namespace_().empty() && e.meta.ns != req.namespace_()) continue;
      if (!req.name().empty() && e.meta.name != req.name()) continue;
      auto* out = resp->add_resources();
      out->mutable_key()->set_kind("ServiceEndpoints");
      out->mutable_key()->set_namespace_(e.meta.ns);
      out->mutable_key()->set_name(e.meta.name);
      out->set_yaml(e.meta.document);
      const auto changed = d_.registry.changed(e.meta.full_name());
      out->set_revision(changed.revision);
      out->set_updated_unix(changed.unix_time);
    }
    resp->set_revision(d_.store.revision());
    if (!req.name().empty() && resp->resources_size() == 0)
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "ServiceEndpoints " + req.name() + " not found");
    return grpc::Status::OK;
  }

  grpc::ServerWriteReactor<pb::ResourceEvent>* WatchResources(grpc::CallbackServerContext* ctx,
                                                              const pb::WatchResourcesRequest* req) override {
    return new AdminWatchReactor(watchers_, require_admin(ctx, *d_.model.current()->bundle, d_.trust_domain),
                                 *req);
  }

  grpc::ServerUnaryReactor* ListWorkloads(grpc::CallbackServerContext* ctx,
                                          const pb::ListWorkloadsRequest* req,
                                          pb::ListWorkloadsResponse* resp) override {
    return finish(ctx, [&]() -> grpc::Status {
      auto model = d_.model.current();
      resp->set_revision(d_.store.revision());
      std::set<std::string> seen;
      const std::string& want = req->mesh();
      for (const auto& [key, rec] : d_.distributor.proxies()) {
        if (!want.empty() && rec.workload.mesh != want) continue;
        auto* w = resp->add_workloads();
        w->set_mesh(rec.workload.mesh);
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
        w->set_config_revision(rec.sent_revision);
        w->set_acked_revision(rec.acked_revision);
        w->set_synced_revision(rec.synced_revision);
        w->set_admin_address(rec.admin_address);
        w->set_proxy_version(rec.proxy_version);
        for (const auto& [k, v] : rec.workload.labels) (*w->mutable_labels())[k] = v;
        seen.insert(key);
      }
      // Registered workloads whose proxy never connected.
      for (const auto& reg : model->set.workloads) {
        if (seen.count(reg.meta.ns + "/" + reg.meta.name)) continue;
        if (!want.empty() && policy::mesh_of(reg.meta) != want) continue;
        auto* w = resp->add_workloads();
        w->set_mesh(std::string(policy::mesh_of(reg.meta)));
        w->set_name(reg.meta.name);
        w->set_namespace_(reg.meta.ns);
        w->set_service_account(reg.service_account);
        w->set_registered(true);
        for (const auto& [k, v] : reg.labels) (*w->mutable_labels())[k] = v;
      }
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* ctx, const pb::CreateTokenRequest* req,
                                        pb::CreateTokenResponse* resp) override {
    return finish(ctx, [&]() -> grpc::Status {
      if (req->namespace_() == api::kSystemNamespace)
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "namespace meshguard-system is reserved");
      // Kubernetes names: what a proxy's Workload and every policy's principals will spell.
      for (const auto& [what, name] : {std::pair{"namespace", &req->namespace_()},
                                       std::pair{"service account", &req->service_account()}}) {
        if (!policy::is_dns_label(*name))
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              std::string(what) + " \"" + *name +
                                  "\" is not a DNS label (lower-case letters, digits and '-', at most 63)");
      }
      // The mesh the workload joins: its Mesh must be stored (the default mesh always exists).
      std::string td = d_.trust_domain;
      if (!req->mesh().empty() && req->mesh() != policy::kDefaultMesh) {
        auto stored = d_.store.get({"Mesh", "", req->mesh()});
        if (!stored) return status_of(grpc::StatusCode::INTERNAL, stored.error());
        if (!*stored)
          return grpc::Status(grpc::StatusCode::NOT_FOUND,
                              "mesh " + req->mesh() + " does not exist (apply its Mesh first)");
        auto parsed = policy::parse_resources((*stored)->yaml, (*stored)->key.str());
        if (!parsed || parsed->meshes.size() != 1)
          return grpc::Status(grpc::StatusCode::INTERNAL,
                              "mesh " + req->mesh() + ": its stored Mesh does not parse");
        td = parsed->meshes.front().trust_domain;
      }
      auto id = identity::SpiffeId::istio(td, req->namespace_(), req->service_account());
      if (!id) return status_of(grpc::StatusCode::INVALID_ARGUMENT, id.error());
      int64_t ttl = req->ttl_seconds() > 0 ? req->ttl_seconds() : 3600;
      if (ttl > 7 * 24 * 3600)
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a bootstrap token lives at most 7 days");
      BootstrapClaims claims;
      claims.ns = req->namespace_();
      claims.service_account = req->service_account();
      if (req->mesh() != policy::kDefaultMesh) claims.mesh = req->mesh();
      claims.issued_at = unix_now();
      claims.expires_at = claims.issued_at + ttl;
      auto token = d_.bootstrap.mint(claims);
      if (!token) return status_of(grpc::StatusCode::INTERNAL, token.error());
      resp->set_token(*token);
      resp->set_expires_unix(claims.expires_at);
      return grpc::Status::OK;
    });
  }

  // meshguardctl get meshes: every mesh served, with its CA's signing root and connected proxies.
  grpc::ServerUnaryReactor* ListMeshes(grpc::CallbackServerContext* ctx, const pb::ListMeshesRequest*,
                                       pb::ListMeshesResponse* resp) override {
    return finish(ctx, [&]() -> grpc::Status {
      auto model = d_.model.current();
      std::map<std::string, int64_t> connected;
      for (const auto& [key, rec] : d_.distributor.proxies()) {
        if (rec.connected) ++connected[rec.workload.mesh];
      }
      for (const auto& [name, view] : model->meshes) {
        auto* m = resp->add_meshes();
        m->set_name(name);
        m->set_trust_domain(view.mesh.config.trust_domain);
        const auto signer = view.authority ? view.authority : d_.ca.signer();
        if (X509* root =
                signer->bundle().roots().empty() ? nullptr : signer->bundle().roots().front().get()) {
          m->set_ca_root_serial(crypto::cert_serial_hex(root));
          m->set_ca_root_not_after_unix(crypto::asn1_to_unix(X509_get0_notAfter(root)));
        }
        m->set_workloads_connected(connected[name]);
        for (const auto& f : view.federates_with) m->add_federates_with(f);
      }
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* Version(grpc::CallbackServerContext* ctx, const pb::VersionRequest*,
                                    pb::VersionResponse* resp) override {
    return finish(ctx, [&]() -> grpc::Status {
      resp->set_version(mg::version());
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* RotateCa(grpc::CallbackServerContext* ctx, const pb::RotateCaRequest* req,
                                     pb::RotateCaResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    if (auto admin = check_admin(ctx); !admin) {
      reactor->Finish(status_of(grpc::StatusCode::PERMISSION_DENIED, admin.error()));
      return reactor;
    }
    // Another mesh's CA is rotated by its own CaRotation (data dir), never by rotating the
    // default one in its place.
    if (const std::string& mesh = req->mesh(); !mesh.empty() && mesh != policy::kDefaultMesh) {
      CaRotation* rotation = d_.mesh_cas ? d_.mesh_cas->rotation(mesh) : nullptr;
      const std::string plugged_from = d_.mesh_cas ? d_.mesh_cas->plugin_dir(mesh) : std::string();
      if (!d_.model.current()->meshes.contains(mesh)) {
        // Just applied, the model not rebuilt yet: its proxies could not be sent a new bundle.
        auto stored = d_.store.get({"Mesh", "", mesh});
        if (stored && *stored)
          reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                       "mesh " + mesh + " was applied but is not in force yet: try again"));
        else
          reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "mesh " + mesh + " does not exist"));
      } else if (!plugged_from.empty()) {
        // As the default mesh's plugged-in CA (CaRotation::rotate), whatever its certificates.
        reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                     "mesh " + mesh + ": the CA is plugged in (ca.pluginDir " + plugged_from +
                                         "): rotate it where it is issued, then restart with it"));
      } else if (!rotation) {
        reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                     "mesh " + mesh +
                                         ": its CA cannot be rotated online by this control plane "
                                         "(nothing was rotated, the default mesh's CA neither)"));
      } else {
        rotation->rotate(d_.distributor, reactor, req->wait_seconds(), resp);
      }
      return reactor;
    }
    d_.ca.rotate(d_.distributor, reactor, req->wait_seconds(), resp);
    return reactor;
  }

 private:
  // A Mesh applied again keeps the CA source of the one stored: built-in, or plugged in from the
  // same directory (MeshCas::check says the same of the CA it holds). The store, not the model,
  // which may not have caught up with a delete yet.
  Status same_ca_source(const policy::Mesh& mesh) const {
    auto stored = d_.store.resources();
    if (!stored) return fail(stored.error());
    for (const auto& current : stored->meshes) {
      if (current.meta.name != mesh.meta.name || current.ca_plugin_dir == mesh.ca_plugin_dir) continue;
      const auto what = [](const std::string& dir) {
        return dir.empty() ? std::string("a built-in CA") : "the CA plugged in from " + dir;
      };
      return fail("control.mesh_ca_changed",
                  "mesh " + mesh.meta.name + " has " + what(current.ca_plugin_dir) + ", not " +
                      what(mesh.ca_plugin_dir) +
                      ": a mesh keeps its CA (switching would change the roots its proxies trust)");
    }
    return {};
  }

  Status check_admin(grpc::CallbackServerContext* ctx) const {
    return require_admin(ctx, *d_.model.current()->bundle, d_.trust_domain);
  }

  template <class F>
  grpc::ServerUnaryReactor* finish(grpc::CallbackServerContext* ctx, F&& body) {
    auto* reactor = ctx->DefaultReactor();
    auto admin = check_admin(ctx);
    if (!admin) {
      reactor->Finish(status_of(grpc::StatusCode::PERMISSION_DENIED, admin.error()));
      return reactor;
    }
    reactor->Finish(body());
    return reactor;
  }

  const AdminServiceDeps d_;
  Watchers watchers_;
};

}  // namespace

std::unique_ptr<AdminService> AdminService::create(const AdminServiceDeps& deps) {
  return std::make_unique<AdminServiceImpl>(deps);
}

}  // namespace mg::control
