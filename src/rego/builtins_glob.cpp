// rego/builtins_glob.cpp — glob.match and glob.quote_meta (OPA's gobwas/glob semantics, glob.h).
// Compiled patterns are cached per thread (bounded), keyed by pattern and delimiters.
#include <memory>
#include <unordered_map>

#include "rego/builtins_util.h"
#include "rego/glob.h"
#include "rego/utf8.h"

namespace mg::rego {
namespace {

using bi::Args;
using bi::want;

BuiltinResult match(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  std::vector<char32_t> delimiters;
  if (a[1].is_array()) {
    for (const Value& d : a[1].as_array()) {
      if (!d.is_string()) return bi::element_error(2, a[1], d, "string");
      const std::string& text = d.as_string();
      if (text.size() == 1 && static_cast<unsigned char>(text[0]) < 0x80) {  // one ASCII rune
        delimiters.push_back(static_cast<char32_t>(text[0]));
        continue;
      }
      const auto runes = utf8::runes(d.as_string());
      if (runes.size() != 1) return bi::element_error(2, a[1], d, "rune");
      delimiters.push_back(runes[0]);
    }
    if (delimiters.empty()) delimiters.push_back('.');
  } else if (!a[1].is_null()) {
    return BuiltinError::operand(2, bi::one_of({"array", "null"}), a[1]);
  }
  if (auto e = want(a, 3, Kind::String)) return *e;

  static constexpr size_t kCacheMax = 100;
  thread_local std::unordered_map<std::string, std::shared_ptr<const GlobPattern>> cache;
  std::string key = a[0].as_string();
  key += '\0';
  for (char32_t d : delimiters) utf8::append(key, d);
  std::shared_ptr<const GlobPattern> pattern;
  if (auto it = cache.find(key); it != cache.end()) {
    pattern = it->second;
  } else {
    auto compiled = GlobPattern::compile(a[0].as_string(), delimiters);
    if (!compiled) return BuiltinError::builtin(compiled.error().message);
    pattern = std::make_shared<const GlobPattern>(std::move(*compiled));
    if (cache.size() >= kCacheMax) cache.clear();
    cache.emplace(std::move(key), pattern);
  }
  // Matching is O(pattern × text); refuse inputs whose product could stall a worker.
  constexpr double kMaxWork = 5e8;
  if (static_cast<double>(a[0].as_string().size() + 1) * static_cast<double>(a[2].as_string().size() + 1) >
      kMaxWork)
    return BuiltinError::builtin("pattern and text too large to match");
  return Value::boolean(pattern->match(a[2].as_string()));
}

BuiltinResult quote_meta(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  std::string out;
  for (char c : a[0].as_string()) {
    if (c == '*' || c == '?' || c == '\\' || c == '[' || c == ']' || c == '{' || c == '}') out += '\\';
    out += c;
  }
  return Value::string(std::move(out));
}

}  // namespace

void register_glob(Registry& r) {
  r.add({"glob.match", 3, match, false, false, false, {kStringType, kArrayType | kNullType, kStringType}});
  r.add({"glob.quote_meta", 1, quote_meta, false, false, false, {kStringType}});
}

}  // namespace mg::rego
