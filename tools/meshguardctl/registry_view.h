// meshguardctl's view of the service registry: `get services` / `get endpoints` tables and
// `describe service` (cmd_get.cpp dispatches here for those kinds). Services are stored resources;
// ServiceEndpoints are computed by the control plane and fetched the same way (AdminService.Get).
#pragma once

#include <string>
#include <vector>

#include "admin_client.h"
#include "policy/resources.h"
#include "resources.h"

namespace mg::ctl {

// NAMESPACE NAME SELECTOR PORT(S) LB ENDPOINTS AGE — ENDPOINTS as healthy/listed.
int print_services_table(const Conn& c, const Fetched& services);
// NAMESPACE SERVICE WORKLOAD ENDPOINT(S) IDENTITY HEALTHY — one row per endpoint; ENDPOINT(S) is
// "SERVICEPORT->ADDRESS:PORT" per port; IDENTITY the SPIFFE ID secure naming expects.
int print_endpoints_table(const Conn& c, const Fetched& endpoints);
// The Service `svc` with its ports, the workloads its selector matches (registered or connected)
// and its endpoints.
int describe_service(const Conn& c, const policy::Service& svc, const pb::Resource& stored);

}  // namespace mg::ctl
