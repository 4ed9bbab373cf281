// regex.* built-ins: RE2 with Go's iteration, split and expansion rules.
#include <gtest/gtest.h>

#include "builtins_test_util.h"

namespace mg::rego::test {
namespace {

TEST(RegoRegex, Match) {
  EXPECT_EQ(eval("regex.match", {R"j("^[a-z]+\\[[0-9]+\\]$")j", R"j("foo[1]")j"}), "true");
  EXPECT_EQ(eval("regex.match", {R"j("")j", R"j("x")j"}), "true");
  EXPECT_EQ(eval("regex.match", {R"j("^$")j", R"j("something")j"}), "false");
  EXPECT_EQ(eval("regex.match", {R"j("$^[[[")j", R"j("x")j"}),
            "error(builtin): error parsing regexp: missing closing ]: `[[[`");
  EXPECT_EQ(eval("re_match", {R"j("b+")j", R"j("abbc")j"}), "true");
}

TEST(RegoRegex, IsValidNeverFails) {
  EXPECT_EQ(eval("regex.is_valid", {R"j(".*")j"}), "true");
  EXPECT_EQ(eval("regex.is_valid", {R"j("[")j"}), "false");
  EXPECT_EQ(eval("regex.is_valid", {"1"}), "false");
}

TEST(RegoRegex, FindN) {
  EXPECT_EQ(eval("regex.find_n", {R"j("a.")j", R"j("paranormal")j", "-1"}), R"j(["ar","an","al"])j");
  EXPECT_EQ(eval("regex.find_n", {R"j("a.")j", R"j("paranormal")j", "2"}), R"j(["ar","an"])j");
  // An empty match right after a previous match is skipped (Go's allMatches).
  EXPECT_EQ(eval("regex.find_n", {R"j("a*")j", R"j("baaab")j", "-1"}), R"j(["","aaa",""])j");
  EXPECT_EQ(eval("regex.find_all_string_submatch_n", {R"j("a(x*)b(y)?")j", R"j("-ab-axxb-")j", "-1"}),
            R"j([["ab","",""],["axxb","xx",""]])j");
}

TEST(RegoRegex, SplitMatchesGo) {
  EXPECT_EQ(eval("regex.split", {R"j("^[a-z]+\\[[0-9]+\\]$")j", R"j("")j"}), R"j([""])j");
  EXPECT_EQ(eval("regex.split", {R"j("^[a-z]+")j", R"j("foobar baz")j"}), R"j([""," baz"])j");
  EXPECT_EQ(eval("regex.split", {R"j("[a-z]+$")j", R"j("foobar baz")j"}), R"j(["foobar ",""])j");
  EXPECT_EQ(eval("regex.split", {R"j("^[a-z]+$")j", R"j("foobar baz")j"}), R"j(["foobar baz"])j");
  EXPECT_EQ(eval("regex.split", {R"j("^[a-z ]+$")j", R"j("foobar baz")j"}), R"j(["",""])j");
  EXPECT_EQ(eval("regex.split", {R"j("a")j", R"j("banana")j"}), R"j(["b","n","n",""])j");
}

TEST(RegoRegex, ReplaceExpandsTemplates) {
  EXPECT_EQ(eval("regex.replace", {R"j("-wxxy-wy-")j", R"j("w(x*)y")j", R"j("0")j"}), R"j("-0-0-")j");
  EXPECT_EQ(eval("regex.replace", {R"j("foo")j", R"j("(foo)")j", R"j("$1$1")j"}), R"j("foofoo")j");
  EXPECT_EQ(eval("regex.replace", {R"j("foo")j", R"j("(?P<w>o)")j", R"j("[${w}]")j"}), R"j("f[o][o]")j");
  EXPECT_EQ(eval("regex.replace", {R"j("foo")j", R"j("(o)")j", R"j("$1x")j"}),
            R"j("f")j");  // $1x names group "1x"
  EXPECT_EQ(eval("regex.replace", {R"j("abc")j", R"j("x*")j", R"j("-")j"}), R"j("-a-b-c-")j");
  EXPECT_EQ(eval("regex.replace", {R"j("a")j", R"j("[")j", R"j("$1")j"})
                .rfind("error(builtin): error parsing regexp", 0),
            0u);
}

}  // namespace
}  // namespace mg::rego::test
