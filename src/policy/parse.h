// policy/parse.h — multi-document YAML text → validated resources (policy/resources.h).
//
// Kinds: AuthorizationPolicy, PeerAuthentication, RequestAuthentication
// (apiVersion security.istio.io/v1 or v1beta1) and meshguard's Workload, Mesh, OPAPolicy and the
// service registry's Service and ServiceEndpoints (meshguard.io/v1alpha1; parse_service.cpp), and Istio's routing
// kinds Gateway, VirtualService and ServiceEntry (networking.istio.io v1, v1beta1, v1alpha3;
// parse_networking.cpp). Every resource keeps its document's exact text (Meta::document).
// Unknown fields, bad enums, bad string patterns, CIDRs, ports and unknown `when` keys are
// rejected; an OPAPolicy's Rego modules are compiled here (src/rego), and one that does not
// compile is rejected with "<source>:<line>:<column>" pointing into the YAML file. A text with
// one bad document is rejected whole. Documents of other kinds (networking.istio.io's other kinds,
// Kubernetes Service, Deployment, ...) are skipped and listed in ResourceSet::skipped; an unknown kind in
// security.istio.io or meshguard.io is refused (fail closed: it may be a mistyped security rule).
// Errors read "<source>:<line>: <reason>" (line 1-based). Pure: no I/O (see load.h for the file
// loader). parse.cpp parses the security kinds and runs past the 800-line guideline on purpose:
// they share many kind-specific walkers (sources, operations, conditions, JWT rules); the generic
// ones (Ctx, for_each_field, scalar, ...) are in parse_internal.h, which the registry's kinds
// (parse_service.cpp) use too.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policy/resources.h"

namespace mg::policy {

// `ns` is kubectl's -n/--namespace (empty: not given; else it must be a namespace name). A
// namespaced document without metadata.namespace goes to `ns` (or "default"), and gets that
// namespace written into its metadata in Meta::document, so the stored text re-parses alone to the
// same resource; a document naming another namespace than `ns` is refused (as kubectl does).
// `mesh` is meshguardctl's --mesh (empty: not given): a namespaced document without the
// meshguard.io/mesh label gets it written into its metadata.labels (Meta::document) the same way;
// one labelled with another mesh is refused (policy.mesh_mismatch), and so is a Mesh of another name.
Result<ResourceSet> parse_resources(std::string_view yaml, std::string_view source = "<input>",
                                    std::string_view ns = {}, std::string_view mesh = {});

// What a control plane accepts from an operator (`meshguardctl apply`): every parsed kind but
// ServiceEndpoints, which the control plane computes from Services and registered proxies. An
// error (code policy.generated_kind) names the first such document's file:line.
Status check_appliable(const ResourceSet& set);

// A Kubernetes DNS label (RFC 1123): lower-case letters, digits and '-', not at either end, at most
// 63 characters. What -n/--namespace and `token create` accept as namespace / service account.
bool is_dns_label(std::string_view name);

// One line naming every skipped document ("skipped 2 documents of kinds meshguard does not enforce:
// VirtualService default/reviews (a.yaml:1), ..."), or "" when none was skipped.
std::string skipped_warning(const ResourceSet& set);

// An AuthorizationPolicy `when` key, e.g. "request.headers[x-id]" or
// "request.auth.claims[realm][roles]" (nested claims).
struct ConditionKey {
  enum class Kind {
    RequestHeader,      // args[0] = header name
    SourceIp,
    RemoteIp,
    SourceNamespace,
    SourcePrincipal,
    AuthPrincipal,
    AuthAudiences,
    AuthPresenter,
    AuthClaim,          // args = claim path
    DestinationIp,
    DestinationPort,
    ConnectionSni,
  };
  Kind kind = Kind::RequestHeader;
  std::vector<std::string> args;
  bool http_only() const;  // request.* keys need HTTP
  bool is_ip() const { return kind == Kind::SourceIp || kind == Kind::RemoteIp || kind == Kind::DestinationIp; }
};

// The error message says why a key is not supported (unknown keys are rejected, fail closed).
Result<ConditionKey> parse_condition_key(std::string_view key);

}  // namespace mg::policy
