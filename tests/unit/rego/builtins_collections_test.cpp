// Aggregates, array.*, object.* and set functions.
#include <gtest/gtest.h>

#include "builtins_test_util.h"

namespace mg::rego::test {
namespace {

TEST(RegoCollections, Aggregates) {
  EXPECT_EQ(eval("sum", {"[1,2,3,4]"}), "10");
  EXPECT_EQ(eval("sum", {"[9223372036854775807, 1]"}), "9223372036854775808");
  EXPECT_EQ(eval("sum", {"[1, \"a\"]"}),
            "error(type): operand 1 must be array of numbers but got array containing string");
  EXPECT_EQ(eval("sum", {"{}"}), "error(type): operand 1 must be one of {set, array} but got object");
  EXPECT_EQ(eval("product", {"[2,3,4]"}), "24");
  // Non-integers in OPA's 64-bit-mantissa big.Float, not doubles (0.30000000000000004).
  EXPECT_EQ(eval("sum", {"[0.1, 0.2]"}), "0.3");
  EXPECT_EQ(eval("sum", {"[1.5, 2.5]"}), "4");
  EXPECT_EQ(eval("product", {"[0.1, 3]"}), "0.3");
  EXPECT_EQ(eval("sum", {"[1e-7, 1e-8]"}), "1.1e-07");
  EXPECT_EQ(eval("product", {"[]"}), "1");
  EXPECT_EQ(eval("min", {"[3, 2, 1, 4, 6, -7, 10]"}), "-7");
  EXPECT_EQ(eval("max", {R"j([1, "a", null])j"}), R"j("a")j");
  EXPECT_EQ(eval("max", {"[]"}), "undefined");
  EXPECT_EQ(eval("sort", {R"j([4, "b", 3, null, 1])j"}), R"j([null,1,3,4,"b"])j");
  EXPECT_EQ(eval("all", {"[true, true]"}), "true");
  EXPECT_EQ(eval("any", {"[false, 1]"}), "false");
}

TEST(RegoCollections, Arrays) {
  EXPECT_EQ(eval("array.concat", {"[1,2]", "[3,4]"}), "[1,2,3,4]");
  EXPECT_EQ(eval("array.concat", {R"j({"a":1})j", "[3]"}),
            "error(type): operand 1 must be array but got object");
  EXPECT_EQ(eval("array.slice", {"[1,2,3,4,5]", "1", "3"}), "[2,3]");
  EXPECT_EQ(eval("array.slice", {"[1,2,3,4,5]", "-4", "-1"}), "[]");
  EXPECT_EQ(eval("array.slice", {"[1,2,3]", "1", "99"}), "[2,3]");
  EXPECT_EQ(eval("array.slice", {"[1,2,3]", "2", "1"}), "[]");
  EXPECT_EQ(eval("array.reverse", {"[1,2,3]"}), "[3,2,1]");
  EXPECT_EQ(eval("array.flatten", {R"j([[1, 2], "string", [3, {"a": "b"}], 4.5, [6, [7, 8]]])j"}),
            R"j([1,2,"string",3,{"a":"b"},4.5,6,[7,8]])j");
}

TEST(RegoCollections, Objects) {
  EXPECT_EQ(eval("object.get", {R"j({"a": {"b": "c"}})j", R"j("a")j", "true"}), R"j({"b":"c"})j");
  EXPECT_EQ(eval("object.get", {R"j({"a": {"b": "c"}})j", R"j("b")j", "true"}), "true");
  EXPECT_EQ(eval("object.get", {R"j({"a": {"b": ["x", "y"]}})j", R"j(["a", "b", 1])j", "0"}), R"j("y")j");
  EXPECT_EQ(eval("object.get", {R"j({"a": {"b": ["x"]}})j", R"j(["a", "b", 5])j", "0"}), "0");
  EXPECT_EQ(eval("object.get", {R"j({"a": 1})j", "[]", "0"}), R"j({"a":1})j");
  EXPECT_EQ(eval("object.keys", {R"j({"b": 1, "a": 2})j"}), R"j(["a","b"])j");
  EXPECT_EQ(eval("object.union", {R"j({"a": 1})j", R"j({"a": {"b": {"c": 1}}, "d": 7})j"}),
            R"j({"a":{"b":{"c":1}},"d":7})j");
  EXPECT_EQ(eval("object.union", {R"j({"a": {"x": 1}})j", R"j({"a": {"y": 2}})j"}),
            R"j({"a":{"x":1,"y":2}})j");
  EXPECT_EQ(eval("object.union", {R"j({"a": 1})j", "[1]"}),
            "error(type): operand 2 must be object but got array");
  EXPECT_EQ(eval("object.union_n", {R"j([{"a": {"b": 2}}, {"a": 4}, {"a": {"c": 3}}])j"}),
            R"j({"a":{"c":3}})j");
  EXPECT_EQ(eval("object.remove", {R"j({"a": 1, "b": 2, "c": 3})j", R"j(["a", "c"])j"}), R"j({"b":2})j");
  EXPECT_EQ(eval("object.remove", {R"j({"a": 1, "b": 2})j", R"j({"b": 0})j"}), R"j({"a":1})j");
  EXPECT_EQ(eval("object.remove", {R"j("x")j", "[]"}),
            "error(type): operand 1 must be object but got string");
  EXPECT_EQ(eval("object.remove", {R"j({"a": 1})j", R"j("a")j"}),
            "error(type): operand 2 must be one of {object, set, array} but got string");
  EXPECT_EQ(eval("object.filter", {R"j({"a": 1, "b": 2, "c": 3})j", R"j(["a", "c", "z"])j"}),
            R"j({"a":1,"c":3})j");
  EXPECT_EQ(eval("object.filter", {"null", "[]"}), "error(type): operand 1 must be object but got null");
}

TEST(RegoCollections, ObjectSubset) {
  EXPECT_EQ(
      eval("object.subset", {R"j({"a": {"b": [1, 2, 3], "c": 1}, "d": 2})j", R"j({"a": {"b": [2, 3]}})j"}),
      "true");
  EXPECT_EQ(eval("object.subset", {R"j({"a": {"b": [1, 2, 3]}})j", R"j({"a": {"b": [1, 3]}})j"}), "false");
  EXPECT_EQ(eval("object.subset", {R"j({"a": 1})j", R"j({"a": 2})j"}), "false");
  EXPECT_EQ(eval("object.subset", {"[1, 2, 3]", "[2, 3]"}), "true");
  EXPECT_EQ(show(call("object.subset", {json("[3, 1]"), set_of({Value::number(1)})})), "true");
  EXPECT_EQ(show(call("object.subset", {json("[]"), Value::empty_set()})), "false");
  EXPECT_EQ(eval("object.subset", {"[1]", R"j({"a": 1})j"}),
            "error(type): both arguments object.subset must be of the same type or array and set");
}

TEST(RegoCollections, Sets) {
  const Value s12 = set_of({Value::number(1), Value::number(2)});
  const Value s23 = set_of({Value::number(2), Value::number(3)});
  EXPECT_EQ(show(call("intersection", {set_of({s12, s23})})), "[2]");
  EXPECT_EQ(show(call("union", {set_of({s12, s23})})), "[1,2,3]");
  EXPECT_EQ(show(call("intersection", {set_of({Value::empty_set(), s12})})), "[]");
  EXPECT_EQ(show(call("union", {Value::empty_set()})), "[]");
  EXPECT_EQ(show(call("union", {set_of({Value::number(1)})})),
            "error(type): operand 1 must be set of sets but got set containing number");
}

}  // namespace
}  // namespace mg::rego::test

namespace mg::rego::test {
namespace {

TEST(RegoCollections, NumberRanges) {
  EXPECT_EQ(eval("numbers.range", {"1", "4"}), "[1,2,3,4]");
  EXPECT_EQ(eval("numbers.range", {"2", "-1"}), "[2,1,0,-1]");
  EXPECT_EQ(eval("numbers.range_step", {"0", "10", "4"}), "[0,4,8]");
  EXPECT_EQ(eval("numbers.range_step", {"0", "10", "0"}),
            "error(builtin): numbers.range_step: step must be a positive integer");
  EXPECT_EQ(eval("numbers.range", {"1.5", "4"}),
            "error(type): operand 1 must be integer number but got floating-point number");
  EXPECT_EQ(eval("numbers.range", {"0", "1000000000000"}), "error(builtin): numbers.range: range too large");
}

}  // namespace
}  // namespace mg::rego::test
