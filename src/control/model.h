// control/model.h — the configuration model: the immutable view every snapshot, certificate
// request and caller check is answered from — the stored resources (parsed once, kept by the
// store), the store revision, the mesh settings and the trust bundle proxies are sent. Rebuilt
// after each change (ConfigModel::rebuild), shared as shared_ptr<const Model>: a reader keeps the
// one it took for as long as it needs it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "ca/authority.h"
#include "common/result.h"
#include "common/thread_annotations.h"
#include "control/snapshot.h"
#include "control/store.h"
#include "identity/trust_bundle.h"
#include "policy/resources.h"
#include "telemetry/metrics.h"

namespace mg::control {

class CaRotation;
class MeshCas;

// One mesh as its proxies see it (docs/MESHES.md): its resources, settings, CA and bundles.
struct MeshView {
  std::string name;  // "default" for the default mesh
  // The mesh's resources: Model::set itself while no other mesh exists, else own_set.
  const policy::ResourceSet* set = nullptr;
  policy::ResourceSet own_set;
  MeshSettings mesh;  // points into *set
  std::string bundle_pem;
  std::string bundle_hash;
  std::shared_ptr<const identity::TrustBundle> bundle;
  std::shared_ptr<const ca::Authority> authority;  // null for the default mesh (CaRotation signs)
  // The default mesh's distributed bundle, for the proxies of another mesh to trust the control
  // plane with ("" for the default mesh, whose own bundle is it).
  std::string control_plane_bundle_pem;
  std::vector<std::string> federates_with;       // Mesh.spec.federatesWith, as written
  std::vector<identity::TrustBundle> federated;  // the bundles of the meshes found among them
  std::vector<std::string> federated_meshes;     // ... and those meshes' names, in the same order
  std::string federated_text;                    // identity::federated_bundles_to_text(federated)
  std::string federated_hash;                    // bundle_hash(federated_text)
};

struct Model {
  policy::ResourceSet set;
  int64_t revision = 0;
  MeshSettings mesh;  // the default mesh's; points into meshes["default"].set
  std::string bundle_pem;
  std::string bundle_hash;                              // bundle_hash(bundle_pem)
  std::shared_ptr<const identity::TrustBundle> bundle;  // parsed once: PEM decoding is dear
  // Every mesh, "default" always among them (node-based: views point into this model).
  std::map<std::string, MeshView, std::less<>> meshes;

  Model() = default;
  Model(const Model&) = delete;  // the views point into it
  Model& operator=(const Model&) = delete;

  // The mesh named `name` ("" = default), or null.
  const MeshView* view(std::string_view name) const;
  // The mesh whose trust domain is `trust_domain`, or null.
  const MeshView* view_for_trust_domain(std::string_view trust_domain) const;
};

// What a proxy's acknowledged bundle is compared with (hex SHA-256 of the PEM).
std::string bundle_hash(const std::string& pem);

class ConfigModel {
 public:
  // `mesh_cas`: the built-in CAs of meshes other than the default (null: none are served).
  ConfigModel(const Store& store, const CaRotation& ca, std::string trust_domain,
              telemetry::Registry& metrics, MeshCas* mesh_cas = nullptr)
      : store_(store),
        ca_(ca),
        trust_domain_(std::move(trust_domain)),
        metrics_(metrics),
        mesh_cas_(mesh_cas) {}

  // A new model from the store's resources and the CA's distributed bundle.
  Status rebuild() MG_EXCLUDES(mutex_);
  std::shared_ptr<const Model> current() const MG_EXCLUDES(mutex_);

 private:
  const Store& store_;
  const CaRotation& ca_;
  const std::string trust_domain_;
  telemetry::Registry& metrics_;
  MeshCas* const mesh_cas_;
  mutable Mutex mutex_;
  std::shared_ptr<const Model> model_ MG_GUARDED_BY(mutex_);
};

}  // namespace mg::control
