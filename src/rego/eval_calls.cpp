// rego/eval_calls.cpp — calls: built-ins (a runtime error is undefined unless strict), user
// functions (bodies tried in order, conflicting outputs an eval_conflict_error), mocked functions
// and values from `with`, the output argument unified with the result.
#include <array>
#include <map>
#include <span>

#include "rego/eval_internal.h"

namespace mg::rego::eval_detail {

bool Evaluator::eval_call(const Expr& e, Frame& f, K k) {
  const TermP& call = e.terms[0];
  const size_t n = call->items.size() - 1;
  // The usual few arguments live on the stack: no allocation per call.
  std::array<Value, 4> inline_args;
  std::vector<Value> heap_args;
  if (n > inline_args.size()) heap_args.resize(n);
  const std::span<Value> slots =
      n > inline_args.size() ? std::span<Value>(heap_args) : std::span<Value>(inline_args.data(), n);
  for (size_t i = 1; i <= n; ++i) slots[i - 1] = eval_term(call->items[i], f);
  const std::span<const Value> args = slots;
  const TermP* out = e.terms.size() == 2 ? &e.terms[1] : nullptr;
  auto deliver = [&](const Value& v) -> bool {
    if (out) return unify_value(*out, v, f, k);
    if (v.is_bool() && !v.as_bool()) return false;
    return k();
  };
  const BuiltinDecl* builtin = call->builtin;
  const std::vector<std::string>* path = &call->data_path;
  bool mocked = false;
  if (!state_->mocks.empty()) {
    std::string key = builtin ? builtin->name : "data." + join(*path);
    auto it = state_->mocks.find(key);
    if (it != state_->mocks.end()) {
      const Mock& m = it->second;
      if (m.is_value) return deliver(m.value);
      builtin = m.builtin;
      path = &m.path;
      mocked = true;
    }
  }
  if (builtin) return call_builtin(*builtin, args, e.loc, deliver);
  return call_function(*path, args, e.loc, deliver, mocked);
}

template <class Deliver>
bool Evaluator::call_builtin(const BuiltinDecl& b, std::span<const Value> args, const Location& loc,
                             Deliver& deliver) {
  BuiltinResult r = b.fn(args, bctx_);
  if (budget_.exceeded) fail("eval_cancel_error", "evaluation memory budget exceeded", loc);
  if (r.is_error()) {
    const BuiltinError& err = r.error();
    // Conflicts/halts are not built-in errors; everything else is undefined unless strict.
    if (!opts_.strict_builtin_errors) return false;
    fail(err.kind == BuiltinError::Kind::Type ? "eval_type_error" : "eval_builtin_error",
         b.name + ": " + err.message, loc);
  }
  if (r.is_undefined()) return false;
  if (b.relation) {
    if (!r.value().is_array()) return false;
    for (const auto& v : r.value().as_array())
      if (deliver(v)) return true;
    return false;
  }
  return deliver(r.value());
}

template <class Deliver>
bool Evaluator::call_function(const std::vector<std::string>& path, std::span<const Value> args,
                              const Location& loc, Deliver& deliver, bool as_mock) {
  const RuleNode* node = plan_.root.get();
  for (const auto& k : path) {
    node = node->child(k);
    if (!node) return false;
  }
  if (++depth_ > kMaxCallDepth) fail("eval_internal_error", "function call too deep", loc);
  // A function standing in for another (`with f as g`) runs without the mocks in effect: its
  // own calls reach the originals (as OPA); `with` inside it applies as usual.
  std::unique_ptr<WithState> unmocked;
  std::unique_ptr<Cache> unmocked_cache;
  WithState* saved_state = state_;
  Cache* saved_cache = cache_;
  if (as_mock) {
    unmocked = std::make_unique<WithState>(*state_);
    unmocked->mocks.clear();
    unmocked_cache = std::make_unique<Cache>();
    state_ = unmocked.get();
    cache_ = unmocked_cache.get();
  }
  struct Restore {
    Evaluator* ev;
    WithState* state;
    Cache* cache;
    ~Restore() {
      ev->state_ = state;
      ev->cache_ = cache;
    }
  };
  std::optional<Value> result;
  {
    Restore restore{this, saved_state, saved_cache};
    eval_function_bodies(node, args, result);
  }
  --depth_;
  if (!result && node->default_function)
    result = node->default_function->value ? node->default_function->value->value : Value::boolean(true);
  if (!result) return false;
  return deliver(*result);
}

void Evaluator::eval_function_bodies(const RuleNode* node, std::span<const Value> args,
                                     std::optional<Value>& result) {
  for (const Rule* rule : node->functions) {
    for (const Rule* x = rule; x; x = x->else_rule.get()) {
      bool found = false;
      Frame f(x->frame_size);
      bind_args(*x, args, 0, f, [&]() {
        return eval_body(*x->body, 0, f, [&]() {
          Value v = x->value ? eval_term(x->value, f) : Value::boolean(true);
          if (result && *result != v)
            fail("eval_conflict_error",
                 "function " + plan_.path_name(node->path) +
                     " produced conflicting values for the same inputs",
                 x->loc);
          result = std::move(v);
          found = true;
          return x->constant_value;
        });
      });
      if (found) break;
    }
  }
}

bool Evaluator::bind_args(const Rule& r, std::span<const Value> args, size_t i, Frame& f, K k) {
  if (i == r.args.size()) return k();
  return unify_value(r.args[i], args[i], f, [&]() { return bind_args(r, args, i + 1, f, k); });
}

}  // namespace mg::rego::eval_detail
