#include <gtest/gtest.h>

#include "policy/path.h"

namespace mg::policy {
namespace {

struct PathCase {
  const char* in;
  PathNormalization mode;
  const char* out;  // nullptr = malformed (400)
};

TEST(Path, Table) {
  using N = PathNormalization;
  const std::vector<PathCase> cases = {
      {"/a/b", N::Base, "/a/b"},
      {"/a/../b", N::Base, "/b"},
      {"/a/./b/.", N::Base, "/a/b/"},
      {"/a/b/..", N::Base, "/a/"},
      {"/../../a", N::Base, "/a"},
      {"/..", N::Base, "/"},
      {"/", N::Base, "/"},
      {"/a\\b", N::Base, "/a/b"},
      {"/a/%2e%2E/b", N::Base, "/b"},
      {"/%41%7a%2D%5f%7E", N::Base, "/Az-_~"},
      {"/a%2fb", N::Base, "/a%2Fb"},
      {"/a%5cb", N::Base, "/a%5Cb"},
      {"/a%20b", N::Base, "/a%20b"},
      {"/a//b", N::Base, "/a//b"},
      {"/a//b", N::MergeSlashes, "/a/b"},
      {"//a///b//", N::MergeSlashes, "/a/b/"},
      {"/a%2fb", N::DecodeAndMergeSlashes, "/a/b"},
      {"/a%2F%2Fb", N::DecodeAndMergeSlashes, "/a/b"},
      {"/a%5c..%5cb", N::DecodeAndMergeSlashes, "/b"},
      {"/a/../b?x=1#f", N::Base, "/b"},
      {"/a/../b?x=1", N::None, "/a/../b"},
      {"/a%2fb", N::None, "/a%2fb"},
      {"/a%00", N::None, nullptr},
      {"/a%00", N::Base, nullptr},
      {"/a%0", N::Base, nullptr},
      {"/a%", N::Base, nullptr},
      {"/a%g1", N::Base, nullptr},
      {"a/b", N::Base, nullptr},
      {"", N::Base, nullptr},
      {"?x", N::Base, nullptr},
      {"/a b", N::Base, nullptr},
      {"/a\tb", N::None, nullptr},
      {"/\xc3\xa9", N::Base, nullptr},
      {"/a?%00", N::Base, "/a"},  // the query is not part of the matched path
      // Decoded once only: an escaped '%' stays escaped, so nothing is decoded twice.
      {"/a/%252e%252e/b", N::Base, "/a/%252e%252e/b"},
      {"/%2541dmin", N::Base, "/%2541dmin"},
      {"/a%252fb", N::DecodeAndMergeSlashes, "/a%252fb"},
      {"/a%255cb", N::DecodeAndMergeSlashes, "/a%255cb"},
      {"/a\\..\\admin", N::Base, "/admin"},  // backslashes are slashes before dot segments
      // Paths no pass changes come back as they are; a segment that only starts with a dot is
      // not a dot segment.
      {"/details/1", N::Base, "/details/1"},
      {"/details/1", N::DecodeAndMergeSlashes, "/details/1"},
      {"/a.b/c./.d/..e", N::Base, "/a.b/c./.d/..e"},
      {"/.well-known/x", N::MergeSlashes, "/.well-known/x"},
      {"/a/.", N::Base, "/a/"},
      {"/a/..", N::MergeSlashes, "/"},
      {"/a//", N::MergeSlashes, "/a/"},
      {"//", N::Base, "//"},
  };
  std::string out;
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.in) + " " + to_string(c.mode));
    const auto verdict = normalize_path(c.in, c.mode, out);
    if (c.out) {
      ASSERT_EQ(verdict, PathVerdict::Ok);
      EXPECT_EQ(out, c.out);
    } else {
      EXPECT_EQ(verdict, PathVerdict::Malformed);
    }
  }
}

TEST(Path, ModeNames) {
  for (auto m : {PathNormalization::None, PathNormalization::Base, PathNormalization::MergeSlashes,
                 PathNormalization::DecodeAndMergeSlashes}) {
    EXPECT_EQ(parse_path_normalization(to_string(m)), m);
  }
  EXPECT_FALSE(parse_path_normalization("base"));
}

TEST(Path, LongInputsAreLinear) {
  std::string in = "/";
  for (int i = 0; i < 20000; ++i) in += "../a/./";
  std::string out;
  ASSERT_EQ(normalize_path(in, PathNormalization::DecodeAndMergeSlashes, out), PathVerdict::Ok);
  EXPECT_EQ(out, "/a/");
}

}  // namespace
}  // namespace mg::policy
