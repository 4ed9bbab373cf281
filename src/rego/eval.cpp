// rego/eval.cpp — top-down evaluation of a compiled plan (OPA's topdown semantics); this file holds
// the entry points, terms and unification (the rest: eval_internal.h). Continuation
// passing: each expression calls its continuation once per solution; a continuation returns true
// to stop the enumeration (e.g. `not`, a constant-valued rule that already succeeded). All state
// (bindings, rule caches, `with` overrides, budget) belongs to one Evaluator, so a shared Plan is
// never written during evaluation.
#include "rego/eval_internal.h"

namespace mg::rego {

namespace eval_detail {

std::vector<Solution> Evaluator::run_query(const PreparedQuery& q) {
  std::vector<Solution> out;
  Frame f(q.frame_size);
  eval_body(*q.body, 0, f, [&]() {
    Solution s;
    for (const auto& [name, slot] : q.output_vars)
      if (f.bound[static_cast<size_t>(slot)])
        s.bindings.emplace_back(name, f.vals[static_cast<size_t>(slot)]);
    for (const auto& e : q.exprs)
      s.expressions.push_back(e.slot >= 0 ? f.vals[static_cast<size_t>(e.slot)] : Value::boolean(true));
    out.push_back(std::move(s));
    return false;
  });
  return out;
}

std::optional<Value> Evaluator::run_path(const std::vector<std::string>& path) {
  std::optional<Value> out;
  const RuleNode* node = plan_.root.get();
  const Value* base = &plan_.data;
  for (const auto& k : path) {
    if (node) node = node->child(k);
    if (base) base = base->get(std::string_view(k));
    if (node && node->has_value_rules()) {
      auto v = node_value(node, base);
      if (!v) return std::nullopt;
      // Remaining keys index into the value.
      Value cur = *v;
      bool past = false;
      for (const auto& rest : path) {
        if (!past) {
          past = &rest == &k;
          continue;
        }
        const Value* c = cur.get(std::string_view(rest));
        if (!c) return std::nullopt;
        cur = *c;
      }
      return cur;
    }
    if (!node && !base) return std::nullopt;
  }
  if (!node) return base ? std::optional<Value>(*base) : std::nullopt;
  return node_value(node, base);
}

bool Evaluator::is_ground(const TermP& t, const Frame& f) const {
  switch (t->type) {
    case TermType::Value:
      return true;
    case TermType::Var:
      return t->slot >= 0 && f.bound[static_cast<size_t>(t->slot)];
    case TermType::Array:
    case TermType::Set:
      for (const auto& i : t->items)
        if (!is_ground(i, f)) return false;
      return true;
    case TermType::Object:
      for (const auto& [k, v] : t->pairs)
        if (!is_ground(k, f) || !is_ground(v, f)) return false;
      return true;
    default:
      return true;  // comprehensions: closure bound by ordering
  }
}

Value Evaluator::eval_term(const TermP& t, Frame& f) {
  switch (t->type) {
    case TermType::Value:
      return t->value;
    case TermType::Var:
      if (t->slot < 0 || !f.bound[static_cast<size_t>(t->slot)])
        fail("eval_internal_error", "var " + t->name + " is unbound", t->loc);
      return f.vals[static_cast<size_t>(t->slot)];
    case TermType::Array: {
      Array items;
      items.reserve(t->items.size());
      for (const auto& i : t->items) items.push_back(eval_term(i, f));
      return Value::array(std::move(items));
    }
    case TermType::Set: {
      std::vector<Value> items;
      items.reserve(t->items.size());
      for (const auto& i : t->items) items.push_back(eval_term(i, f));
      return Value::set(std::move(items));
    }
    case TermType::Object: {
      ObjectItems items;
      items.reserve(t->pairs.size());
      for (const auto& [k, v] : t->pairs) items.emplace_back(eval_term(k, f), eval_term(v, f));
      return Value::object(std::move(items));
    }
    case TermType::ArrayCompr: {
      Array out;
      eval_body(*t->body, 0, f, [&]() {
        charge(64, t->loc);
        out.push_back(eval_term(t->key, f));
        return false;
      });
      return Value::array(std::move(out));
    }
    case TermType::SetCompr: {
      std::vector<Value> out;
      eval_body(*t->body, 0, f, [&]() {
        charge(64, t->loc);
        out.push_back(eval_term(t->key, f));
        return false;
      });
      return Value::set(std::move(out));
    }
    case TermType::ObjectCompr: {
      std::map<Value, Value> out;
      eval_body(*t->body, 0, f, [&]() {
        charge(96, t->loc);
        Value k = eval_term(t->key, f);
        Value v = eval_term(t->val, f);
        auto it = out.find(k);
        if (it != out.end() && it->second != v)
          fail("eval_conflict_error", "object keys must be unique", t->loc);
        out.emplace(std::move(k), std::move(v));
        return false;
      });
      ObjectItems items(out.begin(), out.end());
      return Value::object(std::move(items));
    }
    default:
      fail("eval_internal_error", "unexpected term", t->loc);
  }
}

bool Evaluator::unify_value(const TermP& t, const Value& v, Frame& f, K k) {
  switch (t->type) {
    case TermType::Value:
      return t->value == v ? k() : false;
    case TermType::Var: {
      size_t s = static_cast<size_t>(t->slot);
      if (f.bound[s]) return f.vals[s] == v ? k() : false;
      f.vals[s] = v;
      f.bound[s] = 1;
      bool stop = k();
      f.bound[s] = 0;
      f.vals[s] = Value();
      return stop;
    }
    case TermType::Array: {
      if (!v.is_array() || v.as_array().size() != t->items.size()) return false;
      return unify_items(t, v, 0, f, k);
    }
    case TermType::Object: {
      if (!v.is_object() || v.as_object().size() != t->pairs.size()) return false;
      return unify_pairs(t, v, 0, f, k);
    }
    default: {
      if (!is_ground(t, f)) return false;
      return eval_term(t, f) == v ? k() : false;
    }
  }
}

bool Evaluator::unify_items(const TermP& t, const Value& v, size_t i, Frame& f, K k) {
  if (i == t->items.size()) return k();
  return unify_value(t->items[i], v.as_array()[i], f, [&]() { return unify_items(t, v, i + 1, f, k); });
}

bool Evaluator::unify_pairs(const TermP& t, const Value& v, size_t i, Frame& f, K k) {
  if (i == t->pairs.size()) return k();
  const auto& [kt, vt] = t->pairs[i];
  if (!is_ground(kt, f)) return false;
  const Value* child = v.get(eval_term(kt, f));
  if (!child) return false;
  return unify_value(vt, *child, f, [&]() { return unify_pairs(t, v, i + 1, f, k); });
}

bool Evaluator::unify_terms(const TermP& a, const TermP& b, Frame& f, K k) {
  if (is_ground(a, f)) return unify_value(b, eval_term(a, f), f, k);
  if (is_ground(b, f)) return unify_value(a, eval_term(b, f), f, k);
  std::vector<std::pair<TermP, TermP>> pending;
  if (a->type == TermType::Array && b->type == TermType::Array) {
    if (a->items.size() != b->items.size()) return false;
    for (size_t i = 0; i < a->items.size(); ++i) pending.emplace_back(a->items[i], b->items[i]);
  } else if (a->type == TermType::Object && b->type == TermType::Object) {
    if (a->pairs.size() != b->pairs.size()) return false;
    for (const auto& [ka, va] : a->pairs) {
      if (!is_ground(ka, f)) return false;
      Value key = eval_term(ka, f);
      const TermP* match = nullptr;
      for (const auto& [kb, vb] : b->pairs)
        if (is_ground(kb, f) && eval_term(kb, f) == key) match = &vb;
      if (!match) return false;
      pending.emplace_back(va, *match);
    }
  } else {
    return false;
  }
  return unify_pending(pending, f, k);
}

bool Evaluator::unify_pending(std::vector<std::pair<TermP, TermP>> pending, Frame& f, K k) {
  if (pending.empty()) return k();
  size_t pick = 0;
  for (size_t i = 0; i < pending.size(); ++i)
    if (is_ground(pending[i].first, f) || is_ground(pending[i].second, f)) {
      pick = i;
      break;
    }
  auto [a, b] = pending[pick];
  pending.erase(pending.begin() + static_cast<long>(pick));
  return unify_terms(a, b, f, [&]() { return unify_pending(pending, f, k); });
}

}  // namespace eval_detail

using eval_detail::EvalFailure;
using eval_detail::Evaluator;

Result<std::vector<Solution>, RegoErrors> evaluate(const PreparedQuery& query, const EvalOptions& options) {
  try {
    Evaluator ev(*query.plan, options);
    return ev.run_query(query);
  } catch (const EvalFailure& f) {
    return fail(RegoErrors{f.error});
  }
}

Result<std::optional<Value>, RegoErrors> evaluate_path(const Plan& plan, const std::vector<std::string>& path,
                                                       const EvalOptions& options) {
  try {
    Evaluator ev(plan, options);
    return ev.run_path(path);
  } catch (const EvalFailure& f) {
    return fail(RegoErrors{f.error});
  }
}

}  // namespace mg::rego
