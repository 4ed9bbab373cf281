// rego/eval.cpp — top-down evaluation of a compiled plan (OPA's topdown semantics). Continuation
// passing: each expression calls its continuation once per solution; a continuation returns true
// to stop the enumeration (e.g. `not`, a constant-valued rule that already succeeded). All state
// (bindings, rule caches, `with` overrides, budget) belongs to one Evaluator, so a shared Plan is
// never written during evaluation.
#include <chrono>
#include <map>
#include <type_traits>
#include <unordered_map>

#include "rego/engine.h"

namespace mg::rego {

namespace {

constexpr int kDataSlot = -2;
constexpr int kInputSlot = -3;
constexpr int kMaxCallDepth = 400;
constexpr int kMaxNesting = 3000;

// A non-owning reference to a callable (no allocation, unlike std::function).
template <class Sig>
class FnRef;
template <class R, class... A>
class FnRef<R(A...)> {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FnRef>>>
  FnRef(F&& f)  // NOLINT: implicit by design
      : obj_(const_cast<void*>(static_cast<const void*>(&f))), call_([](void* o, A... a) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<A>(a)...);
        }) {}
  FnRef(const FnRef&) = default;
  R operator()(A... a) const { return call_(obj_, std::forward<A>(a)...); }

 private:
  void* obj_;
  R (*call_)(void*, A...);
};

using K = FnRef<bool()>;
using VK = FnRef<bool(const Value&)>;

struct EvalFailure {
  RegoError error;
};

// Variable slots for frames, taken and released in LIFO order from chunks that never move (so a
// frame's slots stay valid while deeper frames come and go). One per thread, reused across
// evaluations: steady-state evaluation allocates no frames.
class SlotArena {
 public:
  struct Span {
    Value* vals;
    uint8_t* bound;
  };
  Span push(size_t n) {
    while (true) {
      if (cur_ < chunks_.size()) {
        Chunk& c = chunks_[cur_];
        if (c.used + n <= c.cap) {
          Span s{c.vals.get() + c.used, c.bound.get() + c.used};
          c.used += n;
          return s;
        }
        if (c.used == 0) {  // too small even when empty: replace with a bigger one
          c = make_chunk(n);
          continue;
        }
        ++cur_;
        continue;
      }
      chunks_.push_back(make_chunk(std::max<size_t>(n, 512)));
    }
  }
  void pop(size_t n) {
    Chunk& c = chunks_[cur_];
    c.used -= n;
    for (size_t i = 0; i < n; ++i) {
      c.vals[c.used + i] = Value();
      c.bound[c.used + i] = 0;
    }
    while (cur_ > 0 && chunks_[cur_].used == 0) --cur_;
  }

 private:
  struct Chunk {
    std::unique_ptr<Value[]> vals;
    std::unique_ptr<uint8_t[]> bound;
    size_t cap = 0, used = 0;
  };
  static Chunk make_chunk(size_t cap) {
    Chunk c;
    c.vals = std::make_unique<Value[]>(cap);
    c.bound = std::make_unique<uint8_t[]>(cap);
    c.cap = cap;
    return c;
  }
  std::vector<Chunk> chunks_;
  size_t cur_ = 0;
};

SlotArena& thread_arena() {
  static thread_local SlotArena arena;
  return arena;
}

struct Frame {
  explicit Frame(int n) : n_(static_cast<size_t>(n)), arena_(thread_arena()) {
    auto span = arena_.push(n_);
    vals = span.vals;
    bound = span.bound;
  }
  ~Frame() { arena_.pop(n_); }
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;
  Value* vals;
  uint8_t* bound;

 private:
  size_t n_;
  SlotArena& arena_;
};

// Mutable tree used while building a virtual document (partial objects/sets, ref heads).
struct DocTree {
  std::map<Value, DocTree> children;
  std::optional<Value> leaf;
  std::vector<Value> set_elems;
  bool is_set = false;
  Value to_value() const {
    if (leaf) return *leaf;
    if (is_set) return Value::set(set_elems);
    ObjectItems items;
    items.reserve(children.size());
    for (const auto& [k, c] : children) items.emplace_back(k, c.to_value());
    return Value::object(std::move(items));
  }
};

struct Mock {
  bool is_value = false;
  Value value;
  const BuiltinDecl* builtin = nullptr;
  std::vector<std::string> path;
};

struct Override {
  std::vector<Value> path;  // under data
  Value value;
};

struct WithState {
  std::optional<Value> input;
  bool has_input = false;
  std::vector<Override> overrides;
  std::unordered_map<std::string, Mock> mocks;
  std::optional<Value> patched_data;
};

class Evaluator {
 public:
  Evaluator(const Plan& plan, const EvalOptions& opts) : plan_(plan), opts_(opts) {
    state_ = &base_state_;
    if (opts.input) {
      base_state_.input = *opts.input;
      base_state_.has_input = true;
    }
    budget_.steps_left = opts.max_steps;
    budget_.bytes_left = opts.max_bytes;
    bctx_.budget = &budget_;
    bctx_.print = opts.print;
    bctx_.strict_errors = opts.strict_builtin_errors;
    bctx_.now_ns = opts.now_ns ? opts.now_ns
                               : std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
    cache_ = &base_cache_;
  }

  std::vector<Solution> run_query(const PreparedQuery& q) {
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

  std::optional<Value> run_path(const std::vector<std::string>& path) {
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

 private:
  using Cache = std::unordered_map<const RuleNode*, std::optional<Value>>;

  // ---------------------------------------------------------------- errors and budget
  [[noreturn]] void fail(std::string code, std::string message, const Location& loc) {
    throw EvalFailure{make_error(std::move(code), std::move(message), loc)};
  }
  void step(const Location& loc) {
    if (budget_.steps_left == 0) fail("eval_cancel_error", "evaluation step budget exceeded", loc);
    --budget_.steps_left;
  }
  void charge(uint64_t bytes, const Location& loc) {
    if (!budget_.charge_bytes(bytes)) fail("eval_cancel_error", "evaluation memory budget exceeded", loc);
  }

  // ---------------------------------------------------------------- terms
  bool is_ground(const TermP& t, const Frame& f) const {
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

  Value eval_term(const TermP& t, Frame& f) {
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

  // ---------------------------------------------------------------- unification
  bool unify_value(const TermP& t, const Value& v, Frame& f, K k) {
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

  bool unify_items(const TermP& t, const Value& v, size_t i, Frame& f, K k) {
    if (i == t->items.size()) return k();
    return unify_value(t->items[i], v.as_array()[i], f, [&]() { return unify_items(t, v, i + 1, f, k); });
  }

  bool unify_pairs(const TermP& t, const Value& v, size_t i, Frame& f, K k) {
    if (i == t->pairs.size()) return k();
    const auto& [kt, vt] = t->pairs[i];
    if (!is_ground(kt, f)) return false;
    const Value* child = v.get(eval_term(kt, f));
    if (!child) return false;
    return unify_value(vt, *child, f, [&]() { return unify_pairs(t, v, i + 1, f, k); });
  }

  bool unify_terms(const TermP& a, const TermP& b, Frame& f, K k) {
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

  bool unify_pending(std::vector<std::pair<TermP, TermP>> pending, Frame& f, K k) {
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

  // ---------------------------------------------------------------- bodies
  bool eval_body(const Body& body, size_t i, Frame& f, K k) {
    if (i == body.exprs.size()) return k();
    const Expr& e = body.exprs[i];
    step(e.loc);
    // Continuations nest one native frame per expression: bound the depth so that no policy can
    // exhaust the thread's stack (an error, like the other budgets).
    if (++nesting_ > kMaxNesting) {
      nesting_ = 0;
      fail("eval_cancel_error", "evaluation nesting budget exceeded", e.loc);
    }
    bool stop = eval_expr(e, f, [&]() { return eval_body(body, i + 1, f, k); });
    --nesting_;
    return stop;
  }

  bool eval_expr(const Expr& e, Frame& f, K k) {
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

  bool eval_some_in(const Expr& e, Frame& f, K k) {
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

  bool eval_every(const Expr& e, Frame& f, K k) {
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

  // ---------------------------------------------------------------- with / not
  bool eval_group(const Expr& e, Frame& f, K k) {
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

  static Value patch(const Value& doc, const std::vector<Value>& path, size_t i, const Value& value) {
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

  void apply_with(WithState& st, const With& w, Frame& f) {
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

  static std::string join(const std::vector<std::string>& p) {
    std::string out;
    for (size_t i = 0; i < p.size(); ++i) {
      if (i) out += ".";
      out += p[i];
    }
    return out;
  }

  // ---------------------------------------------------------------- references
  bool eval_ref(const TermP& ref, Frame& f, VK vk) {
    const TermP& head = ref->items[0];
    if (head->slot == kInputSlot) {
      if (!state_->has_input) return false;
      return walk_value(*state_->input, ref, 1, f, vk);
    }
    if (head->slot == kDataSlot) {
      const Value& base = state_->patched_data ? *state_->patched_data : plan_.data;
      return walk_data(plan_.root.get(), &base, ref, 1, f, vk);
    }
    Value v = eval_term(head, f);
    return walk_value(v, ref, 1, f, vk);
  }

  // `store`: v is (part of) the base document, whose object keys are strings: a number key
  // addresses the string key with its text (data.a[2] reads "2"), as OPA's storage paths do.
  bool walk_value(const Value& v, const TermP& ref, size_t i, Frame& f, VK vk, bool store = false) {
    if (i == ref->items.size()) return vk(v);
    const TermP& op = ref->items[i];
    if (is_ground(op, f)) {
      Value key = eval_term(op, f);
      const Value* child = v.get(key);
      if (!child && store && key.is_number() && v.is_object())
        child = v.get(std::string_view(key.number_text()));
      if (!child) return false;
      return walk_value(*child, ref, i + 1, f, vk, store);
    }
    switch (v.kind()) {
      case Kind::Array: {
        const auto& items = v.as_array();
        for (size_t j = 0; j < items.size(); ++j) {
          step(op->loc);
          if (unify_value(op, Value::number(static_cast<int64_t>(j)), f,
                          [&]() { return walk_value(items[j], ref, i + 1, f, vk, store); }))
            return true;
        }
        return false;
      }
      case Kind::Object:
        for (const auto& kv : v.as_object()) {
          step(op->loc);
          if (unify_value(op, kv.first, f, [&]() { return walk_value(kv.second, ref, i + 1, f, vk, store); }))
            return true;
        }
        return false;
      case Kind::Set:
        for (const auto& x : v.as_set()) {
          step(op->loc);
          if (unify_value(op, x, f, [&]() { return walk_value(x, ref, i + 1, f, vk, store); })) return true;
        }
        return false;
      default:
        return false;
    }
  }

  const Override* override_at(const std::vector<std::string>& path) const {
    for (const auto& o : state_->overrides) {
      if (o.path.size() != path.size()) continue;
      bool eq = true;
      for (size_t i = 0; i < path.size() && eq; ++i)
        eq = o.path[i].is_string() && o.path[i].as_string() == path[i];
      if (eq) return &o;
    }
    return nullptr;
  }

  bool walk_data(const RuleNode* node, const Value* base, const TermP& ref, size_t i, Frame& f, VK vk) {
    if (!state_->overrides.empty()) {
      if (const Override* o = override_at(node->path)) return walk_value(o->value, ref, i, f, vk);
    }
    if (node->has_value_rules()) {
      if (i < ref->items.size() && node->complete.empty() && !node->default_rule && node->children.empty() &&
          state_->overrides.empty() && is_ground(ref->items[i], f)) {
        Value key = eval_term(ref->items[i], f);
        auto v = partial_lookup(node, key);
        if (!v) return false;
        return walk_value(*v, ref, i + 1, f, vk);
      }
      auto v = node_value(node, base);
      if (!v) return false;
      return walk_value(*v, ref, i, f, vk);
    }
    if (i == ref->items.size()) {
      auto v = node_value(node, base);
      if (!v) return false;
      return vk(*v);
    }
    const TermP& op = ref->items[i];
    auto descend = [&](const Value& key) -> bool {
      const RuleNode* child = key.is_string() ? node->child(key.as_string()) : nullptr;
      const Value* child_base = base ? base->get(key) : nullptr;
      if (!child_base && base && key.is_number()) child_base = base->get(std::string_view(key.number_text()));
      if (child) return walk_data(child, child_base, ref, i + 1, f, vk);
      if (child_base) return walk_value(*child_base, ref, i + 1, f, vk, true);
      return false;
    };
    if (is_ground(op, f)) return descend(eval_term(op, f));
    // Enumerate keys of both the rule tree and the base document.
    std::vector<Value> keys;
    for (const auto& [k, c] : node->children) keys.push_back(Value::string(k));
    if (base && base->is_object())
      for (const auto& [k, v] : base->as_object())
        if (!k.is_string() || !node->child(k.as_string())) keys.push_back(k);
    for (const auto& key : keys) {
      step(op->loc);
      if (unify_value(op, key, f, [&]() { return descend(key); })) return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- rules
  std::optional<Value> node_value(const RuleNode* node, const Value* base) {
    auto cached = cache_->find(node);
    if (cached != cache_->end()) return cached->second;
    std::optional<Value> v = compute_node(node, base);
    if (v && !state_->overrides.empty()) {
      // Overrides strictly below this node replace parts of its value.
      for (const auto& o : state_->overrides) {
        if (o.path.size() <= node->path.size()) continue;
        bool under = true;
        for (size_t i = 0; i < node->path.size() && under; ++i)
          under = o.path[i].is_string() && o.path[i].as_string() == node->path[i];
        if (!under) continue;
        std::vector<Value> rest(o.path.begin() + static_cast<long>(node->path.size()), o.path.end());
        v = patch(*v, rest, 0, o.value);
      }
    }
    (*cache_)[node] = v;
    return v;
  }

  std::optional<Value> compute_node(const RuleNode* node, const Value* base) {
    if (!node->complete.empty() || node->default_rule) return eval_complete(node);
    bool only_set = !node->multi.empty() && node->objects.empty() && node->children.empty();
    if (only_set)
      for (const Rule* r : node->multi)
        if (!r->suffix.empty()) only_set = false;
    if (only_set) {
      std::vector<Value> elems;
      for (const Rule* r : node->multi) {
        eval_rule_body(*r, [&](Frame& f) {
          charge(64, r->loc);
          elems.push_back(eval_term(r->key, f));
          return r->constant_value;
        });
      }
      return Value::set(std::move(elems));
    }
    bool is_function = !node->functions.empty() || node->default_function;
    if (!node->has_value_rules() && is_function && node->children.empty()) return std::nullopt;
    if (!node->has_value_rules() && !is_function && node->children.empty() && base) return *base;
    DocTree tree;
    if (base && base->is_object())
      for (const auto& [k, v] : base->as_object())
        if (!k.is_string() || !node->child(k.as_string())) tree.children[k].leaf = v;
    for (const auto& [k, child] : node->children) {
      const Value* child_base = base ? base->get(std::string_view(k)) : nullptr;
      auto cv = node_value(child.get(), child_base);
      if (cv) tree.children[Value::string(k)].leaf = *cv;
    }
    for (const Rule* r : node->objects) {
      eval_rule_body(*r, [&](Frame& f) {
        charge(96, r->loc);
        DocTree* at = &tree;
        for (size_t i = 0; i < r->suffix.size(); ++i) {
          Value key = eval_term(r->suffix[i], f);
          if (at->leaf && i > 0) fail("eval_conflict_error", "object keys must be unique", r->loc);
          at = &at->children[key];
        }
        Value v = r->value ? eval_term(r->value, f) : Value::boolean(true);
        if (at->leaf && *at->leaf != v) fail("eval_conflict_error", "object keys must be unique", r->loc);
        if (!at->children.empty()) fail("eval_conflict_error", "object keys must be unique", r->loc);
        at->leaf = v;
        return false;
      });
    }
    for (const Rule* r : node->multi) {
      eval_rule_body(*r, [&](Frame& f) {
        charge(64, r->loc);
        DocTree* at = &tree;
        for (const auto& s : r->suffix) at = &at->children[eval_term(s, f)];
        at->is_set = true;
        at->set_elems.push_back(eval_term(r->key, f));
        return false;
      });
    }
    if (!node->multi.empty() && node->objects.empty() && tree.children.empty()) return Value::empty_set();
    return tree.to_value();
  }

  // data.p[key] for a partial set/object: evaluate the rules with the key bound.
  std::optional<Value> partial_lookup(const RuleNode* node, const Value& key) {
    auto cached = cache_->find(node);
    if (cached != cache_->end()) {
      if (!cached->second) return std::nullopt;
      const Value* v = cached->second->get(key);
      return v ? std::optional<Value>(*v) : std::nullopt;
    }
    std::optional<Value> result;
    for (const Rule* r : node->multi) {
      if (!r->suffix.empty()) return full_lookup(node, key);
      Frame f(r->frame_size);
      unify_value(r->key, key, f, [&]() {
        return eval_body(*r->body, 0, f, [&]() {
          result = key;
          return true;
        });
      });
      if (result) return result;
    }
    for (const Rule* r : node->objects) {
      if (r->suffix.size() != 1) return full_lookup(node, key);
      Frame f(r->frame_size);
      unify_value(r->suffix[0], key, f, [&]() {
        return eval_body(*r->body, 0, f, [&]() {
          Value v = r->value ? eval_term(r->value, f) : Value::boolean(true);
          if (result && *result != v) fail("eval_conflict_error", "object keys must be unique", r->loc);
          result = v;
          return false;
        });
      });
    }
    return result;
  }

  std::optional<Value> full_lookup(const RuleNode* node, const Value& key) {
    auto v = node_value(node, nullptr);
    if (!v) return std::nullopt;
    const Value* c = v->get(key);
    return c ? std::optional<Value>(*c) : std::nullopt;
  }

  template <class OnSolution>
  void eval_rule_body(const Rule& r, OnSolution&& on) {
    if (++depth_ > kMaxCallDepth) fail("eval_internal_error", "rule evaluation too deep", r.loc);
    Frame f(r.frame_size);
    eval_body(*r.body, 0, f, [&]() { return on(f); });
    --depth_;
  }

  std::optional<Value> eval_complete(const RuleNode* node) {
    std::optional<Value> result;
    for (const Rule* rule : node->complete) {
      for (const Rule* x = rule; x; x = x->else_rule.get()) {
        bool found = false;
        eval_rule_body(*x, [&](Frame& f) {
          Value v = x->value ? eval_term(x->value, f) : Value::boolean(true);
          if (result && *result != v)
            fail("eval_conflict_error",
                 "rule " + plan_.path_name(node->path) + " produced conflicting values", x->loc);
          result = std::move(v);
          found = true;
          return x->constant_value;
        });
        if (found) break;
      }
    }
    if (!result && node->default_rule)
      result = node->default_rule->value ? node->default_rule->value->value : Value::boolean(true);
    return result;
  }

  // ---------------------------------------------------------------- calls
  bool eval_call(const Expr& e, Frame& f, K k) {
    const TermP& call = e.terms[0];
    size_t n = call->items.size() - 1;
    std::vector<Value> args;
    args.reserve(n);
    for (size_t i = 1; i <= n; ++i) args.push_back(eval_term(call->items[i], f));
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
  bool call_builtin(const BuiltinDecl& b, const std::vector<Value>& args, const Location& loc,
                    Deliver& deliver) {
    BuiltinResult r = b.fn(std::span<const Value>(args), bctx_);
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
  bool call_function(const std::vector<std::string>& path, const std::vector<Value>& args,
                     const Location& loc, Deliver& deliver, bool as_mock = false) {
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

  void eval_function_bodies(const RuleNode* node, const std::vector<Value>& args,
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

  bool bind_args(const Rule& r, const std::vector<Value>& args, size_t i, Frame& f, K k) {
    if (i == r.args.size()) return k();
    return unify_value(r.args[i], args[i], f, [&]() { return bind_args(r, args, i + 1, f, k); });
  }

  const Plan& plan_;
  const EvalOptions& opts_;
  WithState base_state_;
  WithState* state_ = nullptr;  // the `with` scope in effect
  Cache base_cache_;
  Cache* cache_ = nullptr;
  Budget budget_;
  BuiltinContext bctx_;
  int depth_ = 0;
  int nesting_ = 0;
};

}  // namespace

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
