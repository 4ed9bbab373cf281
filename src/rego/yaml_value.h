// rego/yaml_value.h — YAML text -> Value, typed as OPA reads YAML (through JSON: plain scalars
// become null/booleans/numbers when they look like one, quoted scalars stay strings, mapping keys
// are strings). Used for `-d data.yaml` and by the conformance runner; pure (text in, value out).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rego/value.h"

namespace YAML {
class Node;
}

namespace mg::rego {

// The first document of `text`. nullopt + message on a YAML syntax error.
std::optional<Value> yaml_to_value(std::string_view text, std::string* error = nullptr);
// A parsed yaml-cpp node.
Value yaml_node_to_value(const YAML::Node& node);

}  // namespace mg::rego
