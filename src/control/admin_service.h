// control/admin_service.h — AdminService, for the admin identity only (meshguardctl): apply,
// delete, get and watch resources (the computed ServiceEndpoints too, from the registry, their
// changes ordered by its generation), list workloads, mint bootstrap tokens, rotate the CA. An apply
// parses each file once (the mesh-level checks and the store both use that parse); a dry-run apply
// validates the same way and only compares with the store. Owns the
// resource watchers (WatchResources) and their event queues; everything else it asks of the
// store, the distributor, the model, the CA and the bootstrap keys.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "control/registry.h"
#include "telemetry/metrics.h"

namespace mg::control {

class BootstrapCredentials;
class CaRotation;
class ConfigModel;
class Distributor;
class Store;

class MeshCas;

struct AdminServiceDeps {
  std::string trust_domain;
  Store& store;
  const ConfigModel& model;
  Distributor& distributor;
  CaRotation& ca;
  const BootstrapCredentials& bootstrap;
  telemetry::Registry& metrics;
  const Registry& registry;  // Get of kind ServiceEndpoints: computed, never stored
  MeshCas* mesh_cas = nullptr;  // the other meshes' CAs (docs/MESHES.md); null: none
};

class AdminService {
 public:
  static std::unique_ptr<AdminService> create(const AdminServiceDeps& deps);
  virtual ~AdminService() = default;
  virtual grpc::Service* service() = 0;
  // Ends every WatchResources stream ("shutting down").
  virtual void close_watchers() = 0;
  // Sends the watchers of ServiceEndpoints what a registry recompute at store revision `revision`
  // changed (Distributor::on_endpoints_changed).
  virtual void publish_endpoint_changes(int64_t revision, const std::vector<Registry::Change>& changes) = 0;
};

}  // namespace mg::control
