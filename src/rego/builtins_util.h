// rego/builtins_util.h — operand checks shared by the builtins_<topic>.cpp files, worded as OPA's
// topdown/builtins package words them ("operand 2 must be one of {set, array} but got number",
// "operand 1 must be array of strings but got array containing number").
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rego/builtins.h"

namespace mg::rego::bi {

using Args = std::span<const Value>;

// Largest string a built-in builds: what the evaluation budget has left, or 64 MiB without one.
inline size_t output_limit(const BuiltinContext& ctx) {
  constexpr size_t kUnbudgeted = size_t{64} << 20;
  return ctx.budget ? static_cast<size_t>(ctx.budget->bytes_left) : kUnbudgeted;
}

// Integers longer than this many digits are refused where a conversion would be quadratic.
inline constexpr size_t kMaxIntegerDigits = 4096;

// nullopt when args[pos-1] has kind k; otherwise OPA's operand type error.
inline std::optional<BuiltinError> want(Args args, int pos, Kind k) {
  const Value& v = args[static_cast<size_t>(pos - 1)];
  if (v.kind() == k) return std::nullopt;
  return BuiltinError::operand(pos, Value::type_name(k), v);
}

// "one of {a, b}" for several expected type names.
inline std::string one_of(std::initializer_list<std::string_view> names) {
  std::string s = "one of {";
  bool first = true;
  for (auto n : names) {
    if (!first) s += ", ";
    s += n;
    first = false;
  }
  return s + "}";
}

// "operand 2 must be array of strings but got array containing number".
inline BuiltinError element_error(int pos, const Value& composite, const Value& got,
                                  std::string_view expected) {
  const std::string t = composite.type_name();
  return BuiltinError::type("operand " + std::to_string(pos) + " must be " + t + " of " +
                            std::string(expected) + "s but got " + t + " containing " + got.type_name());
}

// The elements of an array or a set (set: sorted).
inline const std::vector<Value>& elements(const Value& v) { return v.is_array() ? v.as_array() : v.as_set(); }

// An integral operand within int (OPA's IntOperand).
inline std::optional<BuiltinError> int_operand(Args args, int pos, int64_t& out) {
  const Value& v = args[static_cast<size_t>(pos - 1)];
  if (!v.is_number()) return BuiltinError::operand(pos, "number", v);
  auto i = v.as_int64();
  if (!i || !v.is_integer())
    return BuiltinError::type("operand " + std::to_string(pos) +
                              " must be integer number but got floating-point number");
  out = *i;
  return std::nullopt;
}

// Strings of an array or set operand (OPA's StringSliceOperand).
inline std::optional<BuiltinError> string_elements(Args args, int pos, std::vector<std::string>& out) {
  const Value& v = args[static_cast<size_t>(pos - 1)];
  if (!v.is_array() && !v.is_set()) return BuiltinError::operand(pos, one_of({"array", "set"}), v);
  for (const Value& e : elements(v)) {
    if (!e.is_string()) return element_error(pos, v, e, "string");
    out.push_back(e.as_string());
  }
  return std::nullopt;
}

}  // namespace mg::rego::bi
