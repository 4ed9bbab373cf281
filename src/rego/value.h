// rego/value.h — the Rego value model: null, boolean, number, string, array, set, object.
// Values are immutable and cheap to copy (small integers, booleans and null inline; everything else
// a shared immutable node), so compiled plans, data documents and evaluation results share them
// across threads without locks. Sets and objects keep their elements sorted in OPA's total order,
// so equality, ordering and JSON output are deterministic and lookups are binary searches.
// Numbers follow OPA's precision rules: integers are exact at any size (int64 inline, larger ones as
// decimal text), non-integers keep the text they were written with (`1.0` prints as `1.0`).
// STABLE INTERFACE shared with the built-in functions (builtins_*.cpp): additive changes only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mg::rego {

// Declaration order is OPA's sort order across types (null < boolean < number < string < array <
// object < set).
enum class Kind : uint8_t { Null = 0, Bool, Number, String, Array, Object, Set };

// Bit per Kind, for type masks (builtins.h).
constexpr uint8_t kind_bit(Kind k) { return static_cast<uint8_t>(1u << static_cast<unsigned>(k)); }

class Value;
using Array = std::vector<Value>;
using ObjectItems = std::vector<std::pair<Value, Value>>;

class Value {
 public:
  Value() = default;  // null

  // ---- constructors
  static Value null() { return Value(); }
  static Value boolean(bool b);
  static Value number(int64_t i);
  static Value number(int i) { return number(static_cast<int64_t>(i)); }
  static Value number(double d);  // integral doubles that fit int64 become exact integers
  // A JSON/Rego number literal ("12", "-3.5e2", "18446744073709551617"). nullopt if malformed.
  static std::optional<Value> number_from_text(std::string_view text);
  static Value string(std::string s);
  static Value string(std::string_view s) { return string(std::string(s)); }
  static Value string(const char* s) { return string(std::string(s)); }
  static Value array(Array items);
  static Value set(std::vector<Value> items);  // sorts and removes duplicates
  static Value object(ObjectItems items);      // sorts by key; for a repeated key the last wins
  static Value empty_array();
  static Value empty_set();
  static Value empty_object();

  // ---- kind
  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_number() const { return kind_ == Kind::Number; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_set() const { return kind_ == Kind::Set; }
  bool is_object() const { return kind_ == Kind::Object; }
  bool is_collection() const { return kind_ >= Kind::Array; }
  // OPA's type name: "null", "boolean", "number", "string", "array", "object", "set".
  const char* type_name() const;
  static const char* type_name(Kind k);

  // ---- accessors (precondition: the matching kind; checked by assert)
  bool as_bool() const;
  const std::string& as_string() const;
  const Array& as_array() const;
  const std::vector<Value>& as_set() const;  // sorted, unique
  const ObjectItems& as_object() const;      // sorted by key, unique keys

  // Numbers. An integer is exact at any size; a non-integer is a decimal kept as text + double.
  bool is_integer() const;                  // integral value (any size)
  std::optional<int64_t> as_int64() const;  // the value if integral and within int64
  double as_double() const;                 // nearest double (big integers approximate)
  std::string number_text() const;          // exact JSON text ("3", "2.5", "1.0", "1e400")
  bool is_int64() const { return kind_ == Kind::Number && !node_; }

  // Collection size: elements of array/set, keys of object, bytes of string; 0 otherwise.
  size_t size() const;
  // Object lookup by key, array lookup by integral number index, set membership (returns the
  // element). nullptr when absent or when this is not a collection.
  const Value* get(const Value& key) const;
  const Value* get(std::string_view object_key) const;  // object with a string key
  bool contains(const Value& element) const;            // set element / object key / array element

  // ---- ordering and hashing (OPA's total order; numbers compare by value: 1 == 1.0)
  int compare(const Value& other) const;
  bool operator==(const Value& other) const;
  bool operator!=(const Value& other) const { return !(*this == other); }
  bool operator<(const Value& other) const { return compare(other) < 0; }
  size_t hash() const;  // O(1): computed once when the node is built

  // ---- text forms
  // JSON as `opa eval` prints it: sets as sorted arrays, non-string object keys as their JSON text,
  // numbers exactly. Compact (no spaces).
  std::string to_json_text() const;
  void append_json_text(std::string& out) const;
  // Rego source form (as OPA's String(): `{"a": 1}`, `{1, 2}`, `set()`, `"s"`), used by
  // sprintf("%v") and print for composite values and in error messages.
  std::string to_rego_text() const;
  void append_rego_text(std::string& out) const;
  // nlohmann::json (sets -> arrays, non-string keys -> JSON text; big numbers become doubles).
  nlohmann::json to_json() const;
  static Value from_json(const nlohmann::json& j);
  // Parses JSON text exactly (numbers keep their precision). nullopt + message on error.
  static std::optional<Value> parse_json(std::string_view text, std::string* error = nullptr);

 private:
  friend struct ValueAccess;
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  int64_t int_ = 0;                   // Number stored inline when node_ is null
  std::shared_ptr<const void> node_;  // StringNode / NumberNode / ArrayNode / ObjectNode / SetNode
};

struct ValueHash {
  size_t operator()(const Value& v) const { return v.hash(); }
};

// Builds a set or an object incrementally (cheaper than Value::set for many inserts; the result is
// sorted once in finish()).
class SetBuilder {
 public:
  void add(Value v) { items_.push_back(std::move(v)); }
  size_t size() const { return items_.size(); }
  Value finish() { return Value::set(std::move(items_)); }

 private:
  std::vector<Value> items_;
};

class ObjectBuilder {
 public:
  void add(Value key, Value value) { items_.emplace_back(std::move(key), std::move(value)); }
  Value finish() { return Value::object(std::move(items_)); }

 private:
  ObjectItems items_;
};

// Exact arithmetic with OPA's semantics: integers exact at any size; non-integers in double
// precision; a result that is integral becomes an integer (1.5 + 2.5 == 4 prints "4").
// Preconditions: both operands are numbers.
namespace numeric {
Value add(const Value& a, const Value& b);
Value sub(const Value& a, const Value& b);
Value mul(const Value& a, const Value& b);
std::optional<Value> div(const Value& a, const Value& b);  // nullopt: divide by zero
// Remainder (sign of the dividend); nullopt: modulo by zero. Both must be integers (caller checks).
std::optional<Value> rem(const Value& a, const Value& b);
Value negate(const Value& a);
int compare(const Value& a, const Value& b);
}  // namespace numeric

}  // namespace mg::rego
