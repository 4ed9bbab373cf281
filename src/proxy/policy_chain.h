// proxy/policy_chain.h — the chains that enforce Istio policy files with the shared policy
// engine (src/policy): peer_authn as in the default chain, then one policy::decide per request
// (or TCP connection) in the "authz" step, mapped to a Verdict.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "policy/engine.h"
#include "proxy/chain.h"
#include "proxy/config.h"

namespace mg::proxy {

struct PolicyChains {
  std::shared_ptr<const policy::AuthzSnapshot> snapshot;
  std::shared_ptr<const RequestChain> request;
  std::shared_ptr<const ConnectionChain> connection;
  size_t resources = 0;  // resources loaded from the directory
};

// Loads every *.yaml / *.yml in `dir` and compiles the snapshot for `workload` (default mesh
// settings). Errors carry the file:line of the offending resource.
Result<PolicyChains> load_policy_chains(const std::string& dir, const WorkloadInfo& workload);

}  // namespace mg::proxy
