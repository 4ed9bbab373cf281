// control/console_service.h — ConsoleService.Http, for the admin identity only: the zero-trust
// console (issue 17, docs/CONSOLE.md). `meshguardctl dashboard` relays each HTTP request of its
// local listener here; this answers the JSON API (/api/...: console/api.h over the model, the
// distributor's proxy states and the telemetry window) and the static front end (embedded,
// console/assets.h; d3 from Debian's libjs-d3) — and RecentDecisions, the window's denials and
// audits for a workload or a policy (`meshguardctl describe`). Owns the telemetry window the Watch
// streams report into (report()).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "console/window.h"
#include "meshguard/v1/meshguard.grpc.pb.h"

namespace mg::control {

class ConfigModel;
class Distributor;

class ConsoleService {
 public:
  static std::unique_ptr<ConsoleService> create(std::string trust_domain, const ConfigModel& model,
                                                const Distributor& distributor);
  virtual ~ConsoleService() = default;
  virtual grpc::Service* service() = 0;
  // A proxy's Telemetry (from its Watch stream, after its Hello): into the window.
  virtual void report(const std::string& proxy, const ::meshguard::v1::Telemetry& telemetry) = 0;
};

// The Telemetry message as the window takes it (at most max_flows flows and max_decisions samples
// kept; the rest counted as dropped). Pure.
telemetry::InsightBatch insight_batch(const ::meshguard::v1::Telemetry& t, size_t max_flows,
                                      size_t max_decisions);

}  // namespace mg::control
