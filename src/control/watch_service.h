// control/watch_service.h — ConfigService.Watch: one bidirectional stream per proxy. The stream
// authenticates its caller by SVID, says Hello (the workload it speaks for), then ACKs or NACKs
// each snapshot the distributor pushes. Owns the streams' write queues (one snapshot in flight,
// only the newest waiting); what each proxy was sent is the distributor's. A stream's Telemetry
// (after its Hello) goes to the console's window.
#pragma once

#include <memory>

#include <grpcpp/grpcpp.h>

namespace mg::control {

class ConfigModel;
class Distributor;
class ConsoleService;

std::unique_ptr<grpc::Service> make_watch_service(Distributor& distributor, const ConfigModel& model,
                                                  ConsoleService& console);

}  // namespace mg::control
