#include "jsonpath.h"

#include <gtest/gtest.h>

namespace mg::ctl {
namespace {

const nlohmann::json kList = nlohmann::json::parse(R"({
  "kind": "List",
  "items": [
    {"metadata": {"name": "a", "namespace": "foo", "labels": {"app.kubernetes.io/name": "x"}}, "spec": {"n": 1}},
    {"metadata": {"name": "b", "namespace": "bar"}, "spec": {"n": 2, "on": true}}
  ]
})");

std::string render(std::string_view t) {
  auto out = render_jsonpath(t, kList);
  return out ? *out : "error: " + out.error().message;
}

TEST(JsonPath, FieldsIndexesAndWildcards) {
  EXPECT_EQ(render("{.kind}"), "List");
  EXPECT_EQ(render("{.items[0].metadata.name}"), "a");
  EXPECT_EQ(render("{.items[-1].metadata.name}"), "b");
  EXPECT_EQ(render("{.items[*].metadata.name}"), "a b");
  EXPECT_EQ(render("{.items[*].spec.n}"), "1 2");
  EXPECT_EQ(render("{.items[1].spec}"), R"({"n":2,"on":true})");
  EXPECT_EQ(render("{$.items[0].metadata.labels['app.kubernetes.io/name']}"), "x");
  EXPECT_EQ(render("{.items[0].metadata.labels.app\\.kubernetes\\.io/name}"), "x");
  EXPECT_EQ(render(".items[0].metadata.namespace"), "foo");  // without braces
  EXPECT_EQ(render("items[1].metadata.namespace"), "bar");   // kubectl's relaxed form
}

TEST(JsonPath, TextLiteralsAndRange) {
  EXPECT_EQ(render("name={.items[0].metadata.name}{\"\\n\"}"), "name=a\n");
  EXPECT_EQ(render("{range .items[*]}{.metadata.namespace}/{.metadata.name}{\"\\t\"}{$.kind}{\"\\n\"}{end}"),
            "foo/a\tList\nbar/b\tList\n");
  EXPECT_EQ(render("{range .items[*]}[{@.metadata.name}]{end}"), "[a][b]");
}

TEST(JsonPath, MissingKeysPrintNothing) {
  EXPECT_EQ(render("{.nope}"), "");
  EXPECT_EQ(render("{.items[5].metadata.name}"), "");
  EXPECT_EQ(render("{.items[*].spec.on}"), "true");
}

TEST(JsonPath, UnsupportedSyntaxIsAClearError) {
  for (std::string_view t : {"{..name}", "{.items[?(@.x)]}", "{.items[0:1]}", "{.items[0}", "{.kind",
                             "{range .items[*]}x", "{end}", "{.items[x]}"}) {
    auto out = render_jsonpath(t, kList);
    ASSERT_FALSE(out) << t;
    EXPECT_EQ(out.error().code, "ctl.bad_jsonpath") << t;
  }
}

}  // namespace
}  // namespace mg::ctl
