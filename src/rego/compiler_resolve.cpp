// rego/compiler_resolve.cpp — term resolution: the variables each body declares (`some`, `:=`,
// patterns, free names at their level), and every name resolved to a frame slot, a rule of the
// package, an import, input or data; calls to a built-in (I/O built-ins refused by name) or a user
// function (arity checked); comprehensions compiled in their own scope with their closure recorded.
#include <algorithm>
#include <functional>
#include <set>

#include "rego/compiler_internal.h"

namespace mg::rego::compiler_detail {

// Declares variables written in the body that are local at this level (not rules/imports).
void Compiler::prepass_declare(Body& body, Scope& scope) {
  for (size_t index = 0; index < body.exprs.size(); ++index) {
    Expr& e = body.exprs[index];
    if (e.type == ExprType::SomeDecl) {
      for (auto& v : e.terms) scope.declare(v->name);
      continue;
    }
    if (e.type == ExprType::Assign) {
      std::vector<TermP> vs;
      pattern_var_terms(e.terms[0], vs);
      for (auto& v : vs) {
        if (v->wildcard) continue;
        if (scope.assigned_at.count(v->name))
          fail_compile("rego_compile_error", "var " + v->name + " assigned above", v->loc);
        if (!scope.vars.count(v->name)) scope.declare(v->name);
        scope.assigned_at[v->name] = index;
      }
    }
    if (e.type == ExprType::SomeIn) {
      for (int i = 0; i < 2; ++i)
        if (e.terms[static_cast<size_t>(i)]) declare_pattern_vars(e.terms[static_cast<size_t>(i)], scope);
      declare_free_vars(e.terms[2], scope);
      for (auto& w : e.withs) declare_with_value(w, scope);
      continue;
    }
    if (e.type == ExprType::Every) {
      declare_free_vars(e.terms[2], scope);
      continue;
    }
    for (auto& t : e.terms) declare_free_vars(t, scope);
    for (auto& w : e.withs) declare_with_value(w, scope);
  }
}

// `with f as g`: a replacement naming a function or built-in is not a variable.
void Compiler::declare_with_value(const With& w, Scope& scope) {
  if (auto n = dotted(w.value); n && scope.lookup((*n)[0]) < 0 && lookup_function(*n)) return;
  declare_free_vars(w.value, scope);
}

void Compiler::pattern_var_terms(const TermP& t, std::vector<TermP>& out) {
  if (!t) return;
  if (t->type == TermType::Var) {
    out.push_back(t);
    return;
  }
  if (t->type == TermType::Array || t->type == TermType::Set)
    for (auto& i : t->items) pattern_var_terms(i, out);
  if (t->type == TermType::Object)
    for (auto& [k, v] : t->pairs) pattern_var_terms(v, out);
}

void Compiler::declare_pattern_vars(const TermP& t, Scope& scope) {
  std::vector<TermP> vs;
  pattern_var_terms(t, vs);
  for (auto& v : vs)
    if (!v->wildcard && scope.vars.find(v->name) == scope.vars.end()) scope.declare(v->name);
}

bool Compiler::is_global_name(const std::string& name) const {
  return name == "data" || name == "input" || ctx_->rule_names.count(name) || ctx_->imports.count(name);
}

// Declares, at this scope, variables that appear at this level and are not global names.
void Compiler::declare_free_vars(const TermP& t, Scope& scope) {
  if (!t) return;
  switch (t->type) {
    case TermType::Var:
      if (!t->wildcard && scope.lookup(t->name) < 0 && !is_global_name(t->name)) scope.declare(t->name);
      return;
    case TermType::ArrayCompr:
    case TermType::SetCompr:
    case TermType::ObjectCompr:
      return;  // nested scope
    case TermType::Call:
      for (size_t i = 1; i < t->items.size(); ++i) declare_free_vars(t->items[i], scope);
      return;
    case TermType::Ref:
      for (const auto& i : t->items) declare_free_vars(i, scope);
      return;
    default:
      for (const auto& i : t->items) declare_free_vars(i, scope);
      for (const auto& [k, v] : t->pairs) {
        declare_free_vars(k, scope);
        declare_free_vars(v, scope);
      }
  }
}

TermP Compiler::global_ref(const std::string& name, Location loc) {
  auto t = std::make_shared<Term>();
  t->type = TermType::Ref;
  t->loc = loc;
  if (name == "input") {
    t->items.push_back(make_var_term("input", kInputSlot, loc, false));
    return t;
  }
  if (name == "data") {
    t->items.push_back(make_var_term("data", kDataSlot, loc, false));
    return t;
  }
  auto imp = ctx_->imports.find(name);
  if (imp != ctx_->imports.end()) {
    auto path = dotted(imp->second);
    t->items.push_back(make_var_term((*path)[0], (*path)[0] == "input" ? kInputSlot : kDataSlot, loc, false));
    for (size_t i = 1; i < path->size(); ++i)
      t->items.push_back(make_value_term(Value::string((*path)[i]), loc));
    return t;
  }
  // A rule of this package.
  t->items.push_back(make_var_term("data", kDataSlot, loc, false));
  for (const auto& p : pkg_) t->items.push_back(make_value_term(Value::string(p), loc));
  t->items.push_back(make_value_term(Value::string(name), loc));
  return t;
}

// Resolves variable names to slots or global references. Comprehensions get their own scope.
TermP Compiler::resolve_term(const TermP& t, Scope& scope, bool declare_unknown) {
  if (!t) return t;
  switch (t->type) {
    case TermType::Value:
      t->ground = true;
      return t;
    case TermType::Var: {
      if (t->slot >= 0 || t->slot == kDataSlot || t->slot == kInputSlot) return t;  // already resolved
      if (t->wildcard) {
        t->slot = scope.fresh("__wild");
        return t;
      }
      int slot = scope.lookup(t->name);
      if (slot >= 0) {
        t->slot = slot;
        return t;
      }
      if (is_global_name(t->name)) return global_ref(t->name, t->loc);
      if (!declare_unknown) fail_compile("rego_unsafe_var_error", "var " + t->name + " is unsafe", t->loc);
      t->slot = scope.declare(t->name);
      return t;
    }
    case TermType::Ref: {
      TermP head = t->items[0];
      std::vector<TermP> ops(t->items.begin() + 1, t->items.end());
      for (auto& op : ops) op = resolve_term(op, scope, declare_unknown);
      TermP rhead;
      if (head->type == TermType::Var && !head->wildcard && scope.lookup(head->name) < 0 &&
          is_global_name(head->name)) {
        rhead = global_ref(head->name, head->loc);
      } else {
        rhead = resolve_term(head, scope, declare_unknown);
      }
      if (rhead->type == TermType::Ref) {
        for (auto& op : ops) rhead->items.push_back(op);
        rhead->loc = t->loc;
        return rhead;
      }
      t->items.clear();
      t->items.push_back(rhead);
      for (auto& op : ops) t->items.push_back(op);
      return t;
    }
    case TermType::Call: {
      for (size_t i = 1; i < t->items.size(); ++i)
        t->items[i] = resolve_term(t->items[i], scope, declare_unknown);
      resolve_call_operator(*t);
      return t;
    }
    case TermType::ArrayCompr:
    case TermType::SetCompr:
    case TermType::ObjectCompr: {
      compile_comprehension(*t, scope);
      return t;
    }
    default:
      for (auto& i : t->items) i = resolve_term(i, scope, declare_unknown);
      for (auto& [k, v] : t->pairs) {
        k = resolve_term(k, scope, declare_unknown);
        v = resolve_term(v, scope, declare_unknown);
      }
      return t;
  }
}

std::optional<Compiler::FnTarget> Compiler::lookup_function(const std::vector<std::string>& name) {
  FnTarget out;
  auto user_function = [&](std::vector<std::string> p) {
    const RuleNode* n = find_node(p);
    if (!n || (n->functions.empty() && !n->default_function)) return false;
    out.path = std::move(p);
    return true;
  };
  // A function of this package, a data path, an imported path; then a built-in.
  if (!pkg_.empty() && ctx_->rule_names.count(name[0])) {
    std::vector<std::string> p = pkg_;
    p.insert(p.end(), name.begin(), name.end());
    if (user_function(std::move(p))) return out;
  }
  if (name[0] == "data" && user_function(std::vector<std::string>(name.begin() + 1, name.end()))) return out;
  if (ctx_->imports.count(name[0])) {
    auto path = dotted(ctx_->imports.at(name[0]));
    if ((*path)[0] == "data") {
      std::vector<std::string> p(path->begin() + 1, path->end());
      p.insert(p.end(), name.begin() + 1, name.end());
      if (user_function(std::move(p))) return out;
    }
  }
  if (const BuiltinDecl* b = reg_.find(join(name))) {
    out.builtin = b;
    return out;
  }
  return std::nullopt;
}

void Compiler::resolve_call_operator(Term& call) {
  auto name = dotted(call.items[0]);
  if (!name) fail_compile("rego_type_error", "invalid function call", call.loc);
  auto target = lookup_function(*name);
  std::string shown = join(*name);
  if (!target) fail_compile("rego_type_error", "undefined function " + shown, call.loc);
  size_t nargs = call.items.size() - 1;
  if (target->builtin) {
    const BuiltinDecl* b = target->builtin;
    if (b->io || !b->fn)
      fail_compile("rego_type_error",
                   shown +
                       " is an I/O built-in and is not allowed in meshguard policies (evaluated on the "
                       "request path)",
                   call.loc);
    if (b->arity >= 0 && nargs != static_cast<size_t>(b->arity) && nargs != static_cast<size_t>(b->arity) + 1)
      fail_compile("rego_type_error",
                   shown + ": arity mismatch: expected " + std::to_string(b->arity) + " arguments, got " +
                       std::to_string(nargs),
                   call.loc);
    call.builtin = b;
    call.items[0]->name = b->name;
  } else {
    const RuleNode* n = find_node(target->path);
    size_t arity = n->functions.empty() ? n->default_function->args.size() : n->functions[0]->args.size();
    if (nargs != arity && nargs != arity + 1)
      fail_compile("rego_type_error",
                   "function " + plan_.path_name(target->path) + " has arity " + std::to_string(arity) +
                       ", got " + std::to_string(nargs) + " arguments",
                   call.loc);
    call.data_path = target->path;
  }
}

size_t Compiler::call_arity(const Term& call) const {
  if (call.builtin)
    return call.builtin->arity < 0 ? call.items.size() - 1 : static_cast<size_t>(call.builtin->arity);
  const RuleNode* n = find_node(call.data_path);
  return n->functions.empty() ? n->default_function->args.size() : n->functions[0]->args.size();
}

// Comprehension: own scope; closure variables recorded in items (for safety ordering).
void Compiler::compile_comprehension(Term& t, Scope& outer) {
  Scope scope;
  scope.parent = &outer;
  scope.frame = outer.frame;
  prepass_declare_nested(*t.body, scope);
  if (t.key) declare_nested_free(t.key, scope);
  if (t.val) declare_nested_free(t.val, scope);
  std::vector<Expr> flat;
  flatten_body(*t.body, scope, flat);
  if (t.key) t.key = flatten_term(resolve_term(t.key, scope, true), scope, flat);
  if (t.val) t.val = flatten_term(resolve_term(t.val, scope, true), scope, flat);
  // Closure: slots from outer scopes used inside.
  std::vector<int> used;
  for (const auto& e : flat) expr_vars(e, used);
  if (t.key) collect_vars(t.key, used);
  if (t.val) collect_vars(t.val, used);
  std::set<int> closure;
  for (int s : used)
    if (scope.is_outer(s)) closure.insert(s);
  SlotSet bound(closure.begin(), closure.end());
  t.body->exprs = order(std::move(flat), bound, scope);
  for (const TermP& h : {t.key, t.val}) {
    if (!h) continue;
    for (int s : vars_of(h))
      if (!bound.count(s))
        fail_compile("rego_unsafe_var_error", "var " + outer.frame->names[s] + " is unsafe", h->loc);
  }
  t.items.clear();
  for (int s : closure) t.items.push_back(make_var_term(outer.frame->names[s], s, t.loc, false));
}

}  // namespace mg::rego::compiler_detail
