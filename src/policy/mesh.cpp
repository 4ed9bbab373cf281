// policy/mesh.cpp — see mesh.h.
#include "policy/mesh.h"

#include <algorithm>
#include <map>

namespace mg::policy {

std::string_view mesh_of(const Meta& meta) {
  return meta.mesh.empty() ? kDefaultMesh : std::string_view(meta.mesh);
}

bool has_other_meshes(const ResourceSet& set) {
  bool other = false;
  for_each_kind(set, [&](const char*, const auto& list) {
    for (const auto& r : list) {
      if (mesh_of(r.meta) != kDefaultMesh) other = true;
    }
  });
  return other;
}

ResourceSet resources_of_mesh(const ResourceSet& set, std::string_view name) {
  ResourceSet out;
  for_each_kind([&](const char*, auto member) {
    for (const auto& r : set.*member) {
      if (mesh_of(r.meta) == name) (out.*member).push_back(r);
    }
  });
  return out;
}

const Mesh* find_mesh(const ResourceSet& set, std::string_view name) {
  for (const auto& m : set.meshes) {
    if (m.meta.name == name) return &m;
  }
  return nullptr;
}

namespace {

std::string where(const Meta& meta) { return meta.source + ":" + std::to_string(meta.line) + ": "; }

}  // namespace

Status check_meshes(const ResourceSet& stored, std::string_view default_trust_domain) {
  std::map<std::string, std::string, std::less<>> owner;  // trust domain -> mesh
  const Mesh* def = find_mesh(stored, kDefaultMesh);
  owner[std::string(def ? std::string_view(def->trust_domain) : default_trust_domain)] =
      std::string(kDefaultMesh);
  for (const auto& m : stored.meshes) {
    if (m.meta.name == kDefaultMesh) continue;
    auto [it, added] = owner.emplace(m.trust_domain, m.meta.name);
    if (!added) {
      return fail("policy.mesh_trust_domain_taken",
                  where(m.meta) + "Mesh " + m.meta.name + ": trust domain " + m.trust_domain + " is mesh " +
                      it->second + "'s; every mesh has a trust domain of its own");
    }
  }
  for (const auto& m : stored.meshes) {
    for (const auto& f : m.federates_with) {
      if (f == m.meta.name) {
        return fail("policy.bad_federation",
                    where(m.meta) + "Mesh " + m.meta.name + ": federatesWith cannot name the mesh itself");
      }
      if (f != kDefaultMesh && !find_mesh(stored, f)) {
        return fail("policy.unknown_mesh", where(m.meta) + "Mesh " + m.meta.name +
                                               ": federatesWith names mesh " + f + ", which does not exist");
      }
    }
  }
  Status st;
  for_each_kind(stored, [&](const char* kind, const auto& list) {
    for (const auto& r : list) {
      if (!st) return;
      const auto mesh = mesh_of(r.meta);
      if (mesh == kDefaultMesh || std::string_view(kind) == "Mesh" || find_mesh(stored, mesh)) continue;
      st = fail("policy.unknown_mesh", where(r.meta) + kind + " " + r.meta.full_name() + " belongs to mesh " +
                                           std::string(mesh) +
                                           ", which does not exist (apply its Mesh first)");
    }
  });
  return st;
}

std::vector<std::string> federated_trust_domains(const ResourceSet& set, const Mesh& mesh,
                                                 std::string_view default_trust_domain) {
  std::vector<std::string> out;
  for (const auto& name : mesh.federates_with) {
    std::string td;
    if (const Mesh* other = find_mesh(set, name)) {
      td = other->trust_domain;
    } else if (name == kDefaultMesh) {
      td = std::string(default_trust_domain);
    } else {
      continue;
    }
    if (td != mesh.trust_domain && std::find(out.begin(), out.end(), td) == out.end()) out.push_back(td);
  }
  return out;
}

bool is_foreign_principal(std::string_view principal, std::string_view trust_domain,
                          const std::vector<std::string>& aliases) {
  const auto td = principal.substr(0, principal.find('/'));
  if (td == trust_domain) return false;
  return std::none_of(aliases.begin(), aliases.end(), [&](const std::string& a) { return td == a; });
}

bool names_trust_domain(std::string_view pattern, std::string_view td) {
  const auto slash = pattern.find('/');
  if (slash == std::string_view::npos) return false;
  const auto written = pattern.substr(0, slash);
  // `*suffix` over trust domains (Istio's alias patterns) names them too; `*` alone does not.
  if (written.starts_with('*')) return written.size() > 1 && td.ends_with(written.substr(1));
  return written == td;
}

}  // namespace mg::policy
