// rego/builtins_time.cpp — time.* built-ins. time.now_ns is the evaluation's fixed time (one
// evaluation sees one time); parsing and formatting follow Go's layouts (go_time.h); results are
// nanoseconds since the epoch and must fit int64, as in OPA ("time outside of valid range").
#include <algorithm>

#include "rego/builtins_util.h"
#include "rego/go_time.h"

namespace mg::rego {
namespace {

using bi::Args;
using bi::want;

BuiltinResult to_ns(go::Instant t) {
  const __int128 ns = static_cast<__int128>(t.sec) * 1000000000 + t.nsec;
  if (ns < INT64_MIN || ns > INT64_MAX) return BuiltinError::builtin("time outside of valid range");
  return Value::number(static_cast<int64_t>(ns));
}

go::Instant from_ns(int64_t ns) {
  int64_t sec = ns / 1000000000;
  int64_t nsec = ns % 1000000000;
  if (nsec < 0) {
    nsec += 1000000000;
    --sec;
  }
  return {sec, static_cast<int32_t>(nsec)};
}

struct ZonedTime {
  go::Instant t;
  std::shared_ptr<const go::Zone> zone;
  std::string layout;
};

// OPA's tzTime: a number of ns, or [ns], [ns, tz], [ns, tz, layout].
std::optional<BuiltinError> zoned_operand(const Value& a, int pos, ZonedTime& out) {
  const std::string either = "either number (ns) or [number (ns), string (tz)]";
  const Value* n = &a;
  out.zone = go::Zone::utc();
  if (a.is_array()) {
    const Array& xs = a.as_array();
    if (xs.empty()) return BuiltinError::operand(pos, either, a);
    n = &xs[0];
    if (!n->is_number()) return BuiltinError::operand(1, "number", *n);
    if (xs.size() > 1) {
      if (!xs[1].is_string()) return BuiltinError::operand(1, "string", xs[1]);
      auto zone = go::Zone::load(xs[1].as_string());
      if (!zone) return BuiltinError::builtin(zone.error().message);
      out.zone = *zone;
    }
    if (xs.size() > 2) {
      if (!xs[2].is_string()) return BuiltinError::operand(1, "string", xs[2]);
      out.layout = xs[2].as_string();
    }
  } else if (!a.is_number()) {
    return BuiltinError::operand(pos, either, a);
  }
  const auto i = n->as_int64();
  if (!n->is_integer() || !i) return BuiltinError::builtin("timestamp too big");
  out.t = from_ns(*i);
  return std::nullopt;
}

BuiltinResult now_ns(Args, BuiltinContext& ctx) { return Value::number(ctx.now_ns); }

BuiltinResult parse_ns(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  if (auto e = want(a, 2, Kind::String)) return *e;
  auto t = go::parse_time(go::named_layout(a[0].as_string()), a[1].as_string());
  if (!t) return BuiltinError::builtin(t.error().message);
  return to_ns(*t);
}

BuiltinResult parse_rfc3339_ns(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  auto t = go::parse_time(go::named_layout("RFC3339"), a[0].as_string());
  if (!t) return BuiltinError::builtin(t.error().message);
  return to_ns(*t);
}

BuiltinResult parse_duration_ns(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  auto d = go::parse_duration(a[0].as_string());
  if (!d) return BuiltinError::builtin(d.error().message);
  return Value::number(*d);
}

BuiltinResult format(Args a, BuiltinContext&) {
  ZonedTime z;
  if (auto e = zoned_operand(a[0], 1, z)) return *e;
  const std::string_view layout =
      z.layout.empty() ? go::named_layout("RFC3339Nano") : go::named_layout(z.layout);
  return Value::string(go::format_time(z.t, *z.zone, layout));
}

BuiltinResult date(Args a, BuiltinContext&) {
  ZonedTime z;
  if (auto e = zoned_operand(a[0], 1, z)) return *e;
  const go::Civil c = go::to_civil(z.t, *z.zone);
  return Value::array({Value::number(c.year), Value::number(c.month), Value::number(c.day)});
}

BuiltinResult clock(Args a, BuiltinContext&) {
  ZonedTime z;
  if (auto e = zoned_operand(a[0], 1, z)) return *e;
  const go::Civil c = go::to_civil(z.t, *z.zone);
  return Value::array({Value::number(c.hour), Value::number(c.minute), Value::number(c.second)});
}

BuiltinResult weekday(Args a, BuiltinContext&) {
  static const char* const kDays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                      "Thursday", "Friday", "Saturday"};
  ZonedTime z;
  if (auto e = zoned_operand(a[0], 1, z)) return *e;
  return Value::string(kDays[go::to_civil(z.t, *z.zone).weekday]);
}

BuiltinResult add_date(Args a, BuiltinContext&) {
  ZonedTime z;
  if (auto e = zoned_operand(a[0], 1, z)) return *e;
  int64_t years = 0, months = 0, days = 0;
  if (auto e = bi::int_operand(a, 2, years)) return *e;
  if (auto e = bi::int_operand(a, 3, months)) return *e;
  if (auto e = bi::int_operand(a, 4, days)) return *e;
  constexpr int64_t kLimit = 1'000'000'000;  // far beyond int64 nanoseconds; keeps the math in range
  if (std::abs(years) > kLimit || std::abs(months) > kLimit || std::abs(days) > kLimit * 400)
    return BuiltinError::builtin("time outside of valid range");
  const go::Civil c = go::to_civil(z.t, *z.zone);
  return to_ns(go::from_civil(c.year + years, c.month + months, c.day + days, c.hour, c.minute, c.second,
                              c.nanosecond, *z.zone));
}

BuiltinResult diff(Args a, BuiltinContext&) {
  ZonedTime z1, z2;
  if (auto e = zoned_operand(a[0], 1, z1)) return *e;
  if (auto e = zoned_operand(a[1], 2, z2)) return *e;
  go::Instant t1 = z1.t, t2 = z2.t;
  if (t1.sec > t2.sec || (t1.sec == t2.sec && t1.nsec > t2.nsec)) std::swap(t1, t2);
  // Both read in the first operand's zone (Go: t2.In(t1.Location())).
  const go::Civil c1 = go::to_civil(t1, *z1.zone);
  const go::Civil c2 = go::to_civil(t2, *z1.zone);
  int64_t year = c2.year - c1.year;
  int64_t month = c2.month - c1.month;
  int64_t day = c2.day - c1.day;
  int64_t hour = c2.hour - c1.hour;
  int64_t min = c2.minute - c1.minute;
  int64_t sec = c2.second - c1.second;
  if (sec < 0) sec += 60, --min;
  if (min < 0) min += 60, --hour;
  if (hour < 0) hour += 24, --day;
  if (day < 0) {
    // Days in c1's month: day 32 of it normalises into the next month.
    const go::Civil overflow =
        go::to_civil(go::from_civil(c1.year, c1.month, 32, 0, 0, 0, 0, *go::Zone::utc()), *go::Zone::utc());
    day += 32 - overflow.day;
    --month;
  }
  if (month < 0) month += 12, --year;
  return Value::array({Value::number(year), Value::number(month), Value::number(day), Value::number(hour),
                       Value::number(min), Value::number(sec)});
}

}  // namespace

void register_time(Registry& r) {
  const uint8_t S = kStringType, N = kNumberType, T = kNumberType | kArrayType;
  r.add({"time.now_ns", 0, now_ns, false, false, true, {}});
  r.add({"time.parse_ns", 2, parse_ns, false, false, false, {S, S}});
  r.add({"time.parse_rfc3339_ns", 1, parse_rfc3339_ns, false, false, false, {S}});
  r.add({"time.parse_duration_ns", 1, parse_duration_ns, false, false, false, {S}});
  r.add({"time.format", 1, format, false, false, false, {T}});
  r.add({"time.date", 1, date, false, false, false, {T}});
  r.add({"time.clock", 1, clock, false, false, false, {T}});
  r.add({"time.weekday", 1, weekday, false, false, false, {T}});
  r.add({"time.add_date", 4, add_date, false, false, false, {T, N, N, N}});
  r.add({"time.diff", 2, diff, false, false, false, {T, T}});
}

}  // namespace mg::rego
