// String built-ins: Go semantics OPA inherits (Replacer, Trim cutsets, rune offsets, fmt verbs).
#include <gtest/gtest.h>

#include "builtins_test_util.h"

namespace mg::rego::test {
namespace {

TEST(RegoStrings, ConcatJoinsArraysAndSortedSets) {
  EXPECT_EQ(eval("concat", {R"j("/")j", R"j(["a","b","c"])j"}), R"j("a/b/c")j");
  EXPECT_EQ(show(call("concat", {Value::string(","), set_of({Value::string("b"), Value::string("a")})})),
            R"j("a,b")j");
  EXPECT_EQ(eval("concat", {R"j("/")j", R"j(["a",1])j"}),
            "error(type): operand 2 must be array of strings but got array containing number");
  EXPECT_EQ(eval("concat", {R"j("/")j", R"j("ab")j"}),
            "error(type): operand 2 must be one of {set, array} but got string");
}

TEST(RegoStrings, ReplaceNFollowsGoReplacerPriority) {
  // The conformance cases' semantics: keys sorted, earliest matching key wins, no re-scan.
  EXPECT_EQ(eval("strings.replace_n", {R"j({"info":"X","anotherinfo":"Y"})j", R"j("anotherinfo")j"}),
            R"j("Y")j");
  EXPECT_EQ(eval("strings.replace_n", {R"j({"a":"YY","bba":"bX"})j", R"j("bbab")j"}), R"j("bXb")j");
  EXPECT_EQ(eval("strings.replace_n", {R"j({"ab":"b","b":"Y"})j", R"j("baaabbbba")j"}), R"j("YaabYYYa")j");
  EXPECT_EQ(eval("strings.replace_n", {R"j({"a":"b","b":"a"})j", R"j("abba")j"}), R"j("baab")j");
  EXPECT_EQ(eval("strings.replace_n", {R"j({"a":"Xa","ab":"X","ba":"bYa","aaa":"X"})j", R"j("aaaaab")j"}),
            R"j("XaXaXaXaXab")j");
  EXPECT_EQ(eval("strings.replace_n", {R"j({"aab":"Y","a":"","b":""})j", R"j("bbaab")j"}), R"j("")j");
  EXPECT_EQ(eval("strings.replace_n", {R"j({"":"X"})j", R"j("")j"}), R"j("X")j");
  EXPECT_EQ(eval("strings.replace_n", {R"j({"":"X"})j", R"j("ab")j"}), R"j("XaXbX")j");
  EXPECT_EQ(eval("strings.replace_n", {R"j({"f":100})j", R"j("foo")j"}),
            "error(type): operand 1 non-string value found in pattern object");
  EXPECT_EQ(eval("strings.replace_n", {R"j({"f":"x"})j", "1"}),
            "error(type): operand 2 must be string but got number");
}

TEST(RegoStrings, ReplaceAndSplit) {
  EXPECT_EQ(eval("replace", {R"j("a.b.c")j", R"j(".")j", R"j("/")j"}), R"j("a/b/c")j");
  EXPECT_EQ(eval("replace", {R"j("ab")j", R"j("")j", R"j("-")j"}), R"j("-a-b-")j");
  EXPECT_EQ(eval("split", {R"j("a,b,,c")j", R"j(",")j"}), R"j(["a","b","","c"])j");
  EXPECT_EQ(eval("split", {R"j("foo")j", R"j(",")j"}), R"j(["foo"])j");
  EXPECT_EQ(eval("split", {R"j("héé")j", R"j("")j"}), R"j(["h","é","é"])j");
}

TEST(RegoStrings, TrimFamilyUsesRuneCutsets) {
  EXPECT_EQ(eval("trim", {R"j("¡¡¡foo, bar!!!")j", R"j("!¡")j"}), R"j("foo, bar")j");
  EXPECT_EQ(eval("trim", {R"j("¡¡¡foo, bar!!!")j", R"j("")j"}), R"j("¡¡¡foo, bar!!!")j");
  EXPECT_EQ(eval("trim_left", {R"j("xxabcxx")j", R"j("x")j"}), R"j("abcxx")j");
  EXPECT_EQ(eval("trim_right", {R"j("xxabcxx")j", R"j("x")j"}), R"j("xxabc")j");
  EXPECT_EQ(eval("trim_prefix", {R"j("foo.bar")j", R"j("foo.")j"}), R"j("bar")j");
  EXPECT_EQ(eval("trim_suffix", {R"j("foo.bar")j", R"j(".bar")j"}), R"j("foo")j");
  EXPECT_EQ(eval("trim_space", {"\"\\t  hi \\n\\u00a0\""}), R"j("hi")j");
  EXPECT_EQ(eval("trim", {R"j("")j", R"j("x")j"}), R"j("")j");
}

TEST(RegoStrings, CaseMappingIsUnicode) {
  EXPECT_EQ(eval("upper", {R"j("straße ÿ")j"}), R"j("STRAßE Ÿ")j");  // simple case mapping, as Go
  EXPECT_EQ(eval("lower", {R"j("ÀÉÎ ABC")j"}), R"j("àéî abc")j");
  EXPECT_EQ(eval("upper", {R"j("àéî abc")j"}), R"j("ÀÉÎ ABC")j");
}

TEST(RegoStrings, OffsetsCountRunes) {
  EXPECT_EQ(eval("indexof", {R"j("héllo")j", R"j("l")j"}), "2");
  EXPECT_EQ(eval("indexof", {R"j("hello")j", R"j("z")j"}), "-1");
  EXPECT_EQ(eval("indexof", {R"j("hello")j", R"j("")j"}), "error(builtin): empty search character");
  EXPECT_EQ(eval("indexof_n", {R"j("sad book")j", R"j("o")j"}), "[5,6]");
  EXPECT_EQ(eval("substring", {R"j("héllo")j", "1", "3"}), R"j("éll")j");
  EXPECT_EQ(eval("substring", {R"j("hello")j", "1", "-1"}), R"j("ello")j");
  EXPECT_EQ(eval("substring", {R"j("hello")j", "9", "2"}), R"j("")j");
  EXPECT_EQ(eval("substring", {R"j("hello")j", "-1", "2"}), "error(builtin): negative offset");
  EXPECT_EQ(eval("substring", {R"j("hello")j", "1.5", "2"}),
            "error(type): operand 2 must be integer number but got floating-point number");
  EXPECT_EQ(eval("strings.reverse", {R"j("abç")j"}), R"j("çba")j");
  EXPECT_EQ(eval("strings.count", {R"j("cheese")j", R"j("e")j"}), "3");
}

TEST(RegoStrings, FormatInt) {
  EXPECT_EQ(eval("format_int", {"3.1", "10"}), R"j("3")j");
  EXPECT_EQ(eval("format_int", {"-255", "16"}), R"j("-ff")j");
  EXPECT_EQ(eval("format_int", {"5", "2"}), R"j("101")j");
  EXPECT_EQ(eval("format_int", {"123456789123456789123", "10"}), R"j("123456789123456789123")j");
  EXPECT_EQ(eval("format_int", {"5", "3"}), "error(type): operand 2 must be one of {2, 8, 10, 16}");
}

TEST(RegoStrings, AnyPrefixMatch) {
  EXPECT_EQ(eval("strings.any_prefix_match", {R"j(["a/b/c","e/f"])j", R"j(["x/","a/"])j"}), "true");
  EXPECT_EQ(eval("strings.any_prefix_match", {R"j("a/b")j", R"j("b")j"}), "false");
  EXPECT_EQ(eval("strings.any_suffix_match", {R"j("a/b")j", R"j(["x","/b"])j"}), "true");
  EXPECT_EQ(eval("strings.any_prefix_match", {"1", R"j("a")j"}),
            "error(type): operand 1 must be one of {string, set, array} but got number");
  EXPECT_EQ(eval("strings.any_prefix_match", {R"j(["a"])j", "[1]"}),
            "error(type): operand 2 must be array of strings but got array containing number");
}

TEST(RegoStrings, SprintfFollowsGoFmt) {
  EXPECT_EQ(eval("sprintf", {R"j("hi %.2f")j", "[3.14159]"}), R"j("hi 3.14")j");
  EXPECT_EQ(eval("sprintf", {R"j("%s")j", "[123456789123456789123]"}), R"j("123456789123456789123")j");
  EXPECT_EQ(eval("sprintf", {R"j("%d %s %v")j", R"j([12, "x", {"a":[1,true]}])j"}),
            R"j("12 x {\"a\": [1, true]}")j");
  EXPECT_EQ(eval("sprintf", {R"j("%5d|%-5s|%05.1f")j", R"j([42, "ab", 3.14159])j"}),
            R"j("   42|ab   |003.1")j");
  EXPECT_EQ(eval("sprintf", {R"j("%x %X %o %b")j", "[255, 255, 8, 5]"}), R"j("ff FF 10 101")j");
  EXPECT_EQ(eval("sprintf", {R"j("%v %v %v")j", "[1.5, 1e21, 0.000001]"}), R"j("1.5 1e+21 1e-06")j");
  EXPECT_EQ(eval("sprintf", {R"j("%e %g")j", "[123456.789, 0.0001234]"}), R"j("1.234568e+05 0.0001234")j");
  EXPECT_EQ(eval("sprintf", {R"j("%q")j", R"j(["a\"b"])j"}), R"j("\"a\\\"b\"")j");
  EXPECT_EQ(eval("sprintf", {R"j("%d")j", R"j(["x"])j"}), R"j("%!d(string=x)")j");
  EXPECT_EQ(eval("sprintf", {R"j("%d %d")j", "[1]"}), R"j("1 %!d(MISSING)")j");
  EXPECT_EQ(eval("sprintf", {R"j("%d")j", "[1, 2]"}), R"j("1%!(EXTRA int=2)")j");
  EXPECT_EQ(eval("sprintf", {R"j("100%%")j", "[]"}), R"j("100%")j");
  EXPECT_EQ(eval("sprintf", {R"j("%s")j", "[true]"}), R"j("true")j");
  EXPECT_EQ(eval("sprintf", {R"j("%d")j", "[2.5]"}), R"j("%!d(float64=2.5)")j");
}

}  // namespace
}  // namespace mg::rego::test

namespace mg::rego::test {
namespace {

// Outputs a built-in would build beyond the budget (64 MiB without one) fail instead of exhausting memory.
TEST(RegoStrings, HugeResultsFailClosed) {
  const Value big = Value::string(std::string(100000, 'a'));
  const Value ins = Value::string(std::string(1000, 'x'));
  EXPECT_EQ(show(call("replace", {big, Value::string(""), ins})),
            "error(builtin): evaluation budget exceeded");
  EXPECT_EQ(show(call("strings.replace_n", {Value::object({{Value::string("a"), ins}}), big})),
            "error(builtin): evaluation budget exceeded");
  std::string fmt;
  for (int i = 0; i < 100; ++i) fmt += "%1000000d";
  const Value ones = Value::array(Array(100, Value::number(1)));
  const BuiltinResult wide = call("sprintf", {Value::string(fmt), ones});
  ASSERT_TRUE(wide.is_error());
  EXPECT_EQ(wide.error().message, "evaluation budget exceeded");
  Budget budget;
  budget.bytes_left = 1000;
  BuiltinContext ctx;
  ctx.budget = &budget;
  EXPECT_EQ(show(call("replace",
                      {Value::string(std::string(600, 'a')), Value::string("a"), Value::string("bb")}, &ctx)),
            "error(builtin): evaluation budget exceeded");
  const Value huge = *Value::number_from_text(std::string(5000, '7'));
  EXPECT_EQ(show(call("format_int", {huge, Value::number(16)})), "error(builtin): operand 1 too large");
}

}  // namespace
}  // namespace mg::rego::test
