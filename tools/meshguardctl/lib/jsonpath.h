// meshguardctl/lib/jsonpath.h — the subset of kubectl's JSONPath templates `-o jsonpath=...`
// understands (docs/OPERATIONS.md "Output formats"):
//   text outside braces is printed as is; {"\n"} prints a quoted literal (\n \t \" \\ escapes);
//   {.a.b} fields, {['a.b/c']} a quoted key, {.a\.b} an escaped dot, {.items[0]} {.items[-1]}
//   an index, {.items[*]} every element, {$} / {@} / {.} the root / current object;
//   {range .items[*]}...{end} repeats its body with each element as the current object.
// A template without braces is taken as one expression (".items[0].metadata.name").
// Several results of one expression are printed separated by spaces; strings are printed raw,
// everything else as compact JSON. A missing key prints nothing (kubectl's
// --allow-missing-template-keys default). Filters ([?()]), slices and recursive descent (..)
// are refused with a clear error. Pure: no I/O.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mg::ctl {

// Error code ctl.bad_jsonpath.
Result<std::string> render_jsonpath(std::string_view tmpl, const nlohmann::json& root);

}  // namespace mg::ctl
