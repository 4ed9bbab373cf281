// policy/analyze.h — static checks over a resource set for common policy mistakes, with stable
// codes (tests and users grep them; never renumber):
//   MG0001 warning  RequestAuthentication but no AuthorizationPolicy in scope requires a request
//                   principal: requests WITHOUT a token still pass.
//   MG0002 warning  selector matches no registered Workload (only when Workloads are registered).
//   MG0003 warning  ALLOW policy with no rules: denies every request to the workloads it selects.
//   MG0004 warning  ALLOW rule allows a path that an unconditional DENY rule in scope always denies.
//   MG0005 warning  several mesh- / namespace-level PeerAuthentications for one namespace: only the
//                   first loaded is used.
//   MG0006 warning  principal written with "spiffe://": policy principals never carry the scheme.
//   MG0007 warning  two documents name the same kind/namespace/name: the later one wins, the
//                   earlier is ignored (both locations in the message).
//   MG0008 warning  CUSTOM AuthorizationPolicy naming a provider that the Mesh's extensionProviders
//                   does not define: every request it matches is denied.
//   MG0009 warning  AuthorizationPolicy requiring a request principal (requestPrincipals,
//                   request.auth.*) where no RequestAuthentication applies: those rules never match.
//   MG0010 warning  two workload-level PeerAuthentications in one namespace whose selectors can
//                   select one workload, with different modes: only one is used.
//   MG0011 info     security.istio.io/v1beta1 (deprecated by Istio): write v1.
//   MG0012 warning  Service selector matches no registered Workload (only when Workloads are
//                   registered): the service has no endpoints until one registers.
//   MG0013 warning  Service targetPort that a selected Workload's declared `ports` do not list:
//                   that workload cannot serve the port (only for Workloads that declare ports).
//   MG0014 warning  ServiceEndpoints without a Service of its name (a hand-written policyDir):
//                   no client can call it by name.
//   MG0015 warning  AuthorizationPolicy rule with HTTP-only fields (hosts, methods, paths,
//                   requestPrincipals, request.* conditions) selecting a Workload behind a tcp
//                   Service port (where the rule's ports let it apply): it never matches there.
// (Duplicate or missing Service port names are refused by the parser, not reported here.)
// docs/ANALYZE.md explains each with an example and the fix.
#pragma once

#include <string>
#include <vector>

#include "policy/resources.h"
#include "policy/select.h"

namespace mg::policy {

struct Finding {
  std::string code;      // "MG0001"
  std::string severity;  // "warning" | "info"
  std::string resource;  // "ns/name"
  std::string message;
  std::string location;  // "file:line"
};

std::vector<Finding> analyze(const ResourceSet& set, const MeshConfig& mesh);

}  // namespace mg::policy
