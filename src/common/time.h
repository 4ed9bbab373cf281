// common/time.h — UTC timestamps as people and logs read them (RFC 3339), written one way.
#pragma once

#include <ctime>
#include <string>

namespace mg::timefmt {

// "YYYY-MM-DDTHH:MM:SS" for `t` (UTC) into out[0..19); false past the year 9999.
bool utc_seconds(std::time_t t, char* out);

// RFC 3339 UTC to the second, e.g. "2026-11-30T10:15:00Z".
std::string utc_rfc3339(std::time_t t);

}  // namespace mg::timefmt
