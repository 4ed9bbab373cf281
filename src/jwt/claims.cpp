#include "jwt/claims.h"

namespace mg::jwt {

namespace {

std::vector<std::string> split_spaces(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<std::string> scalar_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean() || v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number_float()) return v.dump();
  return std::nullopt;
}

bool header_safe(std::string_view s) {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

nlohmann::json normalize_claims(nlohmann::json payload) {
  nlohmann::json out = std::move(payload);
  if (!out.is_object()) return out;
  for (const char* name : {"scope", "permission"}) {
    auto it = out.find(name);
    if (it != out.end() && it->is_string()) {
      auto parts = split_spaces(it->get_ref<const std::string&>());
      *it = nlohmann::json(parts);
    }
  }
  return out;
}

const nlohmann::json* find_claim(const nlohmann::json& claims, std::span<const std::string> path) {
  const nlohmann::json* cur = &claims;
  for (const auto& step : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(step);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return path.empty() ? nullptr : cur;
}

std::vector<std::string> claim_strings(const nlohmann::json& claims, std::span<const std::string> path) {
  std::vector<std::string> out;
  const nlohmann::json* v = find_claim(claims, path);
  if (!v) return out;
  if (v->is_array()) {
    for (const auto& e : *v)
      if (auto t = scalar_text(e)) out.push_back(std::move(*t));
  } else if (auto t = scalar_text(*v)) {
    out.push_back(std::move(*t));
  }
  return out;
}

bool claim_has_value(const nlohmann::json& claims, std::span<const std::string> path, std::string_view value) {
  const nlohmann::json* v = find_claim(claims, path);
  if (!v) return false;
  auto eq = [&](const nlohmann::json& e) {
    if (e.is_string()) return e.get_ref<const std::string&>() == value;
    auto t = scalar_text(e);
    return t && *t == value;
  };
  if (v->is_array()) {
    for (const auto& e : *v)
      if (eq(e)) return true;
    return false;
  }
  return eq(*v);
}

std::vector<std::string> split_claim_path(std::string_view dotted) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t dot = dotted.find('.', start);
    out.emplace_back(dotted.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

std::optional<std::string> claim_header_value(const nlohmann::json& claims, std::string_view dotted_claim) {
  auto path = split_claim_path(dotted_claim);
  const nlohmann::json* v = find_claim(claims, path);
  if (!v) return std::nullopt;
  std::string out;
  if (v->is_array()) {
    bool first = true;
    for (const auto& e : *v) {
      auto t = scalar_text(e);
      if (!t) return std::nullopt;
      if (!first) out += ',';
      out += *t;
      first = false;
    }
  } else {
    auto t = scalar_text(*v);
    if (!t) return std::nullopt;
    out = std::move(*t);
  }
  if (!header_safe(out)) return std::nullopt;
  return out;
}

}  // namespace mg::jwt
