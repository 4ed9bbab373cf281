// rego/compiler_order.cpp — safety ordering (OPA's safety rules): the expressions of a body are
// reordered so each one's inputs are bound before it runs, keeping the written order when it is
// already safe; a variable nothing can bind is a rego_unsafe_var_error at its first use.
#include <algorithm>
#include <functional>
#include <set>

#include "rego/compiler_internal.h"

namespace mg::rego::compiler_detail {

void Compiler::expr_vars(const Expr& e, std::vector<int>& out) {
  for (const auto& t : e.terms) {
    if (!t) continue;
    if (t->type == TermType::Call)
      for (size_t i = 1; i < t->items.size(); ++i) collect_vars(t->items[i], out);
    else
      collect_vars(t, out);
  }
  for (const auto& w : e.withs) collect_vars(w.value, out);
  if (e.body && e.type == ExprType::Group)
    for (const auto& x : e.body->exprs) expr_vars(x, out);
}

// Variables that must be bound before e runs, and those it binds. nullopt: not ready.
std::optional<std::vector<int>> Compiler::ready(const Expr& e, const SlotSet& bound, Scope& scope) {
  switch (e.type) {
    case ExprType::Term:
      if (all_bound(vars_of(e.terms[0]), bound)) return std::vector<int>{};
      return std::nullopt;
    case ExprType::Unify:
      return unify_ready(e.terms[0], e.terms[1], bound);
    case ExprType::RefEval: {
      const TermP& ref = e.terms[0];
      std::vector<int> binds;
      const TermP& head = ref->items[0];
      if (!all_bound(vars_of(head), bound)) return std::nullopt;
      // Operands are patterns: their variables are bound by iterating the collection.
      for (size_t i = 1; i < ref->items.size(); ++i)
        for (int s : vars_of(ref->items[i])) binds.push_back(s);
      for (int s : vars_of(e.terms[1])) binds.push_back(s);
      return binds;
    }
    case ExprType::Call: {
      const TermP& call = e.terms[0];
      for (size_t i = 1; i < call->items.size(); ++i)
        if (!all_bound(vars_of(call->items[i]), bound)) return std::nullopt;
      if (e.terms.size() == 2) return vars_of(e.terms[1]);
      return std::vector<int>{};
    }
    case ExprType::SomeIn: {
      if (!all_bound(vars_of(e.terms[2]), bound)) return std::nullopt;
      std::vector<int> binds = vars_of(e.terms[1]);
      if (e.terms[0])
        for (int s : vars_of(e.terms[0])) binds.push_back(s);
      return binds;
    }
    case ExprType::Every: {
      if (!all_bound(vars_of(e.terms[2]), bound)) return std::nullopt;
      for (size_t i = 3; i < e.terms.size(); ++i)
        if (!all_bound(vars_of(e.terms[i]), bound)) return std::nullopt;
      return std::vector<int>{};
    }
    case ExprType::Group: {
      for (const auto& w : e.withs)
        if (!all_bound(vars_of(w.value), bound)) return std::nullopt;
      if (e.negated) {
        // Every non-generated variable inside must come from outside.
        std::vector<int> used;
        for (const auto& x : e.body->exprs) expr_vars(x, used);
        for (int s : used) {
          const std::string& n = scope.frame->names[static_cast<size_t>(s)];
          if (n.rfind("__", 0) == 0) continue;
          if (!bound.count(s)) return std::nullopt;
        }
        return std::vector<int>{};
      }
      SlotSet tmp = bound;
      if (!try_order(e.body->exprs, tmp, scope)) return std::nullopt;
      std::vector<int> binds(tmp.begin(), tmp.end());
      return binds;
    }
    default:
      return std::vector<int>{};
  }
}

std::optional<std::vector<int>> Compiler::unify_ready(const TermP& a, const TermP& b, const SlotSet& bound) {
  auto va = vars_of(a);
  auto vb = vars_of(b);
  if (all_bound(va, bound)) return vb;
  if (all_bound(vb, bound)) return va;
  bool arrays =
      a->type == TermType::Array && b->type == TermType::Array && a->items.size() == b->items.size();
  bool objects =
      a->type == TermType::Object && b->type == TermType::Object && a->pairs.size() == b->pairs.size();
  if (!arrays && !objects) return std::nullopt;
  std::vector<std::pair<TermP, TermP>> pending;
  if (arrays)
    for (size_t i = 0; i < a->items.size(); ++i) pending.emplace_back(a->items[i], b->items[i]);
  if (objects)
    for (size_t i = 0; i < a->pairs.size(); ++i) pending.emplace_back(a->pairs[i].second, b->pairs[i].second);
  SlotSet tmp = bound;
  std::vector<int> binds;
  bool progress = true;
  while (!pending.empty() && progress) {
    progress = false;
    for (size_t i = 0; i < pending.size(); ++i) {
      auto r = unify_ready(pending[i].first, pending[i].second, tmp);
      if (!r) continue;
      for (int s : *r) {
        tmp.insert(s);
        binds.push_back(s);
      }
      pending.erase(pending.begin() + static_cast<long>(i));
      progress = true;
      break;
    }
  }
  if (!pending.empty()) return std::nullopt;
  return binds;
}

bool Compiler::try_order(std::vector<Expr>& exprs, SlotSet& bound, Scope& scope) {
  std::vector<Expr> remaining = exprs;
  std::vector<Expr> ordered;
  while (!remaining.empty()) {
    bool placed = false;
    for (size_t i = 0; i < remaining.size(); ++i) {
      auto r = ready(remaining[i], bound, scope);
      if (!r) continue;
      for (int s : *r) bound.insert(s);
      ordered.push_back(std::move(remaining[i]));
      remaining.erase(remaining.begin() + static_cast<long>(i));
      placed = true;
      break;
    }
    if (!placed) return false;
  }
  exprs = std::move(ordered);
  return true;
}

std::vector<Expr> Compiler::order(std::vector<Expr> exprs, SlotSet& bound, Scope& scope) {
  std::vector<Expr> ordered;
  ordered.reserve(exprs.size());
  std::vector<bool> taken(exprs.size(), false);
  size_t first = 0;  // every expression before it is taken
  while (ordered.size() < exprs.size()) {
    bool placed = false;
    while (first < exprs.size() && taken[first]) ++first;
    for (size_t i = first; i < exprs.size(); ++i) {
      if (taken[i]) continue;
      auto r = ready(exprs[i], bound, scope);
      if (!r) continue;
      for (int s : *r) bound.insert(s);
      // Groups order their own body now that the outer bindings are known.
      if (exprs[i].type == ExprType::Group) {
        SlotSet inner = bound;
        if (exprs[i].negated) {
          std::vector<int> used;
          for (const auto& x : exprs[i].body->exprs) expr_vars(x, used);
          for (int s : used) inner.insert(s);
          for (int s : used)
            if (scope.frame->names[static_cast<size_t>(s)].rfind("__", 0) == 0) inner.erase(s);
        }
        exprs[i].body->exprs = order(std::move(exprs[i].body->exprs), inner, scope);
        if (!exprs[i].negated)
          for (int s : inner) bound.insert(s);
      }
      ordered.push_back(std::move(exprs[i]));
      taken[i] = true;
      placed = true;
      break;
    }
    if (!placed) {
      std::vector<Expr> rest;
      for (size_t i = 0; i < exprs.size(); ++i)
        if (!taken[i]) rest.push_back(exprs[i]);
      report_unsafe(rest, bound, scope);
    }
  }
  return ordered;
}

void Compiler::report_unsafe(const std::vector<Expr>& exprs, const SlotSet& bound, Scope& scope) {
  RegoErrors errors;
  std::set<int> seen;
  for (const auto& e : exprs) {
    std::vector<int> used;
    expr_vars(e, used);
    if (e.type == ExprType::RefEval) collect_vars(e.terms[0], used);
    for (int s : used) {
      if (bound.count(s) || seen.count(s)) continue;
      const std::string& n = scope.frame->names[static_cast<size_t>(s)];
      if (n.rfind("__", 0) == 0) continue;
      seen.insert(s);
      errors.push_back(make_error("rego_unsafe_var_error", "var " + n + " is unsafe", e.loc));
    }
  }
  if (errors.empty())
    errors.push_back(make_error("rego_unsafe_var_error", "expression is unsafe", exprs.front().loc));
  throw CompileFailure{std::move(errors)};
}

}  // namespace mg::rego::compiler_detail
