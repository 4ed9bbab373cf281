// rego/bigint.cpp — see bigint.h.
#include "rego/bigint.h"

#include <algorithm>

namespace mg::rego {

BigInt::BigInt(int64_t v) {
  negative_ = v < 0;
  // Magnitude as unsigned so INT64_MIN is representable.
  uint64_t m = negative_ ? ~static_cast<uint64_t>(v) + 1 : static_cast<uint64_t>(v);
  while (m) {
    limbs_.push_back(static_cast<uint32_t>(m % kBase));
    m /= kBase;
  }
}

std::optional<BigInt> BigInt::parse(std::string_view s) {
  BigInt r;
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  for (size_t end = s.size(); end > 0;) {
    size_t start = end >= 9 ? end - 9 : 0;
    uint32_t limb = 0;
    for (size_t i = start; i < end; ++i) limb = limb * 10 + static_cast<uint32_t>(s[i] - '0');
    r.limbs_.push_back(limb);
    end = start;
  }
  trim(r.limbs_);
  r.negative_ = neg && !r.limbs_.empty();
  return r;
}

std::optional<int64_t> BigInt::to_int64() const {
  if (limbs_.size() > 3) return std::nullopt;
  unsigned __int128 m = 0;
  for (size_t i = limbs_.size(); i-- > 0;) m = m * kBase + limbs_[i];
  if (!negative_ && m <= static_cast<unsigned __int128>(INT64_MAX)) return static_cast<int64_t>(m);
  if (negative_ && m <= static_cast<unsigned __int128>(INT64_MAX) + 1)
    return static_cast<int64_t>(-static_cast<__int128>(m));
  return std::nullopt;
}

std::string BigInt::to_string() const {
  if (limbs_.empty()) return "0";
  std::string out = negative_ ? "-" : "";
  out += std::to_string(limbs_.back());
  for (size_t i = limbs_.size() - 1; i-- > 0;) {
    std::string part = std::to_string(limbs_[i]);
    out.append(9 - part.size(), '0');
    out += part;
  }
  return out;
}

void BigInt::trim(Limbs& a) {
  while (!a.empty() && a.back() == 0) a.pop_back();
}

int BigInt::cmp_mag(const Limbs& a, const Limbs& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  for (size_t i = a.size(); i-- > 0;)
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

int BigInt::compare(const BigInt& o) const {
  if (negative_ != o.negative_) return negative_ ? -1 : 1;
  int c = cmp_mag(limbs_, o.limbs_);
  return negative_ ? -c : c;
}

BigInt::Limbs BigInt::add_mag(const Limbs& a, const Limbs& b) {
  Limbs r;
  uint32_t carry = 0;
  for (size_t i = 0; i < std::max(a.size(), b.size()) || carry; ++i) {
    uint64_t s = carry;
    if (i < a.size()) s += a[i];
    if (i < b.size()) s += b[i];
    r.push_back(static_cast<uint32_t>(s % kBase));
    carry = static_cast<uint32_t>(s / kBase);
  }
  trim(r);
  return r;
}

BigInt::Limbs BigInt::sub_mag(const Limbs& a, const Limbs& b) {
  Limbs r;
  int64_t borrow = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    int64_t d = static_cast<int64_t>(a[i]) - borrow - (i < b.size() ? b[i] : 0);
    borrow = d < 0;
    if (d < 0) d += kBase;
    r.push_back(static_cast<uint32_t>(d));
  }
  trim(r);
  return r;
}

BigInt::Limbs BigInt::mul_mag(const Limbs& a, const Limbs& b) {
  if (a.empty() || b.empty()) return {};
  std::vector<uint64_t> acc(a.size() + b.size() + 1, 0);
  for (size_t i = 0; i < a.size(); ++i) {
    uint64_t carry = 0;
    for (size_t j = 0; j < b.size() || carry; ++j) {
      uint64_t cur = acc[i + j] + carry + (j < b.size() ? static_cast<uint64_t>(a[i]) * b[j] : 0);
      acc[i + j] = cur % kBase;
      carry = cur / kBase;
    }
  }
  Limbs r(acc.begin(), acc.end());
  trim(r);
  return r;
}

BigInt BigInt::with(Limbs mag, bool negative) const {
  BigInt r;
  r.limbs_ = std::move(mag);
  r.negative_ = negative && !r.limbs_.empty();
  return r;
}

BigInt BigInt::add(const BigInt& o) const {
  if (negative_ == o.negative_) return with(add_mag(limbs_, o.limbs_), negative_);
  if (cmp_mag(limbs_, o.limbs_) >= 0) return with(sub_mag(limbs_, o.limbs_), negative_);
  return with(sub_mag(o.limbs_, limbs_), o.negative_);
}

BigInt BigInt::sub(const BigInt& o) const {
  BigInt neg = o;
  neg.negative_ = !o.negative_ && !o.limbs_.empty();
  return add(neg);
}

BigInt BigInt::mul(const BigInt& o) const {
  return with(mul_mag(limbs_, o.limbs_), negative_ != o.negative_);
}

std::pair<BigInt, BigInt> BigInt::divmod(const BigInt& o) const {
  Limbs quotient(limbs_.size(), 0);
  Limbs rem;
  for (size_t i = limbs_.size(); i-- > 0;) {
    rem.insert(rem.begin(), limbs_[i]);  // rem = rem * base + limb
    trim(rem);
    // Largest digit q with o*q <= rem, by binary search over [0, base).
    uint32_t lo = 0, hi = kBase - 1;
    while (lo < hi) {
      uint32_t mid = lo + (hi - lo + 1) / 2;
      if (cmp_mag(mul_mag(o.limbs_, Limbs{mid}), rem) <= 0)
        lo = mid;
      else
        hi = mid - 1;
    }
    quotient[i] = lo;
    if (lo) rem = sub_mag(rem, mul_mag(o.limbs_, Limbs{lo}));
  }
  trim(quotient);
  return {with(std::move(quotient), negative_ != o.negative_), with(std::move(rem), negative_)};
}

}  // namespace mg::rego
