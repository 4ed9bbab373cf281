#include "selector.h"

#include <gtest/gtest.h>

namespace mg::ctl {
namespace {

bool sel(std::string_view s, const std::map<std::string, std::string>& labels) {
  auto parsed = LabelSelector::parse(s);
  EXPECT_TRUE(parsed) << s << ": " << (parsed ? "" : parsed.error().message);
  return parsed && parsed->matches(labels);
}

TEST(LabelSelector, Equality) {
  const std::map<std::string, std::string> l{{"app", "details"}, {"version", "v1"}};
  EXPECT_TRUE(sel("app=details", l));
  EXPECT_TRUE(sel("app==details", l));
  EXPECT_TRUE(sel("app=details,version=v1", l));
  EXPECT_TRUE(sel(" app = details , version=v1 ", l));
  EXPECT_FALSE(sel("app=details,version=v2", l));
  EXPECT_FALSE(sel("app!=details", l));
  EXPECT_TRUE(sel("tier!=web", l));  // absent key: != matches, as in Kubernetes
  EXPECT_TRUE(sel("", l));
  EXPECT_TRUE(sel("app=", {{"app", ""}}));
}

TEST(LabelSelector, SetsAndExistence) {
  const std::map<std::string, std::string> l{{"app", "details"}, {"app.kubernetes.io/name", "x"}};
  EXPECT_TRUE(sel("app in (reviews, details)", l));
  EXPECT_FALSE(sel("app in (reviews)", l));
  EXPECT_TRUE(sel("app notin (reviews)", l));
  EXPECT_FALSE(sel("app notin (details,x)", l));
  EXPECT_TRUE(sel("app,app.kubernetes.io/name", l));
  EXPECT_FALSE(sel("version", l));
  EXPECT_TRUE(sel("!version", l));
  EXPECT_FALSE(sel("!app", l));
  EXPECT_TRUE(sel("app in (a,details),!version", l));
}

TEST(LabelSelector, BadInputIsAClearError) {
  for (std::string_view s :
       {"app=de tails", "=x", "app in (a", "app foo (a)", "app in ()", ",", "a=b,,c=d", "!"}) {
    auto parsed = LabelSelector::parse(s);
    ASSERT_FALSE(parsed) << s;
    EXPECT_EQ(parsed.error().code, "ctl.bad_selector");
  }
}

}  // namespace
}  // namespace mg::ctl
