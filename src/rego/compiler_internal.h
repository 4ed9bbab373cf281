// rego/compiler_internal.h — the Rego compiler's shared declarations (internal to mg_rego). The
// compiler is one class whose phases live in separate files:
//   compiler.cpp          entry points (compile, prepare_query), the rule tree (rules indexed by data
//                         path), per-rule compilation, the recursion check
//   compiler_resolve.cpp  term resolution: which names a body declares, and names -> frame slots,
//                         rules, imports, input/data; function calls -> built-ins or user functions
//   compiler_flatten.cpp  nested references, calls and comprehensions -> flat expressions binding
//                         generated variables; constant folding; `with` targets
//   compiler_order.cpp    safety: expressions reordered so each one's inputs are bound before it runs;
//                         what cannot be bound is a rego_unsafe_var_error
//   compiler_refs.cpp     references' constant prefixes resolved once per plan
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "rego/engine.h"

namespace mg::rego::compiler_detail {

inline constexpr int kDataSlot = -2;
inline constexpr int kInputSlot = -3;

struct CompileFailure {
  RegoErrors errors;
};

[[noreturn]] inline void fail_compile(std::string code, std::string message, const Location& loc) {
  throw CompileFailure{RegoErrors{make_error(std::move(code), std::move(message), loc)}};
}

// Syntax-tree helpers shared by the phases (compiler.cpp).
TermP clone(const TermP& t);
TermP make_var_term(const std::string& name, int slot, Location loc, bool wildcard);
TermP make_value_term(Value v, Location loc);
// Dotted name of a call operator / with target: f, a.b.c, data.x.f.
std::optional<std::vector<std::string>> dotted(const TermP& t);
std::string join(const std::vector<std::string>& parts);
// Variables of a term (slots), including a comprehension's closure (stored in its items).
void collect_vars(const TermP& t, std::vector<int>& out);
std::vector<int> vars_of(const TermP& t);

using SlotSet = std::unordered_set<int>;
bool all_bound(const std::vector<int>& vs, const SlotSet& bound);

// Every term of a compiled rule (its else chain: head reference, arguments, suffix, value, key,
// body) or body (expressions' terms, `with` targets and values, nested and comprehension bodies),
// parents before children. `visit(term)` returns whether to descend into the term's children.
// The two scans that read the whole tree (constant references, input use) share this walk.
enum class WithTargets : bool { Skip, Visit };
template <class Visit>
struct TermWalk {
  Visit& visit;
  WithTargets with_targets;

  void term(const TermP& t) {
    if (!t || !visit(t)) return;
    for (const auto& i : t->items) term(i);
    for (const auto& [k, v] : t->pairs) {
      term(k);
      term(v);
    }
    term(t->key);
    term(t->val);
    if (t->body) body(*t->body);
  }
  void body(const Body& b) {
    for (const auto& e : b.exprs) {
      for (const auto& t : e.terms) term(t);
      for (const auto& w : e.withs) {
        if (with_targets == WithTargets::Visit) term(w.target);
        term(w.value);
      }
      if (e.body) body(*e.body);
    }
  }
  void rule(const Rule& r) {
    for (const Rule* x = &r; x; x = x->else_rule.get()) {
      for (const auto& t : x->head_ref) term(t);
      for (const auto& t : x->args) term(t);
      for (const auto& t : x->suffix) term(t);
      term(x->value);
      term(x->key);
      if (x->body) body(*x->body);
    }
  }
};
template <class Visit>
TermWalk(Visit&, WithTargets) -> TermWalk<Visit>;

// References' constant prefixes resolved against the compiled plan (compiler_refs.cpp): run once
// the rule tree and every rule are compiled, and for each prepared query.
void resolve_constant_refs(const Plan& plan);
void resolve_constant_refs(const Plan& plan, const Body& query);

// ------------------------------------------------------------------ scopes

struct Frame {
  int next_slot = 0;
  std::vector<std::string> names;  // slot -> name
  int gen_counter = 0;
};

struct Scope {
  Scope* parent = nullptr;
  Frame* frame = nullptr;
  std::unordered_map<std::string, int> vars;
  // `x := ...` declares x from its expression on: a nested body (comprehension) written before
  // that expression does not see it (as OPA). position: the expression being compiled.
  std::unordered_map<std::string, size_t> assigned_at;
  size_t position = SIZE_MAX;
  int lookup(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent) {
      auto it = s->vars.find(name);
      if (it == s->vars.end()) continue;
      if (s != this) {
        auto a = s->assigned_at.find(name);
        if (a != s->assigned_at.end() && a->second > s->position) continue;
      }
      return it->second;
    }
    return -1;
  }
  int declare(const std::string& name) {
    int slot = frame->next_slot++;
    frame->names.push_back(name);
    vars[name] = slot;
    return slot;
  }
  int fresh(const std::string& prefix = "__local") {
    int slot = frame->next_slot++;
    std::string name = prefix + std::to_string(frame->gen_counter++) + "__";
    frame->names.push_back(name);
    return slot;
  }
  bool is_outer(int slot) const {
    // A slot declared in a parent scope (closure variable of a nested body).
    for (const Scope* s = parent; s; s = s->parent)
      for (const auto& [n, sl] : s->vars)
        if (sl == slot) return true;
    return false;
  }
};

// ------------------------------------------------------------------ the compiler

class Compiler {
 public:
  Compiler(Plan& plan, const Registry& registry) : plan_(plan), reg_(registry) {}
  // Module-level context for name resolution.
  struct ModuleCtx {
    const Module* mod = nullptr;
    std::set<std::string> rule_names;
    std::unordered_map<std::string, TermP> imports;  // alias -> ref term (head data/input)
  };
  void build_tree();
  void compile_modules();
  ModuleCtx module_ctx(const Module& m);
  // Query compile: a body against the plan, without package.
  void compile_query(PreparedQuery& q);

 private:
  // ---------------------------------------------------------------- rule tree
  void add_rule_to_tree(const Module& m, const RuleP& r);
  const RuleNode* find_node(const std::vector<std::string>& path) const;

  // ---------------------------------------------------------------- rules
  void compile_rule(const ModuleCtx& ctx, Rule& r);
  // Declares variables written in the body that are local at this level (not rules/imports).
  void prepass_declare(Body& body, Scope& scope);
  // `with f as g`: a replacement naming a function or built-in is not a variable.
  void declare_with_value(const With& w, Scope& scope);
  static void pattern_var_terms(const TermP& t, std::vector<TermP>& out);
  void declare_pattern_vars(const TermP& t, Scope& scope);
  bool is_global_name(const std::string& name) const;
  // Declares, at this scope, variables that appear at this level and are not global names.
  void declare_free_vars(const TermP& t, Scope& scope);

  // ---------------------------------------------------------------- name resolution
  TermP global_ref(const std::string& name, Location loc);
  // Resolves variable names to slots or global references. Comprehensions get their own scope.
  TermP resolve_term(const TermP& t, Scope& scope, bool declare_unknown);
  // Function name -> built-in or user function path (data.<path>).
  struct FnTarget {
    const BuiltinDecl* builtin = nullptr;
    std::vector<std::string> path;
  };
  std::optional<FnTarget> lookup_function(const std::vector<std::string>& name);
  void resolve_call_operator(Term& call);
  size_t call_arity(const Term& call) const;
  // Comprehension: own scope; closure variables recorded in items (for safety ordering).
  void compile_comprehension(Term& t, Scope& outer);
  // Nested bodies: a name already known in an outer scope refers to it (closure), unless declared
  // here with `some` or `:=`.
  void prepass_declare_nested(Body& body, Scope& scope) { prepass_declare(body, scope); }
  void declare_nested_free(const TermP& t, Scope& scope) { declare_free_vars(t, scope); }

  // ---------------------------------------------------------------- flattening
  TermP fresh_var(Scope& scope, Location loc);
  // Folds constant composites into values. Returns true when t is ground.
  static bool fold(TermP& t);
  // Emits `type(term, g)` (or `g = term` when var_first) for a fresh variable g and returns g.
  TermP bind_fresh(ExprType type, TermP term, Location loc, Scope& scope, std::vector<Expr>& out,
                   bool var_first);
  // Returns a simple term (value, variable, or composite of simple terms); refs, calls and
  // comprehensions become expressions in `out` binding generated variables.
  TermP flatten_term(TermP t, Scope& scope, std::vector<Expr>& out);
  TermP flatten_ref(TermP t, Scope& scope, std::vector<Expr>& out);
  TermP flatten_call_args(TermP call, Scope& scope, std::vector<Expr>& out);
  void flatten_expr(Expr& e, Scope& scope, std::vector<Expr>& out);
  void flatten_body(Body& body, Scope& scope, std::vector<Expr>& out);
  With resolve_with(With w, Scope& scope, std::vector<Expr>& out);
  void flatten_plain(Expr& e, Scope& scope, std::vector<Expr>& out);
  void emit_ref_or_unify(TermP r, TermP other, Location loc, std::vector<Expr>& out);
  void flatten_call_expr(TermP call, TermP output, Location loc, Scope& scope, std::vector<Expr>& out);

  // ---------------------------------------------------------------- ordering (safety)
  static void expr_vars(const Expr& e, std::vector<int>& out);
  // Variables that must be bound before e runs, and those it binds. nullopt: not ready.
  std::optional<std::vector<int>> ready(const Expr& e, const SlotSet& bound, Scope& scope);
  std::optional<std::vector<int>> unify_ready(const TermP& a, const TermP& b, const SlotSet& bound);
  bool try_order(std::vector<Expr>& exprs, SlotSet& bound, Scope& scope);
  std::vector<Expr> order(std::vector<Expr> exprs, SlotSet& bound, Scope& scope);
  [[noreturn]] void report_unsafe(const std::vector<Expr>& exprs, const SlotSet& bound, Scope& scope);

  // ---------------------------------------------------------------- recursion
  void refs_of_body(const Body& b, std::vector<std::vector<std::string>>& out);
  void refs_of_term(const TermP& t, std::vector<std::vector<std::string>>& out);
  void collect_rule_nodes(const RuleNode* n, std::vector<const RuleNode*>& out);
  // Nodes a data path depends on: the rule nodes along the path and every one below it.
  void deps_of_path(const std::vector<std::string>& path, std::vector<const RuleNode*>& out);
  void check_recursion();
  Plan& plan_;
  const Registry& reg_;
  const ModuleCtx* ctx_ = nullptr;
  std::vector<std::string> pkg_;
};

}  // namespace mg::rego::compiler_detail
