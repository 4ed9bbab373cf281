// rego/yaml_value.cpp — see yaml_value.h.
#include "rego/yaml_value.h"

#include <yaml-cpp/yaml.h>

#include <regex>

namespace mg::rego {

namespace {

std::optional<Value> plain_scalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return Value();
  if (s == "true" || s == "True" || s == "TRUE") return Value::boolean(true);
  if (s == "false" || s == "False" || s == "FALSE") return Value::boolean(false);
  static const std::regex int_re("[-+]?(0|[1-9][0-9]*)");
  static const std::regex float_re("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (std::regex_match(s, int_re) || std::regex_match(s, float_re)) {
    std::string t = s[0] == '+' ? s.substr(1) : s;
    // JSON number text: "1." -> "1.0", ".5" -> "0.5".
    if (!t.empty() && t.back() == '.') t += "0";
    size_t dot = t.find('.');
    if (dot != std::string::npos && (dot == 0 || t[dot - 1] == '-')) t.insert(dot, "0");
    size_t e = t.find_first_of("eE");
    if (e != std::string::npos && e > 0 && t[e - 1] == '.') t.insert(e, "0");
    if (auto v = Value::number_from_text(t)) return v;
  }
  return std::nullopt;
}

}  // namespace

Value yaml_node_to_value(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return Value();
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() == "?") {
        if (auto v = plain_scalar(s)) return *v;
      }
      return Value::string(s);
    }
    case YAML::NodeType::Sequence: {
      Array items;
      items.reserve(node.size());
      for (const auto& e : node) items.push_back(yaml_node_to_value(e));
      return Value::array(std::move(items));
    }
    case YAML::NodeType::Map: {
      ObjectItems items;
      for (const auto& kv : node) {
        const YAML::Node& k = kv.first;
        std::string key = k.IsScalar() ? k.Scalar() : yaml_node_to_value(k).to_json_text();
        items.emplace_back(Value::string(key), yaml_node_to_value(kv.second));
      }
      return Value::object(std::move(items));
    }
  }
  return Value();
}

std::optional<Value> yaml_to_value(std::string_view text, std::string* error) {
  try {
    YAML::Node n = YAML::Load(std::string(text));
    return yaml_node_to_value(n);
  } catch (const YAML::Exception& e) {
    if (error) *error = e.what();
    return std::nullopt;
  }
}

}  // namespace mg::rego
