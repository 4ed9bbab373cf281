// console/api.h — the console's JSON API (docs/CONSOLE.md), as pure functions of what the control
// plane knows at one moment: the stored resources, the proxies' states (ConsoleWorkload) and the
// telemetry window (window.h). The control plane's ConsoleService (control/console_service.h)
// gathers the inputs and routes /api/NAME here; nothing here does I/O.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "console/window.h"
#include "policy/resources.h"
#include "policy/select.h"

namespace mg::console {

// One workload as the control plane knows it: registered (a Workload resource) and/or connected.
struct ConsoleWorkload {
  std::string ns, name, service_account, spiffe_id;
  std::map<std::string, std::string> labels;
  bool registered = false, connected = false;
  std::string cert_state, cert_serial;
  int64_t cert_not_after = 0;  // Unix seconds; 0: unknown
  std::string sent_version, acked_version, nack_error;
  int64_t sent_revision = 0, acked_revision = 0;
  std::string acked_bundle;  // hash of the trust bundle its ACKed snapshot carried ("" : none)
  std::string proxy_version;
  std::string key() const { return ns + "/" + name; }
};

// The mesh as the console shows it.
struct MeshView {
  std::string trust_domain;
  int64_t revision = 0;  // the store's
  int64_t certificate_ttl_seconds = 86400;
  std::string bundle_hash;  // of the bundle proxies are sent now
  struct Root {
    std::string subject, fingerprint;
    int64_t not_after = 0;
  };
  std::vector<Root> roots;
};

// GET /api/graph: workloads grouped by namespace, and an edge per (source, destination) observed
// in the window with its rate, mTLS badge (mTLS | plaintext | mixed), allowed and denied counts
// and the policies that decided its requests.
nlohmann::ordered_json graph_json(const std::vector<ConsoleWorkload>& workloads,
                                  const std::vector<FlowTotal>& flows,
                                  const std::map<std::string, int64_t>& covered_ms,
                                  const WindowLimits& limits);
// GET /api/workloads: identity, certificate (warning under 20% of its lifetime left), trust root,
// connected, config version sent and ACKed.
nlohmann::ordered_json workloads_json(const std::vector<ConsoleWorkload>& workloads, const MeshView& mesh,
                                      int64_t now_unix);
// GET /api/policies: every stored resource with the workloads it selects and the analyzer's findings.
nlohmann::ordered_json policies_json(const policy::ResourceSet& set, const policy::MeshConfig& mesh,
                                     const std::vector<ConsoleWorkload>& workloads);
// GET /api/decisions[?workload=NS/NAME][&policy=NS/NAME][&limit=N]: recent denials and audits,
// newest first; `workload` matches the destination or the source's workload.
nlohmann::ordered_json decisions_json(const std::vector<ReportedDecision>& decisions,
                                      const std::vector<ConsoleWorkload>& workloads,
                                      const std::map<std::string, std::string>& query);
// One sample as `meshguardctl describe` lists it (ConsoleService.RecentDecisions): the sample and
// the reporting workload, and its source named as the graph names it ("ns/name", a principal, or
// "plaintext").
struct DecisionRow {
  ReportedDecision decision;
  std::string source;
};
// The samples (newest first, as InsightWindow::decisions gives them) that `destination` reported
// ("ns/name"; "" any) and `policy` decided ("" any), at most `limit`.
std::vector<DecisionRow> recent_decisions(const std::vector<ReportedDecision>& decisions,
                                          const std::vector<ConsoleWorkload>& workloads,
                                          const std::string& destination, const std::string& policy,
                                          size_t limit);
// POST /api/whatif {"workload": "NS/NAME" (optional), "request": {request.json}}: `authz check`
// (policy/check.h) against `set`. The workload's namespace, labels and service account: from its
// Workload resource as `authz check --workload` takes them, else from the connected proxy's
// (`workloads`). An error is the caller's (400).
Result<nlohmann::ordered_json> whatif_json(const policy::ResourceSet& set, const policy::MeshConfig& mesh,
                                           const std::vector<ConsoleWorkload>& workloads,
                                           std::string_view body);
// GET /api/mesh: trust domain, CA roots and their expiry, rotation state (which proxies enforce the
// current bundle), certificate TTL, mesh-wide mTLS mode, the store's revision.
nlohmann::ordered_json mesh_json(const MeshView& mesh, const policy::ResourceSet& set,
                                 const policy::MeshConfig& config,
                                 const std::vector<ConsoleWorkload>& workloads, const WindowStats& window,
                                 int64_t now_unix);

// "a=b&c=d" with %XX and '+' decoded; a malformed escape is kept as written.
std::map<std::string, std::string> parse_query(std::string_view query);

}  // namespace mg::console
