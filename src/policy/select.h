// policy/select.h — which resources apply to one workload, Istio's scoping rules:
//   * a policy in the root namespace (default istio-system) without selector applies mesh-wide;
//     AuthorizationPolicy / RequestAuthentication in the root namespace WITH a selector apply to
//     matching workloads in every namespace;
//   * a policy in namespace N applies to workloads in N; selector.matchLabels narrows it.
// PeerAuthentication resolves to one effective mTLS mode per port: workload (selector) >
// namespace > mesh; UNSET inherits from the next level; portLevelMtls (workload level only)
// overrides per port; nothing set anywhere means PERMISSIVE.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policy/path.h"
#include "policy/resources.h"

namespace mg::policy {

struct MeshConfig {
  std::string root_namespace = "istio-system";
  std::string trust_domain = "cluster.local";
  // Principals written with one of these trust domains match identities of `trust_domain`, and
  // the reverse (Istio's trust domain migration); see policy::principals_for_trust_domains.
  std::vector<std::string> trust_domain_aliases;
  PathNormalization path_normalization = PathNormalization::Base;
  uint32_t num_trusted_proxies = 0;  // remote.ip / remoteIpBlocks (remote_ip.h)
  std::vector<ExtensionProvider> extension_providers;  // Mesh.spec.extensionProviders
  bool h2_upgrade = true;  // Mesh.spec.h2UpgradePolicy (resources.h)
};

// The provider named `name` (AuthorizationPolicy provider.name), or null when the mesh defines none.
const ExtensionProvider* find_extension_provider(const MeshConfig& mesh, std::string_view name);
// Every CUSTOM AuthorizationPolicy of `set` names a provider `mesh` defines; else an error
// (code policy.undefined_provider) naming the first that does not, with its file:line. Apply
// refuses such a set; one that slips through (the Mesh changed later) still fails closed.
Status check_custom_providers(const ResourceSet& set, const MeshConfig& mesh);

// The mesh settings a resource set carries: its `Mesh` named default (meshguard.io/v1alpha1), if
// any, over `defaults`. The control plane pushes that document with every snapshot (one it writes
// from its defaults when none is stored: mesh_document), so the agent, the proxy and the control
// plane read the same settings from the same text; `authz check` reads it from its -f files.
MeshConfig mesh_config_of(const ResourceSet& set, MeshConfig defaults = {});

// A `Mesh` named default carrying `mesh` (parses back to it through mesh_config_of).
std::string mesh_document(const MeshConfig& mesh);

struct WorkloadRef {
  std::string ns;
  std::map<std::string, std::string> labels;
  std::string service_account;
};

// A Service selects the Workloads of its own namespace whose labels hold every selector label (a
// Kubernetes Service's rule; an empty selector, refused by the parser, would select none).
bool service_selects(const Service& service, const WorkloadRef& workload);

// Why a resource does or does not apply to a workload (for explain / analyze).
struct Applicability {
  bool applies = false;
  std::string why;  // e.g. "mesh-wide (root namespace istio-system)", "selector app=x does not match"
};

Applicability applies_to(const Meta& meta, const Selector& selector, const WorkloadRef& workload,
                         const MeshConfig& mesh, bool root_selector_spans_namespaces = true);

std::vector<const AuthorizationPolicy*> applicable_authorization_policies(const ResourceSet& set, const WorkloadRef& w,
                                                                          const MeshConfig& mesh);
std::vector<const RequestAuthentication*> applicable_request_authentications(const ResourceSet& set,
                                                                             const WorkloadRef& w,
                                                                             const MeshConfig& mesh);
// OPAPolicy scopes like AuthorizationPolicy (a root-namespace policy without selector: the whole
// mesh; with one: matching workloads of every namespace).
std::vector<const OpaPolicy*> applicable_opa_policies(const ResourceSet& set, const WorkloadRef& w,
                                                      const MeshConfig& mesh);

struct EffectiveMtls {
  MtlsMode mode = MtlsMode::Permissive;  // never Unset
  std::string decided_by;                // "ns/name" of the PeerAuthentication, empty = default
  bool port_level = false;               // decided by a portLevelMtls entry
};

struct PeerAuthnResolution {
  EffectiveMtls workload;  // for ports without a port-level entry
  std::map<uint32_t, EffectiveMtls> ports;

  const EffectiveMtls& for_port(uint32_t port) const {
    auto it = ports.find(port);
    return it == ports.end() ? workload : it->second;
  }
};

PeerAuthnResolution resolve_peer_authentication(const ResourceSet& set, const WorkloadRef& w, const MeshConfig& mesh);

}  // namespace mg::policy
