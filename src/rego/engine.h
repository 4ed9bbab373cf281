// rego/engine.h — the Rego engine's public API: compile modules + base data once into an immutable
// Plan, prepare queries against it, and evaluate them with an input. A Plan and a PreparedQuery
// are immutable and shared by shared_ptr<const>: any number of threads evaluate concurrently with
// no locks (each evaluation owns its bindings, caches and budget). Errors carry OPA's codes.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "rego/ast.h"
#include "rego/builtins.h"
#include "rego/parser.h"
#include "rego/value.h"

namespace mg::rego {

struct ModuleSource {
  std::string file;  // name used in error locations
  std::string text;
  RegoVersion version = RegoVersion::V1;
};

struct CompileOptions {
  const Registry* registry = nullptr;  // nullptr: Registry::standard()
};

// The rule tree: one node per data path that rules define (package + ground head prefix).
struct RuleNode {
  std::string key;
  std::vector<std::string> path;
  std::map<std::string, std::unique_ptr<RuleNode>, std::less<>> children;
  std::vector<const Rule*> complete;  // complete rules defined exactly here
  const Rule* default_rule = nullptr;
  std::vector<const Rule*> multi;    // multi-value (partial set) rules (any suffix)
  std::vector<const Rule*> objects;  // complete rules with a non-ground head suffix (partial objects)
  std::vector<const Rule*> functions;
  const Rule* default_function = nullptr;
  bool has_value_rules() const {
    return !complete.empty() || default_rule || !multi.empty() || !objects.empty();
  }
  const RuleNode* child(std::string_view key) const {
    auto it = children.find(key);
    return it == children.end() ? nullptr : it->second.get();
  }
};

// The parts of `input` a plan's rules can read, worked out by compile() from every reference to
// input in the compiled modules (a reference reads the subtree at its longest prefix of constant
// string keys). A caller that builds a large input document for every evaluation (the proxy's
// OPA input) may build only these subtrees: evaluate_path on the plan then sees the same values.
// A query prepared later (prepare_query) may read more: it is not covered.
struct InputUse {
  // Input read as a whole (`input`, `input[k]`, `walk(input)`, `x := input`): all of it is needed.
  bool whole = true;
  // Otherwise the subtrees read, as paths of object keys under input: none a prefix of another,
  // sorted; empty when no rule reads input.
  std::vector<std::vector<std::string>> paths;
};

// What either of two plans can read (for one input document built for both).
InputUse merge_input_use(const InputUse& a, const InputUse& b);

struct Plan {
  std::vector<ModuleP> modules;
  std::unique_ptr<RuleNode> root;
  Value data;  // base document
  const Registry* registry = nullptr;
  InputUse input_use;
  std::string path_name(const std::vector<std::string>& path) const;  // "data.a.b"
};

Result<std::shared_ptr<const Plan>, RegoErrors> compile(const std::vector<ModuleSource>& modules, Value data,
                                                        const CompileOptions& options = {});

struct PreparedQuery {
  std::shared_ptr<const Plan> plan;
  std::string text;
  BodyP body;
  int frame_size = 0;
  std::vector<std::pair<std::string, int>> output_vars;  // user variables, in order of appearance
  struct ExprOut {
    int slot = -1;  // the expression's value; -1: the expression's value is `true`
    std::string text;
    Location loc;
  };
  std::vector<ExprOut> exprs;
};

Result<std::shared_ptr<const PreparedQuery>, RegoErrors> prepare_query(std::shared_ptr<const Plan> plan,
                                                                       std::string_view query);

struct EvalOptions {
  const Value* input = nullptr;  // nullptr: input is undefined
  bool strict_builtin_errors = false;
  uint64_t max_steps = 50'000'000;    // evaluation steps; exceeding is an error (fail closed)
  uint64_t max_bytes = 512ull << 20;  // approximate bytes of values built; exceeding is an error
  int64_t now_ns = 0;                 // 0: the current time
  PrintSink* print = nullptr;
};

struct Solution {
  std::vector<std::pair<std::string, Value>> bindings;
  std::vector<Value> expressions;  // one per top-level query expression
};

Result<std::vector<Solution>, RegoErrors> evaluate(const PreparedQuery& query, const EvalOptions& options);

// Convenience for the data plane: the value of data.<path> (undefined -> nullopt).
Result<std::optional<Value>, RegoErrors> evaluate_path(const Plan& plan, const std::vector<std::string>& path,
                                                       const EvalOptions& options);

}  // namespace mg::rego
