// control/snapshot.h — what the control plane pushes to one proxy: the stored documents that
// apply to its workload (selected by the same policy::applies_to the engine uses, so there is no
// second reading of a selector anywhere; Gateways by gateway::selects), the VirtualServices bound to
// those Gateways, every ServiceEntry, the mesh settings, and a content version. Pure logic.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "policy/resources.h"
#include "policy/select.h"

namespace mg::control {

// A workload as the control plane knows it: namespace and service account come from the
// proxy's certificate; labels from its registered `Workload` resource (or from the proxy itself
// when none is registered — the universal-mode equivalent of a pod created without a spec).
struct WorkloadView {
  std::string name;
  std::string ns;
  std::string service_account;
  std::map<std::string, std::string> labels;
  bool registered = false;
  std::string mesh = "default";  // the mesh of its certificate's trust domain (docs/MESHES.md)
};

struct MeshSettings {
  policy::MeshConfig config;                 // trust domain, root namespace, path normalization
  int64_t certificate_ttl_seconds = 86400;
  const policy::Mesh* resource = nullptr;    // the stored `Mesh` (points into the ResourceSet)
};

// The stored Mesh `default` (or, in one mesh's own set, its only Mesh) if any, else defaults with
// `trust_domain` (the CA's).
MeshSettings mesh_settings(const policy::ResourceSet& set, const std::string& trust_domain);

// The registered Workload `name` in `ns`, if any.
const policy::Workload* find_workload(const policy::ResourceSet& set, const std::string& ns, const std::string& name);

struct ProxySnapshot {
  // Documents joined by "---\n": the Mesh (the stored one, else policy::mesh_document of the
  // defaults), the workload's own registered Workload, the policies that apply, in store order,
  // then, for each Service the workload may call (control/endpoints.h may_call: its Workload's
  // egress list), the Service and its ServiceEndpoints.
  std::string policies_yaml;
  std::string version;        // 16 hex digits of SHA-256 over everything the proxy receives
  int documents = 0;
};

// What snapshot_for reads of a workload, as one string: two workloads with the same key get the
// same snapshot from the same inputs, so the distributor renders it once per key and shares it
// (10,000 proxies are mostly replicas: one namespace and label set each). Policies select by
// namespace and labels (policy::applies_to; the service account is not a selector); a registered
// Workload adds its own document and egress list, so its name is part of the key. Whoever makes
// snapshot_for read another field of WorkloadView adds it here.
std::string selection_key(const policy::ResourceSet& set, const WorkloadView& workload);

// `endpoints`: the registry's (control/registry.h), one per Service; null or missing one → the
// service is sent with no endpoints.
ProxySnapshot snapshot_for(const policy::ResourceSet& set, const WorkloadView& workload, const MeshSettings& mesh,
                           const std::string& trust_bundle_pem,
                           const std::vector<policy::ServiceEndpoints>* endpoints = nullptr);

}  // namespace mg::control
