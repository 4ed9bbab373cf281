// rego/builtins_encoding.cpp — json.* (marshal, unmarshal, is_valid, filter, remove), yaml.*,
// base64 / base64url / hex, urlquery.*. Decoders accept exactly what Go's do and fail with Go's
// messages (go_encoding.h); json.marshal is Value's JSON text (Go's encoder output).
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <sstream>
#include <unordered_map>

#include "rego/builtins_util.h"
#include "rego/go_encoding.h"
#include "rego/go_strings.h"

namespace mg::rego {
namespace {

using bi::Args;
using bi::want;

BuiltinResult json_marshal(Args a, BuiltinContext& ctx) {
  std::string out = a[0].to_json_text();  // escapes <, >, & as Go's encoder does
  if (ctx.budget && !ctx.budget->charge_bytes(out.size())) return BuiltinError::budget();
  return Value::string(std::move(out));
}

// encoding/json's Indent over compact JSON text: one member per line, `prefix` then `indent` per
// level, empty objects and arrays kept as {} and [].
std::string indent_json(const std::string& compact, const std::string& prefix, const std::string& indent) {
  std::string out;
  int depth = 0;
  bool in_string = false;
  auto newline = [&](int d) {
    out += '\n';
    out += prefix;
    for (int i = 0; i < d; ++i) out += indent;
  };
  for (size_t i = 0; i < compact.size(); ++i) {
    const char c = compact[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < compact.size())
        out += compact[++i];
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        out += c;
        break;
      case '{':
      case '[':
        out += c;
        if (i + 1 < compact.size() && (compact[i + 1] == '}' || compact[i + 1] == ']')) {
          out += compact[++i];
        } else {
          newline(++depth);
        }
        break;
      case '}':
      case ']':
        newline(--depth);
        out += c;
        break;
      case ',':
        out += c;
        newline(depth);
        break;
      case ':':
        out += ": ";
        break;
      default:
        out += c;
    }
  }
  return out;
}

BuiltinResult json_marshal_with_options(Args a, BuiltinContext& ctx) {
  if (auto e = want(a, 2, Kind::Object)) return *e;
  std::string prefix, indent = "\t";
  bool implicit_pretty = false, explicit_set = false, pretty = false;
  for (const auto& [k, v] : a[1].as_object()) {
    if (!k.is_string()) return BuiltinError::type("operand 2 failed to stringify key " + k.to_rego_text());
    const std::string& key = k.as_string();
    if (key == "prefix" || key == "indent") {
      if (!v.is_string())
        return BuiltinError::type("operand 2 key " + key +
                                  " failed cast to string: operand must be string but got " + v.type_name());
      (key == "prefix" ? prefix : indent) = v.as_string();
      implicit_pretty = true;
    } else if (key == "pretty") {
      if (!v.is_bool()) return BuiltinError::type("operand 2 key pretty failed cast to bool");
      explicit_set = true;
      pretty = v.as_bool();
    } else {
      return BuiltinError::type("operand 2 object contained unknown key " + key);
    }
  }
  if (!explicit_set) pretty = implicit_pretty;
  std::string out = a[0].to_json_text();
  if (pretty) out = prefix + indent_json(out, prefix, indent);
  if (ctx.budget && !ctx.budget->charge_bytes(out.size())) return BuiltinError::budget();
  return Value::string(std::move(out));
}

BuiltinResult json_unmarshal(Args a, BuiltinContext& ctx) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  if (ctx.budget && !ctx.budget->charge_bytes(a[0].as_string().size())) return BuiltinError::budget();
  std::string err;
  auto v = Value::parse_json(a[0].as_string(), &err);
  if (!v) return BuiltinError::builtin(err);
  return *v;
}

BuiltinResult json_is_valid(Args a, BuiltinContext&) {
  if (!a[0].is_string()) return Value::boolean(false);
  return Value::boolean(Value::parse_json(a[0].as_string()).has_value());
}

// A path operand element: "a/b/c" (JSON-pointer escapes ~0 ~1) or an array of segments.
std::optional<BuiltinError> parse_path(const Value& p, Array& out) {
  if (p.is_string()) {
    const std::string& s = p.as_string();
    if (s.empty()) return std::nullopt;
    const size_t start = s.find_first_not_of('/');
    for (std::string& part :
         go::split(start == std::string::npos ? "" : std::string_view(s).substr(start), "/"))
      out.push_back(Value::string(*go::replace(*go::replace(part, {{"~1", "/"}}), {{"~0", "~"}})));
    return std::nullopt;
  }
  if (p.is_array()) {
    out = p.as_array();
    return std::nullopt;
  }
  return BuiltinError::type(std::string("operand 2 must be one of {set, array} containing string paths or "
                                        "array of path segments but got ") +
                            p.type_name());
}

// The paths as a tree: {"a": {"b": null}} for "a/b"; a leaf ends every longer path below it.
struct PathNode {
  bool leaf = false;
  std::vector<Value> keys;     // keys[i] leads to kids[i]
  std::vector<PathNode> kids;  // (a vector of pairs would need PathNode complete here)
  PathNode* child(const Value& k) {
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == k) return &kids[i];
    return nullptr;
  }
  const PathNode* child(const Value& k) const { return const_cast<PathNode*>(this)->child(k); }
  PathNode* add(const Value& k, bool is_leaf) {
    keys.push_back(k);
    kids.emplace_back();
    kids.back().leaf = is_leaf;
    return &kids.back();
  }
};

std::optional<BuiltinError> paths_tree(const Value& operand, PathNode& root) {
  if (!operand.is_array() && !operand.is_set())
    return BuiltinError::operand(2, bi::one_of({"set", "array"}), operand);
  for (const Value& p : bi::elements(operand)) {
    Array path;
    if (auto e = parse_path(p, path)) return e;
    if (path.empty()) continue;
    PathNode* node = &root;
    bool done = false;
    for (size_t i = 0; i + 1 < path.size() && !done; ++i) {
      PathNode* c = node->child(path[i]);
      if (!c) {
        node = node->add(path[i], false);
      } else if (c->leaf) {
        done = true;
      } else {
        node = c;
      }
    }
    if (!done) {
      if (PathNode* c = node->child(path.back())) {
        *c = PathNode{};
        c->leaf = true;
      } else {
        node->add(path.back(), true);
      }
    }
  }
  return std::nullopt;
}

Value index_key(size_t i) { return Value::string(std::to_string(i)); }

// ast.Object.Filter: keep what the tree names, recursively.
Value filter(const Value& v, const PathNode& f) {
  if (f.leaf) return v;
  switch (v.kind()) {
    case Kind::Array: {
      Array out;
      for (size_t i = 0; i < v.as_array().size(); ++i)
        if (const PathNode* c = f.child(index_key(i))) out.push_back(filter(v.as_array()[i], *c));
      return Value::array(std::move(out));
    }
    case Kind::Set: {
      std::vector<Value> out;
      for (const Value& e : v.as_set())
        if (const PathNode* c = f.child(e)) out.push_back(filter(e, *c));
      return Value::set(std::move(out));
    }
    case Kind::Object: {
      ObjectItems out;
      for (const auto& [k, x] : v.as_object())
        if (const PathNode* c = f.child(k)) out.emplace_back(k, filter(x, *c));
      return Value::object(std::move(out));
    }
    default:
      return v;
  }
}

// json.remove's walk: drop what the tree marks as leaves; nullopt: removed.
std::optional<Value> remove(const Value& v, const PathNode* f) {
  if (!f) return v;
  if (f->leaf) return std::nullopt;
  switch (v.kind()) {
    case Kind::Object: {
      ObjectItems out;
      for (const auto& [k, x] : v.as_object())
        if (auto r = remove(x, f->child(k))) out.emplace_back(k, std::move(*r));
      return Value::object(std::move(out));
    }
    case Kind::Set: {
      std::vector<Value> out;
      for (const Value& e : v.as_set())
        if (auto r = remove(e, f->child(e))) out.push_back(std::move(*r));
      return Value::set(std::move(out));
    }
    case Kind::Array: {
      Array out;
      for (size_t i = 0; i < v.as_array().size(); ++i)
        if (auto r = remove(v.as_array()[i], f->child(index_key(i)))) out.push_back(std::move(*r));
      return Value::array(std::move(out));
    }
    default:
      return v;
  }
}

BuiltinResult json_filter(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::Object)) return *e;
  PathNode tree;
  if (auto e = paths_tree(a[1], tree)) return *e;
  return filter(a[0], tree);
}

BuiltinResult json_remove(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::Object)) return *e;
  PathNode tree;
  if (auto e = paths_tree(a[1], tree)) return *e;
  auto r = remove(a[0], &tree);
  if (!r) return BuiltinResult::undefined();
  return *r;
}

template <go::Base64 kEnc>
BuiltinResult base64_encode(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  return Value::string(go::base64_encode(a[0].as_string(), kEnc));
}

BuiltinResult base64_decode(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  auto r = go::base64_decode(a[0].as_string(), go::Base64::Std);
  if (!r) return BuiltinError::builtin(r.error().message);
  return Value::string(std::move(*r));
}

BuiltinResult base64_is_valid(Args a, BuiltinContext&) {
  if (!a[0].is_string()) return Value::boolean(false);
  return Value::boolean(go::base64_decode(a[0].as_string(), go::Base64::Std).has_value());
}

BuiltinResult base64url_decode(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  auto r = go::base64url_decode_unpadded(a[0].as_string());
  if (!r) return BuiltinError::builtin(r.error().message);
  return Value::string(std::move(*r));
}

BuiltinResult hex_encode(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  return Value::string(go::hex_encode(a[0].as_string()));
}

BuiltinResult hex_decode(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  auto r = go::hex_decode(a[0].as_string());
  if (!r) return BuiltinError::builtin("encoding/hex: " + r.error().message);
  return Value::string(std::move(*r));
}

BuiltinResult urlquery_encode(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  return Value::string(go::query_escape(a[0].as_string()));
}

BuiltinResult urlquery_decode(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  auto r = go::query_unescape(a[0].as_string());
  if (!r) return BuiltinError::builtin(r.error().message);
  return Value::string(std::move(*r));
}

BuiltinResult urlquery_encode_object(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::Object)) return *e;
  const BuiltinError bad =
      BuiltinError::type("operand 1 values must be string, array[string], or set[string]");
  // url.Values.Encode: keys sorted (by their JSON text), values in order.
  std::vector<std::pair<std::string, std::vector<std::string>>> pairs;
  for (const auto& [k, v] : a[0].as_object()) {
    std::string key = k.is_string() ? k.as_string() : k.to_json_text();
    std::vector<std::string> values;
    if (v.is_string()) {
      values.push_back(v.as_string());
    } else if (v.is_array() || v.is_set()) {
      for (const Value& e : bi::elements(v)) {
        if (!e.is_string()) return bad;
        values.push_back(e.as_string());
      }
    } else {
      return bad;
    }
    pairs.emplace_back(std::move(key), std::move(values));
  }
  std::sort(pairs.begin(), pairs.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  std::string out;
  for (const auto& [k, vs] : pairs)
    for (const auto& v : vs) {
      if (!out.empty()) out += '&';
      out += go::query_escape(k) + "=" + go::query_escape(v);
    }
  return Value::string(std::move(out));
}

BuiltinResult urlquery_decode_object(Args a, BuiltinContext&) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  std::vector<std::pair<std::string, Array>> params;
  std::unordered_map<std::string, size_t> index;  // key -> position in params
  std::optional<std::string> first_error;
  for (const std::string& part : go::split(a[0].as_string(), "&")) {
    if (part.empty()) continue;
    if (part.find(';') != std::string::npos) {
      if (!first_error) first_error = "invalid semicolon separator in query";
      continue;
    }
    const size_t eq = part.find('=');
    auto key = go::query_unescape(std::string_view(part).substr(0, eq));
    auto value = go::query_unescape(eq == std::string::npos ? std::string_view()
                                                            : std::string_view(part).substr(eq + 1));
    if (!key || !value) {
      if (!first_error) first_error = !key ? key.error().message : value.error().message;
      continue;
    }
    auto [slot, fresh] = index.try_emplace(*key, params.size());
    if (fresh) params.emplace_back(*key, Array{});
    params[slot->second].second.push_back(Value::string(std::move(*value)));
  }
  if (first_error) return BuiltinError::builtin(*first_error);
  ObjectItems out;
  for (auto& [k, vs] : params) out.emplace_back(Value::string(k), Value::array(std::move(vs)));
  return Value::object(std::move(out));
}

// ---- YAML (YAML 1.1 scalars as go-yaml resolves them: sigs.k8s.io/yaml is what OPA uses)

std::optional<Value> yaml_scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str") return Value::string(s);
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return Value::null();
  static const char* kTrue[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"};
  static const char* kFalse[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"};
  for (const char* t : kTrue)
    if (s == t) return Value::boolean(true);
  for (const char* f : kFalse)
    if (s == f) return Value::boolean(false);
  std::string plain;
  for (char c : s)
    if (c != '_') plain += c;
  if (auto num = Value::number_from_text(plain)) return num;
  if (plain.size() > 2 && plain[0] == '0' && (plain[1] == 'x' || plain[1] == 'X')) {
    try {
      size_t used = 0;
      const long long v = std::stoll(plain.substr(2), &used, 16);
      if (used == plain.size() - 2) return Value::number(static_cast<int64_t>(v));
    } catch (...) {
    }
  }
  if (plain == ".inf" || plain == ".Inf" || plain == "-.inf" || plain == ".nan" || plain == ".NaN")
    return std::nullopt;  // not representable in JSON: go-yaml → JSON fails too
  if (plain.size() > 1 && (plain[0] == '+' || plain[0] == '.')) {
    if (auto num = Value::number_from_text(plain[0] == '+' ? plain.substr(1) : "0" + plain)) return num;
  }
  return Value::string(s);
}

// `nodes` counts every node converted: aliases share nodes in yaml-cpp but are expanded here, so
// a "billion laughs" document is cut off instead of exhausting memory.
Result<Value> from_yaml(const YAML::Node& n, int depth, size_t& nodes) {
  constexpr size_t kMaxNodes = 1 << 20;
  if (depth > 512) return fail("yaml", "yaml: exceeded max depth");
  if (++nodes > kMaxNodes) return fail("yaml", "yaml: document too large");
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return Value::null();
    case YAML::NodeType::Scalar: {
      auto v = yaml_scalar(n);
      if (!v) return fail("yaml", "json: unsupported value: " + n.Scalar());
      return *v;
    }
    case YAML::NodeType::Sequence: {
      Array out;
      for (const auto& e : n) {
        auto v = from_yaml(e, depth + 1, nodes);
        if (!v) return v;
        out.push_back(std::move(*v));
      }
      return Value::array(std::move(out));
    }
    case YAML::NodeType::Map: {
      ObjectItems out;
      for (const auto& kv : n) {
        auto k = from_yaml(kv.first, depth + 1, nodes);
        if (!k) return k;
        auto v = from_yaml(kv.second, depth + 1, nodes);
        if (!v) return v;
        // JSON keys are strings: scalars keep their source text, as sigs.k8s.io/yaml does.
        Value key =
            k->is_string() ? *k : Value::string(kv.first.IsScalar() ? kv.first.Scalar() : k->to_json_text());
        out.emplace_back(std::move(key), std::move(*v));
      }
      return Value::object(std::move(out));
    }
  }
  return Value::null();
}

// Explicit document starts ("---" lines). yaml-cpp silently begins a new document where a line is
// indented less than the root node ("  a:\nb: 1"), which go-yaml rejects; more documents than
// markers allow is that case.
size_t document_markers(const std::string& text) {
  size_t n = 0;
  for (const std::string& line : go::split(text, "\n"))
    if (line == "---" || line.starts_with("--- ") || line == "---\r") ++n;
  return n;
}

// Deepest [ / { nesting (quotes ignored: an over-estimate only refuses more). yaml-cpp parses flow
// collections recursively without a limit, so deep nesting is refused before it gets there.
bool flow_too_deep(const std::string& text) {
  int depth = 0;
  for (char c : text) {
    if (c == '[' || c == '{') {
      if (++depth > 256) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

// YAML allows no C0 control character but tab, line feed and carriage return (nor DEL), and go-yaml
// refuses them up front. yaml-cpp does not: a backspace in a scalar made it emit documents
// without end (a fuzzer input took gigabytes), so they are refused before it sees the text.
bool has_control_character(std::string_view text) {
  for (unsigned char c : text) {
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return true;
  }
  return false;
}

// Listens to a document's parse events and keeps nothing: counting documents without building them.
class IgnoreEvents : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// The number of documents yaml-cpp reads in `text`, counted up to `limit` + 1. Not YAML::LoadAll:
// on some malformed streams (a stray "," or "!" at the top) yaml-cpp hands back empty documents
// without consuming input, and LoadAll collects them until memory runs out (rego_builtins_fuzz).
size_t count_documents(const std::string& text, size_t limit) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  IgnoreEvents ignore;
  size_t n = 0;
  while (n <= limit && parser.HandleNextDocument(ignore)) ++n;
  return n;
}

Result<Value> parse_yaml(const std::string& text) {
  if (has_control_character(text)) return fail("yaml", "yaml: control characters are not allowed");
  if (flow_too_deep(text)) return fail("yaml", "yaml: exceeded max depth");
  try {
    const size_t markers = document_markers(text);
    const size_t documents = count_documents(text, markers + 1);
    if (documents == 0) return Value::null();
    if (documents > markers + 1) return fail("yaml", "yaml: line 2: did not find expected key");
    size_t nodes = 0;
    return from_yaml(YAML::Load(text), 0, nodes);  // the first document
  } catch (const YAML::Exception& e) {
    return fail("yaml", std::string("yaml: ") + e.what());
  }
}

void emit_yaml(YAML::Emitter& out, const Value& v) {
  switch (v.kind()) {
    case Kind::Null:
      out << YAML::Null;
      break;
    case Kind::Bool:
      out << (v.as_bool() ? "true" : "false");
      break;
    case Kind::Number:
      out << v.number_text();
      break;
    case Kind::String: {
      // Quote strings YAML would read back as another type.
      const auto back = yaml_scalar(YAML::Node(v.as_string()));
      if (back && back->is_string()) {
        out << v.as_string();
      } else {
        out << YAML::DoubleQuoted << v.as_string();
      }
      break;
    }
    case Kind::Array:
    case Kind::Set:
      out << YAML::BeginSeq;
      for (const Value& e : bi::elements(v)) emit_yaml(out, e);
      out << YAML::EndSeq;
      break;
    case Kind::Object:
      out << YAML::BeginMap;
      for (const auto& [k, x] : v.as_object()) {
        out << YAML::Key << (k.is_string() ? k.as_string() : k.to_json_text()) << YAML::Value;
        emit_yaml(out, x);
      }
      out << YAML::EndMap;
      break;
  }
}

BuiltinResult yaml_marshal(Args a, BuiltinContext& ctx) {
  YAML::Emitter out;
  emit_yaml(out, a[0]);
  std::string text = std::string(out.c_str()) + "\n";
  if (ctx.budget && !ctx.budget->charge_bytes(text.size())) return BuiltinError::budget();
  return Value::string(std::move(text));
}

BuiltinResult yaml_unmarshal(Args a, BuiltinContext& ctx) {
  if (auto e = want(a, 1, Kind::String)) return *e;
  if (ctx.budget && !ctx.budget->charge_bytes(a[0].as_string().size() * 2)) return BuiltinError::budget();
  auto v = parse_yaml(a[0].as_string());
  if (!v) return BuiltinError::builtin(v.error().message);
  return *v;
}

BuiltinResult yaml_is_valid(Args a, BuiltinContext&) {
  if (!a[0].is_string()) return Value::boolean(false);
  return Value::boolean(parse_yaml(a[0].as_string()).has_value());
}

}  // namespace

void register_encoding(Registry& r) {
  const uint8_t S = kStringType;
  r.add({"json.marshal", 1, json_marshal, false, false, false, {}});
  r.add({"json.marshal_with_options",
         2,
         json_marshal_with_options,
         false,
         false,
         false,
         {kAnyType, kObjectType}});
  r.add({"json.unmarshal", 1, json_unmarshal, false, false, false, {S}});
  r.add({"json.is_valid", 1, json_is_valid, false, false, false, {}});
  r.add({"json.filter", 2, json_filter, false, false, false, {kObjectType, kArrayType | kSetType}});
  r.add({"json.remove", 2, json_remove, false, false, false, {kObjectType, kArrayType | kSetType}});
  r.add({"yaml.marshal", 1, yaml_marshal, false, false, false, {}});
  r.add({"yaml.unmarshal", 1, yaml_unmarshal, false, false, false, {S}});
  r.add({"yaml.is_valid", 1, yaml_is_valid, false, false, false, {}});
  r.add({"base64.encode", 1, base64_encode<go::Base64::Std>, false, false, false, {S}});
  r.add({"base64.decode", 1, base64_decode, false, false, false, {S}});
  r.add({"base64.is_valid", 1, base64_is_valid, false, false, false, {}});
  r.add({"base64url.encode", 1, base64_encode<go::Base64::Url>, false, false, false, {S}});
  r.add({"base64url.encode_no_pad", 1, base64_encode<go::Base64::RawUrl>, false, false, false, {S}});
  r.add({"base64url.decode", 1, base64url_decode, false, false, false, {S}});
  r.add({"hex.encode", 1, hex_encode, false, false, false, {S}});
  r.add({"hex.decode", 1, hex_decode, false, false, false, {S}});
  r.add({"urlquery.encode", 1, urlquery_encode, false, false, false, {S}});
  r.add({"urlquery.decode", 1, urlquery_decode, false, false, false, {S}});
  r.add({"urlquery.encode_object", 1, urlquery_encode_object, false, false, false, {kObjectType}});
  r.add({"urlquery.decode_object", 1, urlquery_decode_object, false, false, false, {S}});
}

}  // namespace mg::rego
