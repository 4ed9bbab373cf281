// rego/builtins_semver.cpp — semver.is_valid / semver.compare, strict SemVer 2.0.0: no leading
// zeros in numeric parts, non-empty pre-release and build sections, precedence per spec item 11.
#include <cctype>

#include "rego/builtins_util.h"
#include "rego/go_strings.h"

namespace mg::rego {
namespace {

using bi::Args;
using bi::want;

struct Version {
  std::string major, minor, patch;
  std::vector<std::string> pre;
};

bool numeric(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}
bool no_leading_zero(std::string_view s) { return s.size() == 1 || s[0] != '0'; }
bool identifier(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-')) return false;
  return true;
}

std::optional<Version> parse(std::string_view s) {
  Version v;
  const size_t plus = s.find('+');
  if (plus != std::string_view::npos) {
    for (const auto& b : go::split(s.substr(plus + 1), "."))
      if (!identifier(b)) return std::nullopt;
    s = s.substr(0, plus);
  }
  const size_t dash = s.find('-');
  if (dash != std::string_view::npos) {
    for (auto& p : go::split(s.substr(dash + 1), ".")) {
      if (!identifier(p) || (numeric(p) && !no_leading_zero(p))) return std::nullopt;
      v.pre.push_back(std::move(p));
    }
    s = s.substr(0, dash);
  }
  const auto core = go::split(s, ".");
  if (core.size() != 3) return std::nullopt;
  for (const auto& c : core)
    if (!numeric(c) || !no_leading_zero(c)) return std::nullopt;
  v.major = core[0], v.minor = core[1], v.patch = core[2];
  return v;
}

int compare_numeric(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

int compare(const Version& a, const Version& b) {
  for (auto [x, y] : {std::pair{&a.major, &b.major}, {&a.minor, &b.minor}, {&a.patch, &b.patch}})
    if (int c = compare_numeric(*x, *y)) return c;
  if (a.pre.empty() || b.pre.empty()) return a.pre.empty() == b.pre.empty() ? 0 : a.pre.empty() ? 1 : -1;
  for (size_t i = 0; i < a.pre.size() && i < b.pre.size(); ++i) {
    const bool na = numeric(a.pre[i]), nb = numeric(b.pre[i]);
    int c;
    if (na && nb)
      c = compare_numeric(a.pre[i], b.pre[i]);
    else if (na != nb)
      c = na ? -1 : 1;
    else
      c = a.pre[i] < b.pre[i] ? -1 : a.pre[i] > b.pre[i] ? 1 : 0;
    if (c) return c;
  }
  return a.pre.size() == b.pre.size() ? 0 : a.pre.size() < b.pre.size() ? -1 : 1;
}

BuiltinResult is_valid(Args a, BuiltinContext&) {
  return Value::boolean(a[0].is_string() && parse(a[0].as_string()).has_value());
}

BuiltinResult compare_versions(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  if (auto e = want(a, 2, Kind::String)) return *e;
  const auto x = parse(a[0].as_string());
  if (!x) return BuiltinError::builtin("operand 1: string " + a[0].to_rego_text() + " is not a valid SemVer");
  const auto y = parse(a[1].as_string());
  if (!y) return BuiltinError::builtin("operand 2: string " + a[1].to_rego_text() + " is not a valid SemVer");
  return Value::number(static_cast<int64_t>(compare(*x, *y)));
}

}  // namespace

void register_semver(Registry& r) {
  r.add({"semver.is_valid", 1, is_valid, false, false, false, {}});
  r.add({"semver.compare", 2, compare_versions, false, false, false, {kStringType, kStringType}});
}

}  // namespace mg::rego
