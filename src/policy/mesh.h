// policy/mesh.h — several meshes on one control plane (docs/MESHES.md): which mesh a resource
// belongs to (label meshguard.io/mesh; none = the default mesh), the resources of one mesh, and
// the federation trust decisions: which trust domains a mesh's proxies accept, and whether a
// policy principal pattern names a foreign trust domain explicitly (the only way a federated
// peer is ever matched). Pure logic.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policy/resources.h"

namespace mg::policy {

inline constexpr std::string_view kDefaultMesh = "default";
inline constexpr std::string_view kMeshLabel = "meshguard.io/mesh";

// The mesh `meta` belongs to: its meshguard.io/mesh label, else "default". A Mesh is its own mesh.
std::string_view mesh_of(const Meta& meta);
// True when some resource of `set` belongs to another mesh than the default, or a Mesh other
// than "default" is in it: without one, the set is the default mesh's as it stands.
bool has_other_meshes(const ResourceSet& set);
// The resources of mesh `name` (copied): every kind's resources whose mesh_of is `name`, and of
// the Mesh resources only the one named `name`.
ResourceSet resources_of_mesh(const ResourceSet& set, std::string_view name);
// The Mesh resource named `name`, or null.
const Mesh* find_mesh(const ResourceSet& set, std::string_view name);

// What apply checks about the Mesh resources of a set, together with the ones stored (`stored`:
// the whole store after the apply): trust domains unique across meshes; federatesWith names
// meshes that exist (in `stored`), never the mesh itself; every resource's mesh exists (the
// default one always does). Errors: policy.mesh_trust_domain_taken, policy.unknown_mesh,
// policy.bad_federation.
Status check_meshes(const ResourceSet& stored, std::string_view default_trust_domain);

// The trust domains a proxy of `mesh` accepts peers from besides its own: those of the meshes it
// federates with (names not found in `set` are skipped). `default_trust_domain` is the default
// mesh's when no Mesh "default" is stored.
std::vector<std::string> federated_trust_domains(const ResourceSet& set, const Mesh& mesh,
                                                 std::string_view default_trust_domain);

// A peer principal ("<td>/ns/<ns>/sa/<sa>") is foreign to a mesh whose trust domain is
// `trust_domain` (aliases `aliases`) when its trust domain is none of them.
bool is_foreign_principal(std::string_view principal, std::string_view trust_domain,
                          const std::vector<std::string>& aliases);
// Whether a policy's principal pattern, as written, names trust domain `td` explicitly: its text
// before the first '/' is `td`, or a `*suffix` of it (Istio's trust-domain patterns); `*`,
// `*/ns/x/sa/y` and a pattern without '/' do not (nor do namespaces: policy/engine.cpp).
bool names_trust_domain(std::string_view pattern, std::string_view td);

}  // namespace mg::policy
