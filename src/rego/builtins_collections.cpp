// rego/builtins_collections.cpp — aggregates (sum, product, max, min, sort, any, all),
// array.*, object.*, numbers.range* and the set functions (intersection, union), as OPA defines them: integer
// aggregates are exact at any size, min/max/sort use OPA's total order over all values, object.union
// merges nested objects recursively with the right-hand side winning.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "rego/builtins_util.h"

namespace mg::rego {
namespace {

using bi::Args;
using bi::want;

std::string set_or_array() { return bi::one_of({"set", "array"}); }

// OPA accumulates non-integer sums and products in big.Float with a 64-bit mantissa — the x87
// long double format — and prints the shortest decimal that reads back to the same value.
std::optional<Value> opa_float_value(long double x) {
  if (!std::isfinite(x)) return std::nullopt;
  char buf[128];
  if (x == std::trunc(x) && std::fabs(x) < 1e30L) {
    std::snprintf(buf, sizeof buf, "%.0Lf", x);
    return Value::number_from_text(buf);
  }
  for (int digits = 1; digits <= 21; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*Lg", digits, x);
    if (std::strtold(buf, nullptr) == x) break;
  }
  const std::string text = buf;  // C's %Lg exponent form (e-07, e+21) is Go's too
  return Value::number_from_text(text);
}

template <bool kProduct>
BuiltinResult fold_numbers(Args a, BuiltinContext&) {
  if (!a[0].is_array() && !a[0].is_set()) return BuiltinError::operand(1, set_or_array(), a[0]);
  bool integral = true;
  for (const Value& v : bi::elements(a[0])) {
    if (!v.is_number()) return bi::element_error(1, a[0], v, "number");
    integral = integral && v.is_integer();
  }
  if (integral) {  // exact at any size
    Value acc = Value::number(int64_t{kProduct ? 1 : 0});
    for (const Value& v : bi::elements(a[0])) acc = kProduct ? numeric::mul(acc, v) : numeric::add(acc, v);
    return acc;
  }
  long double acc = kProduct ? 1.0L : 0.0L;
  for (const Value& v : bi::elements(a[0])) {
    const long double x = std::strtold(v.number_text().c_str(), nullptr);
    acc = kProduct ? acc * x : acc + x;
  }
  auto out = opa_float_value(acc);
  if (!out) return BuiltinError::builtin("result out of range");
  return *out;
}

template <bool kMax>
BuiltinResult extreme(Args a, BuiltinContext&) {
  if (!a[0].is_array() && !a[0].is_set()) return BuiltinError::operand(1, set_or_array(), a[0]);
  const auto& xs = bi::elements(a[0]);
  if (xs.empty()) return BuiltinResult::undefined();
  const Value* best = &xs[0];
  for (const Value& v : xs)
    if (kMax ? best->compare(v) < 0 : v.compare(*best) < 0) best = &v;
  return *best;
}

BuiltinResult sort(Args a, BuiltinContext&) {
  if (!a[0].is_array() && !a[0].is_set()) return BuiltinError::operand(1, set_or_array(), a[0]);
  Array out = bi::elements(a[0]);
  if (a[0].is_array()) std::stable_sort(out.begin(), out.end());
  return Value::array(std::move(out));
}

template <bool kAll>
BuiltinResult all_or_any(Args a, BuiltinContext&) {
  if (!a[0].is_array() && !a[0].is_set()) return BuiltinError::operand(1, bi::one_of({"array", "set"}), a[0]);
  const Value t = Value::boolean(true);
  for (const Value& v : bi::elements(a[0]))
    if ((v == t) != kAll) return Value::boolean(!kAll);
  return Value::boolean(kAll);
}

BuiltinResult array_concat(Args a, BuiltinContext& ctx) {
  if (auto e = want(a, 1, Kind::Array)) return *e;
  if (auto e = want(a, 2, Kind::Array)) return *e;
  Array out = a[0].as_array();
  out.insert(out.end(), a[1].as_array().begin(), a[1].as_array().end());
  if (ctx.budget && !ctx.budget->charge_bytes(out.size() * sizeof(Value))) return BuiltinError::budget();
  return Value::array(std::move(out));
}

BuiltinResult array_slice(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::Array)) return *e;
  int64_t start = 0, stop = 0;
  if (auto e = bi::int_operand(a, 2, start)) return *e;
  if (auto e = bi::int_operand(a, 3, stop)) return *e;
  const auto& xs = a[0].as_array();
  const auto n = static_cast<int64_t>(xs.size());
  stop = std::clamp<int64_t>(stop, 0, n);
  start = std::clamp<int64_t>(start, 0, stop);
  return Value::array(Array(xs.begin() + start, xs.begin() + stop));
}

BuiltinResult array_reverse(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::Array)) return *e;
  Array out(a[0].as_array().rbegin(), a[0].as_array().rend());
  return Value::array(std::move(out));
}

BuiltinResult array_flatten(Args a, BuiltinContext& ctx) {
  if (auto e = want(a, 1, Kind::Array)) return *e;
  Array out;
  for (const Value& v : a[0].as_array()) {
    if (v.is_array()) {
      out.insert(out.end(), v.as_array().begin(), v.as_array().end());
    } else {
      out.push_back(v);
    }
  }
  if (ctx.budget && !ctx.budget->charge_bytes(out.size() * sizeof(Value))) return BuiltinError::budget();
  return Value::array(std::move(out));
}

// Follows `path` (array elements) through objects, arrays (integer indexes) and sets (members).
const Value* find_path(const Value& root, const Array& path) {
  const Value* cur = &root;
  for (const Value& step : path) {
    if (cur->is_array() && !(step.is_number() && step.is_integer())) return nullptr;
    if (!cur->is_collection()) return nullptr;
    cur = cur->get(step);
    if (!cur) return nullptr;
  }
  return cur;
}

BuiltinResult object_get(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::Object)) return *e;
  if (!a[1].is_array()) {
    const Value* v = a[0].get(a[1]);
    return v ? *v : a[2];
  }
  const Value* v = find_path(a[0], a[1].as_array());
  return v ? *v : a[2];
}

BuiltinResult object_keys(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::Object)) return *e;
  std::vector<Value> keys;
  for (const auto& kv : a[0].as_object()) keys.push_back(kv.first);
  return Value::set(std::move(keys));
}

Value merge(const Value& left, const Value& right) {
  ObjectItems out;
  const auto& l = left.as_object();
  const auto& r = right.as_object();
  out.reserve(l.size() + r.size());
  for (const auto& [k, v] : l) {
    const Value* rv = right.get(k);
    if (!rv) {
      out.emplace_back(k, v);
    } else if (v.is_object() && rv->is_object()) {
      out.emplace_back(k, merge(v, *rv));
    } else {
      out.emplace_back(k, *rv);
    }
  }
  for (const auto& [k, v] : r)
    if (!left.get(k)) out.emplace_back(k, v);
  return Value::object(std::move(out));
}

BuiltinResult object_union(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::Object)) return *e;
  if (auto e = want(a, 2, Kind::Object)) return *e;
  return merge(a[0], a[1]);
}

BuiltinResult object_union_n(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::Array)) return *e;
  for (const Value& o : a[0].as_array())
    if (!o.is_object()) return bi::element_error(1, a[0], o, "object");
  Value acc = Value::empty_object();
  for (const Value& o : a[0].as_array()) acc = merge(acc, o);
  return acc;
}

// The keys operand of object.remove / object.filter: an array, set or object (its keys).
std::optional<BuiltinError> key_set(Args a, std::vector<Value>& out) {
  const Value& v = a[1];
  if (v.is_array() || v.is_set()) {
    out = bi::elements(v);
  } else if (v.is_object()) {
    for (const auto& kv : v.as_object()) out.push_back(kv.first);
  } else {
    return BuiltinError::operand(2, bi::one_of({"object", "set", "array"}), v);
  }
  std::sort(out.begin(), out.end());
  return std::nullopt;
}

template <bool kKeep>
BuiltinResult object_select(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::Object)) return *e;
  std::vector<Value> keys;
  if (auto e = key_set(a, keys)) return *e;
  ObjectItems out;
  for (const auto& kv : a[0].as_object())
    if (std::binary_search(keys.begin(), keys.end(), kv.first) == kKeep) out.push_back(kv);
  return Value::object(std::move(out));
}

template <bool kIntersection>
BuiltinResult set_fold(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::Set)) return *e;
  const auto& sets = a[0].as_set();
  for (const Value& s : sets)
    if (!s.is_set()) return bi::element_error(1, a[0], s, "set");
  if (sets.empty()) return Value::empty_set();
  std::vector<Value> acc = sets[0].as_set();
  for (size_t i = 1; i < sets.size(); ++i) {
    const auto& next = sets[i].as_set();
    std::vector<Value> out;
    if (kIntersection) {
      std::set_intersection(acc.begin(), acc.end(), next.begin(), next.end(), std::back_inserter(out));
    } else {
      std::set_union(acc.begin(), acc.end(), next.begin(), next.end(), std::back_inserter(out));
    }
    acc.swap(out);
  }
  return Value::set(std::move(acc));
}

// object.subset: arrays as contiguous runs, sets by membership, objects key by key (recursing into
// nested objects, sets and arrays; other values must be equal).
bool is_sorted_subset(const std::vector<Value>& super, const std::vector<Value>& sub) {
  return std::includes(super.begin(), super.end(), sub.begin(), sub.end());
}

bool array_contains_run(const Array& super, const Array& sub) {
  if (sub.size() > super.size()) return false;
  return std::search(super.begin(), super.end(), sub.begin(), sub.end()) != super.end();
}

bool object_subset(const Value& super, const Value& sub) {
  for (const auto& [k, v] : sub.as_object()) {
    const Value* s = super.get(k);
    if (!s) return false;
    if (*s == v) continue;
    if (s->is_object() && v.is_object() && object_subset(*s, v)) continue;
    if (s->is_set() && v.is_set() && is_sorted_subset(s->as_set(), v.as_set())) continue;
    if (s->is_array() && v.is_array() && array_contains_run(s->as_array(), v.as_array())) continue;
    return false;
  }
  return true;
}

BuiltinResult object_subset_fn(Args a, BuiltinContext&) {
  const Value& super = a[0];
  const Value& sub = a[1];
  if (super.is_object() && sub.is_object()) return Value::boolean(object_subset(super, sub));
  if (super.is_set() && sub.is_set()) return Value::boolean(is_sorted_subset(super.as_set(), sub.as_set()));
  if (super.is_array() && sub.is_array())
    return Value::boolean(array_contains_run(super.as_array(), sub.as_array()));
  if (super.is_array() && sub.is_set()) {
    // As OPA: decided while scanning the array, so an empty array holds nothing, not even set().
    size_t unmatched = sub.as_set().size();
    for (const Value& e : super.as_array()) {
      if (sub.contains(e)) --unmatched;
      if (unmatched == 0) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  return BuiltinError::type("both arguments object.subset must be of the same type or array and set");
}

// numbers.range / numbers.range_step: integers from a to b inclusive, counting down when a > b.
template <bool kStep>
BuiltinResult number_range(Args a, BuiltinContext& ctx) {
  const char* name = kStep ? "numbers.range_step" : "numbers.range";
  int64_t from = 0, to = 0, step = 1;
  if (auto e = bi::int_operand(a, 1, from)) return *e;
  if (auto e = bi::int_operand(a, 2, to)) return *e;
  if (kStep) {
    if (auto e = bi::int_operand(a, 3, step)) return *e;
    if (step <= 0) return BuiltinError::builtin(std::string(name) + ": step must be a positive integer");
  }
  const __int128 span = from <= to ? static_cast<__int128>(to) - from : static_cast<__int128>(from) - to;
  const __int128 count = span / step + 1;
  // Fail closed rather than allocate without bound (OPA would time out).
  constexpr __int128 kMaxElements = 16 * 1024 * 1024;
  if (count > kMaxElements) return BuiltinError::builtin(std::string(name) + ": range too large");
  if (ctx.budget && !ctx.budget->charge_bytes(static_cast<uint64_t>(count) * sizeof(Value)))
    return BuiltinError::budget();
  Array out;
  out.reserve(static_cast<size_t>(count));
  for (__int128 i = 0; i < count; ++i)
    out.push_back(Value::number(static_cast<int64_t>(from <= to ? from + i * step : from - i * step)));
  return Value::array(std::move(out));
}

}  // namespace

void register_collections(Registry& r) {
  const uint8_t coll = kArrayType | kSetType;
  r.add({"sum", 1, fold_numbers<false>, false, false, false, {coll}});
  r.add({"product", 1, fold_numbers<true>, false, false, false, {coll}});
  r.add({"max", 1, extreme<true>, false, false, false, {coll}});
  r.add({"min", 1, extreme<false>, false, false, false, {coll}});
  r.add({"sort", 1, sort, false, false, false, {coll}});
  r.add({"all", 1, all_or_any<true>, false, false, false, {coll}});
  r.add({"any", 1, all_or_any<false>, false, false, false, {coll}});
  r.add({"array.concat", 2, array_concat, false, false, false, {kArrayType, kArrayType}});
  r.add({"array.slice", 3, array_slice, false, false, false, {kArrayType, kNumberType, kNumberType}});
  r.add({"array.reverse", 1, array_reverse, false, false, false, {kArrayType}});
  r.add({"array.flatten", 1, array_flatten, false, false, false, {kArrayType}});
  r.add({"object.get", 3, object_get, false, false, false, {kObjectType, kAnyType, kAnyType}});
  r.add({"object.keys", 1, object_keys, false, false, false, {kObjectType}});
  r.add({"object.subset", 2, object_subset_fn, false, false, false, {}});
  r.add({"object.union", 2, object_union, false, false, false, {kObjectType, kObjectType}});
  r.add({"object.union_n", 1, object_union_n, false, false, false, {kArrayType}});
  r.add({"object.remove", 2, object_select<false>, false, false, false, {kObjectType, kAnyType}});
  r.add({"object.filter", 2, object_select<true>, false, false, false, {kObjectType, kAnyType}});
  r.add({"numbers.range", 2, number_range<false>, false, false, false, {kNumberType, kNumberType}});
  r.add({"numbers.range_step",
         3,
         number_range<true>,
         false,
         false,
         false,
         {kNumberType, kNumberType, kNumberType}});
  r.add({"intersection", 1, set_fold<true>, false, false, false, {kSetType}});
  r.add({"union", 1, set_fold<false>, false, false, false, {kSetType}});
}

}  // namespace mg::rego
