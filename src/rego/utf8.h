// rego/utf8.h — UTF-8 as Go's strings package walks it: an invalid byte decodes to U+FFFD and
// advances by one, so every built-in agrees with OPA on malformed text.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mg::rego::utf8 {

inline constexpr char32_t kReplacement = 0xFFFD;

struct Decoded {
  char32_t rune;
  size_t size;  // bytes consumed, ≥ 1 (0 only at end of input)
};

Decoded decode(std::string_view s, size_t pos);
void append(std::string& out, char32_t r);
std::vector<char32_t> runes(std::string_view s);
std::string from_runes(const std::vector<char32_t>& rs);
size_t rune_count(std::string_view s);
bool is_ascii(std::string_view s);

}  // namespace mg::rego::utf8
