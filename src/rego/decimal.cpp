// rego/decimal.cpp — see decimal.h.
#include "rego/decimal.h"

#include "rego/bigint.h"

namespace mg::rego {
namespace {

void strip_leading_zeros(std::string& d) {
  const size_t nz = d.find_first_not_of('0');
  d = nz == std::string::npos ? "0" : d.substr(nz);
}

// Adds one to a digit string (used when rounding up).
std::string increment(std::string d) {
  for (size_t i = d.size(); i-- > 0;) {
    if (d[i] == '9') {
      d[i] = '0';
    } else {
      ++d[i];
      return d;
    }
  }
  return "1" + d;
}

}  // namespace

std::optional<Decimal> Decimal::parse(std::string_view s) {
  Decimal out;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) out.negative = s[i++] == '-';
  std::string digits;
  int64_t frac = 0;
  bool seen_dot = false, any_digit = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      digits += c;
      any_digit = true;
      if (seen_dot) ++frac;
    } else if (c == '.' && !seen_dot) {
      seen_dot = true;
    } else {
      break;
    }
  }
  if (!any_digit) return std::nullopt;
  int64_t exp = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool neg = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i >= s.size()) return std::nullopt;
    for (; i < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      if (exp < 1'000'000'000) exp = exp * 10 + (s[i] - '0');
    }
    if (neg) exp = -exp;
  }
  if (i != s.size()) return std::nullopt;
  strip_leading_zeros(digits);
  out.digits = digits;
  out.exponent = exp - frac;
  if (out.digits == "0") out.negative = false;
  return out;
}

Decimal Decimal::from_uint(uint64_t v) {
  Decimal d;
  d.digits = std::to_string(v);
  return d;
}

Decimal Decimal::operator*(const Decimal& o) const {
  const auto a = BigInt::parse(digits);
  const auto b = BigInt::parse(o.digits);
  Decimal out;
  out.digits = a && b ? a->mul(*b).to_string() : "0";
  out.exponent = exponent + o.exponent;
  out.negative = (negative != o.negative) && out.digits != "0";
  return out;
}

bool Decimal::is_integer() const {
  if (exponent >= 0 || digits == "0") return true;
  const auto frac = static_cast<size_t>(-exponent);
  if (frac >= digits.size()) return false;  // non-zero digits all behind the point
  return digits.find_first_not_of('0', digits.size() - frac) == std::string::npos;
}

std::string Decimal::truncated_text() const {
  std::string whole;
  if (exponent >= 0) {
    whole = digits == "0" ? "0" : digits + std::string(static_cast<size_t>(exponent), '0');
  } else {
    const auto frac = static_cast<size_t>(-exponent);
    whole = frac >= digits.size() ? "0" : digits.substr(0, digits.size() - frac);
  }
  return (negative && whole != "0" ? "-" : "") + whole;
}

std::string Decimal::fixed_text(int places) const {
  // Scale to an integer count of 10^-places units, rounding half away from zero.
  std::string units;
  const int64_t shift = exponent + places;
  if (shift >= 0) {
    units = digits == "0" ? "0" : digits + std::string(static_cast<size_t>(shift), '0');
  } else {
    const auto drop = static_cast<size_t>(-shift);
    if (drop > digits.size()) {
      units = "0";
    } else {
      units = digits.substr(0, digits.size() - drop);
      if (units.empty()) units = "0";
      if (digits[digits.size() - drop] >= '5') units = increment(units);
      strip_leading_zeros(units);
    }
  }
  if (static_cast<int>(units.size()) <= places)
    units.insert(0, static_cast<size_t>(places) + 1 - units.size(), '0');
  std::string out = units.substr(0, units.size() - static_cast<size_t>(places));
  if (places > 0) out += "." + units.substr(units.size() - static_cast<size_t>(places));
  const bool zero = out.find_first_not_of("0.") == std::string::npos;
  return (negative && !zero ? "-" : "") + out;
}

}  // namespace mg::rego
