// rego/go_fmt.h — Go's fmt.Sprintf as OPA's sprintf uses it. OPA hands fmt an int (integers that
// fit 64 bits), a *big.Int (larger integers), a float64 (other numbers) or a string (strings, and
// every other value in its Rego text form), so those four argument kinds are all that is modelled.
// Verbs, flags, width, precision and the %!verb(type=value) / %!d(MISSING) / %!(EXTRA ...) markers
// follow Go.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mg::rego::go {

struct FmtArg {
  enum Kind { Int, BigInt, Float, String } kind = String;
  int64_t i = 0;
  double f = 0;
  std::string s;  // String: the text; BigInt: decimal digits with optional leading '-'

  static FmtArg integer(int64_t v) { return {Int, v, 0, {}}; }
  static FmtArg big_integer(std::string digits) { return {BigInt, 0, 0, std::move(digits)}; }
  static FmtArg floating(double v) { return {Float, 0, v, {}}; }
  static FmtArg string(std::string v) { return {String, 0, 0, std::move(v)}; }
};

// nullopt when the result would exceed max_bytes.
std::optional<std::string> sprintf(std::string_view format, const std::vector<FmtArg>& args,
                                   size_t max_bytes = SIZE_MAX);

// strconv.FormatFloat(v, fmt, prec, 64) for fmt in e/E/f/g/G (prec -1: shortest).
std::string format_float(double v, char fmt, int prec);

}  // namespace mg::rego::go
