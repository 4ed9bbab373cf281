// rego/parser.h — Rego source text -> syntax tree (ast.h). Both syntaxes: Rego v1 (OPA >= 1.0:
// `if` before bodies, `contains` for multi-value rules) and v0 (`allow { ... }`), chosen per
// module. Parse errors are rego_parse_error with row:col.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"
#include "rego/ast.h"

namespace mg::rego {

enum class RegoVersion : uint8_t { V1, V0 };

Result<ModuleP, RegoErrors> parse_module(std::string_view text, const std::string& file, RegoVersion version);
Result<BodyP, RegoErrors> parse_query(std::string_view text);
// A single term (e.g. an input written in Rego syntax: `{"a": {1}}`); must be ground.
Result<Value, RegoErrors> parse_value(std::string_view text);

}  // namespace mg::rego
