// control/model.h — the configuration model: the immutable view every snapshot, certificate
// request and caller check is answered from — the stored resources (parsed once, kept by the
// store), the store revision, the mesh settings and the trust bundle proxies are sent. Rebuilt
// after each change (ConfigModel::rebuild), shared as shared_ptr<const Model>: a reader keeps the
// one it took for as long as it needs it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "common/thread_annotations.h"
#include "control/snapshot.h"
#include "control/store.h"
#include "identity/trust_bundle.h"
#include "policy/resources.h"
#include "telemetry/metrics.h"

namespace mg::control {

class CaRotation;

struct Model {
  policy::ResourceSet set;
  int64_t revision = 0;
  MeshSettings mesh;  // points into `set`
  std::string bundle_pem;
  std::string bundle_hash;                              // bundle_hash(bundle_pem)
  std::shared_ptr<const identity::TrustBundle> bundle;  // parsed once: PEM decoding is dear
};

// What a proxy's acknowledged bundle is compared with (hex SHA-256 of the PEM).
std::string bundle_hash(const std::string& pem);

class ConfigModel {
 public:
  ConfigModel(const Store& store, const CaRotation& ca, std::string trust_domain,
              telemetry::Registry& metrics)
      : store_(store), ca_(ca), trust_domain_(std::move(trust_domain)), metrics_(metrics) {}

  // A new model from the store's resources and the CA's distributed bundle.
  Status rebuild() MG_EXCLUDES(mutex_);
  std::shared_ptr<const Model> current() const MG_EXCLUDES(mutex_);

 private:
  const Store& store_;
  const CaRotation& ca_;
  const std::string trust_domain_;
  telemetry::Registry& metrics_;
  mutable Mutex mutex_;
  std::shared_ptr<const Model> model_ MG_GUARDED_BY(mutex_);
};

}  // namespace mg::control
