// control/store.cpp — what every Store implementation shares: resource keys and the document list
// an apply stores (see store.h).
#include "control/store.h"

#include <algorithm>
#include <set>

namespace mg::control {

std::string ResourceKey::str() const { return kind + "/" + ns + "/" + name; }

namespace {

void add_sorted(const policy::ResourceSet& set, std::vector<KeyedDocument>& out) {
  const size_t first = out.size();
  auto add = [&](const char* kind, const auto& resources) {
    for (const auto& r : resources) out.push_back({{kind, r.meta.ns, r.meta.name}, &r.meta});
  };
  add("AuthorizationPolicy", set.authorization_policies);
  add("PeerAuthentication", set.peer_authentications);
  add("RequestAuthentication", set.request_authentications);
  add("Workload", set.workloads);
  add("Mesh", set.meshes);
  add("OPAPolicy", set.opa_policies);
  std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
                   [](const auto& a, const auto& b) { return a.meta->line < b.meta->line; });
}

// Two documents for one resource in one apply: which one wins would depend on order, so refuse.
Status check_unique(const std::vector<KeyedDocument>& docs) {
  std::set<ResourceKey> seen;
  for (const auto& d : docs) {
    if (!seen.insert(d.key).second) {
      return fail("store.duplicate", d.meta->source + ":" + std::to_string(d.meta->line) + ": " +
                                         d.key.str() + " appears more than once in one apply");
    }
  }
  return {};
}

}  // namespace

Result<std::vector<KeyedDocument>> keyed_documents(const policy::ResourceSet& set) {
  std::vector<KeyedDocument> out;
  add_sorted(set, out);
  if (auto s = check_unique(out); !s) return fail(s.error());
  return out;
}

Result<std::vector<KeyedDocument>> keyed_documents(const std::vector<policy::ResourceSet>& sets) {
  std::vector<KeyedDocument> out;
  for (const auto& set : sets) add_sorted(set, out);
  if (auto s = check_unique(out); !s) return fail(s.error());
  return out;
}

}  // namespace mg::control
