// type_name, is_*, to_number and units.*.
#include <gtest/gtest.h>

#include "builtins_test_util.h"

namespace mg::rego::test {
namespace {

TEST(RegoTypes, TypeNamesAndPredicates) {
  EXPECT_EQ(eval("type_name", {"true"}), R"j("boolean")j");
  EXPECT_EQ(show(call("type_name", {Value::empty_set()})), R"j("set")j");
  EXPECT_EQ(eval("is_string", {"false"}), "false");
  EXPECT_EQ(eval("is_number", {"1.5"}), "true");
  EXPECT_EQ(eval("is_null", {"null"}), "true");
}

TEST(RegoTypes, ToNumber) {
  EXPECT_EQ(eval("to_number", {R"j("3")j"}), "3");
  EXPECT_EQ(eval("to_number", {R"j("-2.50")j"}), "-2.50");
  EXPECT_EQ(eval("to_number", {"true"}), "1");
  EXPECT_EQ(eval("to_number", {"null"}), "0");
  EXPECT_EQ(eval("to_number", {R"j("broken")j"}),
            R"j(error(builtin): strconv.ParseFloat: parsing "broken": invalid syntax)j");
  EXPECT_EQ(eval("to_number", {R"j("-Infinity")j"}),
            "error(type): operand 1 must be valid number string but got string");
  EXPECT_EQ(eval("to_number", {R"j("NaN")j"}),
            "error(type): operand 1 must be valid number string but got string");
  EXPECT_EQ(eval("to_number", {"[]"}),
            "error(type): operand 1 must be one of {null, boolean, number, string} but got array");
}

TEST(RegoTypes, ParseBytes) {
  EXPECT_EQ(eval("units.parse_bytes", {R"j("\"100TIB\"")j"}), "109951162777600");
  EXPECT_EQ(eval("units.parse_bytes", {R"j("1.1KiB")j"}), "1126");
  EXPECT_EQ(eval("units.parse_bytes", {R"j("10eib")j"}), "11529215046068469760");
  EXPECT_EQ(eval("units.parse_bytes", {R"j("1e-2KB")j"}), "10");
  EXPECT_EQ(eval("units.parse_bytes", {R"j(".5KB")j"}), "500");
  EXPECT_EQ(eval("units.parse_bytes", {R"j("GB")j"}),
            "error(builtin): units.parse_bytes: no byte amount provided");
  EXPECT_EQ(eval("units.parse_bytes", {R"j("0.0.0")j"}),
            "error(builtin): units.parse_bytes: could not parse byte amount to a number");
  EXPECT_EQ(eval("units.parse_bytes", {R"j(" 327MiB ")j"}),
            "error(builtin): units.parse_bytes: spaces not allowed in resource strings");
  EXPECT_EQ(eval("units.parse_bytes", {R"j("10e10000000EiB")j"}),
            "error(builtin): units.parse_bytes: exponent too large");
  EXPECT_EQ(eval("units.parse_bytes", {R"j("5E")j"}), "5000000000000000000");
  EXPECT_EQ(eval("units.parse_bytes", {R"j("5x")j"}),
            "error(builtin): units.parse_bytes: byte unit x not recognized");
}

TEST(RegoTypes, ParseUnits) {
  EXPECT_EQ(eval("units.parse", {R"j("1G")j"}), "1000000000");
  EXPECT_EQ(eval("units.parse", {R"j("1.1Ki")j"}), "1126.4000000000");
  EXPECT_EQ(eval("units.parse", {R"j("500m")j"}), "0.5000000000");
  EXPECT_EQ(eval("units.parse", {R"j("-3.5E2m")j"}), "-0.3500000000");
  EXPECT_EQ(eval("units.parse", {R"j("1000m")j"}), "1.0000000000");  // OPA's float64 milli is not exact
  EXPECT_EQ(eval("units.parse", {R"j("10KI")j"}), "10240");
  EXPECT_EQ(eval("units.parse", {R"j("200M")j"}), "200000000");
  EXPECT_EQ(eval("units.parse", {R"j("7.8E-1")j"}), "0.7800000000");
  EXPECT_EQ(eval("units.parse", {R"j("G")j"}), "error(builtin): units.parse: no amount provided");
  EXPECT_EQ(eval("units.parse", {R"j("1mb")j"}), "error(builtin): units.parse: unit mb not recognized");
}

}  // namespace
}  // namespace mg::rego::test
