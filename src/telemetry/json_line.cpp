// telemetry/json_line.cpp — the access log's JSON writer: escaping and number formatting.
#include "telemetry/json_line.h"

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

// `v` in decimal (for a double, the shortest form that reads back the same).
template <class Number>
void append_number(std::string& out, Number v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Printable ASCII other than '"' and '\\': copied as is, the common case for every value.
constexpr std::array<bool, 256> kPlainAscii = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[static_cast<size_t>(c)] = c != '"' && c != '\\';
  return t;
}();

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t run = 0;  // start of the pending run of bytes copied verbatim
  size_t i = 0;
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
  out_.clear();
  out_ += '{';
}

JsonLine& JsonLine::key(std::string_view k) {
  // One append per key (keys are short literals): `,"key":`.
  char buf[64];
  if (k.size() > sizeof buf - 4) {
    if (comma_) out_ += ',';
    out_ += '"';
    out_ += k;
    out_ += "\":";
  } else {
    size_t n = 0;
    if (comma_) buf[n++] = ',';
    buf[n++] = '"';
    std::memcpy(buf + n, k.data(), k.size());
    n += k.size();
    buf[n++] = '"';
    buf[n++] = ':';
    out_.append(buf, n);
  }
  comma_ = true;
  return *this;
}

JsonLine& JsonLine::str(std::string_view k, std::string_view value) {
  key(k);
  out_ += '"';
  append_json_escaped(out_, value);
  out_ += '"';
  return *this;
}

JsonLine& JsonLine::str_or_null(std::string_view k, const std::optional<std::string>& value) {
  return value ? str(k, *value) : null(k);
}

JsonLine& JsonLine::num(std::string_view k, int64_t value) {
  key(k);
  append_number(out_, value);
  return *this;
}

JsonLine& JsonLine::num(std::string_view k, uint64_t value) {
  key(k);
  append_number(out_, value);
  return *this;
}

JsonLine& JsonLine::num(std::string_view k, double value) {
  if (!std::isfinite(value)) return null(k);
  key(k);
  append_number(out_, value);  // shortest form that reads back the same
  return *this;
}

JsonLine& JsonLine::millis(std::string_view k, double ms) {
  if (!std::isfinite(ms) || std::fabs(ms) > 9e12) return num(k, ms);  // null / general form
  key(k);
  int64_t micros = std::llround(ms * 1000.0);
  if (micros < 0) {
    out_ += '-';
    micros = -micros;
  }
  append_number(out_, micros / 1000);
  int frac = static_cast<int>(micros % 1000);
  const char digits[4] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                          static_cast<char>('0' + frac % 10)};
  out_.append(digits, sizeof digits);
  return *this;
}

JsonLine& JsonLine::num_or_null(std::string_view k, const std::optional<int>& value) {
  return value ? num(k, *value) : null(k);
}

JsonLine& JsonLine::boolean(std::string_view k, bool value) {
  key(k);
  out_ += value ? "true" : "false";
  return *this;
}

JsonLine& JsonLine::boolean_or_null(std::string_view k, const std::optional<bool>& value) {
  return value ? boolean(k, *value) : null(k);
}

JsonLine& JsonLine::null(std::string_view k) {
  key(k);
  out_ += "null";
  return *this;
}

JsonLine& JsonLine::open(std::string_view k) {
  key(k);
  out_ += '{';
  comma_ = false;
  return *this;
}

JsonLine& JsonLine::close() {
  out_ += '}';
  comma_ = true;
  return *this;
}

std::string& JsonLine::finish() {
  out_ += '}';
  return out_;
}

}  // namespace mg::telemetry
