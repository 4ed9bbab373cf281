// rego/eval_internal.h — the Rego evaluator's shared declarations (internal to mg_rego). The
// evaluator is one class (all state of one evaluation) whose parts live in separate files:
//   eval.cpp         entry points (evaluate, evaluate_path), terms, unification
//   eval_bodies.cpp  bodies and expressions, `some ... in`, `every`, `not`, `with` scopes
//   eval_rules.cpp   references into data / input / values, rule values, partial and complete rules
//   eval_calls.cpp   calls: built-ins (strict or lax errors), user functions, mocks
// Budgets (steps, memory, nesting) are charged inline here: every file uses them.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "rego/engine.h"

namespace mg::rego::eval_detail {

inline constexpr int kDataSlot = -2;
inline constexpr int kInputSlot = -3;
inline constexpr int kMaxCallDepth = 400;
inline constexpr int kMaxNesting = 3000;
// Native stack one evaluation may use below the frame that started it: half of the 8 MiB default
// thread stack, leaving room for the caller and for built-ins called at the deepest point.
inline constexpr uintptr_t kMaxStackBytes = uintptr_t{4} << 20;

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

inline SlotArena& thread_arena() {
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

// Values of the rule-tree nodes computed in one `with` scope. An evaluation typically computes a
// handful: those live inline (no allocation, a scan of pointers); a policy with many rules spills
// into a hash map.
class RuleCache {
 public:
  // The value computed for `node` (nullopt inside: undefined), or nullptr when not computed yet.
  const std::optional<Value>* find(const RuleNode* node) const {
    for (size_t i = 0; i < used_; ++i)
      if (inline_[i].first == node) return &inline_[i].second;
    if (spill_.empty()) return nullptr;
    auto it = spill_.find(node);
    return it == spill_.end() ? nullptr : &it->second;
  }
  void set(const RuleNode* node, std::optional<Value> v) {
    for (size_t i = 0; i < used_; ++i)
      if (inline_[i].first == node) {
        inline_[i].second = std::move(v);
        return;
      }
    if (used_ < inline_.size()) {
      inline_[used_++] = {node, std::move(v)};
      return;
    }
    spill_[node] = std::move(v);
  }

 private:
  std::array<std::pair<const RuleNode*, std::optional<Value>>, 8> inline_{};
  size_t used_ = 0;
  std::unordered_map<const RuleNode*, std::optional<Value>> spill_;
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
    stack_base_ = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
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

  std::vector<Solution> run_query(const PreparedQuery& q);

  std::optional<Value> run_path(const std::vector<std::string>& path);

 private:
  using Cache = RuleCache;

  // ---------------------------------------------------------------- errors and budget
  [[noreturn]] void fail(std::string code, std::string message, const Location& loc) {
    throw EvalFailure{make_error(std::move(code), std::move(message), loc)};
  }
  uintptr_t stack_used() const {
    const auto here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    return here < stack_base_ ? stack_base_ - here : 0;
  }
  void step(const Location& loc) {
    if (budget_.steps_left == 0) fail("eval_cancel_error", "evaluation step budget exceeded", loc);
    --budget_.steps_left;
  }
  void charge(uint64_t bytes, const Location& loc) {
    if (!budget_.charge_bytes(bytes)) fail("eval_cancel_error", "evaluation memory budget exceeded", loc);
  }

  // ---------------------------------------------------------------- terms
  bool is_ground(const TermP& t, const Frame& f) const;

  Value eval_term(const TermP& t, Frame& f);

  // A term's value without copying it when it is a constant or a bound variable (the common
  // operands); anything else is evaluated into `scratch`.
  const Value& term_value(const TermP& t, Frame& f, Value& scratch) {
    if (t->type == TermType::Value) return t->value;
    if (t->type == TermType::Var && t->slot >= 0 && f.bound[static_cast<size_t>(t->slot)])
      return f.vals[static_cast<size_t>(t->slot)];
    scratch = eval_term(t, f);
    return scratch;
  }

  // ---------------------------------------------------------------- unification
  bool unify_value(const TermP& t, const Value& v, Frame& f, K k);

  bool unify_items(const TermP& t, const Value& v, size_t i, Frame& f, K k);

  bool unify_pairs(const TermP& t, const Value& v, size_t i, Frame& f, K k);

  bool unify_terms(const TermP& a, const TermP& b, Frame& f, K k);

  bool unify_pending(std::vector<std::pair<TermP, TermP>> pending, Frame& f, K k);

  // ---------------------------------------------------------------- bodies
  bool eval_body(const Body& body, size_t i, Frame& f, K k);

  bool eval_expr(const Expr& e, Frame& f, K k);

  bool eval_some_in(const Expr& e, Frame& f, K k);

  bool eval_every(const Expr& e, Frame& f, K k);

  // ---------------------------------------------------------------- with / not
  bool eval_group(const Expr& e, Frame& f, K k);

  static Value patch(const Value& doc, const std::vector<Value>& path, size_t i, const Value& value);

  void apply_with(WithState& st, const With& w, Frame& f);

  static std::string join(const std::vector<std::string>& p);

  // ---------------------------------------------------------------- references
  bool eval_ref(const TermP& ref, Frame& f, VK vk);

  // `store`: v is (part of) the base document, whose object keys are strings: a number key
  // addresses the string key with its text (data.a[2] reads "2"), as OPA's storage paths do.
  bool walk_value(const Value& v, const TermP& ref, size_t i, Frame& f, VK vk, bool store = false);

  const Override* override_at(const std::vector<std::string>& path) const;

  bool walk_data(const RuleNode* node, const Value* base, const TermP& ref, size_t i, Frame& f, VK vk);

  // ---------------------------------------------------------------- rules
  std::optional<Value> node_value(const RuleNode* node, const Value* base);

  std::optional<Value> compute_node(const RuleNode* node, const Value* base);

  // data.p[key] for a partial set/object: evaluate the rules with the key bound.
  std::optional<Value> partial_lookup(const RuleNode* node, const Value& key);

  std::optional<Value> full_lookup(const RuleNode* node, const Value& key);

  template <class OnSolution>
  void eval_rule_body(const Rule& r, OnSolution&& on);

  std::optional<Value> eval_complete(const RuleNode* node);

  // ---------------------------------------------------------------- calls
  bool eval_call(const Expr& e, Frame& f, K k);

  template <class Deliver>
  bool call_builtin(const BuiltinDecl& b, std::span<const Value> args, const Location& loc, Deliver& deliver);

  template <class Deliver>
  bool call_function(const std::vector<std::string>& path, std::span<const Value> args, const Location& loc,
                     Deliver& deliver, bool as_mock = false);

  void eval_function_bodies(const RuleNode* node, std::span<const Value> args, std::optional<Value>& result);

  bool bind_args(const Rule& r, std::span<const Value> args, size_t i, Frame& f, K k);

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
  uintptr_t stack_base_ = 0;  // the constructor's frame; the stack grows down from it
};

}  // namespace mg::rego::eval_detail
