// control/mesh_cas.cpp — see mesh_cas.h.
#include "control/mesh_cas.h"

#include <ctime>

#include "common/files.h"
#include "crypto/openssl.h"

namespace mg::control {

std::string MeshCas::dir_of(const std::string& data_dir, std::string_view name) {
  return data_dir + "/meshes/" + std::string(name) + "/ca";
}

Result<std::shared_ptr<const ca::Authority>> MeshCas::load_locked(const std::string& name) const {
  if (auto it = cas_.find(name); it != cas_.end()) return it->second;
  if (data_dir_.empty()) return std::shared_ptr<const ca::Authority>();
  const std::string dir = dir_of(data_dir_, name);
  if (!files::exists(dir + "/" + ca::kCaKeyFile)) return std::shared_ptr<const ca::Authority>();
  auto loaded = ca::Authority::load_dir(dir, std::time(nullptr));
  if (!loaded) return fail(loaded.error());
  auto shared = std::make_shared<const ca::Authority>(std::move(*loaded));
  cas_[name] = shared;
  return shared;
}

Result<std::shared_ptr<const ca::Authority>> MeshCas::ensure(const std::string& name,
                                                             const std::string& trust_domain) {
  MutexLock lock(mutex_);
  auto found = load_locked(name);
  if (!found) return found;
  if (*found) {
    if ((*found)->trust_domain() != trust_domain) {
      return fail(
          "control.mesh_trust_domain_changed",
          "mesh " + name + "'s CA is for trust domain " + (*found)->trust_domain() + ", not " + trust_domain);
    }
    return found;
  }
  if (data_dir_.empty()) {
    return fail(
        "control.mesh_needs_data_dir",
        "mesh " + name + ": a built-in CA per mesh is kept in the data directory (not with --store etcd://)");
  }
  auto made = ca::Authority::create_self_signed(trust_domain, crypto::KeyType::EcP256, std::time(nullptr));
  if (!made) return fail(made.error());
  const std::string dir = dir_of(data_dir_, name);
  if (auto st = files::make_dirs(data_dir_ + "/meshes", 0700); !st) return fail(st.error());
  if (auto st = files::make_dirs(data_dir_ + "/meshes/" + name, 0700); !st) return fail(st.error());
  if (auto st = made->save_dir(dir); !st) return fail(st.error());
  auto shared = std::make_shared<const ca::Authority>(std::move(*made));
  cas_[name] = shared;
  return shared;
}

std::shared_ptr<const ca::Authority> MeshCas::find(const std::string& name) const {
  MutexLock lock(mutex_);
  auto found = load_locked(name);
  return found ? *found : nullptr;
}

Status MeshCas::check(const std::string& name, const std::string& trust_domain) const {
  MutexLock lock(mutex_);
  auto found = load_locked(name);
  if (!found) return fail(found.error());
  if (*found && (*found)->trust_domain() != trust_domain) {
    return fail("control.mesh_trust_domain_changed",
                "mesh " + name + "'s CA is for trust domain " + (*found)->trust_domain() + ", not " +
                    trust_domain + " (a mesh keeps the trust domain its CA was made for)");
  }
  if (data_dir_.empty()) {
    return fail(
        "control.mesh_needs_data_dir",
        "mesh " + name + ": a built-in CA per mesh is kept in the data directory (not with --store etcd://)");
  }
  return {};
}

}  // namespace mg::control
