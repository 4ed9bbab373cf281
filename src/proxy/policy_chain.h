// proxy/policy_chain.h — the policy in force, compiled for this workload: loaded from policyDir
// or handed over parsed, compiled into a snapshot (policy::compile_snapshot), and published as
// chains whose one step is the enforcement step over it (enforcement_step.h); its origins for
// /config_dump and the registry view. Also the pure rule that turns a compiled snapshot into what
// the listeners do: the effective mTLS mode of each inbound port.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "http/message.h"
#include "jwt/authenticator.h"
#include "policy/engine.h"
#include "proxy/chain.h"
#include "proxy/config.h"
#include "proxy/enforcement_step.h"
#include "proxy/destination_rules.h"
#include "proxy/egress.h"
#include "proxy/registry.h"
#include "telemetry/json_line.h"
#include "telemetry/metrics.h"

namespace mg::proxy {

// Where a loaded resource came from, for /config_dump.
struct PolicyOrigin {
  std::string kind;    // AuthorizationPolicy | PeerAuthentication | RequestAuthentication | Workload | Mesh
  std::string name;    // "ns/name"
  std::string source;  // file
  int line = 0;
  bool applies = false;  // selected for this workload
};

struct PolicyChains {
  std::shared_ptr<const policy::AuthzSnapshot> snapshot;
  std::shared_ptr<const RequestChain> request;
  std::shared_ptr<const ConnectionChain> connection;
  size_t resources = 0;  // resources loaded from the directory
  std::vector<PolicyOrigin> origins;
  // The Service + ServiceEndpoints documents as outbound routing sees them (built here, with the
  // Mesh's trust domain; mutable only until PolicyState publishes it).
  std::shared_ptr<Registry> registry;
  // This workload's labels as the policies select it: its Workload document's when the set has
  // one (the control plane pushes the registered one), else the config's. The metrics take them too.
  std::map<std::string, std::string> own_labels;
  std::shared_ptr<const DestinationRules> destination_rules;  // never null
  std::shared_ptr<const MeshRouting> mesh_routing;             // never null
};

// Loads every *.yaml / *.yml in `dir` and compiles the snapshot for `workload` (mesh settings
// from a `Mesh` document if the directory has one). Errors carry the file:line of the offending
// resource. Tokens of jwksUri rules verify with the keys `jwks` holds (the caller keeps it fed,
// see jwks_keys.h); without it they fail closed with 401. `num_trusted_proxies`, when set (the
// proxy config's gatewayTopology), replaces the Mesh document's.
Result<PolicyChains> load_policy_chains(const std::string& dir, const WorkloadInfo& workload,
                                        std::shared_ptr<jwt::JwksProvider> jwks = nullptr,
                                        std::optional<uint32_t> num_trusted_proxies = std::nullopt);
// The same from resources already parsed (the agent's push, handed over in memory).
Result<PolicyChains> compile_policy_chains(const policy::ResourceSet& resources, const WorkloadInfo& workload,
                                           std::shared_ptr<jwt::JwksProvider> jwks = nullptr,
                                           std::optional<uint32_t> num_trusted_proxies = std::nullopt);

// Whether `next` differs from `prev` in its ServiceEndpoints only: every other document the same
// text in the same order (a document without its text never counts as the same). The chains
// compiled from `prev` then decide exactly as `next`'s would: only the registry changes.
bool endpoints_only_change(const policy::ResourceSet& prev, const policy::ResourceSet& next);
// `next`'s PolicyChains from `in_force`, the chains compiled for a set of which `next` is an
// endpoints_only_change: the same snapshot and chains, the registry and the origins built anew —
// nothing compiled (an endpoint joining or leaving costs every proxy a registry build, not a
// policy compile).
Result<PolicyChains> with_new_endpoints(const PolicyChains& in_force, const policy::ResourceSet& next,
                                        const WorkloadInfo& workload,
                                        std::optional<uint32_t> num_trusted_proxies = std::nullopt);

struct EffectiveMtls {
  MtlsMode mode = MtlsMode::Permissive;
  std::string source;  // "config override", "PeerAuthentication ns/name [portLevelMtls]", "default ..."
};

// The listener mode of one inbound port: the config's mtlsMode override if set; else the
// PeerAuthentication that applies to the port's appPort in `snapshot` (may be null); else
// PERMISSIVE with certificates configured and DISABLE without. A STRICT policy stays STRICT
// without certificates (the listener then refuses every connection: never plaintext).
EffectiveMtls effective_mtls(const InboundPort& port, bool have_tls, const policy::AuthzSnapshot* snapshot);

}  // namespace mg::proxy
