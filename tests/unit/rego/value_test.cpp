// Unit tests for rego/value.h: OPA's order, exact numbers, JSON forms.
#include <gtest/gtest.h>

#include "rego/value.h"

namespace mg::rego {
namespace {

Value num(const char* text) { return *Value::number_from_text(text); }

TEST(RegoValue, TotalOrderAcrossTypes) {
  std::vector<Value> v = {Value::set({}),
                          Value::empty_object(),
                          Value::empty_array(),
                          Value::string("a"),
                          Value::number(1),
                          Value::boolean(false),
                          Value()};
  std::sort(v.begin(), v.end());
  EXPECT_EQ(v[0].kind(), Kind::Null);
  EXPECT_EQ(v[1].kind(), Kind::Bool);
  EXPECT_EQ(v[2].kind(), Kind::Number);
  EXPECT_EQ(v[3].kind(), Kind::String);
  EXPECT_EQ(v[4].kind(), Kind::Array);
  EXPECT_EQ(v[5].kind(), Kind::Object);
  EXPECT_EQ(v[6].kind(), Kind::Set);
}

TEST(RegoValue, NumbersCompareByValueAndKeepTheirText) {
  EXPECT_EQ(num("1.0"), Value::number(1));
  EXPECT_EQ(num("1.0").hash(), Value::number(1).hash());
  EXPECT_EQ(num("1.0").to_json_text(), "1.0");
  EXPECT_LT(num("2.5").compare(Value::number(3)), 0);
}

TEST(RegoValue, BigIntegersAreExact) {
  Value big = num("18446744073709551617");
  EXPECT_EQ(numeric::add(big, Value::number(1)).number_text(), "18446744073709551618");
  EXPECT_EQ(numeric::mul(big, Value::number(2)).number_text(), "36893488147419103234");
  EXPECT_EQ(numeric::rem(Value::number(7), num("340282366920938463463374607431768211456"))->number_text(),
            "7");
  EXPECT_EQ(numeric::rem(big, num("18446744073709551616"))->number_text(), "1");
  EXPECT_EQ(numeric::add(Value::number(INT64_MAX), Value::number(1)).number_text(), "9223372036854775808");
  EXPECT_EQ(numeric::add(num("1.5"), num("2.5")).number_text(), "4");
}

TEST(RegoValue, SetsAndObjectsAreSortedAndUnique) {
  Value s = Value::set({Value::number(3), Value::number(1), Value::number(3)});
  EXPECT_EQ(s.to_json_text(), "[1,3]");
  EXPECT_EQ(s.to_rego_text(), "{1, 3}");
  Value o = Value::object({{Value::string("b"), Value::number(1)}, {Value::number(2), Value::null()}});
  EXPECT_EQ(o.to_json_text(), "{\"2\":null,\"b\":1}");
  ASSERT_NE(o.get("b"), nullptr);
  EXPECT_EQ(*o.get("b"), Value::number(1));
  EXPECT_EQ(Value::set({}).to_rego_text(), "set()");
}

TEST(RegoValue, JsonParsingIsExact) {
  auto v = Value::parse_json(R"({"a":[1,2.50,"x\u00e9"],"n":123456789012345678901234567890})");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->to_json_text(), R"({"a":[1,2.50,"xé"],"n":123456789012345678901234567890})");
  EXPECT_FALSE(Value::parse_json("[1,"));
  EXPECT_FALSE(Value::parse_json("01"));
}

}  // namespace
}  // namespace mg::rego
