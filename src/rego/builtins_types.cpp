// rego/builtins_types.cpp — type_name, is_*, to_number and units.parse / units.parse_bytes. Amounts
// are computed exactly (decimal.h), as OPA's big.Rat / big.Float code does, so "10Ei" is exact and
// "1.1Ki" is 1126.4 (parse) or 1126 (parse_bytes).
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "rego/builtins_util.h"
#include "rego/decimal.h"
#include "rego/go_strings.h"

namespace mg::rego {
namespace {

using bi::Args;
using bi::want;

BuiltinResult type_name(Args a, BuiltinContext&) { return Value::string(a[0].type_name()); }

template <Kind K>
BuiltinResult is_kind(Args a, BuiltinContext&) {
  return Value::boolean(a[0].kind() == K);
}

// strconv.ParseFloat's grammar for decimal input (hex floats and underscores are not accepted here;
// OPA policies do not rely on them).
bool parse_float_syntax(const std::string& s, double& out) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return false;
  const auto dec = Decimal::parse(s);
  if (!dec) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

BuiltinResult to_number(Args a, BuiltinContext&) {
  const Value& v = a[0];
  switch (v.kind()) {
    case Kind::Null:
      return Value::number(int64_t{0});
    case Kind::Bool:
      return Value::number(int64_t{v.as_bool() ? 1 : 0});
    case Kind::Number:
      return v;
    case Kind::String: {
      const std::string& s = v.as_string();
      std::string bare = go::to_lower(s);
      bare.erase(
          0, bare.find_first_not_of("+-") == std::string::npos ? bare.size() : bare.find_first_not_of("+-"));
      if (bare == "inf" || bare == "infinity" || bare == "nan")
        return BuiltinError::operand(1, "valid number string", v);
      double d = 0;
      if (!parse_float_syntax(s, d))
        return BuiltinError::builtin("strconv.ParseFloat: parsing " + go::quote(s) + ": invalid syntax");
      if (std::isinf(d))
        return BuiltinError::builtin("strconv.ParseFloat: parsing " + go::quote(s) + ": value out of range");
      if (auto exact = Value::number_from_text(s)) return *exact;
      return Value::number(d);
    }
    default:
      return BuiltinError::operand(1, bi::one_of({"null", "boolean", "number", "string"}), v);
  }
}

// OPA's extractNumAndUnit: the amount runs while characters are digits, '.', '+', '-' or an
// exponent marker followed by a digit or sign; the rest is the unit. false: exponent over 6 digits.
bool split_amount(const std::string& s, std::string& num, std::string& unit) {
  size_t split = std::string::npos;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool numeric = std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '+' || c == '-';
    if (!numeric && c != 'e' && c != 'E') {
      split = i;
      break;
    }
    if (c == 'e' || c == 'E') {
      if (i + 1 == s.size() ||
          !(std::isdigit(static_cast<unsigned char>(s[i + 1])) || s[i + 1] == '+' || s[i + 1] == '-')) {
        split = i;
        break;
      }
      if (s[i + 1] == '+' || s[i + 1] == '-') ++i;
      size_t end = i + 1;
      while (end < s.size() && std::isdigit(static_cast<unsigned char>(s[end]))) ++end;
      if (end - (i + 1) > 6) return false;
    }
  }
  if (split == std::string::npos) {
    num = s;
  } else {
    num = s.substr(0, split);
    unit = s.substr(split);
  }
  return true;
}

std::optional<Decimal> unit_multiplier(const std::string& unit, bool bytes) {
  struct Unit {
    const char* si;
    const char* binary;
  };
  static const Unit kUnits[] = {{"k", "ki"}, {"m", "mi"}, {"g", "gi"}, {"t", "ti"}, {"p", "pi"}, {"e", "ei"}};
  if (unit.empty()) return Decimal::from_uint(1);
  if (!bytes && unit == "m") {
    // OPA multiplies by the float64 nearest to 0.001 (big.Rat.SetFloat64), exactly.
    return Decimal::parse("0.001000000000000000020816681711721685132943093776702880859375");
  }
  std::string u = unit;
  if (!bytes) {
    if (u == "M")
      u = "m";
    else if (u.size() > 1 || u == "k" || u == "K" || u == "g" || u == "G" || u == "t" || u == "T" ||
             u == "p" || u == "P" || u == "e" || u == "E")
      u = go::to_lower(u);
    else
      return std::nullopt;
  }
  uint64_t si = 1000, bin = 1024;
  for (const Unit& k : kUnits) {
    if (u == k.si || (bytes && u == std::string(k.si) + "b")) return Decimal::from_uint(si);
    if (u == k.binary || (bytes && u == std::string(k.binary) + "b")) return Decimal::from_uint(bin);
    si *= 1000;
    bin *= 1024;
  }
  return std::nullopt;
}

template <bool kBytes>
BuiltinResult parse_units(Args a, BuiltinContext& ctx) {
  const std::string name = kBytes ? "units.parse_bytes: " : "units.parse: ";
  if (auto e = want(a, 1, Kind::String)) return *e;
  std::string s = a[0].as_string();
  if (kBytes) s = go::to_lower(s);
  s.erase(std::remove(s.begin(), s.end(), '"'), s.end());
  if (s.find(' ') != std::string::npos)
    return BuiltinError::builtin(name + "spaces not allowed in resource strings");
  std::string num, unit;
  if (!split_amount(s, num, unit)) return BuiltinError::builtin(name + "exponent too large");
  if (num.empty())
    return BuiltinError::builtin(name + (kBytes ? "no byte amount provided" : "no amount provided"));
  if (!kBytes && unit.size() > 1) unit = unit.substr(0, 1) + go::to_lower(unit.substr(1));
  const auto mult = unit_multiplier(unit, kBytes);
  if (!mult)
    return BuiltinError::builtin(name + (kBytes ? "byte unit " : "unit ") + unit + " not recognized");
  const auto amount = Decimal::parse(num);
  if (!amount)
    return BuiltinError::builtin(
        name + (kBytes ? "could not parse byte amount to a number" : "could not parse amount to a number"));
  const Decimal total = *amount * *mult;
  if (ctx.budget && !ctx.budget->charge_bytes(static_cast<uint64_t>(std::max<int64_t>(total.text_size(), 0))))
    return BuiltinError::budget();
  if (total.text_size() > (1 << 22)) return BuiltinError::builtin(name + "exponent too large");
  const std::string text = kBytes || total.is_integer() ? total.truncated_text() : total.fixed_text(10);
  if (auto v = Value::number_from_text(text)) return *v;
  return BuiltinError::builtin(name + "could not parse amount to a number");
}

}  // namespace

void register_types(Registry& r) {
  r.add({"type_name", 1, type_name, false, false, false, {}});
  r.add({"is_number", 1, is_kind<Kind::Number>, false, false, false, {}});
  r.add({"is_string", 1, is_kind<Kind::String>, false, false, false, {}});
  r.add({"is_boolean", 1, is_kind<Kind::Bool>, false, false, false, {}});
  r.add({"is_array", 1, is_kind<Kind::Array>, false, false, false, {}});
  r.add({"is_set", 1, is_kind<Kind::Set>, false, false, false, {}});
  r.add({"is_object", 1, is_kind<Kind::Object>, false, false, false, {}});
  r.add({"is_null", 1, is_kind<Kind::Null>, false, false, false, {}});
  r.add(
      {"to_number", 1, to_number, false, false, false, {kNullType | kBoolType | kNumberType | kStringType}});
  r.add({"units.parse", 1, parse_units<false>, false, false, false, {kStringType}});
  r.add({"units.parse_bytes", 1, parse_units<true>, false, false, false, {kStringType}});
}

}  // namespace mg::rego
