// rego/glob.cpp — see glob.h. The pattern is parsed into a small tree, then compiled back to front
// into an NFA whose states are simulated as a set (Thompson), so matching is O(text × pattern).
#include "rego/glob.h"

#include <algorithm>

#include "rego/utf8.h"

namespace mg::rego {
namespace {

struct Node;
using Seq = std::vector<Node>;

struct Node {
  enum Kind { Literal, Single, Star, Super, Class, Alternatives } kind = Literal;
  char32_t rune = 0;
  std::vector<std::pair<char32_t, char32_t>> ranges;
  bool negated = false;
  std::vector<Seq> alternatives;
};

Node make_node(Node::Kind k) {
  Node n;
  n.kind = k;
  return n;
}

class Parser {
 public:
  explicit Parser(std::string_view p) : runes_(utf8::runes(p)) {}

  Result<Seq> parse() {
    auto seq = parse_seq(0);
    if (!seq) return seq;
    if (pos_ != runes_.size()) return fail("glob.syntax", "unexpected end of input");
    return seq;
  }

 private:
  bool at_end() const { return pos_ >= runes_.size(); }
  char32_t peek() const { return runes_[pos_]; }

  Result<Seq> parse_seq(int depth) {
    Seq seq;
    while (!at_end()) {
      const char32_t c = peek();
      if (depth > 0 && (c == ',' || c == '}')) break;
      ++pos_;
      switch (c) {
        case '*':
          if (!at_end() && peek() == '*') {
            ++pos_;
            seq.push_back(make_node(Node::Super));
          } else {
            seq.push_back(make_node(Node::Star));
          }
          break;
        case '?':
          seq.push_back(make_node(Node::Single));
          break;
        case '[': {
          auto cls = parse_class();
          if (!cls) return fail(cls.error());
          seq.push_back(std::move(*cls));
          break;
        }
        case '{': {
          if (depth >= kMaxNesting) return fail("glob.syntax", "pattern nested too deeply");
          Node alt = make_node(Node::Alternatives);
          for (;;) {
            auto branch = parse_seq(depth + 1);
            if (!branch) return branch;
            alt.alternatives.push_back(std::move(*branch));
            if (at_end()) return fail("glob.syntax", "unexpected end of input");
            const char32_t sep = runes_[pos_++];
            if (sep == '}') break;
          }
          seq.push_back(std::move(alt));
          break;
        }
        case '\\':
          if (at_end()) return fail("glob.syntax", "unexpected end of input");
          seq.push_back(literal(runes_[pos_++]));
          break;
        default:
          seq.push_back(literal(c));
      }
    }
    return seq;
  }

  // After '[': either one range "[a-z]" / "[!a-z]" or a list of characters up to ']'.
  Result<Node> parse_class() {
    Node cls = make_node(Node::Class);
    if (!at_end() && peek() == '!') {
      cls.negated = true;
      ++pos_;
    }
    if (pos_ + 1 < runes_.size() && runes_[pos_ + 1] == '-') {
      if (pos_ + 2 >= runes_.size()) return fail("glob.syntax", "unexpected end of input");
      const char32_t lo = runes_[pos_];
      const char32_t hi = runes_[pos_ + 2];
      pos_ += 3;
      if (at_end()) return fail("glob.syntax", "unexpected end of input");
      if (runes_[pos_++] != ']') return fail("glob.syntax", "expected close range character");
      if (hi < lo) return fail("glob.syntax", "hi character should be greater than lo character");
      cls.ranges.emplace_back(lo, hi);
      return cls;
    }
    for (;;) {
      if (at_end()) return fail("glob.syntax", "unexpected end of input");
      char32_t c = runes_[pos_++];
      if (c == ']') break;
      if (c == '\\') {
        if (at_end()) return fail("glob.syntax", "unexpected end of input");
        c = runes_[pos_++];
      }
      cls.ranges.emplace_back(c, c);
    }
    return cls;
  }

  static Node literal(char32_t c) {
    Node n = make_node(Node::Literal);
    n.rune = c;
    return n;
  }

  static constexpr int kMaxNesting = 64;
  std::vector<char32_t> runes_;
  size_t pos_ = 0;
};

using State = GlobPattern::State;

State make_state(State::Kind k) {
  State s;
  s.kind = k;
  return s;
}

struct Builder {
  std::vector<State>& states;

  int add(State s) {
    states.push_back(std::move(s));
    return static_cast<int>(states.size()) - 1;
  }

  int build(const Seq& seq, int next) {
    for (auto it = seq.rbegin(); it != seq.rend(); ++it) next = build(*it, next);
    return next;
  }

  int build(const Node& n, int next) {
    State s;
    switch (n.kind) {
      case Node::Literal:
        s.kind = State::Literal;
        s.rune = n.rune;
        s.next = {next};
        return add(std::move(s));
      case Node::Single:
        s.kind = State::AnyButDelimiter;
        s.next = {next};
        return add(std::move(s));
      case Node::Class:
        s.kind = State::Class;
        s.ranges = n.ranges;
        s.negated = n.negated;
        s.next = {next};
        return add(std::move(s));
      case Node::Star:
      case Node::Super: {
        const int split = add(make_state(State::Split));
        State loop;
        loop.kind = n.kind == Node::Star ? State::AnyButDelimiter : State::AnyRune;
        loop.next = {split};
        const int loop_id = add(std::move(loop));
        states[split].next = {loop_id, next};
        return split;
      }
      case Node::Alternatives: {
        std::vector<int> targets;
        for (const Seq& alt : n.alternatives) targets.push_back(build(alt, next));
        State split = make_state(State::Split);
        split.next = std::move(targets);
        return add(std::move(split));
      }
    }
    return next;
  }
};

// `stack` is scratch space (empty on entry and exit), reused across calls.
void add_closure(const std::vector<State>& states, int id, std::vector<char>& seen, std::vector<int>& out,
                 std::vector<int>& stack) {
  stack.push_back(id);
  while (!stack.empty()) {
    const int s = stack.back();
    stack.pop_back();
    if (seen[s]) continue;
    seen[s] = 1;
    if (states[s].kind == State::Split) {
      for (auto it = states[s].next.rbegin(); it != states[s].next.rend(); ++it) stack.push_back(*it);
    } else {
      out.push_back(s);
    }
  }
}

}  // namespace

Result<GlobPattern> GlobPattern::compile(std::string_view pattern, std::vector<char32_t> delimiters) {
  auto tree = Parser(pattern).parse();
  if (!tree) return fail(tree.error());
  GlobPattern g;
  g.delimiters_ = std::move(delimiters);
  Builder b{g.states_};
  g.accept_ = b.add(make_state(State::Accept));
  g.start_ = b.build(*tree, g.accept_);
  // A chain of ASCII literals from the start is matched by exactly those bytes: an ASCII byte of
  // the text decodes to itself, and no other byte decodes to an ASCII rune.
  int s = g.start_;
  while (g.states_[s].kind == State::Literal && g.states_[s].rune < 0x80) {
    g.prefix_ += static_cast<char>(g.states_[s].rune);
    s = g.states_[s].next[0];
  }
  g.after_prefix_ = s;
  bool ascii = true;
  for (char32_t d : g.delimiters_) {
    ascii = ascii && d < 0x80;
    if (d < 0x80) g.ascii_delimiters_ += static_cast<char>(d);
  }
  const State& after = g.states_[s];
  if (s == g.accept_) {
    g.tail_ = Tail::End;
  } else if (after.kind == State::Split && after.next.size() == 2 && after.next[1] == g.accept_) {
    // `*` / `**` last: a loop over one state that comes back to the split.
    const State& loop = g.states_[after.next[0]];
    if (loop.next.size() == 1 && loop.next[0] == s) {
      if (loop.kind == State::AnyRune) g.tail_ = Tail::Anything;
      if (loop.kind == State::AnyButDelimiter && ascii) g.tail_ = Tail::NoDelimiter;
    }
  }
  return g;
}

bool GlobPattern::match(std::string_view text) const {
  if (!text.starts_with(prefix_)) return false;
  text.remove_prefix(prefix_.size());
  switch (tail_) {
    case Tail::End:
      return text.empty();
    case Tail::Anything:
      return true;
    case Tail::NoDelimiter:  // the delimiters are ASCII: bytes, as above
      return text.find_first_of(ascii_delimiters_) == std::string_view::npos;
    case Tail::Nfa:
      break;
  }
  return match_nfa(text, after_prefix_);
}

bool GlobPattern::match_nfa(std::string_view text, int start) const {
  auto is_delimiter = [&](char32_t r) {
    return std::find(delimiters_.begin(), delimiters_.end(), r) != delimiters_.end();
  };
  // Scratch state sets, kept per thread: matching allocates nothing once they have grown.
  struct Scratch {
    std::vector<int> current, next, stack;
    std::vector<char> seen;
  };
  thread_local Scratch scratch;
  auto& [current, next, stack, seen] = scratch;
  current.clear();
  seen.assign(states_.size(), 0);
  add_closure(states_, start, seen, current, stack);
  for (size_t pos = 0; pos < text.size() && !current.empty();) {
    const utf8::Decoded d = utf8::decode(text, pos);
    pos += d.size;
    next.clear();
    std::fill(seen.begin(), seen.end(), 0);
    for (int id : current) {
      const State& s = states_[id];
      bool ok = false;
      switch (s.kind) {
        case State::Literal:
          ok = s.rune == d.rune;
          break;
        case State::AnyButDelimiter:
          ok = !is_delimiter(d.rune);
          break;
        case State::AnyRune:
          ok = true;
          break;
        case State::Class: {
          bool in = false;
          for (auto [lo, hi] : s.ranges) in = in || (d.rune >= lo && d.rune <= hi);
          ok = in != s.negated;
          break;
        }
        case State::Split:
        case State::Accept:
          break;
      }
      if (ok) add_closure(states_, s.next[0], seen, next, stack);
    }
    current.swap(next);
  }
  return std::find(current.begin(), current.end(), accept_) != current.end();
}

}  // namespace mg::rego
