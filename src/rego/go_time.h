// rego/go_time.h — the parts of Go's time package OPA's time.* built-ins expose: layouts
// ("2006-01-02T15:04:05Z07:00") for parsing and formatting, ParseDuration, the proleptic Gregorian
// calendar with Date()'s normalisation, and IANA zones read from the system's TZif files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mg::rego::go {

// A time zone: UTC, a fixed offset, or an IANA zone's transitions.
class Zone {
 public:
  static std::shared_ptr<const Zone> utc();
  // "UTC"/"" → UTC; "Local" → the TZ environment / /etc/localtime zone (UTC when unknown);
  // otherwise /usr/share/zoneinfo/<name>. Cached per thread. Error text as Go's LoadLocation.
  static Result<std::shared_ptr<const Zone>> load(std::string_view name);

  struct Offset {
    int seconds = 0;
    std::string abbrev = "UTC";
  };
  Offset at(int64_t unix_seconds) const;  // offset in effect at that instant
  const std::string& name() const { return name_; }

  // Internal representation, filled by the TZif reader.
  struct Type {
    int offset;
    std::string abbrev;
  };
  std::string name_ = "UTC";
  std::vector<int64_t> transitions;  // unix seconds, ascending
  std::vector<uint8_t> transition_type;
  std::vector<Type> types;  // empty: UTC
};

struct Civil {
  int64_t year = 1970;
  int month = 1, day = 1, hour = 0, minute = 0, second = 0;
  int nanosecond = 0;
  int weekday = 4;  // 0 = Sunday
  int yearday = 1;  // 1..366
  int offset = 0;   // seconds east of UTC
  std::string abbrev = "UTC";
};

// An instant: seconds and nanoseconds since the Unix epoch (nanoseconds in [0, 1e9)).
struct Instant {
  int64_t sec = 0;
  int32_t nsec = 0;
};

int64_t days_from_civil(int64_t y, int m, int d);
Civil to_civil(Instant t, const Zone& zone);
// Go's time.Date: normalises month, day, hour, ... overflow; the wall clock is read in `zone`.
Instant from_civil(int64_t year, int64_t month, int64_t day, int64_t hour, int64_t minute, int64_t second,
                   int64_t nsec, const Zone& zone);

// time.Parse(layout, value) (UTC unless the value carries an offset). Errors are Go's ParseError text.
Result<Instant> parse_time(std::string_view layout, std::string_view value);
std::string format_time(Instant t, const Zone& zone, std::string_view layout);

// An ASCII digit at s[i] (false past the end): layouts and durations scan digits alike.
inline bool digit(std::string_view s, size_t i) { return i < s.size() && s[i] >= '0' && s[i] <= '9'; }

// time.ParseDuration, in nanoseconds (go_duration.cpp).
Result<int64_t> parse_duration(std::string_view s);

// Named layouts OPA accepts in place of a layout string ("RFC3339", "ANSIC", ...); the input
// itself when it is not one of them.
std::string_view named_layout(std::string_view name);

}  // namespace mg::rego::go
