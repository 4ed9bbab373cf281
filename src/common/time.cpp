#include "common/time.h"

#include <cstdio>

namespace mg::timefmt {

bool utc_seconds(std::time_t t, char* out) {
  std::tm tm{};
  if (!gmtime_r(&t, &tm)) return false;
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (n != 19) return false;
  for (int i = 0; i < 19; ++i) out[i] = buf[i];
  return true;
}

std::string utc_rfc3339(std::time_t t) {
  char out[19];
  if (!utc_seconds(t, out)) return "invalid";
  return std::string(out, 19) + "Z";
}

}  // namespace mg::timefmt
