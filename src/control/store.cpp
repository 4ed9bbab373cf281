// control/store.cpp — what every Store implementation shares: resource keys and the document list
// an apply stores (see store.h).
#include "control/store.h"

#include <algorithm>
#include <set>

namespace mg::control {

std::string ResourceKey::str() const { return kind + "/" + ns + "/" + name; }

Result<std::vector<KeyedDocument>> keyed_documents(const policy::ResourceSet& set) {
  std::vector<KeyedDocument> out;
  auto add = [&](const char* kind, const auto& resources) {
    for (const auto& r : resources) out.push_back({{kind, r.meta.ns, r.meta.name}, &r.meta});
  };
  add("AuthorizationPolicy", set.authorization_policies);
  add("PeerAuthentication", set.peer_authentications);
  add("RequestAuthentication", set.request_authentications);
  add("Workload", set.workloads);
  add("Mesh", set.meshes);
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.meta->order < b.meta->order; });
  // A set never names one resource twice (the later document replaced the earlier); a store
  // keyed by these must not either.
  std::set<ResourceKey> seen;
  for (const auto& d : out) {
    if (!seen.insert(d.key).second) return fail("store.duplicate", d.key.str() + " appears more than once");
  }
  return out;
}

}  // namespace mg::control
