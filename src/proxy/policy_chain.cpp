#include "proxy/policy_chain.h"

#include "policy/load.h"
#include "policy/select.h"

namespace mg::proxy {

EffectiveMtls effective_mtls(const InboundPort& port, bool have_tls, const policy::AuthzSnapshot* snapshot) {
  if (port.mtls) return {*port.mtls, "config mtlsMode (operator override)"};
  if (snapshot) {
    const auto& m = snapshot->peer_authn().for_port(port.app_port);
    if (!m.decided_by.empty()) {
      MtlsMode mode = m.mode == policy::MtlsMode::Strict    ? MtlsMode::Strict
                      : m.mode == policy::MtlsMode::Disable ? MtlsMode::Disable
                                                            : MtlsMode::Permissive;
      return {mode, "PeerAuthentication " + m.decided_by + (m.port_level ? " portLevelMtls" : "")};
    }
  }
  if (have_tls) return {MtlsMode::Permissive, "default (no PeerAuthentication; certificates configured)"};
  return {MtlsMode::Disable, "default (no PeerAuthentication; no tls section)"};
}

Result<PolicyChains> load_policy_chains(const std::string& dir, const WorkloadInfo& workload,
                                        std::shared_ptr<jwt::JwksProvider> jwks,
                                        std::optional<uint32_t> num_trusted_proxies) {
  auto resources = policy::load_resource_files({dir});
  if (!resources) return fail(resources.error());
  return compile_policy_chains(*resources, workload, std::move(jwks), num_trusted_proxies);
}

namespace {

// Whom the policies are compiled for: the workload (its labels from a Workload document for it,
// when the set has one) and the mesh settings.
struct Subject {
  policy::WorkloadRef ref;
  policy::MeshConfig mesh;
};

Result<Subject> subject_of(const policy::ResourceSet& resources, const WorkloadInfo& workload,
                           std::optional<uint32_t> num_trusted_proxies) {
  Subject out{{workload.ns, workload.labels, workload.service_account}, {}};
  // A Workload document for this very workload (the control plane pushes the registered one) is
  // the truth about its labels: a label change takes effect with the next reload, no restart.
  for (const auto& w : resources.workloads) {
    if (w.meta.name != workload.name || w.meta.ns != workload.ns) continue;
    if (!w.service_account.empty() && w.service_account != workload.service_account)
      return fail("policy.workload_mismatch", w.meta.source + ":" + std::to_string(w.meta.line) + ": Workload " +
                                                  w.meta.full_name() + " runs as service account " +
                                                  w.service_account + ", this proxy as " + workload.service_account);
    out.ref.labels = w.labels;
  }
  out.mesh = policy::mesh_config_of(resources);
  if (num_trusted_proxies) out.mesh.num_trusted_proxies = *num_trusted_proxies;
  return out;
}

// Where each resource came from and whether it applies to the workload (/config_dump).
std::vector<PolicyOrigin> origins_of(const policy::ResourceSet& resources, const policy::AuthzSnapshot& snapshot,
                                     const Subject& subject) {
  std::vector<PolicyOrigin> out;
  const auto& ref = subject.ref;
  const auto& mesh = subject.mesh;
  auto origin = [&](const char* kind, const policy::Meta& meta, bool applies) {
    out.push_back({kind, meta.full_name(), meta.source, meta.line, applies});
  };
  for (const auto& p : resources.authorization_policies) {
    origin("AuthorizationPolicy", p.meta, policy::applies_to(p.meta, p.selector, ref, mesh).applies);
  }
  const auto& pa = snapshot.peer_authn();
  for (const auto& p : resources.peer_authentications) {
    bool applies = pa.workload.decided_by == p.meta.full_name();
    for (const auto& [port, m] : pa.ports) applies = applies || m.decided_by == p.meta.full_name();
    origin("PeerAuthentication", p.meta, applies);
  }
  for (const auto& r : resources.request_authentications) {
    origin("RequestAuthentication", r.meta, policy::applies_to(r.meta, r.selector, ref, mesh).applies);
  }
  for (const auto& p : resources.opa_policies) {
    origin("OPAPolicy", p.meta, policy::applies_to(p.meta, p.selector, ref, mesh).applies);
  }
  for (const auto& w : resources.workloads) origin("Workload", w.meta, false);
  for (const auto& svc : resources.services) origin("Service", svc.meta, true);  // the registry's
  for (const auto& e : resources.service_endpoints) origin("ServiceEndpoints", e.meta, true);
  for (const auto& m : resources.meshes) {
    out.push_back({"Mesh", m.meta.name, m.meta.source, m.meta.line, true});  // cluster-scoped
  }
  return out;
}

}  // namespace

bool endpoints_only_change(const policy::ResourceSet& prev, const policy::ResourceSet& next) {
  bool same = true;
  policy::for_each_kind([&](const char* kind, auto member) {
    if (!same || std::string_view(kind) == "ServiceEndpoints") return;
    const auto& a = prev.*member;
    const auto& b = next.*member;
    if (a.size() != b.size()) {
      same = false;
      return;
    }
    for (size_t i = 0; i < a.size() && same; ++i)
      same = !a[i].meta.document.empty() && a[i].meta.document == b[i].meta.document;
  });
  return same;
}

Result<PolicyChains> with_new_endpoints(const PolicyChains& in_force, const policy::ResourceSet& next,
                                        const WorkloadInfo& workload, std::optional<uint32_t> num_trusted_proxies) {
  auto subject = subject_of(next, workload, num_trusted_proxies);
  if (!subject) return fail(subject.error());
  PolicyChains out;
  out.snapshot = in_force.snapshot;
  out.request = in_force.request;
  out.connection = in_force.connection;
  out.own_labels = in_force.own_labels;  // Workload documents are not endpoints: unchanged
  out.resources = next.size();
  out.origins = origins_of(next, *out.snapshot, *subject);
  out.registry = Registry::build(next, subject->mesh.trust_domain, workload.ns);
  out.registry->set_registry_only(subject->mesh.outbound_traffic_policy ==
                                  policy::OutboundTrafficPolicy::RegistryOnly);
  out.destination_rules = in_force.destination_rules;  // DestinationRules are not endpoints: unchanged
  out.mesh_routing = in_force.mesh_routing;            // nor VirtualServices and ServiceEntries
  return out;
}

Result<PolicyChains> compile_policy_chains(const policy::ResourceSet& set, const WorkloadInfo& workload,
                                           std::shared_ptr<jwt::JwksProvider> jwks,
                                           std::optional<uint32_t> num_trusted_proxies) {
  const policy::ResourceSet* resources = &set;
  auto subject = subject_of(set, workload, num_trusted_proxies);
  if (!subject) return fail(subject.error());
  const policy::MeshConfig& mesh = subject->mesh;
  auto snapshot = policy::compile_snapshot(*resources, subject->ref, mesh);
  if (!snapshot) return fail(snapshot.error());

  PolicyChains out;
  out.snapshot = *snapshot;
  out.registry = Registry::build(*resources, mesh.trust_domain, workload.ns);
  out.own_labels = subject->ref.labels;
  out.registry->set_registry_only(mesh.outbound_traffic_policy == policy::OutboundTrafficPolicy::RegistryOnly);
  auto rules = DestinationRules::build(*resources, workload.ns, mesh.root_namespace);
  if (!rules) return fail(rules.error());  // a caCertificates file that does not load: fail closed
  out.destination_rules = std::move(*rules);
  out.mesh_routing = MeshRouting::build(*resources);
  out.resources = resources->size();
  out.origins = origins_of(*resources, **snapshot, *subject);
  // One Authenticator per snapshot: inline JWKS parsed once, jwksUri keys read from `jwks`,
  // verified tokens cached across requests.
  auto enforced = std::make_shared<EnforcedPolicy>();
  enforced->snapshot = out.snapshot;
  if (!out.snapshot->jwt_rules().empty()) {
    enforced->authenticator =
        std::make_shared<const jwt::Authenticator>(out.snapshot->jwt_rules(), std::move(jwks));
  }
  RequestChain rc;
  rc.steps.push_back(
      {"enforce", [enforced](RequestContext& ctx) { return enforce_request(enforced.get(), ctx); }});
  ConnectionChain cc;
  cc.steps.push_back(
      {"enforce", [enforced](ConnectionContext& ctx) { return enforce_connection(enforced.get(), ctx); }});
  out.request = std::make_shared<const RequestChain>(std::move(rc));
  out.connection = std::make_shared<const ConnectionChain>(std::move(cc));
  return out;
}

}  // namespace mg::proxy
