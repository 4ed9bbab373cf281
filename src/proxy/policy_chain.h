// proxy/policy_chain.h — the chains that enforce Istio policy files with the shared policy
// engine (src/policy): peer_authn as in the default chain, then one policy::decide per request
// (or TCP connection) in the "authz" step, mapped to a Verdict (the action named and the dry-run
// outcome by policy/outcome.h; an allowed request's JWT edits by jwt/forward.h). A CUSTOM rule
// whose provider decides leaves a PendingCustom (chain.h) to resume after the provider's answer
// (Enforcement::ask_provider), the rest of the same decision. Also the pure
// rule that turns a compiled snapshot into what the listeners do: the effective mTLS mode of each
// inbound port.
#pragma once

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
#include "proxy/destination_rules.h"
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
  std::shared_ptr<const DestinationRules> destination_rules;  // never null
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

// The forwarded request carries the path that was authorized (as Envoy forwards its normalized
// path): otherwise `/admin/../x` would be judged as `/x` and served as whatever the app makes of
// it. `normalized` is policy::DecideIo::normalized_path; empty leaves the request unchanged.
void forward_normalized_path(http::Request& request, const std::string& normalized);

struct EffectiveMtls {
  MtlsMode mode = MtlsMode::Permissive;
  std::string source;  // "config override", "PeerAuthentication ns/name [portLevelMtls]", "default ..."
};

// The listener mode of one inbound port: the config's mtlsMode override if set; else the
// PeerAuthentication that applies to the port's appPort in `snapshot` (may be null); else
// PERMISSIVE with certificates configured and DISABLE without. A STRICT policy stays STRICT
// without certificates (the listener then refuses every connection: never plaintext).
EffectiveMtls effective_mtls(const InboundPort& port, bool have_tls, const policy::AuthzSnapshot* snapshot);

// Applies an allowing OPAPolicy's request mutations (its `headers` set, its
// request_headers_to_remove removed), as Envoy applies an ext_authz OK response.
void apply_opa_mutations(http::Request& request, const policy::Decision& decision);

}  // namespace mg::proxy
