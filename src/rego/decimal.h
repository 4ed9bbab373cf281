// rego/decimal.h — exact decimal numbers (digits × 10^exponent) for built-ins whose OPA results come
// from Go's big.Rat / big.Int arithmetic on decimal text (units.parse, units.parse_bytes), so large
// and fractional amounts print exactly as OPA prints them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mg::rego {

struct Decimal {
  bool negative = false;
  std::string digits = "0";  // no leading zeros ("0" for zero)
  int64_t exponent = 0;      // value = digits × 10^exponent

  // Go's big.Float/big.Rat decimal syntax: [+-] digits [. digits] [(e|E) [+-] digits], at least one
  // mantissa digit. nullopt when malformed.
  static std::optional<Decimal> parse(std::string_view text);
  static Decimal from_uint(uint64_t v);

  Decimal operator*(const Decimal& other) const;
  bool is_integer() const;
  // Integer part, truncated toward zero, as decimal text ("-12").
  std::string truncated_text() const;
  // big.Rat.FloatString(places): rounded half away from zero to `places` decimals.
  std::string fixed_text(int places) const;
  // Decimal digits the text forms above would need (to bound memory before building them).
  int64_t text_size() const {
    return static_cast<int64_t>(digits.size()) + (exponent > 0 ? exponent : -exponent);
  }
};

}  // namespace mg::rego
