// rego/builtins_strings.cpp — string built-ins (concat, contains, split, replace, trim*, sprintf,
// format_int, indexof, substring, strings.*) with OPA's Go semantics: offsets count Unicode code
// points, case mapping and trimming are Unicode-aware, replacement follows strings.Replacer.
#include <algorithm>
#include <cmath>

#include "rego/builtins_util.h"
#include "rego/go_fmt.h"
#include "rego/go_strings.h"
#include "rego/utf8.h"

namespace mg::rego {
namespace {

using bi::Args;
using bi::want;

// Two string operands: the common shape of most built-ins here.
template <class F>
BuiltinResult two_strings(Args a, F f) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  if (auto e = want(a, 2, Kind::String)) return *e;
  return f(a[0].as_string(), a[1].as_string());
}

BuiltinResult concat(Args a, BuiltinContext& ctx) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  if (!a[1].is_array() && !a[1].is_set()) return BuiltinError::operand(2, bi::one_of({"set", "array"}), a[1]);
  const std::string& sep = a[0].as_string();
  std::string out;
  bool first = true;
  for (const Value& v : bi::elements(a[1])) {
    if (!v.is_string()) return bi::element_error(2, a[1], v, "string");
    if (!first) out += sep;
    out += v.as_string();
    first = false;
  }
  if (ctx.budget && !ctx.budget->charge_bytes(out.size())) return BuiltinError::budget();
  return Value::string(std::move(out));
}

BuiltinResult contains(Args a, BuiltinContext&) {
  return two_strings(a, [](const std::string& s, const std::string& sub) {
    return Value::boolean(s.find(sub) != std::string::npos);
  });
}

BuiltinResult startswith(Args a, BuiltinContext&) {
  return two_strings(
      a, [](const std::string& s, const std::string& p) { return Value::boolean(s.starts_with(p)); });
}

BuiltinResult endswith(Args a, BuiltinContext&) {
  return two_strings(
      a, [](const std::string& s, const std::string& p) { return Value::boolean(s.ends_with(p)); });
}

BuiltinResult lower(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  return Value::string(go::to_lower(a[0].as_string()));
}

BuiltinResult upper(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  return Value::string(go::to_upper(a[0].as_string()));
}

BuiltinResult split(Args a, BuiltinContext& ctx) {
  return two_strings(a, [&](const std::string& s, const std::string& sep) -> BuiltinResult {
    if (s.find(sep) == std::string::npos) return Value::array({a[0]});
    Array out;
    if (sep.empty()) {
      for (auto& p : go::split(s, sep)) out.push_back(Value::string(std::move(p)));
    } else {  // go::split's cut points, each part made a value directly
      const std::string_view text = s;
      size_t parts = 1;
      for (size_t at = text.find(sep); at != std::string_view::npos; at = text.find(sep, at + sep.size())) ++parts;
      out.reserve(parts);
      size_t start = 0;
      for (size_t at; (at = text.find(sep, start)) != std::string_view::npos; start = at + sep.size())
        out.push_back(Value::string(text.substr(start, at - start)));
      out.push_back(Value::string(text.substr(start)));
    }
    if (ctx.budget && !ctx.budget->charge_bytes(s.size() + out.size() * sizeof(Value)))
      return BuiltinError::budget();
    return Value::array(std::move(out));
  });
}

BuiltinResult replace(Args a, BuiltinContext& ctx) {
  for (int i = 1; i <= 3; ++i)
    if (auto e = want(a, i, Kind::String)) return *e;
  auto out = go::replace(a[0].as_string(), {{a[1].as_string(), a[2].as_string()}}, bi::output_limit(ctx));
  if (!out || (ctx.budget && !ctx.budget->charge_bytes(out->size()))) return BuiltinError::budget();
  return Value::string(std::move(*out));
}

BuiltinResult replace_n(Args a, BuiltinContext& ctx) {
  if (auto e = want(a, 1, Kind::Object)) return *e;
  if (auto e = want(a, 2, Kind::String)) return *e;
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& [k, v] : a[0].as_object()) {  // sorted by key, as OPA sorts them
    if (!k.is_string()) return BuiltinError::type("operand 1 non-string key found in pattern object");
    if (!v.is_string()) return BuiltinError::type("operand 1 non-string value found in pattern object");
    pairs.emplace_back(k.as_string(), v.as_string());
  }
  auto out = go::replace(a[1].as_string(), pairs, bi::output_limit(ctx));
  if (!out || (ctx.budget && !ctx.budget->charge_bytes(out->size()))) return BuiltinError::budget();
  return Value::string(std::move(*out));
}

BuiltinResult trim(Args a, BuiltinContext&) {
  return two_strings(
      a, [](const std::string& s, const std::string& c) { return Value::string(go::trim(s, c)); });
}

BuiltinResult trim_left(Args a, BuiltinContext&) {
  return two_strings(
      a, [](const std::string& s, const std::string& c) { return Value::string(go::trim_left(s, c)); });
}

BuiltinResult trim_right(Args a, BuiltinContext&) {
  return two_strings(
      a, [](const std::string& s, const std::string& c) { return Value::string(go::trim_right(s, c)); });
}

BuiltinResult trim_prefix(Args a, BuiltinContext&) {
  return two_strings(a, [](const std::string& s, const std::string& p) {
    return Value::string(s.starts_with(p) ? s.substr(p.size()) : s);
  });
}

BuiltinResult trim_suffix(Args a, BuiltinContext&) {
  return two_strings(a, [](const std::string& s, const std::string& p) {
    return Value::string(s.ends_with(p) ? s.substr(0, s.size() - p.size()) : s);
  });
}

BuiltinResult trim_space(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  return Value::string(go::trim_space(a[0].as_string()));
}

// The decimal digits of a number truncated toward zero (Go's big.Float.Int).
std::string truncated_decimal(const Value& n) {
  if (n.is_integer()) {
    if (auto i = n.as_int64()) return std::to_string(*i);
    const std::string text = n.number_text();
    if (text.find_first_of(".eE") == std::string::npos) return text;
  }
  const double t = std::trunc(n.as_double());
  if (std::fabs(t) < 9.0e18) return std::to_string(static_cast<int64_t>(t));
  return go::format_float(t, 'f', 0);
}

BuiltinResult format_int(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::Number)) return *e;
  if (auto e = want(a, 2, Kind::Number)) return *e;
  const auto base = a[1].as_int64();
  const char* verb = nullptr;
  if (base && a[1].number_text() == std::to_string(*base)) {
    switch (*base) {
      case 2:
        verb = "%b";
        break;
      case 8:
        verb = "%o";
        break;
      case 10:
        verb = "%d";
        break;
      case 16:
        verb = "%x";
        break;
      default:
        break;
    }
  }
  if (!verb) return BuiltinError::type("operand 2 must be one of {2, 8, 10, 16}");
  const std::string digits = truncated_decimal(a[0]);
  if (digits.size() > bi::kMaxIntegerDigits) return BuiltinError::builtin("operand 1 too large");
  return Value::string(*go::sprintf(verb, {go::FmtArg::big_integer(digits)}));
}

BuiltinResult indexof(Args a, BuiltinContext&) {
  return two_strings(a, [](const std::string& s, const std::string& sub) -> BuiltinResult {
    if (sub.empty()) return BuiltinError::builtin("empty search character");
    const size_t at = s.find(sub);
    if (at == std::string::npos) return Value::number(int64_t{-1});
    return Value::number(static_cast<int64_t>(utf8::rune_count(std::string_view(s).substr(0, at))));
  });
}

BuiltinResult indexof_n(Args a, BuiltinContext&) {
  return two_strings(a, [](const std::string& s, const std::string& sub) -> BuiltinResult {
    if (sub.empty()) return BuiltinError::builtin("empty search character");
    const auto base = utf8::runes(s);
    const auto search = utf8::runes(sub);
    Array out;
    for (size_t i = 0; i + search.size() <= base.size(); ++i)
      if (std::equal(search.begin(), search.end(), base.begin() + static_cast<ptrdiff_t>(i)))
        out.push_back(Value::number(static_cast<int64_t>(i)));
    return Value::array(std::move(out));
  });
}

BuiltinResult substring(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  int64_t start = 0, length = 0;
  if (auto e = bi::int_operand(a, 2, start)) return *e;
  if (auto e = bi::int_operand(a, 3, length)) return *e;
  if (start < 0) return BuiltinError::builtin("negative offset");
  const auto runes = utf8::runes(a[0].as_string());
  const auto n = static_cast<int64_t>(runes.size());
  if (start >= n) return Value::string("");
  const int64_t end = length < 0 ? n : std::min(n, start + length);
  return Value::string(utf8::from_runes(std::vector<char32_t>(runes.begin() + start, runes.begin() + end)));
}

BuiltinResult reverse(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  auto runes = utf8::runes(a[0].as_string());
  std::reverse(runes.begin(), runes.end());
  return Value::string(utf8::from_runes(runes));
}

BuiltinResult count_substrings(Args a, BuiltinContext&) {
  return two_strings(a, [](const std::string& s, const std::string& sub) {
    if (sub.empty()) return Value::number(static_cast<int64_t>(utf8::rune_count(s) + 1));
    int64_t n = 0;
    for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
    return Value::number(n);
  });
}

// Strings of a string / array / set operand (strings.any_prefix_match and any_suffix_match).
std::optional<BuiltinError> string_or_strings(Args a, int pos, std::vector<std::string>& out) {
  const Value& v = a[static_cast<size_t>(pos - 1)];
  if (v.is_string()) {
    out.push_back(v.as_string());
    return std::nullopt;
  }
  if (!v.is_array() && !v.is_set())
    return BuiltinError::operand(pos, bi::one_of({"string", "set", "array"}), v);
  return bi::string_elements(a, pos, out);
}

template <bool kSuffix>
BuiltinResult any_affix_match(Args a, BuiltinContext&) {
  std::vector<std::string> strs, affixes;
  if (auto e = string_or_strings(a, 1, strs)) return *e;
  if (auto e = string_or_strings(a, 2, affixes)) return *e;
  for (const auto& s : strs)
    for (const auto& p : affixes)
      if (kSuffix ? s.ends_with(p) : s.starts_with(p)) return Value::boolean(true);
  return Value::boolean(false);
}

go::FmtArg fmt_arg(const Value& v) {
  if (v.is_string()) return go::FmtArg::string(v.as_string());
  if (v.is_number()) {
    const std::string text = v.number_text();
    const bool integral_text = text.find_first_of(".eE") == std::string::npos;
    if (integral_text) {
      if (auto i = v.as_int64()) return go::FmtArg::integer(*i);
      return go::FmtArg::big_integer(text);
    }
    return go::FmtArg::floating(v.as_double());
  }
  return go::FmtArg::string(v.to_rego_text());
}

BuiltinResult sprintf(Args a, BuiltinContext& ctx) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  if (auto e = want(a, 2, Kind::Array)) return *e;
  std::vector<go::FmtArg> args;
  for (const Value& v : a[1].as_array()) args.push_back(fmt_arg(v));
  for (const auto& arg : args)
    if (arg.kind == go::FmtArg::BigInt && arg.s.size() > bi::kMaxIntegerDigits)
      return BuiltinError::builtin("integer operand too large");
  auto out = go::sprintf(a[0].as_string(), args, bi::output_limit(ctx));
  if (!out || (ctx.budget && !ctx.budget->charge_bytes(out->size()))) return BuiltinError::budget();
  return Value::string(std::move(*out));
}

}  // namespace

void register_strings(Registry& r) {
  const uint8_t S = kStringType;
  r.add({"concat", 2, concat, false, false, false, {S, kArrayType | kSetType}});
  r.add({"contains", 2, contains, false, false, false, {S, S}});
  r.add({"startswith", 2, startswith, false, false, false, {S, S}});
  r.add({"endswith", 2, endswith, false, false, false, {S, S}});
  r.add({"lower", 1, lower, false, false, false, {S}});
  r.add({"upper", 1, upper, false, false, false, {S}});
  r.add({"split", 2, split, false, false, false, {S, S}});
  r.add({"replace", 3, replace, false, false, false, {S, S, S}});
  r.add({"strings.replace_n", 2, replace_n, false, false, false, {kObjectType, S}});
  r.add({"trim", 2, trim, false, false, false, {S, S}});
  r.add({"trim_left", 2, trim_left, false, false, false, {S, S}});
  r.add({"trim_right", 2, trim_right, false, false, false, {S, S}});
  r.add({"trim_prefix", 2, trim_prefix, false, false, false, {S, S}});
  r.add({"trim_suffix", 2, trim_suffix, false, false, false, {S, S}});
  r.add({"trim_space", 1, trim_space, false, false, false, {S}});
  r.add({"format_int", 2, format_int, false, false, false, {kNumberType, kNumberType}});
  r.add({"indexof", 2, indexof, false, false, false, {S, S}});
  r.add({"indexof_n", 2, indexof_n, false, false, false, {S, S}});
  r.add({"substring", 3, substring, false, false, false, {S, kNumberType, kNumberType}});
  r.add({"strings.reverse", 1, reverse, false, false, false, {S}});
  r.add({"strings.count", 2, count_substrings, false, false, false, {S, S}});
  r.add({"strings.any_prefix_match", 2, any_affix_match<false>, false, false, false, {}});
  r.add({"strings.any_suffix_match", 2, any_affix_match<true>, false, false, false, {}});
  r.add({"sprintf", 2, sprintf, false, false, false, {S, kArrayType}});
}

}  // namespace mg::rego
