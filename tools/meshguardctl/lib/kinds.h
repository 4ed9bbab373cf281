// meshguardctl/lib/kinds.h — the resource kinds meshguardctl names on its command line, and
// every spelling kubectl habits bring: the kind, its plural, its short name, each optionally
// qualified by group or version.group ("ap", "authorizationpolicies",
// "authorizationpolicy.security.istio.io", "AuthorizationPolicy.v1.security.istio.io").
// Pure: no I/O.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mg::ctl {

struct KindInfo {
  const char* kind;        // as in YAML and in the store: "AuthorizationPolicy"
  const char* plural;      // "authorizationpolicies"
  const char* short_name;  // "ap"
  const char* group;       // "security.istio.io"
  bool namespaced;         // false: Mesh
  const char* alias = nullptr;  // one more spelling ("endpoints" for ServiceEndpoints)
  bool computed = false;        // made by the control plane (ServiceEndpoints): never applied or deleted
};

// Every kind, in the order `get all` lists them.
const std::vector<KindInfo>& all_kinds();

// One spelling (case-insensitive) → its kind; "all" is not a kind (see resolve_kinds). Error
// code ctl.bad_kind names the spellings it knows.
Result<const KindInfo*> find_kind(std::string_view name);
// A comma-separated list ("pa,ap", "all") → its kinds, in the order given, each once.
Result<std::vector<const KindInfo*>> resolve_kinds(std::string_view list);
// The kind named by its store spelling ("AuthorizationPolicy"), or null.
const KindInfo* kind_of(std::string_view kind);

// What `get`, `describe` and `delete` name: a kind and one name, or every resource of the kind.
struct Target {
  const KindInfo* kind = nullptr;
  std::string name;  // empty: every resource of `kind`
};
// kubectl's argument forms: "TYPE[,TYPE...]" (every resource of each), "TYPE NAME [NAME...]", or
// "TYPE/NAME [TYPE/NAME...]" (every argument in that form). Error code ctl.bad_args.
Result<std::vector<Target>> parse_targets(const std::vector<std::string>& args);

// "authorizationpolicy.security.istio.io" — what `-o name` prints before "/NAME".
std::string qualified_name(const KindInfo& k);

}  // namespace mg::ctl
