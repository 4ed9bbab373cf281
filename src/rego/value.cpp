// rego/value.cpp — Value nodes, OPA's total order, hashing, JSON/Rego text forms, exact numbers
// (the JSON parser is value_json.cpp).
#include "rego/value.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "rego/bigint.h"

namespace mg::rego {

namespace {

struct NodeBase {
  size_t hash = 0;
};
struct StringNode : NodeBase {
  std::string s;
};
// A number that is not an inline int64: a big integer (integral, text canonical) or a non-integer
// kept with its literal text.
struct NumberNode : NodeBase {
  std::string text;
  double d = 0;
  bool integral = false;
};
struct ArrayNode : NodeBase {
  Array items;
};
struct ObjectNode : NodeBase {
  ObjectItems items;
};
struct SetNode : NodeBase {
  std::vector<Value> items;
};

size_t mix(size_t h, size_t v) { return h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)); }

size_t hash_int(int64_t i) { return std::hash<int64_t>{}(i)*0x9e3779b97f4a7c15ULL + 3; }
size_t hash_double(double d) {
  if (d == 0) d = 0;  // -0 == 0
  if (std::floor(d) == d && std::fabs(d) < 9.2e18) return hash_int(static_cast<int64_t>(d));
  return std::hash<double>{}(d) + 3;
}

}  // namespace

// Friend of Value: the node accessors.
struct ValueAccess {
  static const NodeBase* base(const Value& v) { return static_cast<const NodeBase*>(v.node_.get()); }
  static const StringNode& str(const Value& v) { return *static_cast<const StringNode*>(v.node_.get()); }
  static const NumberNode* num(const Value& v) { return static_cast<const NumberNode*>(v.node_.get()); }
  static const ArrayNode& arr(const Value& v) { return *static_cast<const ArrayNode*>(v.node_.get()); }
  static const ObjectNode& obj(const Value& v) { return *static_cast<const ObjectNode*>(v.node_.get()); }
  static const SetNode& set(const Value& v) { return *static_cast<const SetNode*>(v.node_.get()); }
  static Value make(Kind k, std::shared_ptr<const void> node) {
    Value v;
    v.kind_ = k;
    v.node_ = std::move(node);
    return v;
  }
  static Value make_int(int64_t i) {
    Value v;
    v.kind_ = Kind::Number;
    v.int_ = i;
    return v;
  }
  static int64_t inline_int(const Value& v) { return v.int_; }
  static const void* node(const Value& v) { return v.node_.get(); }
  // a == b for an object key `a` and a looked-up key `b` whose hash is `hb`: strings by node, then
  // by their precomputed hashes, and only then by text.
  static bool equal_hashed(const Value& a, const Value& b, size_t hb) {
    if (a.kind_ != b.kind_) return false;
    if (a.kind_ != Kind::String) return a == b;
    if (a.node_ == b.node_) return true;
    if (base(a)->hash != hb) return false;
    return str(a).s == str(b).s;
  }
};

namespace {

Value make_number_node(std::string text, double d, bool integral) {
  auto n = std::make_shared<NumberNode>();
  n->text = std::move(text);
  n->d = d;
  n->integral = integral;
  n->hash = hash_double(d);
  return ValueAccess::make(Kind::Number, std::move(n));
}

// The exact integer behind a number, if it is integral and exactly known.
std::optional<BigInt> exact_integer(const Value& v) {
  if (v.is_int64()) return BigInt(ValueAccess::inline_int(v));
  const NumberNode* n = ValueAccess::num(v);
  if (n->integral) return BigInt::parse(n->text);
  if (std::floor(n->d) == n->d && std::fabs(n->d) < 9.007199254740992e15)
    return BigInt(static_cast<int64_t>(n->d));
  return std::nullopt;
}

Value from_big(const BigInt& b) {
  if (auto i = b.to_int64()) return ValueAccess::make_int(*i);
  std::string text = b.to_string();
  double d = std::strtod(text.c_str(), nullptr);
  return make_number_node(std::move(text), d, true);
}

std::string format_double(double d) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

bool valid_json_number(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  if (i >= s.size()) return false;
  if (s[i] == '0') {
    ++i;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  } else {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == start) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == start) return false;
  }
  return i == s.size();
}

// JSON string; `html` adds Go encoding/json's escaping of < > & (OPA's JSON output).
void append_json_string(std::string& out, std::string_view s, bool html = true) {
  static const char* hex = "0123456789abcdef";
  out.push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '<':
      case '>':
      case '&':  // Go's encoding/json escapes HTML characters
        if (!html) {
          out.push_back(static_cast<char>(c));
          break;
        }
        out += "\\u00";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
        } else if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                   (static_cast<unsigned char>(s[i + 2]) == 0xa8 ||
                    static_cast<unsigned char>(s[i + 2]) == 0xa9)) {
          out += static_cast<unsigned char>(s[i + 2]) == 0xa8 ? "\\u2028" : "\\u2029";
          i += 2;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

}  // namespace

// ---------------------------------------------------------------- constructors

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::Bool;
  v.bool_ = b;
  return v;
}

Value Value::number(int64_t i) { return ValueAccess::make_int(i); }

Value Value::number(double d) {
  if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.2e18)
    return ValueAccess::make_int(static_cast<int64_t>(d));
  return make_number_node(format_double(d), d, false);
}

std::optional<Value> Value::number_from_text(std::string_view text) {
  if (!valid_json_number(text)) return std::nullopt;
  bool integral = text.find_first_of(".eE") == std::string_view::npos;
  if (integral) {
    int64_t i = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), i);
    if (r.ec == std::errc() && r.ptr == text.data() + text.size()) return ValueAccess::make_int(i);
    auto big = BigInt::parse(text);
    if (!big) return std::nullopt;
    return from_big(*big);
  }
  std::string s(text);
  double d = std::strtod(s.c_str(), nullptr);
  return make_number_node(std::move(s), d, false);
}

Value Value::string(std::string s) {
  auto n = std::make_shared<StringNode>();
  n->hash = std::hash<std::string>{}(s) + 4;
  n->s = std::move(s);
  return ValueAccess::make(Kind::String, std::move(n));
}

Value Value::array(Array items) {
  auto n = std::make_shared<ArrayNode>();
  size_t h = 6;
  for (const auto& v : items) h = mix(h, v.hash());
  n->hash = h;
  n->items = std::move(items);
  return ValueAccess::make(Kind::Array, std::move(n));
}

Value Value::set(std::vector<Value> items) {
  std::sort(items.begin(), items.end(), [](const Value& a, const Value& b) { return a.compare(b) < 0; });
  items.erase(std::unique(items.begin(), items.end()), items.end());
  auto n = std::make_shared<SetNode>();
  size_t h = 8;
  for (const auto& v : items) h = mix(h, v.hash());
  n->hash = h;
  n->items = std::move(items);
  return ValueAccess::make(Kind::Set, std::move(n));
}

Value Value::object(ObjectItems items) {
  auto key_less = [](const auto& a, const auto& b) { return a.first.compare(b.first) < 0; };
  // Stable, so that the last of repeated keys can win. Small objects (most built per evaluation)
  // are sorted in place by insertion, without std::stable_sort's temporary buffer.
  if (items.size() <= 16) {
    for (size_t i = 1; i < items.size(); ++i) {
      if (!key_less(items[i], items[i - 1])) continue;
      auto kv = std::move(items[i]);
      size_t j = i;
      for (; j > 0 && key_less(kv, items[j - 1]); --j) items[j] = std::move(items[j - 1]);
      items[j] = std::move(kv);
    }
  } else {
    std::stable_sort(items.begin(), items.end(), key_less);
  }
  // For a repeated key keep the last one written (in place).
  size_t kept = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (kept > 0 && items[kept - 1].first == items[i].first) {
      items[kept - 1].second = std::move(items[i].second);
    } else {
      if (kept != i) items[kept] = std::move(items[i]);
      ++kept;
    }
  }
  items.resize(kept);
  auto n = std::make_shared<ObjectNode>();
  size_t h = 7;
  for (const auto& [k, v] : items) h = mix(mix(h, k.hash()), v.hash());
  n->hash = h;
  n->items = std::move(items);
  return ValueAccess::make(Kind::Object, std::move(n));
}

Value Value::empty_array() {
  static const Value v = array({});
  return v;
}
Value Value::empty_set() {
  static const Value v = set({});
  return v;
}
Value Value::empty_object() {
  static const Value v = object({});
  return v;
}

// ---------------------------------------------------------------- accessors

const char* Value::type_name(Kind k) {
  switch (k) {
    case Kind::Null:
      return "null";
    case Kind::Bool:
      return "boolean";
    case Kind::Number:
      return "number";
    case Kind::String:
      return "string";
    case Kind::Array:
      return "array";
    case Kind::Object:
      return "object";
    case Kind::Set:
      return "set";
  }
  return "unknown";
}
const char* Value::type_name() const { return type_name(kind_); }

bool Value::as_bool() const {
  assert(kind_ == Kind::Bool);
  return bool_;
}
const std::string& Value::as_string() const {
  assert(kind_ == Kind::String);
  return ValueAccess::str(*this).s;
}
const Array& Value::as_array() const {
  assert(kind_ == Kind::Array);
  return ValueAccess::arr(*this).items;
}
const std::vector<Value>& Value::as_set() const {
  assert(kind_ == Kind::Set);
  return ValueAccess::set(*this).items;
}
const ObjectItems& Value::as_object() const {
  assert(kind_ == Kind::Object);
  return ValueAccess::obj(*this).items;
}

bool Value::is_integer() const {
  if (kind_ != Kind::Number) return false;
  if (!node_) return true;
  const NumberNode* n = ValueAccess::num(*this);
  return n->integral || (std::isfinite(n->d) && std::floor(n->d) == n->d);
}

std::optional<int64_t> Value::as_int64() const {
  if (kind_ != Kind::Number) return std::nullopt;
  if (!node_) return int_;
  const NumberNode* n = ValueAccess::num(*this);
  if (n->integral) return std::nullopt;  // big integers never fit (they would be inline)
  if (std::floor(n->d) == n->d && std::fabs(n->d) < 9.2e18) return static_cast<int64_t>(n->d);
  return std::nullopt;
}

double Value::as_double() const {
  if (kind_ != Kind::Number) return 0;
  if (!node_) return static_cast<double>(int_);
  return ValueAccess::num(*this)->d;
}

std::string Value::number_text() const {
  if (!node_) return std::to_string(int_);
  return ValueAccess::num(*this)->text;
}

size_t Value::size() const {
  switch (kind_) {
    case Kind::String:
      return as_string().size();
    case Kind::Array:
      return as_array().size();
    case Kind::Set:
      return as_set().size();
    case Kind::Object:
      return as_object().size();
    default:
      return 0;
  }
}

const Value* Value::get(const Value& key) const {
  switch (kind_) {
    case Kind::Object: {
      const auto& items = as_object();
      // Most objects are small (a document's levels): scanning compares precomputed hashes and
      // reads key text only for the match, where a binary search orders by text at every step.
      if (items.size() <= 16) {
        const size_t h = key.hash();
        for (const auto& kv : items)
          if (ValueAccess::equal_hashed(kv.first, key, h)) return &kv.second;
        return nullptr;
      }
      auto it = std::lower_bound(items.begin(), items.end(), key,
                                 [](const auto& kv, const Value& k) { return kv.first.compare(k) < 0; });
      if (it != items.end() && it->first == key) return &it->second;
      return nullptr;
    }
    case Kind::Array: {
      if (!key.is_number()) return nullptr;
      auto i = key.as_int64();
      if (!i || *i < 0 || static_cast<size_t>(*i) >= as_array().size()) return nullptr;
      // OPA: a non-integer literal index (1.0) is still an index only when it is integral.
      return &as_array()[static_cast<size_t>(*i)];
    }
    case Kind::Set: {
      const auto& items = as_set();
      auto it = std::lower_bound(items.begin(), items.end(), key,
                                 [](const Value& a, const Value& k) { return a.compare(k) < 0; });
      if (it != items.end() && *it == key) return &*it;
      return nullptr;
    }
    default:
      return nullptr;
  }
}

const Value* Value::get(std::string_view object_key) const {
  if (kind_ != Kind::Object) return nullptr;
  const auto& items = as_object();
  if (items.size() <= 16) {  // as get(const Value&): a scan, text compared only at equal lengths
    for (const auto& kv : items)
      if (kv.first.kind_ == Kind::String && ValueAccess::str(kv.first).s == object_key) return &kv.second;
    return nullptr;
  }
  // Strings sort after null/bool/number keys and among themselves bytewise.
  auto it = std::lower_bound(items.begin(), items.end(), object_key, [](const auto& kv, std::string_view k) {
    if (kv.first.kind() != Kind::String) return kv.first.kind() < Kind::String;
    return std::string_view(kv.first.as_string()) < k;
  });
  if (it != items.end() && it->first.is_string() && it->first.as_string() == object_key) return &it->second;
  return nullptr;
}

bool Value::contains(const Value& element) const {
  if (kind_ == Kind::Array) {
    for (const auto& v : as_array())
      if (v == element) return true;
    return false;
  }
  if (kind_ == Kind::Object || kind_ == Kind::Set) return get(element) != nullptr;
  return false;
}

// ---------------------------------------------------------------- order and hash

size_t Value::hash() const {
  switch (kind_) {
    case Kind::Null:
      return 1;
    case Kind::Bool:
      return bool_ ? 2 : 3;
    case Kind::Number:
      return node_ ? ValueAccess::base(*this)->hash : hash_int(int_);
    default:
      return ValueAccess::base(*this)->hash;
  }
}

int Value::compare(const Value& o) const {
  if (kind_ != o.kind_) return kind_ < o.kind_ ? -1 : 1;
  if (node_ && node_ == o.node_) return 0;
  switch (kind_) {
    case Kind::Null:
      return 0;
    case Kind::Bool:
      return bool_ == o.bool_ ? 0 : (bool_ ? 1 : -1);
    case Kind::Number:
      return numeric::compare(*this, o);
    case Kind::String: {
      int c = std::string_view(ValueAccess::str(*this).s).compare(ValueAccess::str(o).s);
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case Kind::Array:
    case Kind::Set: {
      const auto& a = kind_ == Kind::Array ? as_array() : as_set();
      const auto& b = kind_ == Kind::Array ? o.as_array() : o.as_set();
      size_t n = std::min(a.size(), b.size());
      for (size_t i = 0; i < n; ++i)
        if (int c = a[i].compare(b[i])) return c;
      return a.size() == b.size() ? 0 : (a.size() < b.size() ? -1 : 1);
    }
    case Kind::Object: {
      const auto& a = as_object();
      const auto& b = o.as_object();
      size_t n = std::min(a.size(), b.size());
      for (size_t i = 0; i < n; ++i) {
        if (int c = a[i].first.compare(b[i].first)) return c;
        if (int c = a[i].second.compare(b[i].second)) return c;
      }
      return a.size() == b.size() ? 0 : (a.size() < b.size() ? -1 : 1);
    }
  }
  return 0;
}

bool Value::operator==(const Value& o) const {
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case Kind::Null:
      return true;
    case Kind::Bool:
      return bool_ == o.bool_;
    case Kind::Number:
      if (!node_ && !o.node_) return int_ == o.int_;
      return numeric::compare(*this, o) == 0;
    case Kind::String:
      return ValueAccess::equal_hashed(*this, o, ValueAccess::base(o)->hash);
    default:
      if (node_ == o.node_) return true;
      if (hash() != o.hash()) return false;
      return compare(o) == 0;
  }
}

// ---------------------------------------------------------------- numbers

namespace numeric {

int compare(const Value& a, const Value& b) {
  if (a.is_int64() && b.is_int64()) {
    int64_t x = ValueAccess::inline_int(a), y = ValueAccess::inline_int(b);
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  auto x = exact_integer(a);
  auto y = exact_integer(b);
  if (x && y) return x->compare(*y);
  double dx = a.as_double(), dy = b.as_double();
  return dx < dy ? -1 : (dx > dy ? 1 : 0);
}

Value add(const Value& a, const Value& b) {
  if (a.is_int64() && b.is_int64()) {
    int64_t r;
    if (!__builtin_add_overflow(ValueAccess::inline_int(a), ValueAccess::inline_int(b), &r))
      return ValueAccess::make_int(r);
  }
  auto x = exact_integer(a);
  auto y = exact_integer(b);
  if (x && y) return from_big(x->add(*y));
  return Value::number(a.as_double() + b.as_double());
}

Value sub(const Value& a, const Value& b) {
  if (a.is_int64() && b.is_int64()) {
    int64_t r;
    if (!__builtin_sub_overflow(ValueAccess::inline_int(a), ValueAccess::inline_int(b), &r))
      return ValueAccess::make_int(r);
  }
  auto x = exact_integer(a);
  auto y = exact_integer(b);
  if (x && y) return from_big(x->sub(*y));
  return Value::number(a.as_double() - b.as_double());
}

Value mul(const Value& a, const Value& b) {
  if (a.is_int64() && b.is_int64()) {
    int64_t r;
    if (!__builtin_mul_overflow(ValueAccess::inline_int(a), ValueAccess::inline_int(b), &r))
      return ValueAccess::make_int(r);
  }
  auto x = exact_integer(a);
  auto y = exact_integer(b);
  if (x && y) return from_big(x->mul(*y));
  return Value::number(a.as_double() * b.as_double());
}

std::optional<Value> div(const Value& a, const Value& b) {
  if (b.as_double() == 0 && (!b.is_integer() || exact_integer(b)->is_zero())) return std::nullopt;
  auto x = exact_integer(a);
  auto y = exact_integer(b);
  if (x && y) {
    auto [q, r] = x->divmod(*y);
    if (r.is_zero()) return from_big(q);
  }
  return Value::number(a.as_double() / b.as_double());
}

std::optional<Value> rem(const Value& a, const Value& b) {
  if (a.is_int64() && b.is_int64()) {
    int64_t x = ValueAccess::inline_int(a), y = ValueAccess::inline_int(b);
    if (y == 0) return std::nullopt;
    if (y == -1) return ValueAccess::make_int(0);
    return ValueAccess::make_int(x % y);
  }
  auto x = exact_integer(a);
  auto y = exact_integer(b);
  if (!x || !y || y->is_zero()) return std::nullopt;
  return from_big(x->divmod(*y).second);
}

Value negate(const Value& a) { return sub(Value::number(int64_t{0}), a); }

}  // namespace numeric

// ---------------------------------------------------------------- text forms

void Value::append_json_text(std::string& out) const {
  switch (kind_) {
    case Kind::Null:
      out += "null";
      break;
    case Kind::Bool:
      out += bool_ ? "true" : "false";
      break;
    case Kind::Number:
      out += number_text();
      break;
    case Kind::String:
      append_json_string(out, as_string());
      break;
    case Kind::Array:
    case Kind::Set: {
      out.push_back('[');
      bool first = true;
      for (const auto& v : kind_ == Kind::Array ? as_array() : as_set()) {
        if (!first) out.push_back(',');
        first = false;
        v.append_json_text(out);
      }
      out.push_back(']');
      break;
    }
    case Kind::Object: {
      // Non-string keys print as their JSON text; JSON objects list keys sorted as strings.
      std::vector<std::pair<std::string, const Value*>> entries;
      entries.reserve(as_object().size());
      for (const auto& [k, v] : as_object())
        entries.emplace_back(k.is_string() ? k.as_string() : k.to_json_text(), &v);
      std::stable_sort(entries.begin(), entries.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      out.push_back('{');
      bool first = true;
      for (const auto& [k, v] : entries) {
        if (!first) out.push_back(',');
        first = false;
        append_json_string(out, k);
        out.push_back(':');
        v->append_json_text(out);
      }
      out.push_back('}');
      break;
    }
  }
}

std::string Value::to_json_text() const {
  std::string out;
  append_json_text(out);
  return out;
}

void Value::append_rego_text(std::string& out) const {
  switch (kind_) {
    case Kind::Null:
    case Kind::Bool:
    case Kind::Number:
      append_json_text(out);
      break;
    case Kind::String:
      // OPA prints strings Go-quoted (strconv.Quote): JSON escaping without the HTML escapes.
      append_json_string(out, as_string(), /*html=*/false);
      break;
    case Kind::Array: {
      out.push_back('[');
      bool first = true;
      for (const auto& v : as_array()) {
        if (!first) out += ", ";
        first = false;
        v.append_rego_text(out);
      }
      out.push_back(']');
      break;
    }
    case Kind::Set: {
      if (as_set().empty()) {
        out += "set()";
        break;
      }
      out.push_back('{');
      bool first = true;
      for (const auto& v : as_set()) {
        if (!first) out += ", ";
        first = false;
        v.append_rego_text(out);
      }
      out.push_back('}');
      break;
    }
    case Kind::Object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [k, v] : as_object()) {
        if (!first) out += ", ";
        first = false;
        k.append_rego_text(out);
        out += ": ";
        v.append_rego_text(out);
      }
      out.push_back('}');
      break;
    }
  }
}

std::string Value::to_rego_text() const {
  std::string out;
  append_rego_text(out);
  return out;
}

nlohmann::json Value::to_json() const {
  switch (kind_) {
    case Kind::Null:
      return nullptr;
    case Kind::Bool:
      return bool_;
    case Kind::Number:
      if (!node_) return int_;
      return ValueAccess::num(*this)->d;
    case Kind::String:
      return as_string();
    case Kind::Array:
    case Kind::Set: {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& v : kind_ == Kind::Array ? as_array() : as_set()) arr.push_back(v.to_json());
      return arr;
    }
    case Kind::Object: {
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& [k, v] : as_object())
        obj[k.is_string() ? k.as_string() : k.to_json_text()] = v.to_json();
      return obj;
    }
  }
  return nullptr;
}

Value Value::from_json(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return Value();
    case nlohmann::json::value_t::boolean:
      return boolean(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return number(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return number(static_cast<int64_t>(u));
      return *number_from_text(std::to_string(u));
    }
    case nlohmann::json::value_t::number_float:
      return number(j.get<double>());
    case nlohmann::json::value_t::string:
      return string(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      Array items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json(e));
      return array(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      ObjectItems items;
      items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it)
        items.emplace_back(string(it.key()), from_json(it.value()));
      return object(std::move(items));
    }
    default:
      return Value();
  }
}

}  // namespace mg::rego
