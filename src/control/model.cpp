// control/model.cpp — see model.h.
#include "control/model.h"

#include "control/ca_rotation.h"
#include "crypto/openssl.h"

namespace mg::control {

std::string bundle_hash(const std::string& pem) {
  auto d = crypto::sha256(pem);
  return crypto::hex(d.data(), d.size());
}

Status ConfigModel::rebuild() {
  auto set = store_.resources();
  if (!set) return fail(set.error());
  auto m = std::make_shared<Model>();
  m->set = std::move(*set);
  m->revision = store_.revision();
  m->mesh = mesh_settings(m->set, trust_domain_);
  auto bundle = ca_.distributed_bundle();
  m->bundle_pem = bundle.to_pem();
  m->bundle_hash = bundle_hash(m->bundle_pem);
  m->bundle = std::make_shared<const identity::TrustBundle>(std::move(bundle));
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
