// console/suggest.h — the console's Suggest view (issue 17): an AuthorizationPolicy generated from
// the traffic a workload actually received (ALLOW by source principal, method and path prefix,
// one rule per principal and method), and its dry run — every flow observed in the window replayed
// through `authz check`'s pipeline (policy/check.h) against the live store plus the policy as if
// enforced: would it have allowed what was allowed, and what would it deny. Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "console/api.h"
#include "console/window.h"
#include "policy/resources.h"

namespace mg::console {

// GET /api/suggest?workload=NS/NAME: {"workload", "yaml", "rules", "observed": {"requests",
// "plaintextRequests", "deniedRequests"}}. The YAML carries istio.io/dry-run: "true", so applied
// as is it first runs in shadow. Only allowed mTLS traffic makes rules (plaintext has no principal
// to allow; denied traffic stays denied). An error: no such workload, no labels to select it by.
Result<nlohmann::ordered_json> suggest_json(const std::vector<ConsoleWorkload>& workloads,
                                            const std::vector<FlowTotal>& flows, const std::string& workload);

// POST /api/suggest/dryrun {"workload": "NS/NAME", "yaml": "..."}: the documents (the suggestion,
// possibly edited) added to `set` as enforced, and each observed flow to the workload decided
// again: {"flows", "requests", "wouldAllow", "wouldDeny", "changed": [flows whose outcome differs
// from the observed one]}. Port-level settings are not known per flow: port 80 is assumed.
Result<nlohmann::ordered_json> dry_run_json(const policy::ResourceSet& set, const policy::MeshConfig& mesh,
                                            const std::vector<ConsoleWorkload>& workloads,
                                            const std::vector<FlowTotal>& flows, std::string_view body);

}  // namespace mg::console
