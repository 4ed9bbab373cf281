// rego/go_time.cpp — see go_time.h. Layout handling mirrors Go's nextStdChunk / parse / format;
// zone files are TZif (RFC 8536) version 1 or 2+ (the 64-bit section is used when present).
#include "rego/go_time.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <unordered_map>

#include "rego/go_strings.h"

namespace mg::rego::go {
namespace {

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
int64_t floor_mod(int64_t a, int64_t b) { return a - floor_div(a, b) * b; }

void civil_from_days(int64_t z, int64_t& y, int& m, int& d) {
  z += 719468;
  const int64_t era = floor_div(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = yoe + era * 400 + (m <= 2);
}

bool is_leap(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }
int days_in(int m, int64_t y) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

const char* const kLongMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                   "July",    "August",   "September", "October", "November", "December"};
const char* const kLongDays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                 "Thursday", "Friday", "Saturday"};

// ---- TZif

uint32_t be32(const std::string& b, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(b[at])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 3]));
}

std::shared_ptr<const Zone> parse_tzif(const std::string& name, const std::string& b) {
  if (b.size() < 44 || b.compare(0, 4, "TZif") != 0) return nullptr;
  size_t at = 0;
  auto counts = [&](size_t h, uint32_t c[6]) {
    for (int i = 0; i < 6; ++i) c[i] = be32(b, h + 20 + 4 * static_cast<size_t>(i));
  };
  uint32_t c[6];  // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
  counts(0, c);
  size_t time_size = 4;
  if (b[4] >= '2') {  // skip the 32-bit block to the 64-bit one
    const size_t v1 = 44 + c[3] * 4 + c[3] + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    if (b.size() < v1 + 44) return nullptr;
    at = v1;
    counts(at, c);
    time_size = 8;
  }
  at += 44;
  const size_t need = c[3] * time_size + c[3] + c[4] * 6 + c[5];
  if (b.size() < at + need || c[4] == 0) return nullptr;
  auto zone = std::make_shared<Zone>();
  zone->name_ = name;
  for (uint32_t i = 0; i < c[3]; ++i) {
    int64_t t;
    if (time_size == 8) {
      t = static_cast<int64_t>((static_cast<uint64_t>(be32(b, at)) << 32) | be32(b, at + 4));
    } else {
      t = static_cast<int32_t>(be32(b, at));
    }
    zone->transitions.push_back(t);
    at += time_size;
  }
  for (uint32_t i = 0; i < c[3]; ++i) zone->transition_type.push_back(static_cast<uint8_t>(b[at++]));
  std::vector<std::pair<int, size_t>> raw;
  for (uint32_t i = 0; i < c[4]; ++i) {
    raw.emplace_back(static_cast<int32_t>(be32(b, at)), static_cast<unsigned char>(b[at + 5]));
    at += 6;
  }
  const std::string chars = b.substr(at, c[5]);
  for (auto [off, idx] : raw) {
    const std::string abbrev = idx < chars.size() ? std::string(chars.c_str() + idx) : "";
    zone->types.push_back({off, abbrev});
  }
  for (uint8_t t : zone->transition_type)
    if (t >= zone->types.size()) return nullptr;
  return zone;
}

// ---- layouts

enum Std {
  None,
  LongMonth,
  Month,
  NumMonth,
  ZeroMonth,
  LongWeekDay,
  WeekDay,
  Day,
  UnderDay,
  ZeroDay,
  UnderYearDay,
  ZeroYearDay,
  Hour,
  Hour12,
  ZeroHour12,
  Minute,
  ZeroMinute,
  Second,
  ZeroSecond,
  LongYear,
  Year,
  PM,
  pm,
  TZ,
  ISO8601TZ,
  ISO8601SecondsTZ,
  ISO8601ShortTZ,
  ISO8601ColonTZ,
  ISO8601ColonSecondsTZ,
  NumTZ,
  NumSecondsTz,
  NumShortTZ,
  NumColonTZ,
  NumColonSecondsTZ,
  FracSecond0,
  FracSecond9
};

struct Chunk {
  size_t prefix_end = 0;  // layout[pos, prefix_end) is literal
  Std std = None;
  size_t std_len = 0;  // layout[prefix_end, prefix_end + std_len) is the element
  int frac_digits = 0;
  char frac_sep = '.';
};

bool starts(std::string_view s, size_t i, std::string_view p) { return s.substr(i, p.size()) == p; }

Chunk next_chunk(std::string_view l, size_t pos) {
  for (size_t i = pos; i < l.size(); ++i) {
    auto hit = [&](Std s, size_t n) { return Chunk{i, s, n, 0, '.'}; };
    switch (l[i]) {
      case 'J':
        if (starts(l, i, "Jan")) return starts(l, i, "January") ? hit(LongMonth, 7) : hit(Month, 3);
        break;
      case 'M':
        if (starts(l, i, "Mon")) return starts(l, i, "Monday") ? hit(LongWeekDay, 6) : hit(WeekDay, 3);
        if (starts(l, i, "MST")) return hit(TZ, 3);
        break;
      case '0':
        if (i + 1 < l.size() && l[i + 1] >= '1' && l[i + 1] <= '6') {
          static const Std kZero[] = {ZeroMonth, ZeroDay, ZeroHour12, ZeroMinute, ZeroSecond, Year};
          return hit(kZero[l[i + 1] - '1'], 2);
        }
        if (starts(l, i, "002")) return hit(ZeroYearDay, 3);
        break;
      case '1':
        if (starts(l, i, "15")) return hit(Hour, 2);
        return hit(NumMonth, 1);
      case '2':
        if (starts(l, i, "2006")) return hit(LongYear, 4);
        return hit(Day, 1);
      case '_':
        if (starts(l, i, "_2")) {
          if (starts(l, i, "_2006")) return Chunk{i + 1, LongYear, 4, 0, '.'};
          return hit(UnderDay, 2);
        }
        if (starts(l, i, "__2")) return hit(UnderYearDay, 3);
        break;
      case '3':
        return hit(Hour12, 1);
      case '4':
        return hit(Minute, 1);
      case '5':
        return hit(Second, 1);
      case 'P':
        if (starts(l, i, "PM")) return hit(PM, 2);
        break;
      case 'p':
        if (starts(l, i, "pm")) return hit(pm, 2);
        break;
      case '-':
        if (starts(l, i, "-070000")) return hit(NumSecondsTz, 7);
        if (starts(l, i, "-07:00:00")) return hit(NumColonSecondsTZ, 9);
        if (starts(l, i, "-0700")) return hit(NumTZ, 5);
        if (starts(l, i, "-07:00")) return hit(NumColonTZ, 6);
        if (starts(l, i, "-07")) return hit(NumShortTZ, 3);
        break;
      case 'Z':
        if (starts(l, i, "Z070000")) return hit(ISO8601SecondsTZ, 7);
        if (starts(l, i, "Z07:00:00")) return hit(ISO8601ColonSecondsTZ, 9);
        if (starts(l, i, "Z0700")) return hit(ISO8601TZ, 5);
        if (starts(l, i, "Z07:00")) return hit(ISO8601ColonTZ, 6);
        if (starts(l, i, "Z07")) return hit(ISO8601ShortTZ, 3);
        break;
      case '.':
      case ',':
        if (i + 1 < l.size() && (l[i + 1] == '0' || l[i + 1] == '9')) {
          const char ch = l[i + 1];
          size_t j = i + 1;
          while (j < l.size() && l[j] == ch) ++j;
          if (!(j < l.size() && l[j] >= '0' && l[j] <= '9')) {
            Chunk c = hit(ch == '0' ? FracSecond0 : FracSecond9, j - i);
            c.frac_digits = static_cast<int>(j - i - 1);
            c.frac_sep = l[i];
            return c;
          }
        }
        break;
      default:
        break;
    }
  }
  return Chunk{l.size(), None, 0, 0, '.'};
}

bool getnum(std::string_view& s, bool fixed, int& out) {
  if (!digit(s, 0)) return false;
  if (!digit(s, 1)) {
    if (fixed) return false;
    out = s[0] - '0';
    s.remove_prefix(1);
    return true;
  }
  out = (s[0] - '0') * 10 + (s[1] - '0');
  s.remove_prefix(2);
  return true;
}

// Case-insensitive prefix match against names; returns index or -1.
int lookup(std::string_view& s, const char* const* names, size_t n, size_t len) {
  for (size_t i = 0; i < n; ++i) {
    std::string_view name(names[i]);
    if (len) name = name.substr(0, len);
    if (s.size() >= name.size() && to_lower(s.substr(0, name.size())) == to_lower(name)) {
      s.remove_prefix(name.size());
      return static_cast<int>(i);
    }
  }
  return -1;
}

bool parse_nanos(std::string_view v, size_t nbytes, int& ns) {
  if (v.empty() || (v[0] != '.' && v[0] != ',')) return false;
  if (nbytes > 10) nbytes = 10;
  ns = 0;
  for (size_t i = 1; i < nbytes; ++i) {
    if (!digit(v, i)) return false;
    ns = ns * 10 + (v[i] - '0');
  }
  for (size_t i = nbytes; i < 10; ++i) ns *= 10;
  return true;
}

std::string pad(int64_t v, int width, char fill = '0') {
  std::string s = std::to_string(v < 0 ? -v : v);
  if (static_cast<int>(s.size()) < width) s.insert(0, static_cast<size_t>(width) - s.size(), fill);
  return (v < 0 ? "-" : "") + s;
}

}  // namespace

// ---- zones

std::shared_ptr<const Zone> Zone::utc() {
  static const auto z = std::make_shared<const Zone>();
  return z;
}

Zone::Offset Zone::at(int64_t unix_seconds) const {
  if (types.empty()) return {0, name_ == "UTC" ? "UTC" : name_};
  size_t type = 0;
  auto it = std::upper_bound(transitions.begin(), transitions.end(), unix_seconds);
  if (it == transitions.begin()) {
    type = 0;  // before the first transition: the zone's first (standard) type
  } else {
    type = transition_type[static_cast<size_t>(it - transitions.begin() - 1)];
  }
  return {types[type].offset, types[type].abbrev};
}

Result<std::shared_ptr<const Zone>> Zone::load(std::string_view name) {
  if (name.empty() || name == "UTC") return utc();
  thread_local std::unordered_map<std::string, std::shared_ptr<const Zone>> cache;
  const std::string key(name);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  if (key.find("..") != std::string::npos || key[0] == '/' || key[0] == '\\')
    return fail("time.zone", "time: invalid location name");
  const std::string path = key == "Local" ? "/etc/localtime" : "/usr/share/zoneinfo/" + key;
  std::ifstream in(path, std::ios::binary);
  std::string bytes;
  if (in) {
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (bytes.size() > (1 << 20)) bytes.clear();
  }
  std::shared_ptr<const Zone> zone = parse_tzif(key, bytes);
  if (!zone) {
    if (key == "Local") return utc();
    return fail("time.zone", "unknown time zone " + key);
  }
  if (cache.size() > 64) cache.clear();
  cache.emplace(key, zone);
  return zone;
}

// ---- calendar

int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = floor_div(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

Civil to_civil(Instant t, const Zone& zone) {
  const Zone::Offset off = zone.at(t.sec);
  const int64_t local = t.sec + off.seconds;
  const int64_t days = floor_div(local, 86400);
  const int64_t secs = local - days * 86400;
  Civil c;
  civil_from_days(days, c.year, c.month, c.day);
  c.hour = static_cast<int>(secs / 3600);
  c.minute = static_cast<int>(secs / 60 % 60);
  c.second = static_cast<int>(secs % 60);
  c.nanosecond = t.nsec;
  c.weekday = static_cast<int>(floor_mod(days + 4, 7));
  c.yearday = static_cast<int>(days - days_from_civil(c.year, 1, 1) + 1);
  c.offset = off.seconds;
  c.abbrev = off.abbrev;
  return c;
}

Instant from_civil(int64_t year, int64_t month, int64_t day, int64_t hour, int64_t minute, int64_t second,
                   int64_t nsec, const Zone& zone) {
  int64_t m = month - 1;
  year += floor_div(m, 12);
  m = floor_mod(m, 12) + 1;
  second += floor_div(nsec, 1000000000);
  nsec = floor_mod(nsec, 1000000000);
  const int64_t days = days_from_civil(year, static_cast<int>(m), 1) + day - 1;
  int64_t unix = days * 86400 + hour * 3600 + minute * 60 + second;
  const int off = zone.at(unix).seconds;
  if (off != 0) {
    const int corrected = zone.at(unix - off).seconds;
    unix -= corrected;
  }
  return {unix, static_cast<int32_t>(nsec)};
}

// ---- parse / format

Result<Instant> parse_time(std::string_view layout, std::string_view value) {
  const std::string_view full_layout = layout, full_value = value;
  auto cannot = [&](std::string_view v, std::string_view elem) {
    return fail("time.parse", "parsing time " + quote(full_value) + " as " + quote(full_layout) +
                                  ": cannot parse " + quote(v) + " as " + quote(elem));
  };
  auto range = [&](const std::string& what) {
    return fail("time.parse", "parsing time " + quote(full_value) + ": " + what + " out of range");
  };
  int64_t year = 0;
  int month = -1, day = -1, hour = 0, minute = 0, sec = 0, nsec = 0;
  bool pm_set = false, am_set = false, utc_zone = false;
  int zone_offset = 0;
  bool has_offset = false;
  size_t pos = 0;
  for (;;) {
    const Chunk ch = next_chunk(layout, pos);
    // Literal prefix: a run of spaces in the layout matches any run of spaces in the value.
    std::string_view prefix = layout.substr(pos, ch.prefix_end - pos);
    while (!prefix.empty()) {
      if (prefix[0] == ' ') {
        if (!value.empty() && value[0] != ' ') return cannot(value, prefix);
        while (!prefix.empty() && prefix[0] == ' ') prefix.remove_prefix(1);
        while (!value.empty() && value[0] == ' ') value.remove_prefix(1);
        continue;
      }
      if (value.empty() || value[0] != prefix[0])
        return cannot(value, layout.substr(pos, ch.prefix_end - pos));
      prefix.remove_prefix(1);
      value.remove_prefix(1);
    }
    if (ch.std == None) {
      if (!value.empty())
        return fail("time.parse", "parsing time " + quote(full_value) + ": extra text: " + quote(value));
      break;
    }
    const std::string_view elem = layout.substr(ch.prefix_end, ch.std_len);
    pos = ch.prefix_end + ch.std_len;
    const std::string_view hold = value;
    bool ok = true;
    std::string range_err;
    switch (ch.std) {
      case LongYear: {
        if (value.size() < 4 || !digit(value, 0)) {
          ok = false;
          break;
        }
        year = 0;
        for (int i = 0; i < 4; ++i) {
          if (!digit(value, static_cast<size_t>(i))) {
            ok = false;
            break;
          }
          year = year * 10 + (value[static_cast<size_t>(i)] - '0');
        }
        value.remove_prefix(4);
        break;
      }
      case Year: {
        int y = 0;
        if (value.size() < 2 || !getnum(value, true, y)) {
          ok = false;
          break;
        }
        year = y >= 69 ? 1900 + y : 2000 + y;
        break;
      }
      case LongMonth: {
        const int m = lookup(value, kLongMonths, 12, 0);
        if (m < 0)
          ok = false;
        else
          month = m + 1;
        break;
      }
      case Month: {
        const int m = lookup(value, kLongMonths, 12, 3);
        if (m < 0)
          ok = false;
        else
          month = m + 1;
        break;
      }
      case NumMonth:
      case ZeroMonth:
        ok = getnum(value, ch.std == ZeroMonth, month);
        if (ok && (month <= 0 || month > 12)) range_err = "month";
        break;
      case LongWeekDay:
        ok = lookup(value, kLongDays, 7, 0) >= 0;
        break;
      case WeekDay:
        ok = lookup(value, kLongDays, 7, 3) >= 0;
        break;
      case Day:
      case UnderDay:
      case ZeroDay:
        if (ch.std == UnderDay && !value.empty() && value[0] == ' ') value.remove_prefix(1);
        ok = getnum(value, ch.std == ZeroDay, day);
        break;
      case UnderYearDay:
      case ZeroYearDay:
        ok = false;  // day-of-year layouts are not supported
        break;
      case Hour:
        ok = getnum(value, false, hour);
        if (ok && (hour < 0 || hour >= 24)) range_err = "hour";
        break;
      case Hour12:
      case ZeroHour12:
        ok = getnum(value, ch.std == ZeroHour12, hour);
        if (ok && (hour < 0 || hour > 12)) range_err = "hour";
        break;
      case Minute:
      case ZeroMinute:
        ok = getnum(value, ch.std == ZeroMinute, minute);
        if (ok && (minute < 0 || minute >= 60)) range_err = "minute";
        break;
      case Second:
      case ZeroSecond: {
        ok = getnum(value, ch.std == ZeroSecond, sec);
        if (!ok) break;
        if (sec < 0 || sec >= 60) {
          range_err = "second";
          break;
        }
        // A fractional second in the value without one in the layout is accepted.
        if (value.size() >= 2 && (value[0] == '.' || value[0] == ',') && digit(value, 1)) {
          const Chunk next = next_chunk(layout, pos);
          if (next.std == FracSecond0 || next.std == FracSecond9) break;
          size_t n = 2;
          while (digit(value, n)) ++n;
          ok = parse_nanos(value, n, nsec);
          value.remove_prefix(n);
        }
        break;
      }
      case PM:
      case pm: {
        if (value.size() < 2) {
          ok = false;
          break;
        }
        const std::string_view p = value.substr(0, 2);
        if (p == (ch.std == PM ? "PM" : "pm"))
          pm_set = true;
        else if (p == (ch.std == PM ? "AM" : "am"))
          am_set = true;
        else
          ok = false;
        value.remove_prefix(2);
        break;
      }
      case ISO8601TZ:
      case ISO8601SecondsTZ:
      case ISO8601ShortTZ:
      case ISO8601ColonTZ:
      case ISO8601ColonSecondsTZ:
        if (!value.empty() && value[0] == 'Z') {
          value.remove_prefix(1);
          utc_zone = true;
          break;
        }
        [[fallthrough]];
      case NumTZ:
      case NumSecondsTz:
      case NumShortTZ:
      case NumColonTZ:
      case NumColonSecondsTZ: {
        std::string_view hh, mm = "00", ss = "00";
        const bool colon = ch.std == ISO8601ColonTZ || ch.std == NumColonTZ;
        const bool shrt = ch.std == NumShortTZ || ch.std == ISO8601ShortTZ;
        const bool colon_secs = ch.std == ISO8601ColonSecondsTZ || ch.std == NumColonSecondsTZ;
        const bool secs = ch.std == ISO8601SecondsTZ || ch.std == NumSecondsTz;
        size_t used;
        if (colon) {
          if (value.size() < 6 || value[3] != ':') {
            ok = false;
            break;
          }
          hh = value.substr(1, 2), mm = value.substr(4, 2), used = 6;
        } else if (shrt) {
          if (value.size() < 3) {
            ok = false;
            break;
          }
          hh = value.substr(1, 2), used = 3;
        } else if (colon_secs) {
          if (value.size() < 9 || value[3] != ':' || value[6] != ':') {
            ok = false;
            break;
          }
          hh = value.substr(1, 2), mm = value.substr(4, 2), ss = value.substr(7, 2), used = 9;
        } else if (secs) {
          if (value.size() < 7) {
            ok = false;
            break;
          }
          hh = value.substr(1, 2), mm = value.substr(3, 2), ss = value.substr(5, 2), used = 7;
        } else {
          if (value.size() < 5) {
            ok = false;
            break;
          }
          hh = value.substr(1, 2), mm = value.substr(3, 2), used = 5;
        }
        const char sign = value[0];
        int h = 0, mi = 0, s = 0;
        ok = getnum(hh, true, h) && getnum(mm, true, mi) && getnum(ss, true, s);
        if (h > 24) range_err = "time zone offset hour";
        if (mi > 60) range_err = "time zone offset minute";
        if (s > 60) range_err = "time zone offset second";
        zone_offset = (h * 60 + mi) * 60 + s;
        if (sign == '-')
          zone_offset = -zone_offset;
        else if (sign != '+')
          ok = false;
        has_offset = true;
        value.remove_prefix(used);
        break;
      }
      case TZ: {
        if (value.size() >= 3 && value.substr(0, 3) == "UTC") {
          utc_zone = true;
          value.remove_prefix(3);
          break;
        }
        size_t n = 0;
        while (n < value.size() && value[n] >= 'A' && value[n] <= 'Z') ++n;
        if (n < 3 || n > 5) {
          ok = false;
          break;
        }
        value.remove_prefix(n);  // an abbreviation Go cannot resolve: offset 0
        break;
      }
      case FracSecond0: {
        const size_t n = 1 + static_cast<size_t>(ch.frac_digits);
        if (value.size() < n) {
          ok = false;
          break;
        }
        ok = parse_nanos(value, n, nsec);
        value.remove_prefix(n);
        break;
      }
      case FracSecond9: {
        if (value.size() < 2 || (value[0] != '.' && value[0] != ',') || !digit(value, 1)) break;
        size_t i = 0;
        while (digit(value, i + 1)) ++i;
        ok = parse_nanos(value, 1 + i, nsec);
        value.remove_prefix(1 + i);
        break;
      }
      case None:
        break;
    }
    if (!range_err.empty()) return range(range_err);
    if (!ok) return cannot(hold, elem);
  }
  if (pm_set && hour < 12)
    hour += 12;
  else if (am_set && hour == 12)
    hour = 0;
  if (month < 0) month = 1;
  if (day < 0) day = 1;
  if (day < 1 || day > days_in(month, year))
    return fail("time.parse", "parsing time " + quote(full_value) + ": day out of range");
  Instant t = from_civil(year, month, day, hour, minute, sec, nsec, *Zone::utc());
  if (has_offset && !utc_zone) t.sec -= zone_offset;
  return t;
}

std::string format_time(Instant t, const Zone& zone, std::string_view layout) {
  const Civil c = to_civil(t, zone);
  std::string out;
  size_t pos = 0;
  for (;;) {
    const Chunk ch = next_chunk(layout, pos);
    out.append(layout.substr(pos, ch.prefix_end - pos));
    if (ch.std == None) break;
    pos = ch.prefix_end + ch.std_len;
    auto zone_text = [&](bool iso, bool colon, bool shrt, bool seconds) {
      if (iso && c.offset == 0) {
        out += 'Z';
        return;
      }
      int z = c.offset;
      out += z < 0 ? '-' : '+';
      if (z < 0) z = -z;
      out += pad(z / 3600, 2);
      if (!shrt) {
        if (colon) out += ':';
        out += pad(z / 60 % 60, 2);
      }
      if (seconds) {
        if (colon) out += ':';
        out += pad(z % 60, 2);
      }
    };
    switch (ch.std) {
      case LongYear:
        out += pad(c.year, 4);
        break;
      case Year:
        out += pad(floor_mod(c.year, 100), 2);
        break;
      case LongMonth:
        out += kLongMonths[c.month - 1];
        break;
      case Month:
        out += std::string(kLongMonths[c.month - 1]).substr(0, 3);
        break;
      case NumMonth:
        out += std::to_string(c.month);
        break;
      case ZeroMonth:
        out += pad(c.month, 2);
        break;
      case LongWeekDay:
        out += kLongDays[c.weekday];
        break;
      case WeekDay:
        out += std::string(kLongDays[c.weekday]).substr(0, 3);
        break;
      case Day:
        out += std::to_string(c.day);
        break;
      case UnderDay:
        out += pad(c.day, 2, ' ');
        break;
      case ZeroDay:
        out += pad(c.day, 2);
        break;
      case UnderYearDay:
        out += pad(c.yearday, 3, ' ');
        break;
      case ZeroYearDay:
        out += pad(c.yearday, 3);
        break;
      case Hour:
        out += pad(c.hour, 2);
        break;
      case Hour12:
        out += std::to_string(c.hour % 12 == 0 ? 12 : c.hour % 12);
        break;
      case ZeroHour12:
        out += pad(c.hour % 12 == 0 ? 12 : c.hour % 12, 2);
        break;
      case Minute:
        out += std::to_string(c.minute);
        break;
      case ZeroMinute:
        out += pad(c.minute, 2);
        break;
      case Second:
        out += std::to_string(c.second);
        break;
      case ZeroSecond:
        out += pad(c.second, 2);
        break;
      case PM:
        out += c.hour >= 12 ? "PM" : "AM";
        break;
      case pm:
        out += c.hour >= 12 ? "pm" : "am";
        break;
      case ISO8601TZ:
        zone_text(true, false, false, false);
        break;
      case ISO8601SecondsTZ:
        zone_text(true, false, false, true);
        break;
      case ISO8601ShortTZ:
        zone_text(true, false, true, false);
        break;
      case ISO8601ColonTZ:
        zone_text(true, true, false, false);
        break;
      case ISO8601ColonSecondsTZ:
        zone_text(true, true, false, true);
        break;
      case NumTZ:
        zone_text(false, false, false, false);
        break;
      case NumSecondsTz:
        zone_text(false, false, false, true);
        break;
      case NumShortTZ:
        zone_text(false, false, true, false);
        break;
      case NumColonTZ:
        zone_text(false, true, false, false);
        break;
      case NumColonSecondsTZ:
        zone_text(false, true, false, true);
        break;
      case TZ:
        if (!c.abbrev.empty()) {
          out += c.abbrev;
        } else {
          zone_text(false, false, false, false);
        }
        break;
      case FracSecond0:
      case FracSecond9: {
        std::string digits = pad(c.nanosecond, 9).substr(0, static_cast<size_t>(std::min(ch.frac_digits, 9)));
        if (ch.std == FracSecond9) {
          while (!digits.empty() && digits.back() == '0') digits.pop_back();
          if (digits.empty()) break;
        }
        out += ch.frac_sep;
        out += digits;
        break;
      }
      case None:
        break;
    }
  }
  return out;
}

std::string_view named_layout(std::string_view name) {
  static const std::pair<std::string_view, std::string_view> kNamed[] = {
      {"ANSIC", "Mon Jan _2 15:04:05 2006"},          {"UnixDate", "Mon Jan _2 15:04:05 MST 2006"},
      {"RubyDate", "Mon Jan 02 15:04:05 -0700 2006"}, {"RFC822", "02 Jan 06 15:04 MST"},
      {"RFC822Z", "02 Jan 06 15:04 -0700"},           {"RFC850", "Monday, 02-Jan-06 15:04:05 MST"},
      {"RFC1123", "Mon, 02 Jan 2006 15:04:05 MST"},   {"RFC1123Z", "Mon, 02 Jan 2006 15:04:05 -0700"},
      {"RFC3339", "2006-01-02T15:04:05Z07:00"},       {"RFC3339Nano", "2006-01-02T15:04:05.999999999Z07:00"},
  };
  for (const auto& [k, v] : kNamed)
    if (k == name) return v;
  return name;
}

}  // namespace mg::rego::go
