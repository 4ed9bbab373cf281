// meshguardctl/lib/jsonpath.cpp — see jsonpath.h. The template is parsed into a small tree
// (text, expression, range) and then rendered; every loop is bounded by the template or the data.
#include "jsonpath.h"

#include <memory>
#include <vector>

namespace mg::ctl {
namespace {

using json = nlohmann::json;

struct Step {
  enum class Kind { Field, Index, All } kind = Kind::Field;
  std::string field;
  long index = 0;
};

struct Path {
  bool from_root = false;  // "$": the root even inside a range
  std::vector<Step> steps;
};

struct Node {
  enum class Kind { Text, Expr, Range } kind = Kind::Text;
  std::string text;
  Path path;
  std::vector<Node> body;  // Range
};

Unexpected<Error> bad(const std::string& why) { return fail("ctl.bad_jsonpath", "jsonpath: " + why); }

Result<Path> parse_path(std::string_view s) {
  Path p;
  size_t i = 0;
  if (i < s.size() && (s[i] == '$' || s[i] == '@')) {
    p.from_root = s[i] == '$';
    ++i;
  }
  while (i < s.size()) {
    if (s[i] == '.') {
      ++i;
      if (i < s.size() && s[i] == '.') return bad("recursive descent (..) is not supported");
      std::string field;
      while (i < s.size() && s[i] != '.' && s[i] != '[') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        field += s[i++];
      }
      if (field.empty()) continue;  // "." alone: the current object
      if (field == "*") {
        p.steps.push_back({Step::Kind::All, "", 0});
      } else {
        p.steps.push_back({Step::Kind::Field, field, 0});
      }
    } else if (s[i] == '[') {
      auto close = s.find(']', i);
      if (close == std::string_view::npos) return bad("unclosed [ in \"" + std::string(s) + "\"");
      auto inner = s.substr(i + 1, close - i - 1);
      i = close + 1;
      if (inner == "*") {
        p.steps.push_back({Step::Kind::All, "", 0});
      } else if (inner.size() >= 2 && (inner.front() == '\'' || inner.front() == '"') &&
                 inner.back() == inner.front()) {
        p.steps.push_back({Step::Kind::Field, std::string(inner.substr(1, inner.size() - 2)), 0});
      } else if (!inner.empty() && (inner.front() == '?' || inner.find(':') != std::string_view::npos ||
                                    inner.find(',') != std::string_view::npos)) {
        return bad("filters, slices and unions ([" + std::string(inner) + "]) are not supported");
      } else {
        long n = 0;
        size_t j = 0;
        bool neg = !inner.empty() && inner[0] == '-';
        if (neg) j = 1;
        if (j >= inner.size()) return bad("bad index [" + std::string(inner) + "]");
        for (; j < inner.size(); ++j) {
          if (inner[j] < '0' || inner[j] > '9' || n > 100000000)
            return bad("bad index [" + std::string(inner) + "]");
          n = n * 10 + (inner[j] - '0');
        }
        p.steps.push_back({Step::Kind::Index, "", neg ? -n : n});
      }
    } else {
      // kubectl's relaxed form: a leading field without its dot ("items[0]").
      if (!p.steps.empty() || i != 0)
        return bad("unexpected '" + std::string(1, s[i]) + "' in \"" + std::string(s) + "\"");
      std::string rest = "." + std::string(s);
      return parse_path(rest);
    }
  }
  return p;
}

Result<std::string> parse_literal(std::string_view s) {
  std::string out;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    if (s[i] != '\\' || i + 2 >= s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    out += c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
  }
  return out;
}

// Parses nodes until {end} (in a range) or the end of the text.
Result<std::vector<Node>> parse_nodes(std::string_view t, size_t& pos, bool in_range) {
  std::vector<Node> out;
  while (pos < t.size()) {
    auto open = t.find('{', pos);
    if (open != pos) {
      Node text;
      text.text =
          std::string(t.substr(pos, open == std::string_view::npos ? std::string_view::npos : open - pos));
      out.push_back(std::move(text));
      if (open == std::string_view::npos) {
        pos = t.size();
        break;
      }
    }
    // The closing brace, skipping braces inside a quoted literal.
    size_t close = open + 1;
    char quote = 0;
    for (; close < t.size(); ++close) {
      if (quote) {
        if (t[close] == '\\')
          ++close;
        else if (t[close] == quote)
          quote = 0;
      } else if (t[close] == '"' || t[close] == '\'') {
        quote = t[close];
      } else if (t[close] == '}') {
        break;
      }
    }
    if (close >= t.size()) return bad("unclosed { in the template");
    std::string_view inner = t.substr(open + 1, close - open - 1);
    while (!inner.empty() && inner.front() == ' ') inner.remove_prefix(1);
    while (!inner.empty() && inner.back() == ' ') inner.remove_suffix(1);
    pos = close + 1;
    if (inner == "end") {
      if (!in_range) return bad("{end} without {range}");
      return out;
    }
    Node n;
    if (inner.size() >= 2 && (inner.front() == '"' || inner.front() == '\'') &&
        inner.back() == inner.front()) {
      auto lit = parse_literal(inner);
      if (!lit) return fail(lit.error());
      n.text = std::move(*lit);
    } else if (inner.substr(0, 6) == "range ") {
      auto path = parse_path(inner.substr(6));
      if (!path) return fail(path.error());
      n.kind = Node::Kind::Range;
      n.path = std::move(*path);
      auto body = parse_nodes(t, pos, true);
      if (!body) return fail(body.error());
      n.body = std::move(*body);
    } else {
      auto path = parse_path(inner);
      if (!path) return fail(path.error());
      n.kind = Node::Kind::Expr;
      n.path = std::move(*path);
    }
    out.push_back(std::move(n));
  }
  if (in_range) return bad("{range} without {end}");
  return out;
}

std::vector<const json*> evaluate(const Path& p, const json& root, const json& current) {
  std::vector<const json*> nodes{p.from_root ? &root : &current};
  for (const auto& step : p.steps) {
    std::vector<const json*> next;
    for (const json* n : nodes) {
      switch (step.kind) {
        case Step::Kind::Field:
          if (n->is_object()) {
            auto it = n->find(step.field);
            if (it != n->end()) next.push_back(&*it);
          }
          break;
        case Step::Kind::Index:
          if (n->is_array()) {
            long size = static_cast<long>(n->size());
            long i = step.index < 0 ? size + step.index : step.index;
            if (i >= 0 && i < size) next.push_back(&(*n)[static_cast<size_t>(i)]);
          }
          break;
        case Step::Kind::All:
          if (n->is_array() || n->is_object()) {
            for (const auto& e : *n) next.push_back(&e);
          }
          break;
      }
    }
    nodes = std::move(next);
  }
  return nodes;
}

void render(const std::vector<Node>& nodes, const json& root, const json& current, std::string& out) {
  for (const auto& n : nodes) {
    switch (n.kind) {
      case Node::Kind::Text:
        out += n.text;
        break;
      case Node::Kind::Expr: {
        bool first = true;
        for (const json* v : evaluate(n.path, root, current)) {
          if (!first) out += ' ';
          first = false;
          out += v->is_string() ? v->get<std::string>() : v->dump();
        }
        break;
      }
      case Node::Kind::Range:
        for (const json* v : evaluate(n.path, root, current)) render(n.body, root, *v, out);
        break;
    }
  }
}

}  // namespace

Result<std::string> render_jsonpath(std::string_view tmpl, const nlohmann::json& root) {
  std::string wrapped;
  if (tmpl.find('{') == std::string_view::npos) {
    wrapped = "{" + std::string(tmpl) + "}";
    tmpl = wrapped;
  }
  size_t pos = 0;
  auto nodes = parse_nodes(tmpl, pos, false);
  if (!nodes) return fail(nodes.error());
  std::string out;
  render(*nodes, root, root, out);
  return out;
}

}  // namespace mg::ctl
