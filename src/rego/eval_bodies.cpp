// rego/eval_bodies.cpp — bodies: expressions in order, each calling its continuation once per
// solution; `some ... in`, `every`, `not` (a nested body run to its first solution), and `with`
// (a new scope of input/data overrides and function mocks, with its own rule cache).
#include <map>

#include "rego/eval_internal.h"

namespace mg::rego::eval_detail {

bool Evaluator::eval_body(const Body& body, size_t i, Frame& f, K k) {
  if (i == body.exprs.size()) return k();
  const Expr& e = body.exprs[i];
  step(e.loc);
  // Continuations nest native frames per expression: bound the depth, and the stack actually used
  // (frames are several times larger in sanitizer builds), so that no policy can exhaust the
  // thread's stack (an error, like the other budgets).
  if (++nesting_ > kMaxNesting || stack_used() > kMaxStackBytes) {
    nesting_ = 0;
    fail("eval_cancel_error", "evaluation nesting budget exceeded", e.loc);
  }
  bool stop = eval_expr(e, f, [&]() { return eval_body(body, i + 1, f, k); });
  --nesting_;
  return stop;
}

bool Evaluator::eval_expr(const Expr& e, Frame& f, K k) {
  switch (e.type) {
    case ExprType::Term: {
      Value v = eval_term(e.terms[0], f);
      if (v.is_bool() && !v.as_bool()) return false;
      return k();
    }
    case ExprType::Unify:
      return unify_terms(e.terms[0], e.terms[1], f, k);
    case ExprType::RefEval:
      return eval_ref(e.terms[0], f, [&](const Value& v) { return unify_value(e.terms[1], v, f, k); });
    case ExprType::Call:
      return eval_call(e, f, k);
    case ExprType::SomeIn:
      return eval_some_in(e, f, k);
    case ExprType::Every:
      return eval_every(e, f, k);
    case ExprType::Group:
      return eval_group(e, f, k);
    default:
      return k();
  }
}

bool Evaluator::eval_some_in(const Expr& e, Frame& f, K k) {
  Value coll = eval_term(e.terms[2], f);
  const TermP& kt = e.terms[0];
  const TermP& vt = e.terms[1];
  auto one = [&](const Value& key, const Value& val) -> bool {
    step(e.loc);
    if (!kt) return unify_value(vt, val, f, k);
    return unify_value(kt, key, f, [&]() { return unify_value(vt, val, f, k); });
  };
  switch (coll.kind()) {
    case Kind::Array: {
      const auto& items = coll.as_array();
      for (size_t i = 0; i < items.size(); ++i)
        if (one(Value::number(static_cast<int64_t>(i)), items[i])) return true;
      return false;
    }
    case Kind::Object:
      for (const auto& [key, val] : coll.as_object())
        if (one(key, val)) return true;
      return false;
    case Kind::Set:
      for (const auto& x : coll.as_set())
        if (one(x, x)) return true;
      return false;
    default:
      return false;
  }
}

bool Evaluator::eval_every(const Expr& e, Frame& f, K k) {
  Value coll = eval_term(e.terms[2], f);
  const TermP& kt = e.terms[0];
  const TermP& vt = e.terms[1];
  auto holds = [&](const Value& key, const Value& val) -> bool {
    step(e.loc);
    auto body = [&]() { return eval_body(*e.body, 0, f, []() { return true; }); };
    if (!kt) return unify_value(vt, val, f, body);
    return unify_value(kt, key, f, [&]() { return unify_value(vt, val, f, body); });
  };
  switch (coll.kind()) {
    case Kind::Array: {
      const auto& items = coll.as_array();
      for (size_t i = 0; i < items.size(); ++i)
        if (!holds(Value::number(static_cast<int64_t>(i)), items[i])) return false;
      break;
    }
    case Kind::Object:
      for (const auto& [key, val] : coll.as_object())
        if (!holds(key, val)) return false;
      break;
    case Kind::Set:
      for (const auto& x : coll.as_set())
        if (!holds(x, x)) return false;
      break;
    default:
      return false;
  }
  return k();
}

bool Evaluator::eval_group(const Expr& e, Frame& f, K k) {
  if (e.withs.empty()) {
    if (e.negated) {
      bool found = eval_body(*e.body, 0, f, []() { return true; });
      return found ? false : k();
    }
    return eval_body(*e.body, 0, f, k);
  }
  auto next = std::make_unique<WithState>(*state_);
  for (const auto& w : e.withs) apply_with(*next, w, f);
  WithState* saved_state = state_;
  Cache* saved_cache = cache_;
  Cache inner_cache;
  auto enter = [&]() {
    state_ = next.get();
    cache_ = &inner_cache;
  };
  auto leave = [&]() {
    state_ = saved_state;
    cache_ = saved_cache;
  };
  enter();
  bool result;
  try {
    if (e.negated) {
      bool found = eval_body(*e.body, 0, f, []() { return true; });
      leave();
      return found ? false : k();
    }
    result = eval_body(*e.body, 0, f, [&]() {
      leave();
      bool stop = k();
      enter();
      return stop;
    });
  } catch (...) {
    leave();
    throw;
  }
  leave();
  return result;
}

Value Evaluator::patch(const Value& doc, const std::vector<Value>& path, size_t i, const Value& value) {
  if (i == path.size()) return value;
  ObjectItems items;
  if (doc.is_object()) items = doc.as_object();
  const Value* existing = doc.is_object() ? doc.get(path[i]) : nullptr;
  Value child = patch(existing ? *existing : Value::empty_object(), path, i + 1, value);
  bool replaced = false;
  for (auto& [k, v] : items)
    if (k == path[i]) {
      v = child;
      replaced = true;
    }
  if (!replaced) items.emplace_back(path[i], child);
  return Value::object(std::move(items));
}

void Evaluator::apply_with(WithState& st, const With& w, Frame& f) {
  const TermP& target = w.target;
  if (target->type == TermType::Call) {
    Mock m;
    if (w.value->type == TermType::Call) {
      m.builtin = w.value->builtin;
      m.path = w.value->data_path;
    } else {
      m.is_value = true;
      m.value = eval_term(w.value, f);
    }
    std::string key = target->builtin ? target->builtin->name : "data." + join(target->data_path);
    st.mocks[key] = std::move(m);
    return;
  }
  Value value = eval_term(w.value, f);
  std::vector<Value> path;
  for (size_t i = 1; i < target->items.size(); ++i) path.push_back(target->items[i]->value);
  if (target->items[0]->slot == kInputSlot) {
    Value base = st.has_input ? *st.input : Value::empty_object();
    st.input = path.empty() ? value : patch(base, path, 0, value);
    st.has_input = true;
    return;
  }
  // data: drop overrides below the new one, then add it; the base document is patched too.
  std::vector<Override> kept;
  for (auto& o : st.overrides) {
    bool under = o.path.size() >= path.size() && std::equal(path.begin(), path.end(), o.path.begin());
    if (!under) kept.push_back(std::move(o));
  }
  kept.push_back({path, value});
  st.overrides = std::move(kept);
  const Value& base = st.patched_data ? *st.patched_data : plan_.data;
  st.patched_data = path.empty() ? value : patch(base, path, 0, value);
}

std::string Evaluator::join(const std::vector<std::string>& p) {
  std::string out;
  for (size_t i = 0; i < p.size(); ++i) {
    if (i) out += ".";
    out += p[i];
  }
  return out;
}

}  // namespace mg::rego::eval_detail
