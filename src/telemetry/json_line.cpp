// telemetry/json_line.cpp — the access log's JSON writer: escaping and number formatting.
#include "telemetry/json_line.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

namespace mg::telemetry {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at s[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when it is not one.
size_t utf8_sequence(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() - i < need) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < need; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return need;
}

// Printable ASCII other than '"' and '\\': copied as is, the common case for every value.
constexpr std::array<bool, 256> kPlainAscii = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[static_cast<size_t>(c)] = c != '"' && c != '\\';
  return t;
}();

// Length of the prefix of `s` that is plain ASCII (kPlainAscii), eight bytes at a time: a word
// is plain when no byte has its high bit set, is below 0x20, or equals '"' or '\\'.
size_t plain_prefix(std::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    const uint64_t special = (w & kHigh) | ((w - kOnes * 0x20) & ~w & kHigh) | has_zero(w ^ (kOnes * '"')) |
                             has_zero(w ^ (kOnes * '\\'));
    if (special != 0) break;
  }
  while (i < s.size() && kPlainAscii[static_cast<unsigned char>(s[i])]) ++i;
  return i;
}

constexpr size_t kLineRoom = 1024;           // a usual line fits; a longer one grows the string
constexpr size_t kKeepRoom = 16 * kLineRoom;  // more than this is given back at the next line

// Room a key takes: `,"` + key + `":`.
constexpr size_t key_room(std::string_view k) { return k.size() + 4; }

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t run = 0;  // start of the pending run of bytes copied verbatim
  size_t i = plain_prefix(s);
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (kPlainAscii[c]) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      size_t len = utf8_sequence(s, i);
      if (len != 0) {
        i += len;
        continue;
      }
    }
    out.append(s.data() + run, i - run);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          out.append(esc, sizeof esc);
        } else {
          out += kReplacement;  // a byte of an invalid UTF-8 sequence
        }
    }
    run = ++i;
  }
  out.append(s.data() + run, s.size() - run);
}

JsonLine::JsonLine(std::string& out) : out_(out) {
  if (out_.capacity() > kKeepRoom) out_ = std::string();
  out_.clear();
  out_.resize(std::max(out_.capacity(), kLineRoom));
  out_[0] = '{';
  len_ = 1;
}

char* JsonLine::room(size_t n) {
  if (out_.size() - len_ < n) out_.resize(std::max(out_.size() * 2, len_ + n));
  return out_.data() + len_;
}

char* JsonLine::key(char* p, std::string_view k) {
  if (comma_) *p++ = ',';
  *p++ = '"';
  std::memcpy(p, k.data(), k.size());
  p += k.size();
  *p++ = '"';
  *p++ = ':';
  comma_ = true;
  return p;
}

JsonLine& JsonLine::literal(std::string_view k, std::string_view value) {
  char* p = key(room(key_room(k) + value.size()), k);
  std::memcpy(p, value.data(), value.size());
  written_to(p + value.size());
  return *this;
}

JsonLine& JsonLine::str(std::string_view k, std::string_view value) {
  const size_t plain = plain_prefix(value);
  char* p = key(room(key_room(k) + plain + 2), k);
  *p++ = '"';
  if (plain != 0) std::memcpy(p, value.data(), plain);
  p += plain;
  if (plain < value.size()) {
    // Something to escape: the rest goes through the string (rare: a path or header with
    // quotes, control bytes or non-ASCII).
    written_to(p);
    out_.resize(len_);
    append_json_escaped(out_, value.substr(plain));
    len_ = out_.size();
    p = room(1);
  }
  *p++ = '"';
  written_to(p);
  return *this;
}

JsonLine& JsonLine::str_or_null(std::string_view k, const std::optional<std::string>& value) {
  return value ? str(k, *value) : null(k);
}

JsonLine& JsonLine::num(std::string_view k, int64_t value) {
  char* p = key(room(key_room(k) + 24), k);
  written_to(std::to_chars(p, p + 24, value).ptr);
  return *this;
}

JsonLine& JsonLine::num(std::string_view k, uint64_t value) {
  char* p = key(room(key_room(k) + 24), k);
  written_to(std::to_chars(p, p + 24, value).ptr);
  return *this;
}

JsonLine& JsonLine::num(std::string_view k, double value) {
  if (!std::isfinite(value)) return null(k);
  char* p = key(room(key_room(k) + 32), k);
  written_to(std::to_chars(p, p + 32, value).ptr);  // shortest form that reads back the same
  return *this;
}

JsonLine& JsonLine::millis(std::string_view k, double ms) {
  if (!std::isfinite(ms) || std::fabs(ms) > 9e12) return num(k, ms);  // null / general form
  char* p = key(room(key_room(k) + 32), k);
  int64_t micros = std::llround(ms * 1000.0);
  if (micros < 0) {
    *p++ = '-';
    micros = -micros;
  }
  p = std::to_chars(p, p + 24, micros / 1000).ptr;
  const int frac = static_cast<int>(micros % 1000);
  *p++ = '.';
  *p++ = static_cast<char>('0' + frac / 100);
  *p++ = static_cast<char>('0' + frac / 10 % 10);
  *p++ = static_cast<char>('0' + frac % 10);
  written_to(p);
  return *this;
}

JsonLine& JsonLine::num_or_null(std::string_view k, const std::optional<int>& value) {
  return value ? num(k, *value) : null(k);
}

JsonLine& JsonLine::boolean(std::string_view k, bool value) { return literal(k, value ? "true" : "false"); }

JsonLine& JsonLine::boolean_or_null(std::string_view k, const std::optional<bool>& value) {
  return value ? boolean(k, *value) : null(k);
}

JsonLine& JsonLine::null(std::string_view k) { return literal(k, "null"); }

JsonLine& JsonLine::open(std::string_view k) {
  literal(k, "{");
  comma_ = false;
  return *this;
}

JsonLine& JsonLine::close() {
  *room(1) = '}';
  ++len_;
  comma_ = true;
  return *this;
}

std::string& JsonLine::finish() {
  *room(1) = '}';
  out_.resize(len_ + 1);
  return out_;
}

}  // namespace mg::telemetry
