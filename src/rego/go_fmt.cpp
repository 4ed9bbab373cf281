// rego/go_fmt.cpp — see go_fmt.h.
#include "rego/go_fmt.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "rego/go_strings.h"
#include "rego/utf8.h"

namespace mg::rego::go {
namespace {

// Integers longer than this are not converted to binary/octal/hex (the long division is quadratic).
constexpr size_t kMaxBaseConversionDigits = 4096;

struct Spec {
  bool plus = false, minus = false, sharp = false, space = false, zero = false;
  int width = -1;
  int prec = -1;
};

// Decimal digits (no leading/trailing zeros except "0") and decimal-point position, as strconv's
// decimal: value = 0.d1d2d3... × 10^dp.
struct Digits {
  std::string d;
  int dp = 0;
};

Digits to_digits(double v, int significant) {  // significant < 0: shortest round-trip
  char buf[64];
  const double a = std::fabs(v);
  auto r = significant < 0 ? std::to_chars(buf, buf + sizeof buf, a, std::chars_format::scientific)
                           : std::to_chars(buf, buf + sizeof buf, a, std::chars_format::scientific,
                                           significant > 0 ? significant - 1 : 0);
  const std::string_view text(buf, static_cast<size_t>(r.ptr - buf));
  const size_t e = text.find('e');
  Digits out;
  for (char c : text.substr(0, e))
    if (c != '.') out.d += c;
  out.dp = std::atoi(std::string(text.substr(e + 1)).c_str()) + 1;
  while (out.d.size() > 1 && out.d.back() == '0') out.d.pop_back();
  if (out.d == "0") out.dp = 1;
  return out;
}

std::string fmt_e(bool neg, const Digits& dg, int prec, char e) {
  std::string out = neg ? "-" : "";
  out += dg.d[0];
  if (prec > 0) {
    out += '.';
    for (int i = 1; i <= prec; ++i) out += i < static_cast<int>(dg.d.size()) ? dg.d[i] : '0';
  }
  int exp = dg.d == "0" ? 0 : dg.dp - 1;
  out += e;
  out += exp < 0 ? '-' : '+';
  exp = std::abs(exp);
  if (exp < 10) out += '0';
  out += std::to_string(exp);
  return out;
}

std::string fmt_f(bool neg, const Digits& dg, int prec) {
  std::string out = neg ? "-" : "";
  auto digit = [&](int i) { return i >= 0 && i < static_cast<int>(dg.d.size()) ? dg.d[i] : '0'; };
  if (dg.dp > 0) {
    for (int i = 0; i < dg.dp; ++i) out += digit(i);
  } else {
    out += '0';
  }
  if (prec > 0) {
    out += '.';
    for (int i = 0; i < prec; ++i) out += digit(dg.dp + i);
  }
  return out;
}

std::string with_sign_and_width(std::string body, const Spec& sp, bool numeric) {
  // body may start with '-'; apply + / space, then pad.
  std::string sign;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    sign = body.substr(0, 1);
    body.erase(0, 1);
  } else if (numeric && sp.plus) {
    sign = "+";
  } else if (numeric && sp.space) {
    sign = " ";
  }
  const int len = static_cast<int>(utf8::rune_count(body) + sign.size());
  if (sp.width <= len) return sign + body;
  const std::string pad(static_cast<size_t>(sp.width - len), sp.zero && !sp.minus ? '0' : ' ');
  if (sp.minus) return sign + body + std::string(pad.size(), ' ');
  if (sp.zero) return sign + pad + body;
  return pad + sign + body;
}

std::string value_text(const FmtArg& a) {
  switch (a.kind) {
    case FmtArg::Int:
      return std::to_string(a.i);
    case FmtArg::BigInt:
      return a.s;
    case FmtArg::Float:
      return format_float(a.f, 'g', -1);
    case FmtArg::String:
      return a.s;
  }
  return {};
}

std::string bad_verb(char32_t verb, const FmtArg& a) {
  std::string out = "%!";
  utf8::append(out, verb);
  out += '(';
  switch (a.kind) {
    case FmtArg::Int:
      out += "int=";
      break;
    case FmtArg::BigInt:
      out += "big.Int=";
      break;
    case FmtArg::Float:
      out += "float64=";
      break;
    case FmtArg::String:
      out += "string=";
      break;
  }
  return out + value_text(a) + ")";
}

// Unsigned magnitude of an integer in `base`, from decimal digits (any size).
std::string convert_base(std::string decimal, int base, bool upper) {
  if (decimal == "0") return "0";
  if (decimal.size() > kMaxBaseConversionDigits) return "?";  // quadratic below: refuse absurd sizes
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  while (!(decimal.size() == 1 && decimal[0] == '0')) {
    int carry = 0;
    std::string q;
    for (char c : decimal) {
      const int cur = carry * 10 + (c - '0');
      const int d = cur / base;
      carry = cur % base;
      if (!q.empty() || d != 0) q += static_cast<char>('0' + d);
    }
    out += digits[carry];
    decimal = q.empty() ? "0" : q;
  }
  return std::string(out.rbegin(), out.rend());
}

std::string fmt_integer(bool neg, const std::string& magnitude, char32_t verb, const Spec& sp) {
  std::string digits;
  std::string prefix;
  switch (verb) {
    case 'd':
    case 'v':
    case 's':
      digits = magnitude;
      break;
    case 'b':
      digits = convert_base(magnitude, 2, false);
      if (sp.sharp) prefix = "0b";
      break;
    case 'o':
      digits = convert_base(magnitude, 8, false);
      if (sp.sharp) prefix = "0";
      break;
    case 'O':
      digits = convert_base(magnitude, 8, false);
      prefix = "0o";
      break;
    case 'x':
      digits = convert_base(magnitude, 16, false);
      if (sp.sharp) prefix = "0x";
      break;
    case 'X':
      digits = convert_base(magnitude, 16, true);
      if (sp.sharp) prefix = "0X";
      break;
    default:
      break;
  }
  if (sp.prec >= 0) {
    if (sp.prec == 0 && digits == "0") digits.clear();
    while (static_cast<int>(digits.size()) < sp.prec) digits.insert(digits.begin(), '0');
  }
  Spec s = sp;
  if (sp.prec >= 0) s.zero = false;
  std::string body = (neg ? "-" : "") + prefix + digits;
  if (s.zero && !s.minus && s.width > 0) {
    // Zero padding goes between sign/prefix and digits.
    std::string sign = neg ? "-" : (s.plus ? "+" : (s.space ? " " : ""));
    const int len = static_cast<int>(sign.size() + prefix.size() + digits.size());
    if (len < s.width) digits.insert(0, static_cast<size_t>(s.width - len), '0');
    return sign + prefix + digits;
  }
  return with_sign_and_width(body, s, true);
}

std::string fmt_float_verb(double v, char32_t verb, const Spec& sp) {
  char f = 'g';
  int prec = sp.prec;
  switch (verb) {
    case 'v':
      f = 'g';
      break;
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
      f = static_cast<char>(verb);
      break;
    default:
      return {};
  }
  if (f == 'F') f = 'f';
  if ((f == 'e' || f == 'E' || f == 'f') && prec < 0) prec = 6;
  std::string body = format_float(v, f, prec);
  if (sp.plus && body[0] != '-') body = "+" + body;
  return with_sign_and_width(body, sp, true);
}

std::string fmt_string(const std::string& s, char32_t verb, const Spec& sp) {
  std::string body;
  switch (verb) {
    case 's':
    case 'v':
      body = s;
      if (sp.prec >= 0) {
        size_t i = 0;
        for (int n = 0; n < sp.prec && i < s.size(); ++n) i += utf8::decode(s, i).size;
        body = s.substr(0, i);
      }
      break;
    case 'q':
      body = quote(s);
      break;
    case 'x':
    case 'X': {
      const char* digits = verb == 'x' ? "0123456789abcdef" : "0123456789ABCDEF";
      for (size_t i = 0; i < s.size(); ++i) {
        if (sp.space && i > 0) body += ' ';
        if (sp.sharp && (sp.space || i == 0)) body += verb == 'x' ? "0x" : "0X";
        const auto b = static_cast<unsigned char>(s[i]);
        body += digits[b >> 4];
        body += digits[b & 15];
      }
      break;
    }
    default:
      return {};
  }
  Spec plain = sp;
  plain.plus = plain.space = false;
  const int len = static_cast<int>(utf8::rune_count(body));
  if (sp.width <= len) return body;
  const std::string pad(static_cast<size_t>(sp.width - len), sp.zero && !sp.minus ? '0' : ' ');
  return sp.minus ? body + std::string(pad.size(), ' ') : pad + body;
}

std::string format_one(const FmtArg& a, char32_t verb, const Spec& sp) {
  switch (a.kind) {
    case FmtArg::Int: {
      const bool neg = a.i < 0;
      const uint64_t mag = neg ? 0 - static_cast<uint64_t>(a.i) : static_cast<uint64_t>(a.i);
      if (verb == 'c') {
        std::string out;
        utf8::append(out, static_cast<char32_t>(a.i));
        return with_sign_and_width(out, Spec{.width = sp.width}, false);
      }
      if (verb == 'q') {
        std::string out = "'";
        utf8::append(out, static_cast<char32_t>(a.i));
        return out + "'";
      }
      if (verb == 'U') {
        std::string hex = convert_base(std::to_string(mag), 16, true);
        while (hex.size() < 4) hex.insert(hex.begin(), '0');
        return "U+" + hex;
      }
      if (verb == 's' || !(verb == 'd' || verb == 'v' || verb == 'b' || verb == 'o' || verb == 'O' ||
                           verb == 'x' || verb == 'X'))
        return bad_verb(verb, a);
      return fmt_integer(neg, std::to_string(mag), verb, sp);
    }
    case FmtArg::BigInt: {
      if (!(verb == 'd' || verb == 'v' || verb == 's' || verb == 'b' || verb == 'o' || verb == 'O' ||
            verb == 'x' || verb == 'X'))
        return bad_verb(verb, a);
      const bool neg = !a.s.empty() && a.s[0] == '-';
      return fmt_integer(neg, neg ? a.s.substr(1) : a.s, verb, sp);
    }
    case FmtArg::Float: {
      std::string out = fmt_float_verb(a.f, verb, sp);
      return out.empty() ? bad_verb(verb, a) : out;
    }
    case FmtArg::String: {
      std::string out = fmt_string(a.s, verb, sp);
      if (out.empty() && !(verb == 's' || verb == 'v' || verb == 'q' || verb == 'x' || verb == 'X'))
        return bad_verb(verb, a);
      return out;
    }
  }
  return {};
}

}  // namespace

std::string format_float(double v, char fmt, int prec) {
  const bool neg = std::signbit(v) && v != 0;
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return neg ? "-Inf" : "+Inf";
  switch (fmt) {
    case 'e':
    case 'E': {
      const Digits dg = to_digits(v, prec < 0 ? -1 : prec + 1);
      return fmt_e(neg, dg, prec < 0 ? static_cast<int>(dg.d.size()) - 1 : prec, fmt);
    }
    case 'f': {
      if (prec < 0) {
        const Digits dg = to_digits(v, -1);
        return fmt_f(neg, dg, std::max(static_cast<int>(dg.d.size()) - dg.dp, 0));
      }
      std::string buf(static_cast<size_t>(prec) + 400, '\0');
      auto r =
          std::to_chars(buf.data(), buf.data() + buf.size(), std::fabs(v), std::chars_format::fixed, prec);
      if (r.ec != std::errc()) return "0";
      return (neg ? "-" : "") + std::string(buf.data(), r.ptr);
    }
    default: {  // g / G
      const bool shortest = prec < 0;
      int p = prec == 0 ? 1 : prec;
      const Digits dg = to_digits(v, shortest ? -1 : p);
      const int nd = static_cast<int>(dg.d.size());
      int eprec = shortest ? 6 : p;
      if (!shortest && eprec > nd && nd >= dg.dp) eprec = nd;
      if (shortest) p = nd;
      const int exp = dg.dp - 1;
      if (exp < -4 || exp >= eprec) {
        if (p > nd) p = nd;
        return fmt_e(neg, dg, p - 1, fmt == 'G' ? 'E' : 'e');
      }
      if (p > dg.dp) p = nd;
      return fmt_f(neg, dg, std::max(p - dg.dp, 0));
    }
  }
}

std::optional<std::string> sprintf(std::string_view format, const std::vector<FmtArg>& args,
                                   size_t max_bytes) {
  std::string out;
  size_t next_arg = 0;
  for (size_t i = 0; i < format.size();) {
    const char c = format[i];
    if (c != '%') {
      out += c;
      ++i;
      continue;
    }
    ++i;
    Spec sp;
    for (; i < format.size(); ++i) {
      const char f = format[i];
      if (f == '+')
        sp.plus = true;
      else if (f == '-')
        sp.minus = true;
      else if (f == '#')
        sp.sharp = true;
      else if (f == ' ')
        sp.space = true;
      else if (f == '0')
        sp.zero = true;
      else
        break;
    }
    auto read_number = [&](int& into) {
      if (i < format.size() && format[i] == '*') {
        ++i;
        if (next_arg < args.size() && args[next_arg].kind == FmtArg::Int) {
          into = static_cast<int>(args[next_arg].i);
        }
        ++next_arg;
        return;
      }
      int n = -1;
      while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
        n = (n < 0 ? 0 : n) * 10 + (format[i] - '0');
        if (n > 1000000) n = 1000000;
        ++i;
      }
      into = n;
    };
    read_number(sp.width);
    if (i < format.size() && format[i] == '.') {
      ++i;
      read_number(sp.prec);
      if (sp.prec < 0) sp.prec = 0;
    }
    if (i >= format.size()) {
      out += "%!(NOVERB)";
      break;
    }
    const utf8::Decoded d = utf8::decode(format, i);
    i += d.size;
    const char32_t verb = d.rune;
    if (verb == '%') {
      out += '%';
      continue;
    }
    if (next_arg >= args.size()) {
      out += "%!";
      utf8::append(out, verb);
      out += "(MISSING)";
      continue;
    }
    out += format_one(args[next_arg++], verb, sp);
    if (out.size() > max_bytes) return std::nullopt;
  }
  if (next_arg < args.size()) {
    out += "%!(EXTRA ";
    for (size_t k = next_arg; k < args.size(); ++k) {
      if (k > next_arg) out += ", ";
      const FmtArg& a = args[k];
      out += a.kind == FmtArg::Int      ? "int="
             : a.kind == FmtArg::BigInt ? "*big.Int="
             : a.kind == FmtArg::Float  ? "float64="
                                        : "string=";
      out += value_text(a);
    }
    out += ')';
  }
  return out;
}

}  // namespace mg::rego::go
