// rego/builtins_regex.cpp — regex.* built-ins on RE2, whose syntax is the one Go's regexp (and so
// OPA) accepts. Go's iteration rules are reproduced on top: successive non-overlapping matches, an
// empty match right after a previous match ignored, Split's and ReplaceAllString's edge cases, and
// Expand's `$name` / `${name}` templates. Compiled patterns are cached per thread (bounded).
#include <re2/re2.h>

#include <memory>
#include <unordered_map>

#include "rego/builtins_util.h"
#include "rego/utf8.h"

namespace mg::rego {
namespace {

using bi::Args;
using bi::want;

const char* go_error_text(RE2::ErrorCode code) {
  switch (code) {
    case RE2::ErrorBadEscape:
      return "invalid escape sequence";
    case RE2::ErrorBadCharClass:
      return "invalid character class";
    case RE2::ErrorBadCharRange:
      return "invalid character class range";
    case RE2::ErrorMissingBracket:
      return "missing closing ]";
    case RE2::ErrorMissingParen:
      return "missing closing )";
    case RE2::ErrorUnexpectedParen:
      return "unexpected )";
    case RE2::ErrorTrailingBackslash:
      return "trailing backslash at end of expression";
    case RE2::ErrorRepeatArgument:
      return "missing argument to repetition operator";
    case RE2::ErrorRepeatSize:
      return "invalid repeat count";
    case RE2::ErrorRepeatOp:
      return "invalid nested repetition operator";
    case RE2::ErrorBadPerlOp:
      return "invalid or unsupported Perl syntax";
    case RE2::ErrorBadUTF8:
      return "invalid UTF-8";
    case RE2::ErrorBadNamedCapture:
      return "invalid named capture";
    case RE2::ErrorPatternTooLarge:
      return "expression too large";
    default:
      return "regexp/syntax: internal error";
  }
}

struct Compiled {
  std::shared_ptr<const RE2> re;
  std::string error;  // Go's wording when the pattern does not compile
};

Compiled compile(const std::string& pattern) {
  static constexpr size_t kCacheMax = 100;
  thread_local std::unordered_map<std::string, std::shared_ptr<const RE2>> cache;
  if (auto it = cache.find(pattern); it != cache.end()) return {it->second, {}};
  RE2::Options opts;
  opts.set_log_errors(false);
  auto re = std::make_shared<const RE2>(pattern, opts);
  if (!re->ok())
    return {nullptr, std::string("error parsing regexp: ") + go_error_text(re->error_code()) + ": `" +
                         re->error_arg() + "`"};
  if (cache.size() >= kCacheMax) cache.clear();
  cache.emplace(pattern, re);
  return {re, {}};
}

using Span = std::pair<size_t, size_t>;  // [begin, end) byte offsets; npos begin: group did not take part

// Match of `re` in s searching from pos; groups[0] is the whole match.
bool match_at(const RE2& re, std::string_view s, size_t pos, std::vector<Span>& groups) {
  const int n = re.NumberOfCapturingGroups() + 1;
  std::vector<re2::StringPiece> sub(static_cast<size_t>(n));
  if (!re.Match(re2::StringPiece(s.data(), s.size()), pos, s.size(), RE2::UNANCHORED, sub.data(), n))
    return false;
  groups.assign(static_cast<size_t>(n), Span{std::string_view::npos, std::string_view::npos});
  for (int i = 0; i < n; ++i) {
    if (sub[static_cast<size_t>(i)].data() == nullptr) continue;
    const size_t b = static_cast<size_t>(sub[static_cast<size_t>(i)].data() - s.data());
    groups[static_cast<size_t>(i)] = {b, b + sub[static_cast<size_t>(i)].size()};
  }
  return true;
}

// Go's allMatches: up to n (n < 0: all) successive matches.
std::vector<std::vector<Span>> all_matches(const RE2& re, std::string_view s, int64_t n) {
  std::vector<std::vector<Span>> out;
  std::vector<Span> groups;
  size_t pos = 0;
  size_t prev_end = std::string_view::npos;
  while ((n < 0 || static_cast<int64_t>(out.size()) < n) && pos <= s.size()) {
    if (!match_at(re, s, pos, groups)) break;
    bool accept = true;
    if (groups[0].second == pos) {
      if (groups[0].first == prev_end) accept = false;
      pos += pos < s.size() ? utf8::decode(s, pos).size : 1;
    } else {
      pos = groups[0].second;
    }
    prev_end = groups[0].second;
    if (accept) out.push_back(groups);
  }
  return out;
}

BuiltinResult compile_error(const Compiled& c) { return BuiltinError::builtin(c.error); }

BuiltinResult match(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  if (auto e = want(a, 2, Kind::String)) return *e;
  const Compiled c = compile(a[0].as_string());
  if (!c.re) return compile_error(c);
  const std::string& s = a[1].as_string();
  return Value::boolean(
      c.re->Match(re2::StringPiece(s.data(), s.size()), 0, s.size(), RE2::UNANCHORED, nullptr, 0));
}

BuiltinResult is_valid(Args a, BuiltinContext&) {
  if (!a[0].is_string()) return Value::boolean(false);
  return Value::boolean(compile(a[0].as_string()).re != nullptr);
}

BuiltinResult find_n(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  if (auto e = want(a, 2, Kind::String)) return *e;
  int64_t n = 0;
  if (auto e = bi::int_operand(a, 3, n)) return *e;
  const Compiled c = compile(a[0].as_string());
  if (!c.re) return compile_error(c);
  const std::string& s = a[1].as_string();
  Array out;
  for (const auto& m : all_matches(*c.re, s, n))
    out.push_back(Value::string(s.substr(m[0].first, m[0].second - m[0].first)));
  return Value::array(std::move(out));
}

BuiltinResult find_all_string_submatch_n(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  if (auto e = want(a, 2, Kind::String)) return *e;
  int64_t n = 0;
  if (auto e = bi::int_operand(a, 3, n)) return *e;
  const Compiled c = compile(a[0].as_string());
  if (!c.re) return compile_error(c);
  const std::string& s = a[1].as_string();
  Array out;
  for (const auto& m : all_matches(*c.re, s, n)) {
    Array groups;
    for (const Span& g : m)
      groups.push_back(Value::string(
          g.first == std::string_view::npos ? std::string() : s.substr(g.first, g.second - g.first)));
    out.push_back(Value::array(std::move(groups)));
  }
  return Value::array(std::move(out));
}

BuiltinResult split(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  if (auto e = want(a, 2, Kind::String)) return *e;
  const Compiled c = compile(a[0].as_string());
  if (!c.re) return compile_error(c);
  const std::string& s = a[1].as_string();
  if (!a[0].as_string().empty() && s.empty()) return Value::array({Value::string("")});
  Array out;
  size_t begin = 0, end = 0;
  for (const auto& m : all_matches(*c.re, s, -1)) {
    end = m[0].first;
    if (m[0].second != 0) out.push_back(Value::string(s.substr(begin, end - begin)));
    begin = m[0].second;
  }
  if (end != s.size()) out.push_back(Value::string(s.substr(begin)));
  return Value::array(std::move(out));
}

// Go's Regexp.Expand: $name / ${name} (name: letters, digits, '_'; a number is a group index,
// anything else a named group; unknown names expand to ""), $$ is '$'.
void expand(const RE2& re, std::string_view tmpl, std::string_view src, const std::vector<Span>& groups,
            std::string& out) {
  auto is_name_char = [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
  };
  for (size_t i = 0; i < tmpl.size();) {
    const size_t dollar = tmpl.find('$', i);
    if (dollar == std::string_view::npos) {
      out.append(tmpl.substr(i));
      break;
    }
    out.append(tmpl.substr(i, dollar - i));
    i = dollar + 1;
    if (i < tmpl.size() && tmpl[i] == '$') {
      out += '$';
      ++i;
      continue;
    }
    std::string_view name;
    bool braced = i < tmpl.size() && tmpl[i] == '{';
    size_t j = braced ? i + 1 : i;
    const size_t name_start = j;
    while (j < tmpl.size() && is_name_char(tmpl[j])) ++j;
    name = tmpl.substr(name_start, j - name_start);
    if (name.empty() || (braced && (j >= tmpl.size() || tmpl[j] != '}'))) {
      out += '$';  // malformed: the '$' is kept literally
      continue;
    }
    i = braced ? j + 1 : j;
    int index = -1;
    if (name.find_first_not_of("0123456789") == std::string_view::npos) {
      if (name.size() < 9) index = std::stoi(std::string(name));
    } else {
      const auto& names = re.NamedCapturingGroups();
      if (auto it = names.find(std::string(name)); it != names.end()) index = it->second;
    }
    if (index >= 0 && static_cast<size_t>(index) < groups.size() &&
        groups[static_cast<size_t>(index)].first != std::string_view::npos) {
      const Span g = groups[static_cast<size_t>(index)];
      out.append(src.substr(g.first, g.second - g.first));
    }
  }
}

BuiltinResult replace(Args a, BuiltinContext& ctx) {
  for (int i = 1; i <= 3; ++i)
    if (auto e = want(a, i, Kind::String)) return *e;
  const Compiled c = compile(a[1].as_string());
  if (!c.re) return compile_error(c);
  const std::string& s = a[0].as_string();
  const std::string& tmpl = a[2].as_string();
  std::string out;
  std::vector<Span> groups;
  size_t last_end = 0, search = 0;
  while (search <= s.size()) {
    if (!match_at(*c.re, s, search, groups)) break;
    out.append(s, last_end, groups[0].first - last_end);
    if (groups[0].second > last_end || groups[0].first == 0) expand(*c.re, tmpl, s, groups, out);
    if (out.size() > bi::output_limit(ctx)) return BuiltinError::budget();
    last_end = groups[0].second;
    const size_t width = search < s.size() ? utf8::decode(s, search).size : 0;
    if (search + width > groups[0].second) {
      search += width;
    } else if (search + 1 > groups[0].second) {
      ++search;
    } else {
      search = groups[0].second;
    }
  }
  out.append(s, last_end);
  if (ctx.budget && !ctx.budget->charge_bytes(out.size())) return BuiltinError::budget();
  return Value::string(std::move(out));
}

}  // namespace

void register_regex(Registry& r) {
  const uint8_t S = kStringType;
  r.add({"regex.match", 2, match, false, false, false, {S, S}});
  r.add({"re_match", 2, match, false, false, false, {S, S}});
  r.add({"regex.is_valid", 1, is_valid, false, false, false, {}});
  r.add({"regex.find_n", 3, find_n, false, false, false, {S, S, kNumberType}});
  r.add({"regex.find_all_string_submatch_n",
         3,
         find_all_string_submatch_n,
         false,
         false,
         false,
         {S, S, kNumberType}});
  r.add({"regex.split", 2, split, false, false, false, {S, S}});
  r.add({"regex.replace", 3, replace, false, false, false, {S, S, S}});
}

}  // namespace mg::rego
