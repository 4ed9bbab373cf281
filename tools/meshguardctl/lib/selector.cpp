// meshguardctl/lib/selector.cpp — see selector.h.
#include "selector.h"

#include <algorithm>
#include <cctype>

namespace mg::ctl {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// A label key or value: Kubernetes allows [A-Za-z0-9._/-] (values may be empty).
bool label_text(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '/';
  });
}

// Splits at commas outside parentheses.
std::vector<std::string_view> split_requirements(std::string_view text) {
  std::vector<std::string_view> out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '(') ++depth;
    if (text[i] == ')') --depth;
    if (text[i] == ',' && depth == 0) {
      out.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(text.substr(start));
  return out;
}

}  // namespace

Result<LabelSelector> LabelSelector::parse(std::string_view text) {
  LabelSelector sel;
  if (trim(text).empty()) return sel;
  for (auto raw : split_requirements(text)) {
    const auto item = trim(raw);
    auto bad = [&](const std::string& why) {
      return fail("ctl.bad_selector", "label selector \"" + std::string(item) + "\": " + why);
    };
    Requirement r;
    if (item.empty()) return bad("empty requirement");
    if (item.front() == '!') {
      r.key = std::string(trim(item.substr(1)));
      r.op = Op::NotExists;
    } else if (auto ne = item.find("!="); ne != std::string_view::npos) {
      r.key = std::string(trim(item.substr(0, ne)));
      r.op = Op::NotEquals;
      r.values.emplace_back(trim(item.substr(ne + 2)));
    } else if (auto eq = item.find('='); eq != std::string_view::npos) {
      r.key = std::string(trim(item.substr(0, eq)));
      r.op = Op::Equals;
      auto value = item.substr(eq + 1);
      if (!value.empty() && value.front() == '=') value.remove_prefix(1);
      r.values.emplace_back(trim(value));
    } else if (auto paren = item.find('('); paren != std::string_view::npos) {
      if (item.back() != ')') return bad("a set needs a closing parenthesis");
      auto head = trim(item.substr(0, paren));
      auto space = head.rfind(' ');
      if (space == std::string_view::npos) return bad("expected KEY in (...) or KEY notin (...)");
      auto op = head.substr(space + 1);
      if (op != "in" && op != "notin") return bad("expected in or notin before the set");
      r.key = std::string(trim(head.substr(0, space)));
      r.op = op == "in" ? Op::In : Op::NotIn;
      for (auto v : split_requirements(item.substr(paren + 1, item.size() - paren - 2))) {
        v = trim(v);
        if (v.empty()) return bad("empty value in the set");
        r.values.emplace_back(v);
      }
    } else {
      r.key = std::string(item);
      r.op = Op::Exists;
    }
    if (r.key.empty() || !label_text(r.key)) return bad("bad key");
    for (const auto& v : r.values) {
      if (!label_text(v)) return bad("bad value \"" + v + "\"");
    }
    sel.reqs_.push_back(std::move(r));
  }
  return sel;
}

bool LabelSelector::matches(const std::map<std::string, std::string>& labels) const {
  for (const auto& r : reqs_) {
    auto it = labels.find(r.key);
    const bool has = it != labels.end();
    const bool in = has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    switch (r.op) {
      case Op::Equals:
      case Op::In:
        if (!in) return false;
        break;
      case Op::NotEquals:
      case Op::NotIn:
        if (in) return false;
        break;
      case Op::Exists:
        if (!has) return false;
        break;
      case Op::NotExists:
        if (has) return false;
        break;
    }
  }
  return true;
}

}  // namespace mg::ctl
