// net.cidr_* with Go's ParseCIDR / ParseIP rules.
#include <gtest/gtest.h>

#include "builtins_test_util.h"

namespace mg::rego::test {
namespace {

TEST(RegoNet, CidrContains) {
  EXPECT_EQ(eval("net.cidr_contains", {R"j("10.0.0.0/8")j", R"j("10.1.0.0/24")j"}), "true");
  EXPECT_EQ(eval("net.cidr_contains", {R"j("10.0.0.0/8")j", R"j("10.1.2.3")j"}), "true");
  EXPECT_EQ(eval("net.cidr_contains", {R"j("10.0.0.0/8")j", R"j("11.1.2.3")j"}), "false");
  EXPECT_EQ(eval("net.cidr_contains", {R"j("10.0.0.0/24")j", R"j("10.0.0.0/16")j"}), "false");
  EXPECT_EQ(
      eval("net.cidr_contains", {R"j("2001:4860:4860::8888/32")j", R"j("2001:4860:4860:1234::8888/40")j"}),
      "true");
  EXPECT_EQ(eval("net.cidr_contains", {R"j("10.0.0.0/8")j", R"j("::ffff:10.1.2.3")j"}), "true");
  EXPECT_EQ(eval("net.cidr_contains", {R"j("192.168.1.0/28")j", R"j("not-a-cidr")j"}),
            "error(builtin): invalid CIDR address: not-a-cidr");
  EXPECT_EQ(eval("net.cidr_contains", {R"j("010.0.0.0/8")j", R"j("10.0.0.1")j"}),
            "error(builtin): invalid CIDR address: 010.0.0.0/8");
}

TEST(RegoNet, IntersectsAndValidity) {
  EXPECT_EQ(eval("net.cidr_intersects", {R"j("192.168.0.0/16")j", R"j("192.168.1.0/24")j"}), "true");
  EXPECT_EQ(eval("net.cidr_intersects", {R"j("192.168.0.0/24")j", R"j("192.168.1.0/24")j"}), "false");
  EXPECT_EQ(eval("net.cidr_is_valid", {R"j("10.0.0.0/33")j"}), "false");
  EXPECT_EQ(eval("net.cidr_is_valid", {R"j("fd00::/8")j"}), "true");
  EXPECT_EQ(eval("net.cidr_is_valid", {"1"}), "false");
  EXPECT_EQ(eval("net.cidr_contains_matches", {R"j(["1.1.1.0/24", "1.1.2.0/24"])j", R"j({"x": "1.1.2.3"})j"}),
            R"j([[1,"x"]])j");
}

}  // namespace
}  // namespace mg::rego::test
