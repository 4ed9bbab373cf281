// rego/glob.h — glob patterns as OPA's glob.match compiles them (gobwas/glob syntax): `*` any run of
// non-delimiter characters, `**` any run at all, `?` one non-delimiter character, `[abc]` / `[!abc]`
// character lists, `[a-z]` / `[!a-z]` one range, `{a,b,...}` alternatives (which may nest patterns),
// `\` escapes. Compiled to an NFA and run without backtracking, so no pattern can make a match slow.
#pragma once

#include <cstdint>
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
  bool match_nfa(std::string_view text, int start) const;

  std::vector<State> states_;
  int start_ = 0;
  int accept_ = 0;
  std::vector<char32_t> delimiters_;
  // The common shapes skip the NFA: an ASCII literal prefix compared as bytes, then (tail_) the end
  // of the text, `*` to the end (no delimiter left), `**` to the end, or the NFA from after_prefix_.
  enum class Tail : uint8_t { Nfa, End, NoDelimiter, Anything } tail_ = Tail::Nfa;
  std::string prefix_;
  int after_prefix_ = 0;
  std::string ascii_delimiters_;  // every delimiter, when all are ASCII (else tail_ is never NoDelimiter)
};

struct GlobPattern::State {
  enum Kind { Literal, AnyButDelimiter, AnyRune, Class, Split, Accept } kind = Accept;
  char32_t rune = 0;                                  // Literal
  std::vector<std::pair<char32_t, char32_t>> ranges;  // Class (inclusive)
  bool negated = false;                               // Class
  std::vector<int> next;                              // Split: every target; others: next[0]
};

}  // namespace mg::rego
