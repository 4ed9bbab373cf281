#include "control/snapshot.h"

#include <algorithm>

#include "control/endpoints.h"
#include "crypto/openssl.h"
#include "gateway/routes.h"

namespace mg::control {

MeshSettings mesh_settings(const policy::ResourceSet& set, const std::string& trust_domain) {
  MeshSettings out;
  policy::MeshConfig defaults;
  defaults.trust_domain = trust_domain;
  out.config = policy::mesh_config_of(set, defaults);
  // The Mesh "default", else the set's only one (a mesh's own set holds just its Mesh).
  const bool sole = set.meshes.size() == 1;
  for (const auto& mesh : set.meshes) {
    if (mesh.meta.name != "default" && !sole) continue;
    out.resource = &mesh;
    out.certificate_ttl_seconds = mesh.certificate_ttl_seconds;
  }
  return out;
}

const policy::Workload* find_workload(const policy::ResourceSet& set, const std::string& ns, const std::string& name) {
  for (const auto& w : set.workloads) {
    if (w.meta.ns == ns && w.meta.name == name) return &w;
  }
  return nullptr;
}

std::string selection_key(const policy::ResourceSet& set, const WorkloadView& workload) {
  std::string key = workload.mesh;  // the same namespace and labels in two meshes are two inputs
  key += '\0';
  key += workload.ns;
  key += '\0';
  if (find_workload(set, workload.ns, workload.name)) key += workload.name;
  for (const auto& [k, v] : workload.labels) {
    key += '\0';
    key += k;
    key += '=';
    key += v;
  }
  return key;
}

namespace {

void append_document(std::string& out, const std::string& document) {
  if (document.rfind("---", 0) != 0) out += "---\n";
  out += document;
  if (!document.empty() && document.back() != '\n') out += '\n';
}

template <class T>
void append_applicable(std::string& out, int& count, const std::vector<T>& resources, const policy::WorkloadRef& ref,
                       const policy::MeshConfig& mesh) {
  for (const auto& r : resources) {
    if (!policy::applies_to(r.meta, r.selector, ref, mesh).applies) continue;
    append_document(out, r.meta.document);
    ++count;
  }
}

}  // namespace

ProxySnapshot snapshot_for(const policy::ResourceSet& set, const WorkloadView& workload, const MeshSettings& mesh,
                           const std::string& trust_bundle_pem,
                           const std::vector<policy::ServiceEndpoints>* endpoints) {
  ProxySnapshot out;
  // Always a Mesh document, written from the defaults (the CA's trust domain) when none is stored:
  // the agent and the proxy then take their mesh settings from this one text (mesh_config_of).
  append_document(out.policies_yaml,
                  mesh.resource ? mesh.resource->meta.document : policy::mesh_document(mesh.config));
  ++out.documents;
  // The registered Workload itself, so the proxy selects with the same labels (policy_chain.cpp).
  const policy::Workload* registered = find_workload(set, workload.ns, workload.name);
  if (const auto* reg = registered) {
    append_document(out.policies_yaml, reg->meta.document);
    ++out.documents;
  }
  policy::WorkloadRef ref{workload.ns, workload.labels, workload.service_account};
  append_applicable(out.policies_yaml, out.documents, set.peer_authentications, ref, mesh.config);
  append_applicable(out.policies_yaml, out.documents, set.request_authentications, ref, mesh.config);
  append_applicable(out.policies_yaml, out.documents, set.authorization_policies, ref, mesh.config);
  append_applicable(out.policies_yaml, out.documents, set.opa_policies, ref, mesh.config);
  // The services it may call, each with its endpoints (their versions change with the endpoints).
  static const std::optional<std::vector<std::string>> kEverything;
  auto same_service = [](const policy::ServiceEndpoints& e, const policy::Service& s) {
    return e.meta.ns == s.meta.ns && e.meta.name == s.meta.name;
  };
  for (size_t i = 0; i < set.services.size(); ++i) {
    const auto& svc = set.services[i];
    if (!may_call(registered ? registered->egress : kEverything, workload.ns, svc)) continue;
    append_document(out.policies_yaml, svc.meta.document);
    // compute_endpoints keeps the set's order; a search only when they were computed from another.
    const policy::ServiceEndpoints* found = nullptr;
    if (endpoints && i < endpoints->size() && same_service((*endpoints)[i], svc)) {
      found = &(*endpoints)[i];
    } else if (endpoints) {
      for (const auto& e : *endpoints) {
        if (same_service(e, svc)) found = &e;
      }
    }
    if (found) {
      append_document(out.policies_yaml, found->meta.document);
    } else {
      policy::ServiceEndpoints none;
      none.meta.name = svc.meta.name;
      none.meta.ns = svc.meta.ns;
      append_document(out.policies_yaml, endpoints_document(none));
    }
    out.documents += 2;
  }

  // Every DestinationRule: Istio's default exportTo is all namespaces, and the proxy picks the one
  // for a host (its own namespace first, proxy/destination_rules.h).
  for (const auto& r : set.destination_rules) {
    append_document(out.policies_yaml, r.meta.document);
    ++out.documents;
  }
  // Istio's routing kinds: the Gateways selecting the workload (it is then a gateway), the
  // VirtualServices bound to one of them or to the reserved gateway `mesh` (`gateways` absent or
  // naming it: every client proxy routes by them, Istio's default exportTo being all namespaces),
  // and every ServiceEntry (mesh-wide, as Istio's default exportTo; a gateway's destinations and,
  // with REGISTRY_ONLY, a client's known hosts).
  std::vector<const policy::Gateway*> selecting;
  for (const auto& g : set.gateways) {
    if (!gateway::selects(g, workload.labels)) continue;
    selecting.push_back(&g);
    append_document(out.policies_yaml, g.meta.document);
    ++out.documents;
  }
  for (const auto& vs : set.virtual_services) {
    const bool bound = vs.gateways.empty() || std::any_of(vs.gateways.begin(), vs.gateways.end(), [&](const std::string& ref) {
      if (ref == "mesh") return true;
      const auto slash = ref.find('/');
      const std::string ns = slash == std::string::npos ? vs.meta.ns : ref.substr(0, slash);
      const std::string name = slash == std::string::npos ? ref : ref.substr(slash + 1);
      return std::any_of(selecting.begin(), selecting.end(),
                         [&](const policy::Gateway* g) { return g->meta.ns == ns && g->meta.name == name; });
    });
    if (!bound) continue;
    append_document(out.policies_yaml, vs.meta.document);
    ++out.documents;
  }
  for (const auto& se : set.service_entries) {
    append_document(out.policies_yaml, se.meta.document);
    ++out.documents;
  }

  // The version covers everything the proxy acts on, so an unchanged version means nothing to push.
  std::string material = out.policies_yaml;
  material += '\0';
  material += trust_bundle_pem;
  material += '\0';
  material += mesh.config.trust_domain + '\0' + mesh.config.root_namespace + '\0' +
              std::to_string(static_cast<int>(mesh.config.path_normalization)) + '\0' +
              std::to_string(mesh.certificate_ttl_seconds);
  for (const auto& [k, v] : workload.labels) material += '\0' + k + '=' + v;
  auto digest = crypto::sha256(material);
  out.version = crypto::hex(digest.data(), 8);
  return out;
}

}  // namespace mg::control
