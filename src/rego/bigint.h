// rego/bigint.h — arbitrary-precision signed integers for Rego numbers beyond int64 (OPA computes
// integer arithmetic exactly). Small and simple: base-1e9 limbs, schoolbook algorithms; the hot
// path never gets here (int64 arithmetic that does not overflow stays inline in Value).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mg::rego {

class BigInt {
 public:
  BigInt() = default;
  explicit BigInt(int64_t v);
  static std::optional<BigInt> parse(std::string_view decimal);  // [-]digits

  bool is_zero() const { return limbs_.empty(); }
  bool negative() const { return negative_; }
  std::optional<int64_t> to_int64() const;
  std::string to_string() const;
  int compare(const BigInt& o) const;

  BigInt add(const BigInt& o) const;
  BigInt sub(const BigInt& o) const;
  BigInt mul(const BigInt& o) const;
  // Truncated division (quotient toward zero, remainder with the dividend's sign), as Go's
  // big.Int QuoRem. Precondition: o is not zero.
  std::pair<BigInt, BigInt> divmod(const BigInt& o) const;

 private:
  static constexpr uint32_t kBase = 1000000000u;
  using Limbs = std::vector<uint32_t>;  // little-endian, no leading zero limbs
  static int cmp_mag(const Limbs& a, const Limbs& b);
  static Limbs add_mag(const Limbs& a, const Limbs& b);
  static Limbs sub_mag(const Limbs& a, const Limbs& b);  // |a| >= |b|
  static Limbs mul_mag(const Limbs& a, const Limbs& b);
  static void trim(Limbs& a);
  BigInt with(Limbs mag, bool negative) const;

  Limbs limbs_;
  bool negative_ = false;
};

}  // namespace mg::rego
