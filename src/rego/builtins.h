// rego/builtins.h — the contract of a Rego built-in function and the registry the compiler looks
// them up in. Each builtins_<topic>.cpp owns one topic and exposes `void register_<topic>(Registry&)`,
// listed once in builtins_list.cpp (the only shared line per topic). Built-ins are pure functions of
// their operands plus the evaluation context (evaluation time, print sink, budget): no I/O, no
// shared mutable state (a cache, if any, is thread_local), so one compiled plan serves every thread.
// STABLE INTERFACE shared by the language core and the built-in topics: additive changes only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rego/value.h"

namespace mg::rego {

// Where print() output goes (the CLI prints to stderr; the proxy logs it). May be absent.
class PrintSink {
 public:
  virtual ~PrintSink() = default;
  virtual void print(std::string_view line) = 0;
};

// Per-evaluation resource budget shared by the evaluator and built-ins. A built-in that builds a
// large value charges its size first and fails (BuiltinError::budget()) when the budget is spent.
struct Budget {
  uint64_t steps_left = 0;
  uint64_t bytes_left = 0;
  bool exceeded = false;
  bool charge_bytes(uint64_t n) {
    if (n > bytes_left) {
      exceeded = true;
      bytes_left = 0;
      return false;
    }
    bytes_left -= n;
    return true;
  }
};

// What a built-in may read besides its operands. One per evaluation; not shared across threads.
struct BuiltinContext {
  int64_t now_ns = 0;          // evaluation time (fixed for one evaluation: time.now_ns)
  PrintSink* print = nullptr;  // print() sink; nullptr drops output
  Budget* budget = nullptr;    // nullptr: unlimited
  bool strict_errors = false;  // informational: the evaluator decides what an error means
};

// A built-in's runtime failure. The evaluator prefixes the built-in's name ("count: ...") and maps
// the kind to OPA's codes: Type -> eval_type_error, Builtin -> eval_builtin_error. Without
// --strict-builtin-errors such an error makes the call undefined (as in OPA).
struct BuiltinError {
  enum class Kind : uint8_t { Type, Builtin };
  Kind kind = Kind::Builtin;
  std::string message;  // OPA's wording, without the "name: " prefix

  // "operand 1 must be string but got number" (position is 1-based).
  static BuiltinError operand(int position, std::string_view expected, const Value& got);
  static BuiltinError operand(int position, std::string_view expected, std::string_view got_type);
  static BuiltinError type(std::string message) { return {Kind::Type, std::move(message)}; }
  static BuiltinError builtin(std::string message) { return {Kind::Builtin, std::move(message)}; }
  static BuiltinError budget() { return {Kind::Builtin, "evaluation budget exceeded"}; }
};

// A value, "undefined" (no result; the expression fails), or an error.
class BuiltinResult {
 public:
  BuiltinResult(Value v) : state_(State::Defined), value_(std::move(v)) {}
  BuiltinResult(BuiltinError e) : state_(State::Error), error_(std::move(e)) {}
  static BuiltinResult undefined() { return BuiltinResult(); }

  bool defined() const { return state_ == State::Defined; }
  bool is_undefined() const { return state_ == State::Undefined; }
  bool is_error() const { return state_ == State::Error; }
  const Value& value() const { return value_; }
  Value& value() { return value_; }
  const BuiltinError& error() const { return error_; }

 private:
  enum class State : uint8_t { Undefined, Defined, Error };
  BuiltinResult() = default;
  State state_ = State::Undefined;
  Value value_;
  BuiltinError error_;
};

using BuiltinFn = BuiltinResult (*)(std::span<const Value> args, BuiltinContext& ctx);

// Type masks for optional compile-time operand checks (OPA reports rego_type_error when a constant
// operand has the wrong type). kAnyType: no check.
constexpr uint8_t kAnyType = 0x7f;
constexpr uint8_t kNullType = kind_bit(Kind::Null);
constexpr uint8_t kBoolType = kind_bit(Kind::Bool);
constexpr uint8_t kNumberType = kind_bit(Kind::Number);
constexpr uint8_t kStringType = kind_bit(Kind::String);
constexpr uint8_t kArrayType = kind_bit(Kind::Array);
constexpr uint8_t kObjectType = kind_bit(Kind::Object);
constexpr uint8_t kSetType = kind_bit(Kind::Set);

struct BuiltinDecl {
  std::string name;               // as called in Rego, dotted names included: "strings.replace_n"
  int arity = 0;                  // number of operands (the output is extra); -1: variadic (print)
  BuiltinFn fn = nullptr;         // nullptr only for io built-ins, which are declared to be refused
  bool io = false;                // performs I/O (http.send, net.lookup_ip_addr, ...): refused at compile
                                  // time with an error naming the call; never on the request path
  bool relation = false;          // yields several outputs: fn returns an array of them (walk)
  bool nondeterministic = false;  // depends on time/randomness (time.now_ns, rand.intn)
  std::vector<uint8_t> operand_types;  // optional: per-operand mask for compile-time checks
};

class Registry {
 public:
  void add(BuiltinDecl decl);  // a later declaration of the same name replaces the earlier
  const BuiltinDecl* find(std::string_view name) const;
  size_t size() const { return by_name_.size(); }
  std::vector<std::string> names() const;  // sorted

  // Every built-in of every topic (builtins_list.cpp), built once, immutable afterwards.
  static const Registry& standard();

 private:
  std::unordered_map<std::string, BuiltinDecl> by_name_;
};

// Registers every topic's built-ins (builtins_list.cpp).
void register_all_builtins(Registry& registry);

}  // namespace mg::rego
