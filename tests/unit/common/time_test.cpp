// common/time.h: the one UTC formatter behind access-log times, /config_dump, meshguardctl.
#include <gtest/gtest.h>

#include "common/time.h"

namespace mg::timefmt {
namespace {

TEST(UtcRfc3339, FormatsToTheSecond) {
  EXPECT_EQ(utc_rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(utc_rfc3339(1796033097), "2026-11-30T10:04:57Z");
  EXPECT_EQ(utc_rfc3339(951782400), "2000-02-29T00:00:00Z");  // a leap day
}

TEST(UtcRfc3339, YearsPast9999AreInvalidNotTruncated) {
  EXPECT_EQ(utc_rfc3339(253402300799), "9999-12-31T23:59:59Z");
  EXPECT_EQ(utc_rfc3339(253402300800), "invalid");
  char out[19];
  EXPECT_FALSE(utc_seconds(253402300800, out));
}

}  // namespace
}  // namespace mg::timefmt
