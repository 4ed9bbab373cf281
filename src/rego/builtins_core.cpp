// rego/builtins_core.cpp — the built-ins the language core needs (owned by the language core):
// comparison (equal, neq, lt, lte, gt, gte), arithmetic (plus, minus, mul, div, rem, abs, round,
// ceil, floor), set union/intersection operators (or, and), count, and the membership operator
// `in` (internal.member_2 / internal.member_3). Every other topic lives in its own builtins_*.cpp.
#include <cmath>

#include "rego/builtins.h"

namespace mg::rego {

namespace {

using Args = std::span<const Value>;

BuiltinResult cmp_equal(Args a, BuiltinContext&) { return Value::boolean(a[0] == a[1]); }
BuiltinResult cmp_neq(Args a, BuiltinContext&) { return Value::boolean(a[0] != a[1]); }
BuiltinResult cmp_lt(Args a, BuiltinContext&) { return Value::boolean(a[0].compare(a[1]) < 0); }
BuiltinResult cmp_lte(Args a, BuiltinContext&) { return Value::boolean(a[0].compare(a[1]) <= 0); }
BuiltinResult cmp_gt(Args a, BuiltinContext&) { return Value::boolean(a[0].compare(a[1]) > 0); }
BuiltinResult cmp_gte(Args a, BuiltinContext&) { return Value::boolean(a[0].compare(a[1]) >= 0); }

std::optional<BuiltinError> need_numbers(Args a) {
  for (size_t i = 0; i < a.size(); ++i)
    if (!a[i].is_number()) return BuiltinError::operand(static_cast<int>(i + 1), "number", a[i]);
  return std::nullopt;
}

BuiltinResult plus(Args a, BuiltinContext&) {
  if (auto e = need_numbers(a)) return *e;
  return numeric::add(a[0], a[1]);
}

BuiltinResult mul(Args a, BuiltinContext&) {
  if (auto e = need_numbers(a)) return *e;
  return numeric::mul(a[0], a[1]);
}

BuiltinResult minus(Args a, BuiltinContext&) {
  if (a[0].is_number() && a[1].is_number()) return numeric::sub(a[0], a[1]);
  if (a[0].is_set() && a[1].is_set()) {
    std::vector<Value> out;
    for (const auto& v : a[0].as_set())
      if (!a[1].contains(v)) out.push_back(v);
    return Value::set(std::move(out));
  }
  if (!a[0].is_number() && !a[0].is_set()) return BuiltinError::operand(1, "one of {number, set}", a[0]);
  if (a[0].is_set()) return BuiltinError::operand(2, "set", a[1]);
  return BuiltinError::operand(2, "number", a[1]);
}

BuiltinResult div(Args a, BuiltinContext&) {
  if (auto e = need_numbers(a)) return *e;
  auto r = numeric::div(a[0], a[1]);
  if (!r) return BuiltinError::builtin("divide by zero");
  return *r;
}

BuiltinResult rem(Args a, BuiltinContext&) {
  if (auto e = need_numbers(a)) return *e;
  if (!a[0].is_integer() || !a[1].is_integer())
    return BuiltinError::builtin("modulo on floating-point number");
  auto r = numeric::rem(a[0], a[1]);
  if (!r) return BuiltinError::builtin("modulo by zero");
  return *r;
}

BuiltinResult abs_fn(Args a, BuiltinContext&) {
  if (auto e = need_numbers(a)) return *e;
  if (numeric::compare(a[0], Value::number(int64_t{0})) < 0) return numeric::negate(a[0]);
  return a[0];
}

template <double (*F)(double)>
BuiltinResult rounding(Args a, BuiltinContext&) {
  if (auto e = need_numbers(a)) return *e;
  if (a[0].is_integer()) return a[0];
  return Value::number(F(a[0].as_double()));
}

double round_half_away(double d) { return std::round(d); }
double ceil_fn(double d) { return std::ceil(d); }
double floor_fn(double d) { return std::floor(d); }

BuiltinResult set_or(Args a, BuiltinContext&) {
  if (!a[0].is_set()) return BuiltinError::operand(1, "set", a[0]);
  if (!a[1].is_set()) return BuiltinError::operand(2, "set", a[1]);
  std::vector<Value> out = a[0].as_set();
  out.insert(out.end(), a[1].as_set().begin(), a[1].as_set().end());
  return Value::set(std::move(out));
}

BuiltinResult set_and(Args a, BuiltinContext&) {
  if (!a[0].is_set()) return BuiltinError::operand(1, "set", a[0]);
  if (!a[1].is_set()) return BuiltinError::operand(2, "set", a[1]);
  std::vector<Value> out;
  for (const auto& v : a[0].as_set())
    if (a[1].contains(v)) out.push_back(v);
  return Value::set(std::move(out));
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xc0) != 0x80) ++n;
  return n;
}

BuiltinResult count(Args a, BuiltinContext&) {
  switch (a[0].kind()) {
    case Kind::String:
      return Value::number(static_cast<int64_t>(utf8_length(a[0].as_string())));
    case Kind::Array:
    case Kind::Set:
    case Kind::Object:
      return Value::number(static_cast<int64_t>(a[0].size()));
    default:
      return BuiltinError::operand(1, "one of {array, object, set, string}", a[0]);
  }
}

// `x in xs`: x is an element (array/set) or a value (object) of xs.
BuiltinResult member2(Args a, BuiltinContext&) {
  const Value& c = a[1];
  switch (c.kind()) {
    case Kind::Array:
    case Kind::Set:
      return Value::boolean(c.contains(a[0]));
    case Kind::Object:
      for (const auto& [k, v] : c.as_object())
        if (v == a[0]) return Value::boolean(true);
      return Value::boolean(false);
    default:
      return Value::boolean(false);
  }
}

// `k, x in xs`: xs[k] == x.
BuiltinResult member3(Args a, BuiltinContext&) {
  const Value& c = a[2];
  if (c.is_set()) return Value::boolean(a[0] == a[1] && c.contains(a[1]));
  if (!c.is_array() && !c.is_object()) return Value::boolean(false);
  const Value* v = c.get(a[0]);
  return Value::boolean(v && *v == a[1]);
}

}  // namespace

void register_core(Registry& r) {
  r.add({"equal", 2, cmp_equal});
  r.add({"neq", 2, cmp_neq});
  r.add({"lt", 2, cmp_lt});
  r.add({"lte", 2, cmp_lte});
  r.add({"gt", 2, cmp_gt});
  r.add({"gte", 2, cmp_gte});
  r.add({"plus", 2, plus});
  r.add({"minus", 2, minus});
  r.add({"mul", 2, mul});
  r.add({"div", 2, div});
  r.add({"rem", 2, rem});
  r.add({"abs", 1, abs_fn});
  r.add({"round", 1, rounding<round_half_away>});
  r.add({"ceil", 1, rounding<ceil_fn>});
  r.add({"floor", 1, rounding<floor_fn>});
  r.add({"or", 2, set_or});
  r.add({"and", 2, set_and});
  r.add({"count", 1, count});
  r.add({"internal.member_2", 2, member2});
  r.add({"internal.member_3", 3, member3});
}

}  // namespace mg::rego
