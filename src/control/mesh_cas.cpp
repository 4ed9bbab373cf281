// control/mesh_cas.cpp — see mesh_cas.h.
#include "control/mesh_cas.h"

#include <ctime>
#include <vector>

#include "common/files.h"
#include "control/etcd_store.h"
#include "control/shared_ca.h"
#include "crypto/openssl.h"

namespace mg::control {

std::string MeshCas::dir_of(const std::string& data_dir, std::string_view name) {
  return data_dir + "/meshes/" + std::string(name) + "/ca";
}

std::string MeshCas::shared_name_of(std::string_view name) { return "meshes/" + std::string(name) + "/ca"; }

Result<std::shared_ptr<const ca::Authority>> MeshCas::from_shared(const std::string& name,
                                                                  std::string_view value) const {
  const std::string shared_name = shared_name_of(name);
  auto shared = decode_shared_ca(value, seal_ ? &*seal_ : nullptr,
                                 etcd_shared_key(etcd_->prefix(), shared_name), shared_name);
  if (!shared) return fail(shared.error());
  auto authority = ca::Authority::from_pem(shared->trust_domain, shared->current, std::time(nullptr));
  if (!authority) return fail(authority.error());
  return std::make_shared<const ca::Authority>(std::move(*authority));
}

std::shared_ptr<const ca::Authority> MeshCas::keep_locked(const std::string& name,
                                                          ca::Authority authority) const {
  auto shared = std::make_shared<const ca::Authority>(std::move(authority));
  rotations_[name] =
      std::make_unique<CaRotation>(shared, data_dir_ + "/meshes/" + name, /*persist=*/true, *metrics_, name);
  return shared;
}

Result<std::shared_ptr<const ca::Authority>> MeshCas::load_locked(const std::string& name) const {
  if (auto it = cas_.find(name); it != cas_.end()) return it->second;
  if (auto it = rotations_.find(name); it != rotations_.end()) return it->second->signer();
  if (etcd_) {
    auto value = etcd_->shared_get(shared_name_of(name));
    if (!value) return fail(value.error());
    if (!*value) return std::shared_ptr<const ca::Authority>();
    auto authority = from_shared(name, **value);
    if (!authority) return authority;
    cas_[name] = *authority;
    return authority;
  }
  if (data_dir_.empty()) return std::shared_ptr<const ca::Authority>();
  // A rotation interrupted between its two renames left ca.new: it is the CA.
  if (auto st = CaRotation::complete_interrupted(data_dir_ + "/meshes/" + name); !st) return fail(st.error());
  const std::string dir = dir_of(data_dir_, name);
  if (!files::exists(dir + "/" + ca::kCaKeyFile)) return std::shared_ptr<const ca::Authority>();
  auto loaded = ca::Authority::load_dir(dir, std::time(nullptr));
  if (!loaded) return fail(loaded.error());
  return keep_locked(name, std::move(*loaded));
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
  auto made = create_locked(name, trust_domain);
  if (!made) return made;
  if ((*made)->trust_domain() != trust_domain)  // another replica created it first, for another one
    return fail("control.mesh_trust_domain_changed", "mesh " + name + "'s CA is for trust domain " +
                                                         (*made)->trust_domain() + ", not " + trust_domain);
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
    if (!authority) return authority;
    cas_[name] = *authority;
    return authority;
  }
  const std::string dir = dir_of(data_dir_, name);
  if (auto st = files::make_dirs(data_dir_ + "/meshes", 0700); !st) return fail(st.error());
  if (auto st = files::make_dirs(data_dir_ + "/meshes/" + name, 0700); !st) return fail(st.error());
  if (auto st = made->save_dir(dir); !st) return fail(st.error());
  return keep_locked(name, std::move(*made));
}

CaRotation* MeshCas::rotation(const std::string& name) {
  MutexLock lock(mutex_);
  auto it = rotations_.find(name);
  return it == rotations_.end() ? nullptr : it->second.get();
}

identity::TrustBundle MeshCas::distributed_bundle(const std::string& name,
                                                  const ca::Authority& signer) const {
  MutexLock lock(mutex_);
  auto it = rotations_.find(name);
  return it == rotations_.end() ? signer.bundle() : it->second->distributed_bundle();
}

void MeshCas::join() {
  std::vector<CaRotation*> all;
  {
    MutexLock lock(mutex_);
    for (auto& [name, rotation] : rotations_) all.push_back(rotation.get());
  }
  for (auto* rotation : all) rotation->join();  // never erased: they outlive the lock
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
  if (!etcd_ && data_dir_.empty()) {
    return fail("control.mesh_needs_data_dir",
                "mesh " + name + ": this control plane has nowhere to keep a built-in CA for it");
  }
  return {};
}

}  // namespace mg::control
