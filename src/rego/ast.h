// rego/ast.h — the Rego syntax tree (modules, rules, bodies, expressions, terms) and the error type
// every stage reports with OPA's codes and row:col. The parser builds it; the compiler annotates it
// in place (variable slots, resolved references, built-in declarations, evaluation order) before it
// is frozen inside an immutable plan.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rego/value.h"

namespace mg::rego {

struct BuiltinDecl;
struct RuleNode;

struct Location {
  const std::string* file = nullptr;  // owned by the plan (module file names); may be null
  int row = 0;
  int col = 0;
};

// An error in OPA's shape: {"code", "message", "location"}.
struct RegoError {
  std::string code;  // rego_parse_error, rego_compile_error, rego_type_error, rego_unsafe_var_error,
                     // rego_recursion_error, eval_conflict_error, eval_type_error, eval_builtin_error
  std::string message;
  std::string file;
  int row = 0;
  int col = 0;
  // OPA's text form: "file:row: code: message" (location part omitted when unknown).
  std::string to_string() const;
};
using RegoErrors = std::vector<RegoError>;
RegoError make_error(std::string code, std::string message, const Location& loc);

struct Term;
struct Body;
using TermP = std::shared_ptr<Term>;
using BodyP = std::shared_ptr<Body>;

enum class TermType : uint8_t {
  Value,        // scalar or ground constant (value)
  Var,          // name; slot after compile
  Ref,          // items[0] head (Var or other term), items[1..] operands
  Array,        // items
  Set,          // items
  Object,       // pairs
  ArrayCompr,   // key | body
  SetCompr,     // key | body
  ObjectCompr,  // key: val | body
  Call,         // items[0] operator (Ref or Var), items[1..] args
};

struct Term {
  TermType type = TermType::Value;
  Location loc;
  Value value;
  std::string name;       // Var
  int slot = -1;          // Var: frame slot (compiled)
  bool wildcard = false;  // `_` or compiler-generated: never reported, never a binding
  std::vector<TermP> items;
  std::vector<std::pair<TermP, TermP>> pairs;
  TermP key, val;
  BodyP body;
  // Compiled annotations.
  const BuiltinDecl* builtin = nullptr;  // Call: resolved built-in
  std::vector<std::string> data_path;    // Call: user function path (data.a.f -> ["a","f"])
  bool ground = false;                   // no variables at all (constant subtree folded into value)
  // Ref, resolved once per plan (compiler_refs.cpp): the operands after the head that are constant
  // values (items[1 .. const_ops]); for a reference into data, the rule-tree node and base
  // document its constant string keys reach, and the item the walk resumes at (0: not resolved).
  uint32_t const_ops = 0;
  uint32_t ref_at = 0;
  const RuleNode* ref_node = nullptr;
  const Value* ref_base = nullptr;
};

enum class ExprType : uint8_t {
  Term,      // terms[0]: true unless false/undefined
  Call,      // terms[0]: Call term; with an output when terms.size()==2 (terms[1])
  Unify,     // terms[0] = terms[1]
  Assign,    // terms[0] := terms[1] (compiled into Unify + declaration)
  SomeDecl,  // some x, y (declaration only)
  SomeIn,    // some [terms[0],] terms[1] in terms[2] (terms[0] null when no key)
  Every,     // every [terms[0],] terms[1] in terms[2] { body }
  // Compiled forms:
  RefEval,  // enumerate ref terms[0] and unify each value with terms[1]
  Group,    // body (produced by flattening an expression with `not` or `with`)
};

struct With {
  TermP target;  // input..., data..., or a function/built-in name
  TermP value;
  Location loc;
};

struct Expr {
  ExprType type = ExprType::Term;
  Location loc;
  bool negated = false;
  std::vector<TermP> terms;
  BodyP body;
  std::vector<With> withs;
  // Compiled: slots of variables that are local to this expression's nested body (reset between
  // iterations of `every`).
  std::vector<int> local_slots;
  // Source span [src_begin, src_end) of the expression (queries print it as "text").
  uint32_t src_begin = 0, src_end = 0;
};

struct Body {
  std::vector<Expr> exprs;
};

enum class RuleKind : uint8_t { Complete, MultiValue, Function };

struct Rule {
  RuleKind kind = RuleKind::Complete;
  Location loc;
  bool is_default = false;
  std::vector<TermP> head_ref;      // full head ref after package: e.g. p, ["q"], [x] (Var/Value terms)
  std::vector<TermP> args;          // Function arguments
  TermP value;                      // head value (Complete/Function); null means `true`
  TermP key;                        // MultiValue element
  BodyP body;                       // never null after parsing (constant rules get an empty body)
  std::shared_ptr<Rule> else_rule;  // else chain
  bool has_body = false;
  // Compiled
  std::vector<std::string> path;  // data path of the ground prefix (package + head ref prefix)
  std::vector<TermP> suffix;      // remaining head ref terms (object-building keys)
  int frame_size = 0;
  bool constant_value = false;  // head value ground: the first solution decides
};
using RuleP = std::shared_ptr<Rule>;

struct Import {
  TermP path;  // Ref
  std::string alias;
  Location loc;
};

struct Module {
  std::string file;
  std::vector<std::string> package;  // path after data
  Location package_loc;
  std::vector<Import> imports;
  std::vector<RuleP> rules;
  bool v0 = false;
};
using ModuleP = std::shared_ptr<Module>;

}  // namespace mg::rego
