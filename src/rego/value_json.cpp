// rego/value_json.cpp — the exact JSON parser behind Value::parse_json: numbers keep their text
// (so big and precise numbers survive as OPA keeps them), control characters and bad escapes are
// errors, \u escapes (surrogate pairs included) are decoded, and nesting is bounded so hostile
// input is an error, not a stack overflow.
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rego/utf8.h"
#include "rego/value.h"

namespace mg::rego {

namespace {

class JsonParser {
 public:
  JsonParser(std::string_view s, std::string* error) : s_(s), error_(error) {}

  std::optional<Value> parse() {
    auto v = value(0);
    if (!v) return std::nullopt;
    ws();
    if (i_ != s_.size()) return fail("unexpected trailing characters");
    return v;
  }

 private:
  std::optional<Value> fail(const char* what) {
    if (error_) *error_ = std::string(what) + " at offset " + std::to_string(i_);
    return std::nullopt;
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }
  bool lit(std::string_view w) {
    if (s_.substr(i_, w.size()) == w) {
      i_ += w.size();
      return true;
    }
    return false;
  }
  std::optional<Value> value(int depth) {
    if (depth > 512) return fail("nesting too deep");
    ws();
    if (i_ >= s_.size()) return fail("unexpected end of input");
    char c = s_[i_];
    if (c == '{') {
      ++i_;
      ObjectItems items;
      ws();
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return Value::object(std::move(items));
      }
      for (;;) {
        ws();
        if (i_ >= s_.size() || s_[i_] != '"') return fail("expected string key");
        auto k = str();
        if (!k) return std::nullopt;
        ws();
        if (i_ >= s_.size() || s_[i_] != ':') return fail("expected ':'");
        ++i_;
        auto v = value(depth + 1);
        if (!v) return std::nullopt;
        items.emplace_back(std::move(*k), std::move(*v));
        ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == '}') {
          ++i_;
          return Value::object(std::move(items));
        }
        return fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      ++i_;
      Array items;
      ws();
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return Value::array(std::move(items));
      }
      for (;;) {
        auto v = value(depth + 1);
        if (!v) return std::nullopt;
        items.push_back(std::move(*v));
        ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == ']') {
          ++i_;
          return Value::array(std::move(items));
        }
        return fail("expected ',' or ']'");
      }
    }
    if (c == '"') return str();
    if (lit("true")) return Value::boolean(true);
    if (lit("false")) return Value::boolean(false);
    if (lit("null")) return Value();
    size_t start = i_;
    while (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' ||
                              s_[i_] == '+' || s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E'))
      ++i_;
    auto n = Value::number_from_text(s_.substr(start, i_ - start));
    if (!n) {
      i_ = start;
      return fail("invalid value");
    }
    return n;
  }
  std::optional<Value> str() {
    ++i_;  // opening quote
    std::string out;
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return Value::string(std::move(out));
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i_ >= s_.size()) break;
      char e = s_[i_++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          auto cp = hex4();
          if (!cp) return fail("invalid \\u escape");
          uint32_t code = *cp;
          if (code >= 0xd800 && code < 0xdc00 && s_.substr(i_, 2) == "\\u") {
            i_ += 2;
            auto lo = hex4();
            if (!lo) return fail("invalid \\u escape");
            if (*lo >= 0xdc00 && *lo < 0xe000)
              code = 0x10000 + ((code - 0xd800) << 10) + (*lo - 0xdc00);
            else
              code = 0xfffd;
          } else if (code >= 0xd800 && code < 0xe000) {
            code = 0xfffd;
          }
          utf8::append(out, static_cast<char32_t>(code));  // lone surrogates -> U+FFFD, as Go
          break;
        }
        default:
          return fail("invalid escape");
      }
    }
    return fail("unterminated string");
  }
  std::optional<uint32_t> hex4() {
    if (i_ + 4 > s_.size()) return std::nullopt;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else
        return std::nullopt;
    }
    return v;
  }

  std::string_view s_;
  std::string* error_;
  size_t i_ = 0;
};

}  // namespace

std::optional<Value> Value::parse_json(std::string_view text, std::string* error) {
  return JsonParser(text, error).parse();
}

}  // namespace mg::rego
