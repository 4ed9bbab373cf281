// glob.match: gobwas/glob syntax and delimiters as OPA uses them.
#include <gtest/gtest.h>

#include "builtins_test_util.h"

namespace mg::rego::test {
namespace {

TEST(RegoGlob, DelimitersAndWildcards) {
  EXPECT_EQ(eval("glob.match", {R"j("*:github:com")j", R"j([":"])j", R"j("api:github:com")j"}), "true");
  EXPECT_EQ(eval("glob.match", {R"j("*")j", "[]", R"j("foo.bar")j"}), "false");   // default delimiter "."
  EXPECT_EQ(eval("glob.match", {R"j("*")j", "null", R"j("foo.bar")j"}), "true");  // no delimiters
  EXPECT_EQ(eval("glob.match", {R"j("**.com")j", "[]", R"j("a.b.c.com")j"}), "true");
  EXPECT_EQ(eval("glob.match", {R"j("*.com")j", "[]", R"j("a.b.com")j"}), "false");
  EXPECT_EQ(eval("glob.match", {R"j("/api/*/users")j", R"j(["/"])j", R"j("/api/v1/users")j"}), "true");
  EXPECT_EQ(eval("glob.match", {R"j("/api/*/users")j", R"j(["/"])j", R"j("/api/v1/x/users")j"}), "false");
  EXPECT_EQ(eval("glob.match", {R"j("?at")j", "[]", R"j("cat")j"}), "true");
  EXPECT_EQ(eval("glob.match", {R"j("?at")j", "[]", R"j(".at")j"}), "false");
}

TEST(RegoGlob, ClassesAndAlternatives) {
  EXPECT_EQ(eval("glob.match", {R"j("[abc]at")j", "[]", R"j("fat")j"}), "false");
  EXPECT_EQ(eval("glob.match", {R"j("[!abc]at")j", "[]", R"j("cat")j"}), "false");
  EXPECT_EQ(eval("glob.match", {R"j("[!abc]at")j", "[]", R"j("fat")j"}), "true");
  EXPECT_EQ(eval("glob.match", {R"j("[a-c]at")j", "[]", R"j("bat")j"}), "true");
  EXPECT_EQ(eval("glob.match", {R"j("[!a-c]at")j", "[]", R"j("bat")j"}), "false");
  EXPECT_EQ(eval("glob.match", {R"j("{cat,bat,[fr]at}")j", "[]", R"j("rat")j"}), "true");
  EXPECT_EQ(eval("glob.match", {R"j("{cat,bat,[fr]at}")j", "[]", R"j("mat")j"}), "false");
  EXPECT_EQ(eval("glob.match", {R"j("a\\*b")j", "[]", R"j("a*b")j"}), "true");
  EXPECT_EQ(eval("glob.match", {R"j("a\\*b")j", "[]", R"j("axb")j"}), "false");
}

TEST(RegoGlob, ErrorsAndTypes) {
  EXPECT_EQ(eval("glob.match", {R"j("[abc")j", "[]", R"j("a")j"}).rfind("error(builtin): ", 0), 0u);
  EXPECT_EQ(eval("glob.match", {R"j("{a,b")j", "[]", R"j("a")j"}).rfind("error(builtin): ", 0), 0u);
  EXPECT_EQ(eval("glob.match", {R"j("a")j", "1", R"j("a")j"}),
            "error(type): operand 2 must be one of {array, null} but got number");
  EXPECT_EQ(eval("glob.match", {R"j("a")j", R"j(["ab"])j", R"j("a")j"}),
            "error(type): operand 2 must be array of runes but got array containing string");
}

TEST(RegoGlob, ManyStarsStayLinear) {
  // A backtracking matcher takes exponential time here; the NFA answers at once.
  std::string pattern = "\"";
  for (int i = 0; i < 40; ++i) pattern += "*a";
  pattern += "b\"";
  const std::string text = "\"" + std::string(200, 'a') + "\"";
  EXPECT_EQ(show(call("glob.match", {json(pattern), Value::null(), json(text)})), "false");
}

TEST(RegoGlob, QuoteMeta) {
  EXPECT_EQ(eval("glob.quote_meta", {R"j("*.github.com")j"}), R"j("\\*.github.com")j");
}

}  // namespace
}  // namespace mg::rego::test

namespace mg::rego::test {
namespace {

TEST(RegoGlob, OversizedInputsAreRefused) {
  const Value pattern = Value::string(std::string(30000, '?'));
  const Value text = Value::string(std::string(30000, 'a'));
  EXPECT_EQ(show(call("glob.match", {pattern, Value::null(), text})),
            "error(builtin): pattern and text too large to match");
}

}  // namespace
}  // namespace mg::rego::test
