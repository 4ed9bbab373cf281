// rego/go_strings.cpp — see go_strings.h.
#include "rego/go_strings.h"

#include <locale.h>
#include <algorithm>
#include <clocale>
#include <cwctype>

#include "rego/utf8.h"

namespace mg::rego::go {
namespace {

// The runes of a cutset, sorted: membership is a binary search, so long cutsets stay cheap.
std::vector<char32_t> cutset_runes(std::string_view cutset) {
  std::vector<char32_t> rs = utf8::runes(cutset);
  std::sort(rs.begin(), rs.end());
  return rs;
}

// First byte not trimmed from the left, while trim(rune) holds.
template <class Trim>
size_t left_end(std::string_view s, Trim trim) {
  size_t i = 0;
  while (i < s.size()) {
    const utf8::Decoded d = utf8::decode(s, i);
    if (!trim(d.rune)) break;
    i += d.size;
  }
  return i;
}

// Start of the last rune that ends at `end`.
size_t last_rune_start(std::string_view s, size_t end) {
  size_t start = end - 1;
  const size_t lowest = end >= 4 ? end - 4 : 0;
  while (start > lowest && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  const utf8::Decoded d = utf8::decode(s, start);
  return start + d.size == end ? start : end - 1;
}

// One past the last byte not trimmed from the right (not before `begin`).
template <class Trim>
size_t right_end(std::string_view s, size_t begin, Trim trim) {
  size_t end = s.size();
  while (end > begin) {
    const size_t start = last_rune_start(s, end);
    const utf8::Decoded d = utf8::decode(s, start);
    const char32_t r = start + d.size == end ? d.rune : utf8::kReplacement;
    if (!trim(r)) break;
    end = start;
  }
  return end;
}

locale_t utf8_locale() {
  static const locale_t loc = [] {
    locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    return l;
  }();
  return loc;
}

template <class Map>
std::string map_runes(std::string_view s, Map map) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const utf8::Decoded d = utf8::decode(s, i);
    if (d.rune == utf8::kReplacement && d.size == 1) {
      utf8::append(out, utf8::kReplacement);
    } else {
      utf8::append(out, map(d.rune));
    }
    i += d.size;
  }
  return out;
}

}  // namespace

std::optional<std::string> replace(std::string_view s,
                                   const std::vector<std::pair<std::string, std::string>>& pairs,
                                   size_t max_bytes) {
  std::string out;
  size_t last = 0;
  bool previous_match_empty = false;
  for (size_t i = 0; i <= s.size();) {
    const std::string_view rest = s.substr(i);
    const std::pair<std::string, std::string>* hit = nullptr;
    for (const auto& p : pairs) {
      if (p.first.empty() && previous_match_empty) continue;
      if (rest.substr(0, p.first.size()) == p.first) {
        hit = &p;
        break;
      }
    }
    previous_match_empty = hit && hit->first.empty();
    if (hit) {
      out.append(s.substr(last, i - last));
      out.append(hit->second);
      if (out.size() > max_bytes) return std::nullopt;
      i += hit->first.size();
      last = i;
      continue;
    }
    ++i;
  }
  if (last < s.size()) out.append(s.substr(last));
  return out;
}

bool is_space(char32_t r) {
  switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return r >= 0x2000 && r <= 0x200A;
  }
}

std::string trim(std::string_view s, std::string_view cutset) {
  const auto set = cutset_runes(cutset);
  auto in_set = [&](char32_t r) { return std::binary_search(set.begin(), set.end(), r); };
  const size_t begin = left_end(s, in_set);
  return std::string(s.substr(begin, right_end(s, begin, in_set) - begin));
}

std::string trim_left(std::string_view s, std::string_view cutset) {
  const auto set = cutset_runes(cutset);
  return std::string(
      s.substr(left_end(s, [&](char32_t r) { return std::binary_search(set.begin(), set.end(), r); })));
}

std::string trim_right(std::string_view s, std::string_view cutset) {
  const auto set = cutset_runes(cutset);
  return std::string(s.substr(
      0, right_end(s, 0, [&](char32_t r) { return std::binary_search(set.begin(), set.end(), r); })));
}

std::string trim_space(std::string_view s) {
  const size_t begin = left_end(s, is_space);
  return std::string(s.substr(begin, right_end(s, begin, is_space) - begin));
}

std::string to_lower(std::string_view s) {
  // ASCII text (header values, schemes) lowers bytewise, as unicode.ToLower maps those runes.
  if (std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
    std::string out(s);
    for (char& c : out)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
  }
  return map_runes(
      s, [](char32_t r) { return static_cast<char32_t>(towlower_l(static_cast<wint_t>(r), utf8_locale())); });
}

std::string to_upper(std::string_view s) {
  return map_runes(
      s, [](char32_t r) { return static_cast<char32_t>(towupper_l(static_cast<wint_t>(r), utf8_locale())); });
}

std::vector<std::string> split(std::string_view s, std::string_view sep) {
  std::vector<std::string> out;
  if (sep.empty()) {
    for (size_t i = 0; i < s.size();) {
      const utf8::Decoded d = utf8::decode(s, i);
      out.emplace_back(s.substr(i, d.size));
      i += d.size;
    }
    return out;
  }
  size_t start = 0;
  for (;;) {
    const size_t at = s.find(sep, start);
    if (at == std::string_view::npos) break;
    out.emplace_back(s.substr(start, at - start));
    start = at + sep.size();
  }
  out.emplace_back(s.substr(start));
  return out;
}

std::string quote(std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const utf8::Decoded d = utf8::decode(s, i);
    const char32_t r = d.rune;
    if (d.size == 1 && r == utf8::kReplacement) {
      const auto b = static_cast<unsigned char>(s[i]);
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 15];
      i += 1;
      continue;
    }
    i += d.size;
    switch (r) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\a':
        out += "\\a";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\v':
        out += "\\v";
        continue;
      default:
        break;
    }
    const bool printable = r >= 0x20 && r != 0x7F && !(r >= 0x80 && r < 0xA0) &&
                           (r < 0x80 || iswprint_l(static_cast<wint_t>(r), utf8_locale()));
    if (printable) {
      utf8::append(out, r);
    } else if (r < 0x80) {
      out += "\\x";
      out += kHex[r >> 4];
      out += kHex[r & 15];
    } else {
      const int digits = r < 0x10000 ? 4 : 8;
      out += digits == 4 ? "\\u" : "\\U";
      for (int k = digits - 1; k >= 0; --k) out += kHex[(r >> (4 * k)) & 15];
    }
  }
  out += '"';
  return out;
}

}  // namespace mg::rego::go
