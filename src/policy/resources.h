// policy/resources.h — Istio security resources, Istio's Gateway, VirtualService and ServiceEntry (and
// meshguard's Workload, Mesh, OPAPolicy, Service and ServiceEndpoints) as validated, typed data. Produced by policy/parse.h; consumed by select.h (which resources apply to a workload) and
// engine.h (compiled evaluation). Every value here has already been validated: string matchers have at most
// one leading or trailing `*`, CIDRs parse, ports are 0..65535, `when` keys are known. Resources carry their
// origin (file and line) for error messages and explain.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jwt/rule.h"
#include "policy/path.h"

namespace mg::rego {
struct Plan;
struct InputUse;
}

namespace mg::policy {

struct Meta {
  std::string name;
  std::string ns = "default";
  std::string source;  // file name (or "<input>") the document came from
  int line = 0;        // 1-based line of the document's first key
  bool dry_run = false;  // annotation istio.io/dry-run: "true"
  // The mesh the resource belongs to: label meshguard.io/mesh (docs/MESHES.md); empty = the
  // default mesh. A Mesh resource's own mesh is its name.
  std::string mesh;
  int order = 0;         // the document's position in its whole load (file after file), 0-based
  // The exact text of the YAML document this resource was parsed from (from its "---" marker
  // line, if it had one, to the end of the document), so the control plane can store and push
  // what was applied and every proxy re-parses the same bytes. Re-parsing it alone yields this
  // resource; several documents can be joined with "\n---\n".
  std::string document;

  std::string full_name() const { return ns + "/" + name; }
};

// spec.selector.matchLabels; `present` false means "no selector" (namespace- or mesh-wide).
struct Selector {
  bool present = false;
  std::map<std::string, std::string> match_labels;
};

struct Source {
  int line = 0;
  std::vector<std::string> principals, not_principals;
  std::vector<std::string> request_principals, not_request_principals;
  std::vector<std::string> namespaces, not_namespaces;
  std::vector<std::string> ip_blocks, not_ip_blocks;
  std::vector<std::string> remote_ip_blocks, not_remote_ip_blocks;
};

struct Operation {
  int line = 0;
  std::vector<std::string> hosts, not_hosts;
  std::vector<std::string> ports, not_ports;
  std::vector<std::string> methods, not_methods;
  std::vector<std::string> paths, not_paths;
};

struct Condition {
  int line = 0;
  std::string key;  // e.g. "request.headers[x-token]", "request.auth.claims[groups]"
  std::vector<std::string> values, not_values;
};

struct Rule {
  int line = 0;
  std::vector<Source> from;    // entries OR; an entry with no fields matches everything
  std::vector<Operation> to;   // entries OR
  std::vector<Condition> when;  // AND
};

enum class Action { Allow, Deny, Audit, Custom };
const char* to_string(Action a);

struct AuthorizationPolicy {
  Meta meta;
  Selector selector;
  Action action = Action::Allow;
  std::string provider;  // CUSTOM only
  std::vector<Rule> rules;
};

enum class MtlsMode { Unset, Disable, Permissive, Strict };
const char* to_string(MtlsMode m);

struct PeerAuthentication {
  Meta meta;
  Selector selector;
  MtlsMode mode = MtlsMode::Unset;  // spec.mtls.mode (absent = UNSET)
  std::map<uint32_t, MtlsMode> port_level;  // spec.portLevelMtls
};

struct RequestAuthentication {
  Meta meta;
  Selector selector;
  std::vector<jwt::JwtRule> jwt_rules;
};

// meshguard.io/v1alpha1 Workload: the universal-mode equivalent of a Kubernetes pod.
struct Workload {
  Meta meta;
  std::string service_account;
  std::map<std::string, std::string> labels;
  std::string address;
  std::vector<uint32_t> ports;
  // spec.egress: the services the workload may call, Istio Sidecar `egress.hosts` style:
  // "NAMESPACE/NAME" with NAMESPACE a namespace, "." (the workload's own) or "*", NAME a Service
  // name or "*". Absent: every service of the mesh; [] : none. The control plane pushes only these
  // services' Service and ServiceEndpoints documents (control/endpoints.h may_call).
  std::optional<std::vector<std::string>> egress;
};

// Mesh.spec.extensionProviders[] entry, with Istio's meshConfig field names: an external
// authorizer that AuthorizationPolicies with action CUSTOM name in provider.name, called by the
// proxy (src/extauthz, docs/EXT-AUTHZ.md). Every
// value here has been validated (port 1..65535, statusOnError 100..599).
struct ExtensionProvider {
  enum class Kind { EnvoyExtAuthzHttp, EnvoyExtAuthzGrpc };
  // includeRequestBodyInCheck (Istio's BufferSettings)
  struct RequestBody {
    bool present = false;
    uint32_t max_request_bytes = 0;
    bool allow_partial_message = false;
    bool pack_as_bytes = false;
    bool operator==(const RequestBody&) const = default;
  };
  std::string name;
  Kind kind = Kind::EnvoyExtAuthzHttp;
  std::string service;  // host name or address the proxy can reach
  uint32_t port = 0;
  int64_t timeout_ms = 600000;  // Istio's default: 600s
  bool fail_open = false;
  int status_on_error = 403;  // Istio's default: Forbidden
  RequestBody include_request_body_in_check;
  // HTTP only:
  std::string path_prefix;  // empty or starting with "/"
  std::vector<std::string> include_request_headers_in_check;
  std::map<std::string, std::string> include_additional_headers_in_check;
  std::vector<std::string> headers_to_upstream_on_allow;
  std::vector<std::string> headers_to_downstream_on_deny;

  bool operator==(const ExtensionProvider&) const = default;
};
const char* to_string(ExtensionProvider::Kind k);  // "envoyExtAuthzHttp" | "envoyExtAuthzGrpc"

// Mesh.spec.outboundTrafficPolicy.mode, Istio's meshConfig field: what a client proxy does with a
// call to a host no Service (or ServiceEntry) names. ALLOW_ANY: as without the setting; REGISTRY_ONLY:
// refused, as Istio's BlackHoleCluster (HTTP 502).
enum class OutboundTrafficPolicy { AllowAny, RegistryOnly };
const char* to_string(OutboundTrafficPolicy p);  // "ALLOW_ANY" | "REGISTRY_ONLY"

// meshguard.io/v1alpha1 Mesh: mesh-wide settings. Cluster-scoped (meta.ns is ""). The one named
// "default" is the default mesh (every resource without a meshguard.io/mesh label belongs to it);
// each other one is a further mesh on the same control plane, with its own trust domain and CA
// (docs/MESHES.md).
struct Mesh {
  Meta meta;
  // spec.federatesWith: the meshes whose trust bundles this mesh's proxies accept (SPIFFE
  // federation); their principals are then allowed only where a policy names them with their
  // trust domain.
  std::vector<std::string> federates_with;
  std::string trust_domain = "cluster.local";
  std::vector<std::string> trust_domain_aliases;  // Istio meshConfig.trustDomainAliases
  std::string root_namespace = "istio-system";
  PathNormalization path_normalization = PathNormalization::Base;
  int64_t certificate_ttl_seconds = 86400;
  std::string ca_mode = "builtin";  // "builtin" | "plugin"
  // spec.ca.pluginDir (a mesh other than the default): the operator's CA in the Istio cacerts
  // layout, read by the control plane (every replica) instead of a built-in CA; "" = built-in.
  std::string ca_plugin_dir;
  // spec.gatewayTopology.numTrustedProxies, as Istio's meshConfig.defaultConfig.gatewayTopology:
  // the proxies trusted in front of every workload (remote_ip.h); a proxy config may override it.
  uint32_t num_trusted_proxies = 0;
  std::vector<ExtensionProvider> extension_providers;  // names unique
  // spec.h2UpgradePolicy, Istio's meshConfig field: UPGRADE (meshguard's default — Istio's is
  // DO_NOT_UPGRADE) carries an app's HTTP/1.1 requests to another proxy as HTTP/2 streams when
  // that proxy offers h2; DO_NOT_UPGRADE keeps them HTTP/1.1. HTTP/2 requests stay HTTP/2.
  bool h2_upgrade = true;
  OutboundTrafficPolicy outbound_traffic_policy = OutboundTrafficPolicy::AllowAny;
};

// meshguard.io/v1alpha1 OPAPolicy: Rego modules (plus optional base data) evaluated in the proxy
// for every HTTP request to the selected workloads, in Istio's CUSTOM slot (docs/OPA.md). The
// modules are compiled when the document is parsed — a module that does not compile is refused
// there — and the compiled plan is shared by every snapshot built from this resource.
struct OpaPolicy {
  Meta meta;
  Selector selector;
  std::vector<std::string> modules;                 // spec.policy, or spec.modules in order
  bool rego_v0 = false;                             // spec.regoVersion: v1 (default) | v0
  std::string decision = "data.envoy.authz.allow";  // spec.decision as written
  std::vector<std::string> decision_path;           // its path under data: {"envoy", "authz", "allow"}
  bool allow_on_error = false;                      // spec.onError: Deny (default) | Allow
  struct RequestBody {
    bool present = false;
    uint32_t max_bytes = 0;
    bool allow_partial = false;
  } include_request_body;                  // spec.includeRequestBody
  std::shared_ptr<const rego::Plan> plan;  // modules + spec.data, compiled
};

// The protocol a Service port carries (Istio's port protocols; the proxy's proxy::Protocol mirrors it).
enum class ServiceProtocol { Http, Http2, Grpc, Tcp };
const char* to_string(ServiceProtocol p);  // "http" | "http2" | "grpc" | "tcp"

// One entry of Service.spec.ports.
struct ServicePort {
  std::string name;          // unique within the service; may be "" only when it has one port
  uint32_t port = 0;         // the port clients call the service on (1..65535)
  uint32_t target_port = 0;  // the workload's app port (an inbound appPort of its proxy); default: port
  ServiceProtocol protocol = ServiceProtocol::Tcp;
};

// meshguard.io/v1alpha1 Service (namespaced): a name in front of the Workloads of its namespace whose
// labels its selector matches — the universal-mode counterpart of a Kubernetes Service.
struct Service {
  Meta meta;
  // spec.selector: a plain label map as in Kubernetes (not a policy Selector: empty selects nothing)
  std::map<std::string, std::string> workload_selector;
  std::vector<ServicePort> ports;
  // spec.loadBalancer, Istio DestinationRule's `simple` names: LEAST_REQUEST (Envoy's default) |
  // ROUND_ROBIN.
  enum class LoadBalancer { LeastRequest, RoundRobin } load_balancer = LoadBalancer::LeastRequest;

  std::string host() const { return meta.name + "." + meta.ns; }  // "details.default"
};

// One backend of a service: a registered workload whose proxy serves the service's target ports.
struct ServiceEndpoint {
  std::string workload;         // Workload name (the service's namespace)
  std::string address;          // where a client's proxy connects: the workload proxy's address
  // service port → the port on `address` that serves it (the workload proxy's inbound listener
  // whose appPort is the service port's targetPort). A service port without an entry is not served
  // by this endpoint.
  std::map<uint32_t, uint32_t> ports;
  std::string service_account;  // secure naming: the SPIFFE ID the endpoint must present is
                                // spiffe://<trust domain>/ns/<service namespace>/sa/<service_account>
  bool healthy = true;          // false while its proxy is away within the grace period (draining)
};

// meshguard.io/v1alpha1 ServiceEndpoints (namespaced, named as its Service): the endpoints the
// control plane computed for one Service, pushed with the snapshot (as a Kubernetes EndpointSlice).
// Written by the control plane, never applied by an operator; a standalone proxy's policyDir may
// hold hand-written ones.
struct ServiceEndpoints {
  Meta meta;
  std::vector<ServiceEndpoint> endpoints;
};

// networking.istio.io DestinationRule (v1, v1beta1, v1alpha3; namespaced): how a proxy talks to one
// host. meshguard honours spec.trafficPolicy's tls and loadBalancer.simple, its portLevelSettings,
// and subsets that carry only a name and a trafficPolicy (Istio's egress tasks name a subset of the
// egress gateway's service); every other field (subset labels, connectionPool, outlierDetection,
// exportTo, ...) is refused when parsed, so nothing is silently ignored (parse_destination_rule.cpp).
struct DestinationRule {
  Meta meta;
  // spec.host: a DNS name ("api.example.com", "details.default.svc.cluster.local") or a wildcard
  // ("*.example.com"), lower case; matched against the destination's host without its port.
  std::string host;
  struct Tls {
    // DISABLE: plaintext to the host; SIMPLE: TLS originated by the proxy, the server's certificate
    // verified; ISTIO_MUTUAL: the mesh's own mTLS (what meshguard does between proxies anyway).
    enum class Mode { Disable, Simple, IstioMutual } mode = Mode::Disable;
    std::string sni;              // SIMPLE: the server name sent; empty = the host
    std::string ca_certificates;  // SIMPLE: absolute path of a PEM bundle; empty = the system's roots
    bool operator==(const Tls&) const = default;
  };
  using LoadBalancer = Service::LoadBalancer;  // loadBalancer.simple: LEAST_REQUEST | ROUND_ROBIN
  // trafficPolicy.portLevelSettings[]: replaces the policy's tls and loadBalancer for one port (not
  // field by field: Istio's port-level settings do not inherit).
  struct PortSettings {
    uint32_t port = 0;
    std::optional<Tls> tls;
    std::optional<LoadBalancer> load_balancer;
    bool operator==(const PortSettings&) const = default;
  };
  struct TrafficPolicy {
    std::optional<Tls> tls;
    std::optional<LoadBalancer> load_balancer;
    std::vector<PortSettings> port_level;
    bool operator==(const TrafficPolicy&) const = default;
  };
  TrafficPolicy traffic_policy;  // spec.trafficPolicy
  struct Subset {
    std::string name;
    TrafficPolicy traffic_policy;
  };
  std::vector<Subset> subsets;  // spec.subsets: names unique

  // What applies to a connection to `port` (0: no port known) of `subset` ("" = none), in Istio's
  // order (MergeTrafficPolicy): the rule's policy, replaced by its port-level entry for `port`,
  // then the subset's fields that are set, then the subset's port-level entry for `port`.
  // nullopt: `subset` is not one of the rule's.
  struct Effective {
    std::optional<Tls> tls;
    std::optional<LoadBalancer> load_balancer;
  };
  std::optional<Effective> effective(uint32_t port, std::string_view subset) const;

  // Whether this rule's host names `host` (lower case, no port): equal, or under a "*." wildcard.
  bool matches(std::string_view host) const;
};
const char* to_string(DestinationRule::Tls::Mode m);  // "DISABLE" | "SIMPLE" | "ISTIO_MUTUAL"

// networking.istio.io (v1, v1beta1, v1alpha3) Gateway, VirtualService and ServiceEntry: the subset
// that routes HTTP by host and path at a gateway-mode proxy (parse_networking.cpp validates it;
// docs/GATEWAYS.md). Anything outside it is refused with file:line rather than ignored.

// One entry of Gateway.spec.servers.
struct GatewayServer {
  int line = 0;
  uint32_t port = 0;  // servers[].port.number: the port the gateway listens on; 0 = kernel-chosen
  std::string port_name;
  // TLS: the client's TLS is not ended here; routed by its SNI (VirtualService tls[]), relayed
  // as it is (tls.mode PASSTHROUGH).
  enum class Protocol { Http, Https, Tls } protocol = Protocol::Http;
  // servers[].hosts as written: "*", "example.com", "*.example.com", optionally "NS/" before
  // (the namespace whose VirtualServices may bind; "*" or "." = the Gateway's).
  std::vector<std::string> hosts;
  // tls.mode (HTTPS): SIMPLE terminates TLS with credentialName's certificate; ISTIO_MUTUAL
  // accepts the mesh's mTLS (the caller's SVID verified: an egress gateway knows who calls).
  // (TLS): PASSTHROUGH — the mesh's mTLS from a workload's proxy carries the app's own TLS, which
  // the gateway routes by its SNI and relays untouched.
  enum class TlsMode { None, Simple, IstioMutual, Passthrough } tls_mode = TlsMode::None;
  std::string credential_name;  // tls.credentialName (SIMPLE: required; ISTIO_MUTUAL: refused)
};

struct Gateway {
  Meta meta;
  // spec.selector: a plain label map (Istio's Gateway selector) the gateway proxy's labels must
  // carry; empty selects nothing. (Named as Service's: not a policy Selector.)
  std::map<std::string, std::string> workload_selector;
  std::vector<GatewayServer> servers;
};

// A VirtualService string match: uri / headers / method {exact | prefix}.
struct HttpStringMatch {
  enum class Kind { Exact, Prefix } kind = Kind::Exact;
  std::string value;
  bool matches(std::string_view candidate) const {
    return kind == Kind::Exact ? candidate == value : candidate.substr(0, value.size()) == value;
  }
};

// One entry of http[].match: every field given must match (AND).
struct HttpMatchRequest {
  int line = 0;
  // Where the entry applies: the Gateways ("name" in the VirtualService's namespace, "ns/name") or
  // "mesh" (client proxies); empty = wherever the VirtualService is bound.
  std::vector<std::string> gateways;
  uint32_t port = 0;  // the port the request came to (a gateway's listener, a client's Host port); 0 = any
  std::optional<HttpStringMatch> uri;     // against the path without the query
  std::map<std::string, HttpStringMatch> headers;  // lower-case names
  std::optional<HttpStringMatch> method;
};

struct HttpRouteDestination {
  int line = 0;
  std::string host;   // a Service ("name", "name.ns", "name.ns.svc.cluster.local") or ServiceEntry host
  uint32_t port = 0;  // destination.port.number; 0 = the destination's only port
  std::string subset;  // destination.subset: a subset of the host's DestinationRule (its traffic policy)
  uint32_t weight = 0;  // route[].weight; 0 with a single destination = all of it
};

struct HttpRoute {
  int line = 0;
  std::string name;
  std::vector<HttpMatchRequest> match;  // entries OR; none = every request
  std::vector<HttpRouteDestination> route;  // at least one; weights sum to 100 when more than one
};

// VirtualService.spec.tls[].match[]: a TLS connection by its SNI (no HTTP attributes).
struct TlsMatchAttributes {
  int line = 0;
  std::vector<std::string> sni_hosts;  // required: "*", "name", "*.suffix" (lower case)
  std::vector<std::string> gateways;   // as HttpMatchRequest's; empty = wherever bound
  uint32_t port = 0;                   // the port connected to; 0 = any
};

// VirtualService.spec.tls[]: routes by SNI; route[] as http[]'s (host, port, subset, weight).
struct TlsRoute {
  int line = 0;
  std::vector<TlsMatchAttributes> match;  // required, at least one
  std::vector<HttpRouteDestination> route;
};

struct VirtualService {
  Meta meta;
  std::vector<std::string> hosts;     // "*", "example.com", "*.example.com"
  std::vector<std::string> gateways;  // "name" (the VirtualService's namespace), "ns/name"; "mesh"
  std::vector<HttpRoute> http;
  std::vector<TlsRoute> tls;
};

struct ServiceEntryPort {
  uint32_t number = 0;
  std::string protocol;  // HTTP | HTTPS | HTTP2 | GRPC | TCP | TLS (upper case)
  std::string name;
  uint32_t target_port = 0;  // 0 = number
};

struct ServiceEntryEndpoint {
  std::string address;                     // an IP address (resolution STATIC)
  std::map<std::string, uint32_t> ports;   // port name → the endpoint's port; absent = the port's number
};

struct ServiceEntry {
  Meta meta;
  std::vector<std::string> hosts;
  std::vector<ServiceEntryPort> ports;
  enum class Location { MeshExternal, MeshInternal } location = Location::MeshExternal;  // Istio's default
  enum class Resolution { None, Static, Dns } resolution = Resolution::None;              // Istio's default
  std::vector<ServiceEntryEndpoint> endpoints;
  // The SPIFFE IDs (spiffe://...) the endpoints may present: a MESH_INTERNAL entry's secure naming.
  std::vector<std::string> subject_alt_names;
};

// A document of a kind meshguard does not enforce (Kubernetes Service, Deployment, the Gateway API, ...),
// found in a file beside the security resources and left out of the set.
struct SkippedDocument {
  std::string kind, ns, name;  // ns and name as written ("" when absent)
  std::string source;
  int line = 0;
};

// A document that a later one with the same kind, namespace and name replaced: as with
// `kubectl apply`, the later document wins (within a file, an apply, or across -f files).
struct ReplacedDocument {
  std::string kind, full_name;  // "AuthorizationPolicy", "ns/name"
  std::string source, by_source;
  int line = 0, by_line = 0;  // the replaced document's and the winner's
};

// Everything loaded from one or more files, in load order; never two resources with one name.
struct ResourceSet {
  std::vector<AuthorizationPolicy> authorization_policies;
  std::vector<PeerAuthentication> peer_authentications;
  std::vector<RequestAuthentication> request_authentications;
  std::vector<Workload> workloads;
  std::vector<Mesh> meshes;
  std::vector<OpaPolicy> opa_policies;
  std::vector<Service> services;
  std::vector<ServiceEndpoints> service_endpoints;
  std::vector<DestinationRule> destination_rules;
  std::vector<Gateway> gateways;
  std::vector<VirtualService> virtual_services;
  std::vector<ServiceEntry> service_entries;
  std::vector<SkippedDocument> skipped;  // not resources: size() does not count them
  std::vector<ReplacedDocument> replaced;

  // Adds `other`'s resources after this set's; a resource `other` names again replaces this set's.
  void append(ResourceSet&& other);
  size_t size() const {
    return authorization_policies.size() + peer_authentications.size() + request_authentications.size() +
           workloads.size() + meshes.size() + opa_policies.size() +
           services.size() + service_endpoints.size() + destination_rules.size() + gateways.size() +
           virtual_services.size() + service_entries.size();
  }
};

// Calls f(kind, member) for each kind's list in a ResourceSet (`member` points to it): the one
// place the kinds of a set are named ("AuthorizationPolicy", ...).
template <class F>
void for_each_kind(F&& f) {
  f("AuthorizationPolicy", &ResourceSet::authorization_policies);
  f("PeerAuthentication", &ResourceSet::peer_authentications);
  f("RequestAuthentication", &ResourceSet::request_authentications);
  f("Workload", &ResourceSet::workloads);
  f("Mesh", &ResourceSet::meshes);
  f("OPAPolicy", &ResourceSet::opa_policies);
  f("Service", &ResourceSet::services);
  f("ServiceEndpoints", &ResourceSet::service_endpoints);
  f("DestinationRule", &ResourceSet::destination_rules);
  f("Gateway", &ResourceSet::gateways);
  f("VirtualService", &ResourceSet::virtual_services);
  f("ServiceEntry", &ResourceSet::service_entries);
}

// Calls f(kind, list) for each kind's list of `set` (const or not).
template <class Set, class F>
void for_each_kind(Set& set, F&& f) {
  for_each_kind([&](const char* kind, auto member) { f(kind, set.*member); });
}

}  // namespace mg::policy
