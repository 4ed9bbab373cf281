// meshguardctl/lib/kinds.cpp — see kinds.h.
#include "kinds.h"

#include <algorithm>
#include <cctype>

namespace mg::ctl {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

// The versions each group serves (a version.group qualifier must name one).
bool known_version(std::string_view group, std::string_view version) {
  if (group == "security.istio.io") return version == "v1" || version == "v1beta1";
  if (group == "networking.istio.io") return version == "v1" || version == "v1beta1" || version == "v1alpha3";
  return version == "v1alpha1";
}

// "", "GROUP" or "VERSION.GROUP" for kind `k`.
bool qualifier_matches(const KindInfo& k, std::string_view q) {
  if (q.empty() || q == k.group) return true;
  auto dot = q.find('.');
  return dot != std::string_view::npos && q.substr(dot + 1) == k.group &&
         known_version(k.group, q.substr(0, dot));
}

}  // namespace

const std::vector<KindInfo>& all_kinds() {
  static const std::vector<KindInfo> kinds = {
      {"AuthorizationPolicy", "authorizationpolicies", "ap", "security.istio.io", true},
      {"PeerAuthentication", "peerauthentications", "pa", "security.istio.io", true},
      {"RequestAuthentication", "requestauthentications", "ra", "security.istio.io", true},
      {"Workload", "workloads", "wl", "meshguard.io", true},
      {"Mesh", "meshes", "mesh", "meshguard.io", false},
      {"OPAPolicy", "opapolicies", "opa", "meshguard.io", true},
      {"Service", "services", "svc", "meshguard.io", true},
      {"ServiceEndpoints", "serviceendpoints", "ep", "meshguard.io", true, "endpoints", true},
      {"DestinationRule", "destinationrules", "dr", "networking.istio.io", true},
      {"Gateway", "gateways", "gw", "networking.istio.io", true},
      {"VirtualService", "virtualservices", "vs", "networking.istio.io", true},
      {"ServiceEntry", "serviceentries", "se", "networking.istio.io", true},
  };
  return kinds;
}

Result<const KindInfo*> find_kind(std::string_view name) {
  const std::string n = lower(name);
  const auto dot = n.find('.');
  const std::string head = n.substr(0, dot);
  const std::string_view qualifier =
      dot == std::string::npos ? std::string_view{} : std::string_view(n).substr(dot + 1);
  for (const auto& k : all_kinds()) {
    if (head != lower(k.kind) && head != k.plural && head != k.short_name && !(k.alias && head == k.alias))
      continue;
    if (qualifier_matches(k, qualifier)) return &k;
  }
  std::string known;
  for (const auto& k : all_kinds())
    known += std::string(known.empty() ? "" : ", ") + k.short_name + "|" + k.plural;
  return fail("ctl.bad_kind", "unknown resource type \"" + std::string(name) + "\" (known: " + known +
                                  ", each also as KIND or KIND.GROUP; all)");
}

Result<std::vector<const KindInfo*>> resolve_kinds(std::string_view list) {
  std::vector<const KindInfo*> out;
  auto add = [&out](const KindInfo* k) {
    if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
  };
  size_t start = 0;
  while (start <= list.size()) {
    auto comma = list.find(',', start);
    auto item = list.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (item.empty()) return fail("ctl.bad_kind", "empty resource type in \"" + std::string(list) + "\"");
    if (lower(item) == "all") {
      for (const auto& k : all_kinds()) add(&k);
    } else {
      auto k = find_kind(item);
      if (!k) return fail(k.error());
      add(*k);
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

Result<std::vector<Target>> parse_targets(const std::vector<std::string>& args) {
  if (args.empty()) return fail("ctl.bad_args", "name a resource type (e.g. ap, pa, all) or TYPE/NAME");
  std::vector<Target> out;
  if (args[0].find('/') != std::string::npos) {
    for (const auto& a : args) {
      auto slash = a.find('/');
      if (slash == std::string::npos || slash == 0 || slash + 1 == a.size() ||
          a.find('/', slash + 1) != std::string::npos)
        return fail("ctl.bad_args", "\"" + a + "\": with TYPE/NAME arguments, every argument is TYPE/NAME");
      auto k = find_kind(a.substr(0, slash));
      if (!k) return fail(k.error());
      out.push_back({*k, a.substr(slash + 1)});
    }
    return out;
  }
  auto kinds = resolve_kinds(args[0]);
  if (!kinds) return fail(kinds.error());
  if (args.size() == 1) {
    for (const auto* k : *kinds) out.push_back({k, ""});
    return out;
  }
  if (kinds->size() != 1)
    return fail("ctl.bad_args", "NAME arguments need one resource type, not " + args[0]);
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i].find('/') != std::string::npos)
      return fail("ctl.bad_args", "\"" + args[i] + "\": TYPE/NAME needs no separate TYPE argument");
    out.push_back({kinds->front(), args[i]});
  }
  return out;
}

const KindInfo* kind_of(std::string_view kind) {
  for (const auto& k : all_kinds()) {
    if (kind == k.kind) return &k;
  }
  return nullptr;
}

std::string qualified_name(const KindInfo& k) { return lower(k.kind) + "." + k.group; }

}  // namespace mg::ctl
