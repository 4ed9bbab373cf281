// meshguardctl: stored resources as `get`, `describe`, `delete` and `diff` see them — fetched by
// kubectl-style targets (lib/kinds.h) and label selector (lib/selector.h), and turned into
// kubectl-shaped objects (the stored YAML as JSON, metadata.resourceVersion = the store revision
// of its last change).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "admin_client.h"
#include "kinds.h"
#include "policy/resources.h"
#include "selector.h"

namespace mg::ctl {

struct Fetched {
  std::vector<pb::Resource> items;     // in target order, each target's sorted by namespace and name
  int64_t revision = 0;                // the store's
  std::vector<std::string> not_found;  // kubectl's lines: authorizationpolicies "x" not found
};

// One Get per target (`ns` empty: every namespace; a Mesh is looked up cluster-wide), keeping
// those `selector` matches. A named target that does not exist is listed in not_found, not an
// error; a failed call is (printed already by rpc_failed).
Result<Fetched> fetch(const Conn& c, const std::vector<Target>& targets, const std::string& ns,
                      const LabelSelector& selector);

// Every stored resource, parsed as the control plane parsed it (errors: as fetch()).
Result<policy::ResourceSet> stored_set(const Conn& c);

// The stored YAML as a JSON object (YAML typed as kubectl reads it), with
// metadata.resourceVersion; nullopt + why when the stored text is not one YAML mapping.
Result<nlohmann::json> to_object(const pb::Resource& r);
std::map<std::string, std::string> labels_of(const nlohmann::json& object);

// The stored document without a leading "---" line, ending in a newline: what `-o yaml` joins
// with one "---" line between documents.
std::string document_text(const std::string& yaml);

}  // namespace mg::ctl
