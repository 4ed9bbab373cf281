// rego/glob.h — glob patterns as OPA's glob.match compiles them (gobwas/glob syntax): `*` any run of
// non-delimiter characters, `**` any run at all, `?` one non-delimiter character, `[abc]` / `[!abc]`
// character lists, `[a-z]` / `[!a-z]` one range, `{a,b,...}` alternatives (which may nest patterns),
// `\` escapes. Compiled to an NFA and run without backtracking, so no pattern can make a match slow.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mg::rego {

class GlobPattern {
 public:
  // Fails with the pattern error gobwas reports (e.g. "unexpected end of input").
  static Result<GlobPattern> compile(std::string_view pattern, std::vector<char32_t> delimiters);

  bool match(std::string_view text) const;

  struct State;  // one NFA node; public only so the compiler in glob.cpp can build them

 private:
  std::vector<State> states_;
  int start_ = 0;
  int accept_ = 0;
  std::vector<char32_t> delimiters_;
};

struct GlobPattern::State {
  enum Kind { Literal, AnyButDelimiter, AnyRune, Class, Split, Accept } kind = Accept;
  char32_t rune = 0;                                  // Literal
  std::vector<std::pair<char32_t, char32_t>> ranges;  // Class (inclusive)
  bool negated = false;                               // Class
  std::vector<int> next;                              // Split: every target; others: next[0]
};

}  // namespace mg::rego
