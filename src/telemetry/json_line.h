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
// The line is written through a pointer into `out`, sized ahead (a line per request: one bounds
// check per field instead of a string append per piece); finish() trims it to what was written.
class JsonLine {
 public:
  // Clears `out` (its capacity is kept for the next line, unless a huge line left it huge) and
  // opens the top-level object.
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
  // Where the next `n` bytes go (the string grows when it has less room than that).
  char* room(size_t n);
  void written_to(const char* end) { len_ = static_cast<size_t>(end - out_.data()); }
  // Writes `,"key":` (the comma unless first in its object) at `p`; returns the end.
  char* key(char* p, std::string_view k);
  // A key and a literal value (`null`, `true`, `{`…).
  JsonLine& literal(std::string_view k, std::string_view value);

  std::string& out_;
  size_t len_ = 0;  // bytes of the line written; out_ beyond them is room
  bool comma_ = false;
};

}  // namespace mg::telemetry
