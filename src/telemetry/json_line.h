// telemetry/json_line.h — writes one flat-or-nested JSON object into a caller's reused string
// without building a document first: the access log's per-request line (issue 5: building and
// dumping an nlohmann::json per request was ≥ 5% of a hop's CPU). Pure, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mg::telemetry {

// Appends `s` as the inside of a JSON string (no quotes): `"` `\` and control characters
// escaped (\b \f \n \r \t, else \u00XX), valid UTF-8 copied as is, each byte of an invalid
// sequence replaced by U+FFFD so the line stays valid JSON whatever arrived on the wire.
void append_json_escaped(std::string& out, std::string_view s);

// Keys are trusted literals (written unescaped); values are escaped.
class JsonLine {
 public:
  // Clears `out` (its capacity is kept for the next line) and opens the top-level object.
  explicit JsonLine(std::string& out);

  JsonLine& str(std::string_view key, std::string_view value);
  JsonLine& str_or_null(std::string_view key, const std::optional<std::string>& value);
  JsonLine& num(std::string_view key, int64_t value);
  JsonLine& num(std::string_view key, uint64_t value);
  JsonLine& num(std::string_view key, int value) { return num(key, static_cast<int64_t>(value)); }
  JsonLine& num(std::string_view key, unsigned value) { return num(key, static_cast<uint64_t>(value)); }
  JsonLine& num(std::string_view key, double value);  // NaN / infinity → null
  // Milliseconds to the microsecond ("12.345"): durations, without general double formatting.
  JsonLine& millis(std::string_view key, double ms);
  JsonLine& num_or_null(std::string_view key, const std::optional<int>& value);
  JsonLine& boolean(std::string_view key, bool value);
  JsonLine& boolean_or_null(std::string_view key, const std::optional<bool>& value);
  JsonLine& null(std::string_view key);
  JsonLine& open(std::string_view key);  // "key":{
  JsonLine& close();                     // }
  // Closes the top-level object; returns the finished line (no newline).
  std::string& finish();

 private:
  JsonLine& key(std::string_view k);
  std::string& out_;
  bool comma_ = false;
};

}  // namespace mg::telemetry
