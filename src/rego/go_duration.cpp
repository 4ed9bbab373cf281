// rego/go_duration.cpp — Go's time.ParseDuration ("1h30m", "-1.5µs"): a sum of decimal numbers
// with units, exact in int64 nanoseconds, overflow an error (see go_time.h).
#include "rego/go_strings.h"
#include "rego/go_time.h"

namespace mg::rego::go {

Result<int64_t> parse_duration(std::string_view orig) {
  auto invalid = [&] { return fail("time.duration", "time: invalid duration " + quote(orig)); };
  std::string_view s = orig;
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return int64_t{0};
  if (s.empty()) return invalid();
  constexpr uint64_t kMax = uint64_t{1} << 63;
  uint64_t total = 0;
  while (!s.empty()) {
    if (!(s[0] == '.' || digit(s, 0))) return invalid();
    uint64_t v = 0;
    size_t i = 0;
    for (; digit(s, i); ++i) {
      if (v > kMax / 10) return invalid();
      v = v * 10 + static_cast<uint64_t>(s[i] - '0');
      if (v > kMax) return invalid();
    }
    const bool pre = i > 0;
    s.remove_prefix(i);
    uint64_t frac = 0;
    double scale = 1;
    bool post = false;
    if (!s.empty() && s[0] == '.') {
      s.remove_prefix(1);
      size_t j = 0;
      bool overflow = false;
      for (; digit(s, j); ++j) {
        if (overflow) continue;
        if (frac > (kMax - 1) / 10) {
          overflow = true;
          continue;
        }
        frac = frac * 10 + static_cast<uint64_t>(s[j] - '0');
        scale *= 10;
      }
      post = j > 0;
      s.remove_prefix(j);
    }
    if (!pre && !post) return invalid();
    size_t u = 0;
    while (u < s.size() && !(s[u] == '.' || digit(s, u))) ++u;
    if (u == 0) return fail("time.duration", "time: missing unit in duration " + quote(orig));
    const std::string_view unit_name = s.substr(0, u);
    s.remove_prefix(u);
    uint64_t unit;
    if (unit_name == "ns")
      unit = 1;
    else if (unit_name == "us" || unit_name == "\xC2\xB5s" || unit_name == "\xCE\xBCs")
      unit = 1000;
    else if (unit_name == "ms")
      unit = 1000000;
    else if (unit_name == "s")
      unit = 1000000000;
    else if (unit_name == "m")
      unit = 60000000000ull;
    else if (unit_name == "h")
      unit = 3600000000000ull;
    else
      return fail("time.duration", "time: unknown unit " + quote(unit_name) + " in duration " + quote(orig));
    if (v > kMax / unit) return invalid();
    v *= unit;
    if (frac > 0) {
      v += static_cast<uint64_t>(static_cast<double>(frac) * (static_cast<double>(unit) / scale));
      if (v > kMax) return invalid();
    }
    total += v;
    if (total > kMax) return invalid();
  }
  if (neg) return static_cast<int64_t>(0 - total);
  if (total > kMax - 1) return invalid();
  return static_cast<int64_t>(total);
}

}  // namespace mg::rego::go
