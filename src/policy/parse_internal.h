// policy/parse_internal.h — the node walkers and line bookkeeping parse.cpp's kinds share, exposed
// to the other parser files of src/policy (parse_authz, parse_authn, parse_mesh, parse_opa, parse_service,
// parse_networking) and to nothing else: not part of mg_policy's interface. Errors read "<source>:<line>: <reason>"; every node walked spends from
// Ctx::budget, which stops alias expansion from turning a small file into huge work.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policy/resources.h"

namespace mg::policy::detail {

// Parse state for one text: its name (for messages) and a budget that stops alias expansion
// (`*ref` repeated at several nesting levels) from turning a small file into huge work.
struct Ctx {
  std::string source;
  size_t budget = 0;
  int line_offset = 0;  // line of the current document's first line within the whole text
  std::string_view document;  // the current document's text (Meta::document)
  int order = 0;              // the current document's position in the text (Meta::order)
  size_t body_offset = 0;     // where the text yaml-cpp loaded starts within `document`
  std::string_view requested_ns;  // -n/--namespace, or empty
  std::string_view requested_mesh;  // --mesh, or empty
};

// A thread-local view of the document being parsed, so line_of() can add its offset.
extern thread_local const Ctx* current_ctx;

int line_of(const YAML::Node& n);  // 1-based line in the whole text
Unexpected<Error> err(const Ctx& ctx, const YAML::Node& at, const std::string& why,
                      const char* code = "policy.invalid");
Status spend(Ctx& ctx, const YAML::Node& at);
Result<std::string> scalar(const Ctx& ctx, const YAML::Node& n, const std::string& what);
Status string_map(Ctx& ctx, const YAML::Node& n, const std::string& what, std::map<std::string, std::string>& out);
Result<bool> boolean(const Ctx& ctx, const YAML::Node& n, const std::string& what);
Result<uint32_t> whole_number(const Ctx& ctx, const YAML::Node& n, const std::string& what, uint32_t min,
                              uint32_t max);

// Calls f(key, value) for every entry of a mapping; rejects non-mappings, non-scalar keys,
// duplicate keys and keys outside `allowed`.
template <class F>
Status for_each_field(Ctx& ctx, const YAML::Node& node, const std::string& what,
                      std::initializer_list<std::string_view> allowed, F&& f) {
  if (node.IsNull()) return {};
  if (!node.IsMap()) return err(ctx, node, what + " must be a mapping");
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (auto s = spend(ctx, it->first); !s) return s;
    if (!it->first.IsScalar()) return err(ctx, it->first, what + ": field names must be strings");
    const std::string key = it->first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return err(ctx, it->first, "unknown field \"" + key + "\" in " + what, "policy.unknown_field");
    }
    if (!seen.insert(key).second) return err(ctx, it->first, "duplicate field \"" + key + "\" in " + what);
    if (auto s = f(key, it->second); !s) return s;
  }
  return {};
}

// Parses each entry of a sequence with parse_one(node, T&), appending to `out`.
template <class T, class F>
Status object_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<T>& out, F&& parse_one) {
  if (n.IsNull()) return {};
  if (!n.IsSequence()) return err(ctx, n, what + " must be a list");
  for (const auto& item : n) {
    if (auto s = spend(ctx, item); !s) return s;
    T value;
    if (auto s = parse_one(item, value); !s) return s;
    out.push_back(std::move(value));
  }
  return {};
}

// List walkers the kinds share (parse.cpp).
Status string_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<std::string>& out);
Status pattern_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<std::string>& out);
Status cidr_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<std::string>& out);
Status port_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<std::string>& out);
Status parse_selector(Ctx& ctx, const YAML::Node& n, Selector& out);

// "5s", "500ms", "1.5s", "1m", "2160h" → milliseconds; zero or more than `max_ms` fails (parse_authn.cpp).
Result<int64_t> parse_duration_ms(const std::string& text, int64_t max_ms);

// One file per group of kinds: spec → resource; meta is already filled in.
Status parse_authorization_policy(Ctx& ctx, const YAML::Node& spec, AuthorizationPolicy& p);  // parse_authz.cpp
Status parse_peer_authentication(Ctx& ctx, const YAML::Node& spec, PeerAuthentication& p);    // parse_authn.cpp
Status parse_request_authentication(Ctx& ctx, const YAML::Node& spec, RequestAuthentication& r);
Status parse_mesh(Ctx& ctx, const YAML::Node& spec, Mesh& m);                                   // parse_mesh.cpp
// OPAPolicy also reads its document (`doc`) for the source positions of its modules (parse_opa.cpp).
Status parse_opa_policy(Ctx& ctx, const YAML::Node& spec, const YAML::Node& doc, OpaPolicy& p);

// The registry's kinds (parse_service.cpp): spec → resource; meta is already filled in.
Status parse_service(Ctx& ctx, const YAML::Node& spec, Service& s);
Status parse_service_endpoints(Ctx& ctx, const YAML::Node& spec, ServiceEndpoints& e);

// networking.istio.io DestinationRule (parse_destination_rule.cpp).
Status parse_destination_rule(Ctx& ctx, const YAML::Node& spec, DestinationRule& r);
// Istio's routing kinds (parse_networking.cpp). is_networking_kind: a Gateway, VirtualService or
// ServiceEntry of the networking.istio.io group (any version: a wrong one is refused, not skipped).
bool is_networking_kind(std::string_view kind, std::string_view api_version);
Status check_networking_version(const Ctx& ctx, const YAML::Node& doc, std::string_view kind,
                                std::string_view api_version);
Status parse_gateway(Ctx& ctx, const YAML::Node& spec, Gateway& g);
Status parse_virtual_service(Ctx& ctx, const YAML::Node& spec, VirtualService& vs);
Status parse_service_entry(Ctx& ctx, const YAML::Node& spec, ServiceEntry& se);

}  // namespace mg::policy::detail
