// control/model.cpp — see model.h.
#include "control/model.h"

#include <set>

#include "control/ca_rotation.h"
#include "control/mesh_cas.h"
#include "control/support.h"
#include "crypto/openssl.h"
#include "policy/mesh.h"

namespace mg::control {

std::string bundle_hash(const std::string& pem) {
  auto d = crypto::sha256(pem);
  return crypto::hex(d.data(), d.size());
}

const MeshView* Model::view(std::string_view name) const {
  auto it = meshes.find(name.empty() ? policy::kDefaultMesh : name);
  return it == meshes.end() ? nullptr : &it->second;
}

const MeshView* Model::view_for_trust_domain(std::string_view trust_domain) const {
  for (const auto& [name, v] : meshes) {
    if (v.mesh.config.trust_domain == trust_domain) return &v;
  }
  return nullptr;
}

Status ConfigModel::rebuild() {
  // The resources and their revision are two reads: an apply committed between them would pair the
  // old resources with the new revision, and the next push round would call a proxy synced to a
  // revision whose resources it never got (`apply --wait` returning early). Both stores change
  // the two under one lock, so a revision unchanged across the read of the resources is theirs.
  auto m = std::make_shared<Model>();
  constexpr int kAttempts = 64;
  for (int attempt = 1;; ++attempt) {
    const int64_t revision = store_.revision();
    auto set = store_.resources();
    if (!set) return fail(set.error());
    if (store_.revision() == revision) {
      m->set = std::move(*set);
      m->revision = revision;
      break;
    }
    if (attempt == kAttempts) return fail("model.busy", "the store kept changing while the model was read");
  }
  auto bundle = ca_.distributed_bundle();
  m->bundle_pem = bundle.to_pem();
  m->bundle_hash = bundle_hash(m->bundle_pem);
  m->bundle = std::make_shared<const identity::TrustBundle>(std::move(bundle));

  // The default mesh: the whole set while it is the only mesh (as before several meshes).
  const bool several = policy::has_other_meshes(m->set);
  MeshView& def = m->meshes[std::string(policy::kDefaultMesh)];
  def.name = policy::kDefaultMesh;
  if (several) def.own_set = policy::resources_of_mesh(m->set, policy::kDefaultMesh);
  def.set = several ? &def.own_set : &m->set;
  def.mesh = mesh_settings(*def.set, trust_domain_);
  def.bundle_pem = m->bundle_pem;
  def.bundle_hash = m->bundle_hash;
  def.bundle = m->bundle;
  if (def.mesh.resource) def.federates_with = def.mesh.resource->federates_with;
  m->mesh = def.mesh;

  // The other meshes, each with its CA: built-in (generated the first time) or plugged in.
  for (const auto& resource : m->set.meshes) {
    if (resource.meta.name == policy::kDefaultMesh) continue;
    if (!mesh_cas_) {
      log_line("mesh " + resource.meta.name +
               " is not served: this control plane keeps no CA for other meshes");
      continue;
    }
    auto stored = store_.get({"Mesh", "", resource.meta.name});
    const int64_t revision = stored && *stored ? (*stored)->revision : 0;
    auto authority =
        mesh_cas_->ensure(resource.meta.name, resource.trust_domain, resource.ca_plugin_dir, revision);
    if (!authority) {
      log_line("mesh " + resource.meta.name + " is not served: " + authority.error().to_string());
      continue;
    }
    MeshView& v = m->meshes[resource.meta.name];
    v.name = resource.meta.name;
    v.own_set = policy::resources_of_mesh(m->set, resource.meta.name);
    v.set = &v.own_set;
    v.mesh = mesh_settings(*v.set, resource.trust_domain);
    v.authority = *authority;
    // During a rotation of its CA: the pending CA's bundle (new and old roots).
    v.bundle = std::make_shared<const identity::TrustBundle>(
        mesh_cas_->distributed_bundle(resource.meta.name, **authority));
    v.bundle_pem = v.bundle->to_pem();
    v.bundle_hash = bundle_hash(v.bundle_pem);
    v.control_plane_bundle_pem = m->bundle_pem;
    v.federates_with = resource.federates_with;
  }
  // A mesh deleted (here or through another replica) no longer has its CA served: a Mesh applied
  // again under its name reads its CA anew (MeshCas::retire moved the old one aside).
  if (mesh_cas_) {
    std::set<std::string, std::less<>> present;
    for (const auto& resource : m->set.meshes) present.insert(resource.meta.name);
    mesh_cas_->forget_absent(present);
  }
  // Federation: each mesh's proxies also accept the bundles of the meshes it names.
  for (auto& [name, v] : m->meshes) {
    for (const auto& other_name : v.federates_with) {
      const MeshView* other = m->view(other_name);
      if (!other || other == &v || other->mesh.config.trust_domain == v.mesh.config.trust_domain) continue;
      v.federated.push_back(*other->bundle);
      v.federated_meshes.push_back(other->name);
    }
    v.federated_text = identity::federated_bundles_to_text(v.federated);
    v.federated_hash = bundle_hash(v.federated_text);
  }
  MutexLock lock(mutex_);
  model_ = std::move(m);
  metrics_.gauge("meshguard_store_revision").set(model_->revision);
  return {};
}

std::shared_ptr<const Model> ConfigModel::current() const {
  MutexLock lock(mutex_);
  return model_;
}

}  // namespace mg::control
