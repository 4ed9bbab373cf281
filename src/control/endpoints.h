// control/endpoints.h — the service registry's pure logic: which registered proxies back which
// Service (its selector over the workload's labels, its targetPorts over the proxy's inbound
// appPorts), the ServiceEndpoints that result, their YAML text, and which services a workload may
// call (its Workload's `egress` list). No I/O, no clock: control/registry.h holds the state.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policy/resources.h"

namespace mg::control {

// One proxy as the registry knows it (from its Hello; kept through the grace period after its
// stream ends).
struct Registration {
  std::string name, ns, service_account;       // the workload (ns and account from its SVID)
  std::map<std::string, std::string> labels;   // the proxy's own; a registered Workload's win
  std::string address;  // reported in the Hello, else the stream's peer address; a Workload's wins
  struct InboundPort {
    uint32_t port = 0;      // the listener a client proxy dials
    uint32_t app_port = 0;  // the workload's port behind it (a Service's targetPort)
    std::string protocol;
    bool operator==(const InboundPort&) const = default;
  };
  std::vector<InboundPort> inbound;
  // Listed healthy: its stream is up, or it was restored after a control-plane restart and its
  // proxy has not reconnected yet. False: its stream ended, within the grace period.
  bool connected = true;
  // Its mesh (docs/MESHES.md): only Services of that mesh select it. "" is the default mesh.
  std::string mesh;
  // The SPIFFE ID its certificate proved (ns and service_account are read from it); shared with
  // the other replicas on etcd (live_endpoints.h), not kept in the store's record.
  std::string spiffe_id;
  bool operator==(const Registration&) const = default;
};

// A registration's text as the store keeps it (JSON; `connected` is the store's column, not in
// it), and that text read back — checked as a Hello is (DNS-ish names, an IP address or none,
// ports 1..65535, at most 1024 of them), since a store file is input like any other.
std::string registration_record(const Registration& registration);
Result<Registration> parse_registration_record(std::string_view record);

// The IP address in a gRPC peer string ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000"), or "".
std::string peer_ip(std::string_view grpc_peer);

// One ServiceEndpoints per Service of `set`, in the set's order (an empty list when nothing backs
// it): every registration of the service's namespace whose labels (its registered Workload's, when
// there is one) the selector matches, with the address (the Workload's `address`, else the
// registration's) and, per service port, the inbound listener whose appPort is the targetPort. A
// registration serving none of the service's ports, without an address, or whose registered
// Workload names another service account is left out. Endpoints are sorted by workload name, and
// every result carries its YAML text (Meta::document, source "<registry>").
std::vector<policy::ServiceEndpoints> compute_endpoints(const policy::ResourceSet& set,
                                                        const std::vector<Registration>& registrations);

// YAML text of a ServiceEndpoints that policy::parse_resources reads back to it.
std::string endpoints_document(const policy::ServiceEndpoints& endpoints);

// Whether a workload in namespace `caller_ns` whose Workload has `egress` (absent: none registered,
// or no `egress` field) may call `service`. Absent: every service of the mesh; else the list's
// Istio Sidecar `egress.hosts`-style entries "NAMESPACE/NAME", where NAMESPACE is a namespace,
// "." (the caller's own) or "*" (any), and NAME a service name or "*"; an empty list: none.
bool may_call(const std::optional<std::vector<std::string>>& egress, const std::string& caller_ns,
              const policy::Service& service);

}  // namespace mg::control
