// rego/builtins.cpp — the built-in registry and BuiltinError helpers (see builtins.h).
#include "rego/builtins.h"

#include <algorithm>

namespace mg::rego {

BuiltinError BuiltinError::operand(int position, std::string_view expected, std::string_view got_type) {
  return type("operand " + std::to_string(position) + " must be " + std::string(expected) + " but got " +
              std::string(got_type));
}

BuiltinError BuiltinError::operand(int position, std::string_view expected, const Value& got) {
  return operand(position, expected, got.type_name());
}

void Registry::add(BuiltinDecl decl) {
  std::string name = decl.name;
  by_name_.insert_or_assign(std::move(name), std::move(decl));
}

const BuiltinDecl* Registry::find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &it->second;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  out.reserve(by_name_.size());
  for (const auto& [name, decl] : by_name_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

const Registry& Registry::standard() {
  static const Registry registry = [] {
    Registry r;
    register_all_builtins(r);
    return r;
  }();
  return registry;
}

}  // namespace mg::rego
