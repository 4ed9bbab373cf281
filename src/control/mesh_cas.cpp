// control/mesh_cas.cpp — see mesh_cas.h.
#include "control/mesh_cas.h"

#include <cstdio>
#include <ctime>
#include <vector>

#include "common/files.h"
#include "control/etcd_ca_rotation.h"
#include "control/etcd_client.h"
#include "control/etcd_store.h"
#include "control/shared_ca.h"
#include "control/support.h"
#include "crypto/openssl.h"

namespace mg::control {

MeshCas::MeshCas(std::string data_dir, telemetry::Registry& metrics)
    : data_dir_(std::move(data_dir)), metrics_(&metrics) {}

MeshCas::MeshCas(EtcdStore& etcd, std::optional<SealKey> seal, telemetry::Registry& metrics)
    : etcd_(&etcd), seal_(std::move(seal)), metrics_(&metrics) {}

MeshCas::~MeshCas() { stop_following(); }

std::string MeshCas::dir_of(const std::string& data_dir, std::string_view name) {
  return data_dir + "/meshes/" + std::string(name) + "/ca";
}

std::string MeshCas::shared_name_of(std::string_view name) { return shared_ca_name(name); }

Result<ca::Authority> MeshCas::from_shared(const std::string& name, std::string_view value) const {
  const std::string shared_name = shared_name_of(name);
  auto shared = decode_shared_ca(value, seal_ ? &*seal_ : nullptr,
                                 etcd_shared_key(etcd_->prefix(), shared_name), shared_name);
  if (!shared) return fail(shared.error());
  return ca::Authority::from_pem(shared->trust_domain, shared->current, std::time(nullptr));
}

std::shared_ptr<const ca::Authority> MeshCas::keep_locked(const std::string& name, ca::Authority authority,
                                                          const std::string& plugin_dir) const {
  auto shared = std::make_shared<const ca::Authority>(std::move(authority));
  // Only the data dir's built-in CA is persisted by its rotation; etcd's is rotated through etcd,
  // a plugged-in one where it is issued.
  const bool persist = !etcd_ && plugin_dir.empty();
  Entry& entry = entries_[name];
  entry.plugin_dir = plugin_dir;
  entry.rotation = std::make_unique<CaRotation>(
      shared, persist ? data_dir_ + "/meshes/" + name : std::string(), persist, *metrics_, name);
  if (etcd_ && plugin_dir.empty()) start_etcd_rotation_locked(name, entry);
  return shared;
}

void MeshCas::start_etcd_rotation_locked(const std::string& name, Entry& entry) const {
  if (!distributor_ || entry.etcd_rotation) return;  // not following yet: follow_etcd() starts it
  auto started = EtcdCaRotation::start(
      {*etcd_, *entry.rotation, *distributor_, seal_ ? &*seal_ : nullptr, *metrics_, *lease_, name},
      replica_);
  if (!started) {
    log_line("mesh " + name + ": " + started.error().to_string());
    return;
  }
  entry.etcd_rotation = std::move(*started);
}

Result<std::string> MeshCas::stored_built_in_locked(const std::string& name) const {
  if (etcd_) {
    auto value = etcd_->shared_get(shared_name_of(name));
    if (!value) return fail(value.error());
    return *value ? etcd_shared_key(etcd_->prefix(), shared_name_of(name)) : std::string();
  }
  if (data_dir_.empty()) return std::string();
  const std::string dir = dir_of(data_dir_, name);
  return files::exists(dir + "/" + ca::kCaKeyFile) || files::exists(data_dir_ + "/meshes/" + name + "/ca.new")
             ? dir
             : std::string();
}

Result<std::shared_ptr<const ca::Authority>> MeshCas::load_locked(const std::string& name) const {
  if (auto it = entries_.find(name); it != entries_.end()) return it->second.rotation->signer();
  if (etcd_) {
    auto value = etcd_->shared_get(shared_name_of(name));
    if (!value) return fail(value.error());
    if (!*value) return std::shared_ptr<const ca::Authority>();
    auto authority = from_shared(name, **value);
    if (!authority) return fail(authority.error());
    return keep_locked(name, std::move(*authority), "");
  }
  if (data_dir_.empty()) return std::shared_ptr<const ca::Authority>();
  // A rotation interrupted between its two renames left ca.new: it is the CA.
  if (auto st = CaRotation::complete_interrupted(data_dir_ + "/meshes/" + name); !st) return fail(st.error());
  const std::string dir = dir_of(data_dir_, name);
  if (!files::exists(dir + "/" + ca::kCaKeyFile)) return std::shared_ptr<const ca::Authority>();
  auto loaded = ca::Authority::load_dir(dir, std::time(nullptr));
  if (!loaded) return fail(loaded.error());
  return keep_locked(name, std::move(*loaded), "");
}

Result<ca::Authority> MeshCas::read_plugged_in_locked(const std::string& name,
                                                      const std::string& trust_domain,
                                                      const std::string& plugin_dir) const {
  auto built_in = stored_built_in_locked(name);
  if (!built_in) return fail(built_in.error());
  if (!built_in->empty()) {
    return fail("control.mesh_ca_changed",
                "mesh " + name + " has a built-in CA (" + *built_in +
                    "): plugging in another (ca.pluginDir " + plugin_dir +
                    ") would change the roots its proxies trust; to move it, delete the Mesh (its resources "
                    "first) and apply it again with ca.pluginDir");
  }
  auto loaded = ca::Authority::load_plug_in_dir(plugin_dir, trust_domain, std::time(nullptr));
  if (!loaded) {
    // The error of --plug-in-ca (its code: key permissions, trust domain, chain), naming the mesh.
    return fail(loaded.error().code,
                "mesh " + name + ": ca.pluginDir " + plugin_dir + ": " + loaded.error().message);
  }
  return loaded;
}

Status MeshCas::same_ca(const std::string& name, const ca::Authority& found, const std::string& kept_dir,
                        const std::string& trust_domain, const std::string& plugin_dir) {
  if (kept_dir != plugin_dir) {
    const auto what = [](const std::string& dir) {
      return dir.empty() ? std::string("a built-in CA") : "the CA plugged in from " + dir;
    };
    return fail(
        "control.mesh_ca_changed",
        "mesh " + name + " signs with " + what(kept_dir) + ", not " + what(plugin_dir) +
            ": a mesh keeps its CA (switching would change the roots its proxies trust). A plugged-in "
            "CA is renewed in place: replace the files in its directory, keeping the old root in "
            "root-cert.pem, and restart the control plane");
  }
  if (found.trust_domain() != trust_domain) {
    return fail("control.mesh_trust_domain_changed",
                "mesh " + name + "'s CA is for trust domain " + found.trust_domain() + ", not " +
                    trust_domain + " (a mesh keeps the trust domain its CA was made for)");
  }
  return {};
}

Result<std::shared_ptr<const ca::Authority>> MeshCas::ensure(const std::string& name,
                                                             const std::string& trust_domain,
                                                             const std::string& plugin_dir,
                                                             int64_t mesh_revision) {
  MutexLock lock(mutex_);
  if (auto it = entries_.find(name); it != entries_.end()) {
    Entry& entry = it->second;
    const bool changed =
        mesh_revision != 0 && entry.mesh_revision != 0 && mesh_revision != entry.mesh_revision;
    if (changed) {
      // The Mesh may have been deleted (its CA retired) and applied again through another
      // replica, both unseen here until now: then the CA held here is not the mesh's any more.
      // A stored Mesh never switches its CA source (apply refuses it), so a switch says so; a
      // built-in CA gone from storage too.
      bool stale = entry.plugin_dir != plugin_dir;
      if (!stale && plugin_dir.empty()) {
        auto stored = stored_built_in_locked(name);
        if (!stored) return fail(stored.error());
        stale = stored->empty();
      }
      if (stale) {
        log_line("mesh " + name + " was deleted and applied again: the CA it had is no longer its own");
        forget_locked(name);
      }
    }
  }
  if (auto it = entries_.find(name); it != entries_.end()) {
    auto signer = it->second.rotation->signer();
    if (auto st = same_ca(name, *signer, it->second.plugin_dir, trust_domain, plugin_dir); !st)
      return fail(st.error());
    it->second.mesh_revision = mesh_revision;
    return signer;
  }
  std::shared_ptr<const ca::Authority> made;
  if (!plugin_dir.empty()) {
    auto plugged = read_plugged_in_locked(name, trust_domain, plugin_dir);
    if (!plugged) return fail(plugged.error());
    log_line("mesh " + name + ": signing with the CA plugged in from " + plugin_dir + " (root " +
             crypto::cert_sha256_fingerprint(plugged->ca_cert()) + ")");
    made = keep_locked(name, std::move(*plugged), plugin_dir);
  } else {
    auto found = load_locked(name);
    if (!found) return found;
    made = std::move(*found);
    if (!made) {
      auto created = create_locked(name, trust_domain);
      if (!created) return created;
      made = std::move(*created);  // another replica may have created it first, for another trust domain
    }
    if (auto st = same_ca(name, *made, "", trust_domain, plugin_dir); !st) return fail(st.error());
  }
  entries_[name].mesh_revision = mesh_revision;
  return made;
}

Result<std::shared_ptr<const ca::Authority>> MeshCas::create_locked(const std::string& name,
                                                                    const std::string& trust_domain) {
  if (!etcd_ && data_dir_.empty()) {
    return fail("control.mesh_needs_data_dir",
                "mesh " + name + ": this control plane has nowhere to keep a built-in CA for it");
  }
  auto made = ca::Authority::create_self_signed(trust_domain, crypto::KeyType::EcP256, std::time(nullptr));
  if (!made) return fail(made.error());
  if (etcd_) {
    // One create-if-absent transaction: replicas seeing the Mesh at once agree on one CA.
    const std::string shared_name = shared_name_of(name);
    auto encoded = encode_shared_ca({trust_domain, made->to_pem(), std::nullopt, "", 0},
                                    seal_ ? &*seal_ : nullptr, shared_name);
    if (!encoded) return fail(encoded.error());
    auto stored = etcd_->shared_value(shared_name, *encoded);
    if (!stored) return fail(stored.error());
    auto authority = from_shared(name, *stored);
    if (!authority) return fail(authority.error());
    return keep_locked(name, std::move(*authority), "");
  }
  const std::string dir = dir_of(data_dir_, name);
  if (auto st = files::make_dirs(data_dir_ + "/meshes", 0700); !st) return fail(st.error());
  if (auto st = files::make_dirs(data_dir_ + "/meshes/" + name, 0700); !st) return fail(st.error());
  if (auto st = made->save_dir(dir); !st) return fail(st.error());
  return keep_locked(name, std::move(*made), "");
}

CaRotation* MeshCas::rotation(const std::string& name) {
  MutexLock lock(mutex_);
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second.rotation.get();
}

std::string MeshCas::plugin_dir(const std::string& name) const {
  MutexLock lock(mutex_);
  auto it = entries_.find(name);
  return it == entries_.end() ? std::string() : it->second.plugin_dir;
}

identity::TrustBundle MeshCas::distributed_bundle(const std::string& name,
                                                  const ca::Authority& signer) const {
  MutexLock lock(mutex_);
  auto it = entries_.find(name);
  return it == entries_.end() ? signer.bundle() : it->second.rotation->distributed_bundle();
}

void MeshCas::follow_etcd(Distributor& distributor, ReplicaLease& lease, std::string replica) {
  MutexLock lock(mutex_);
  if (!etcd_) return;
  distributor_ = &distributor;
  lease_ = &lease;
  replica_ = std::move(replica);
  for (auto& [name, entry] : entries_) {
    if (entry.plugin_dir.empty()) start_etcd_rotation_locked(name, entry);
  }
}

void MeshCas::stop_following() {
  std::vector<EtcdCaRotation*> all;
  {
    MutexLock lock(mutex_);
    distributor_ = nullptr;  // no new one starts
    for (auto& [name, entry] : entries_) {
      if (entry.etcd_rotation) all.push_back(entry.etcd_rotation.get());
    }
  }
  for (auto* rotation : all) rotation->stop();  // entries are never erased: they outlive the lock
}

void MeshCas::forget_locked(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  // Its etcd rotation's threads never wait for this lock: stopped while holding it, so that no
  // ensure() starts another on the same keys meanwhile.
  if (it->second.etcd_rotation) it->second.etcd_rotation->stop();
  forgotten_.push_back(std::move(it->second));
  entries_.erase(it);
}

void MeshCas::forget_absent(const std::set<std::string, std::less<>>& present) {
  MutexLock lock(mutex_);
  std::vector<std::string> gone;
  for (const auto& [name, entry] : entries_) {
    if (!present.contains(name)) gone.push_back(name);
  }
  for (const auto& name : gone) {
    log_line("mesh " + name + " is gone: its CA is no longer served");
    forget_locked(name);
  }
}

Result<std::string> MeshCas::retire(const std::string& name) {
  MutexLock lock(mutex_);
  auto it = entries_.find(name);
  const bool plugged_in = it != entries_.end() && !it->second.plugin_dir.empty();
  forget_locked(name);
  if (plugged_in) return std::string();  // the operator's directory: left as it is
  return retire_stored_locked(name);
}

Result<std::string> MeshCas::retire_stored_locked(const std::string& name) {
  if (etcd_) {
    namespace pb = ::etcdserverpb;
    const std::string key = etcd_shared_key(etcd_->prefix(), shared_name_of(name));
    for (int attempt = 0; attempt < 5; ++attempt) {  // a rotation's write in between: read again
      pb::RangeRequest read;
      read.set_key(key);
      auto got = etcd_->client().range(read);
      if (!got) return fail(got.error());
      if (got->kvs().empty()) return std::string();
      // Named by the value's revision: unique, and it tells which CA it was.
      const auto& kv = got->kvs(0);
      const std::string aside =
          etcd_->prefix() + "retired/" + shared_name_of(name) + "-" + std::to_string(kv.mod_revision());
      pb::TxnRequest txn;
      auto* cmp = txn.add_compare();
      cmp->set_key(key);
      cmp->set_target(pb::Compare::MOD);
      cmp->set_result(pb::Compare::EQUAL);
      cmp->set_mod_revision(kv.mod_revision());
      auto* put = txn.add_success()->mutable_request_put();
      put->set_key(aside);
      put->set_value(kv.value());
      txn.add_success()->mutable_request_delete_range()->set_key(key);
      auto done = etcd_->client().txn(txn);
      if (!done) return fail(done.error());
      if (done->succeeded()) return aside;
    }
    return fail("control.mesh_ca_retire", key + " kept changing: it was not moved aside");
  }
  if (data_dir_.empty()) return std::string();
  const std::string dir = data_dir_ + "/meshes/" + name;
  if (!files::exists(dir)) return std::string();
  // "<name>.retired-<unix time>[-N]": a mesh name (a DNS label) never holds a dot.
  const std::string stem = dir + ".retired-" + std::to_string(unix_now());
  std::string aside = stem;
  for (int n = 2; n < 100 && files::exists(aside); ++n) aside = stem + "-" + std::to_string(n);
  if (files::exists(aside) || ::rename(dir.c_str(), aside.c_str()) != 0)
    return fail("control.mesh_ca_retire", "cannot move " + dir + " aside to " + aside);
  return aside;
}

void MeshCas::join() {
  std::vector<CaRotation*> all;
  {
    MutexLock lock(mutex_);
    for (auto& [name, entry] : entries_) all.push_back(entry.rotation.get());
    for (auto& entry : forgotten_) all.push_back(entry.rotation.get());
  }
  for (auto* rotation : all) rotation->join();
}

std::shared_ptr<const ca::Authority> MeshCas::find(const std::string& name) const {
  MutexLock lock(mutex_);
  auto found = load_locked(name);
  return found ? *found : nullptr;
}

Status MeshCas::check(const std::string& name, const std::string& trust_domain,
                      const std::string& plugin_dir) const {
  MutexLock lock(mutex_);
  if (auto it = entries_.find(name); it != entries_.end())
    return same_ca(name, *it->second.rotation->signer(), it->second.plugin_dir, trust_domain, plugin_dir);
  if (!plugin_dir.empty()) {
    auto plugged = read_plugged_in_locked(name, trust_domain, plugin_dir);
    if (!plugged) return fail(plugged.error());
    return {};
  }
  auto found = load_locked(name);
  if (!found) return fail(found.error());
  if (*found) return same_ca(name, **found, "", trust_domain, plugin_dir);
  if (!etcd_ && data_dir_.empty()) {
    return fail("control.mesh_needs_data_dir",
                "mesh " + name + ": this control plane has nowhere to keep a built-in CA for it");
  }
  return {};
}

}  // namespace mg::control
