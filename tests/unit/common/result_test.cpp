#include "common/result.h"

#include <gtest/gtest.h>

namespace {

mg::Result<int> half(int x) {
  if (x % 2) return mg::fail("math.odd", "odd input");
  return x / 2;
}

TEST(Result, CarriesValueOrError) {
  auto ok = half(4);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 2);
  auto bad = half(3);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "math.odd");
  EXPECT_EQ(bad.error().to_string(), "math.odd: odd input");
}

TEST(Result, VoidStatus) {
  mg::Status ok;
  EXPECT_TRUE(ok);
  mg::Status bad = mg::fail("x.y", "broken");
  EXPECT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "x.y");
}

}  // namespace
