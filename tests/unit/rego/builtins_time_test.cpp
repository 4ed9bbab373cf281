// time.*: Go layouts, ranges and calendar arithmetic as OPA exposes them.
#include <gtest/gtest.h>

#include "builtins_test_util.h"

namespace mg::rego::test {
namespace {

TEST(RegoTime, NowIsTheEvaluationTime) {
  BuiltinContext ctx;
  ctx.now_ns = 42;
  EXPECT_EQ(show(call("time.now_ns", {}, &ctx)), "42");
}

TEST(RegoTime, ParseRfc3339WithinInt64Nanoseconds) {
  EXPECT_EQ(eval("time.parse_rfc3339_ns", {R"j("1677-09-21T00:12:43.145224192-00:00")j"}),
            "-9223372036854775808");
  EXPECT_EQ(eval("time.parse_rfc3339_ns", {R"j("1970-01-01T00:00:00-00:00")j"}), "0");
  EXPECT_EQ(eval("time.parse_rfc3339_ns", {R"j("2017-06-02T19:00:00-07:00")j"}), "1496455200000000000");
  EXPECT_EQ(eval("time.parse_rfc3339_ns", {R"j("2262-04-11T23:47:16.854775807-00:00")j"}),
            "9223372036854775807");
  EXPECT_EQ(eval("time.parse_rfc3339_ns", {R"j("1677-09-21T00:12:43.145224191-00:00")j"}),
            "error(builtin): time outside of valid range");
  EXPECT_EQ(eval("time.parse_rfc3339_ns", {R"j("2262-04-11T23:47:16.854775808-00:00")j"}),
            "error(builtin): time outside of valid range");
  EXPECT_EQ(eval("time.parse_rfc3339_ns", {R"j("2017-13-02T19:00:00Z")j"}),
            R"j(error(builtin): parsing time "2017-13-02T19:00:00Z": month out of range)j");
  EXPECT_EQ(
      eval("time.parse_rfc3339_ns", {R"j("2017-06-02 19:00:00Z")j"}),
      R"j(error(builtin): parsing time "2017-06-02 19:00:00Z" as "2006-01-02T15:04:05Z07:00": cannot parse " 19:00:00Z" as "T")j");
}

TEST(RegoTime, ParseWithLayouts) {
  EXPECT_EQ(eval("time.parse_ns", {R"j("2006-01-02")j", R"j("2020-02-02")j"}), "1580601600000000000");
  EXPECT_EQ(eval("time.parse_ns", {R"j("RFC822")j", R"j("02 Jan 21 15:04 UTC")j"}), "1609599840000000000");
  EXPECT_EQ(eval("time.parse_ns", {R"j("Jan 2 2006 3:04PM")j", R"j("Feb 3 2021 1:05PM")j"}),
            "1612357500000000000");
  EXPECT_EQ(eval("time.parse_ns", {R"j("2006-01-02")j", R"j("2021-02-30")j"}),
            R"j(error(builtin): parsing time "2021-02-30": day out of range)j");
  EXPECT_EQ(eval("time.parse_ns", {R"j("2006-01-02")j", R"j("2021-02-03x")j"}),
            R"j(error(builtin): parsing time "2021-02-03x": extra text: "x")j");
}

TEST(RegoTime, Durations) {
  EXPECT_EQ(eval("time.parse_duration_ns", {R"j("1h30m")j"}), "5400000000000");
  EXPECT_EQ(eval("time.parse_duration_ns", {R"j("-1.5s")j"}), "-1500000000");
  EXPECT_EQ(eval("time.parse_duration_ns", {R"j("1")j"}),
            R"j(error(builtin): time: missing unit in duration "1")j");
  EXPECT_EQ(eval("time.parse_duration_ns", {R"j("1x")j"}),
            R"j(error(builtin): time: unknown unit "x" in duration "1x")j");
  EXPECT_EQ(eval("time.parse_duration_ns", {R"j("9999999999h")j"}),
            R"j(error(builtin): time: invalid duration "9999999999h")j");
}

TEST(RegoTime, CalendarParts) {
  EXPECT_EQ(eval("time.date", {"1517814000000000000"}), "[2018,2,5]");
  EXPECT_EQ(eval("time.date", {"1582977600000000000000"}), "error(builtin): timestamp too big");
  EXPECT_EQ(eval("time.weekday", {"1518177600000000000"}), R"j("Friday")j");
  EXPECT_EQ(eval("time.clock", {"1517814000000000000"}), "[7,0,0]");
  EXPECT_EQ(eval("time.clock", {R"j([1517814000000000000, "Asia/Shanghai"])j"}), "[15,0,0]");
  EXPECT_EQ(eval("time.date", {R"j([1517814000000000000, "America/New_York"])j"}), "[2018,2,5]");
  EXPECT_EQ(eval("time.clock", {R"j([1517814000000000000, "America/New_York"])j"}), "[2,0,0]");
  EXPECT_EQ(eval("time.date", {R"j([0, "No/Such_Zone"])j"}),
            "error(builtin): unknown time zone No/Such_Zone");
  EXPECT_EQ(eval("time.format", {"1517814000123000000"}), R"j("2018-02-05T07:00:00.123Z")j");
  EXPECT_EQ(
      eval("time.format", {R"j([1517814000000000000, "Asia/Shanghai", "Mon Jan _2 15:04:05 MST 2006"])j"}),
      R"j("Mon Feb  5 15:00:00 CST 2018")j");
}

TEST(RegoTime, AddDateAndDiff) {
  EXPECT_EQ(eval("time.add_date", {"1585852421593912000", "3", "9", "12"}), "1705257221593912000");
  EXPECT_EQ(eval("time.add_date", {"0", "2262", "1", "1"}), "error(builtin): time outside of valid range");
  auto ns = [](const char* day) {
    return call("time.parse_ns", {Value::string("2006-01-02"), Value::string(day)}).value();
  };
  EXPECT_EQ(show(call("time.diff", {ns("2020-02-02"), ns("2020-03-01")})), "[0,0,28,0,0,0]");
  EXPECT_EQ(show(call("time.diff", {ns("2021-02-02"), ns("2021-03-01")})), "[0,0,27,0,0,0]");
  EXPECT_EQ(show(call("time.diff", {ns("2004-02-29"), ns("2005-03-01")})), "[1,0,1,0,0,0]");
  EXPECT_EQ(eval("time.diff", {"61000000000", "0"}), "[0,0,0,0,1,1]");
  EXPECT_EQ(eval("time.diff", {R"j([60000000000, "UTC"])j", R"j([0, "Asia/Shanghai"])j"}), "[0,0,0,0,1,0]");
}

}  // namespace
}  // namespace mg::rego::test
