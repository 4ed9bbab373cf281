// rego/go_encoding.cpp — see go_encoding.h.
#include "rego/go_encoding.h"

#include <array>

#include "crypto/openssl.h"
#include "jwt/base64url.h"
#include "rego/go_strings.h"  // quote

namespace mg::rego::go {
namespace {

bool is_url(Base64 e) { return e == Base64::Url || e == Base64::RawUrl; }
bool padded(Base64 e) { return e == Base64::Std || e == Base64::Url; }

int sextet(unsigned char c, bool url) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == (url ? '-' : '+')) return 62;
  if (c == (url ? '_' : '/')) return 63;
  return -1;
}

Unexpected<Error> corrupt(size_t at) {
  return fail("base64", "illegal base64 data at input byte " + std::to_string(at));
}

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Go's %#U: "U+0067 'g'" (the character only when printable).
std::string invalid_byte(unsigned char c) {
  static const char* kHex = "0123456789ABCDEF";
  std::string s = "invalid byte: U+00";
  s += kHex[c >> 4];
  s += kHex[c & 15];
  if (c >= 0x20 && c < 0x7F) {
    s += " '";
    s += static_cast<char>(c);
    s += "'";
  } else if (c > 0xA0 && c != 0xAD) {  // printable Latin-1, as a UTF-8 rune
    s += " '";
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
    s += "'";
  }
  return s;
}

}  // namespace

// Follows Go's decodeQuantum: quanta of four alphabet characters, CR/LF ignored anywhere, '='
// only as the final padding of a quantum, nothing but CR/LF after it.
Result<std::string> base64_decode(std::string_view src, Base64 enc) {
  const bool url = is_url(enc);
  const bool pad = padded(enc);
  std::string out;
  size_t si = 0;
  for (;;) {
    std::array<int, 4> q{0, 0, 0, 0};
    size_t dlen = 4;
    bool end = false;
    for (size_t j = 0; j < 4; ++j) {
      if (si == src.size()) {
        if (j == 0) return out;
        if (j == 1 || pad) return corrupt(si - j);
        dlen = j;
        end = true;
        break;
      }
      const auto in = static_cast<unsigned char>(src[si++]);
      const int v = sextet(in, url);
      if (v >= 0) {
        q[j] = v;
        continue;
      }
      if (in == '\n' || in == '\r') {
        --j;
        continue;
      }
      if (!pad || in != '=') return corrupt(si - 1);
      if (j < 2) return corrupt(si - 1);
      if (j == 2) {
        while (si < src.size() && (src[si] == '\n' || src[si] == '\r')) ++si;
        if (si == src.size()) return corrupt(src.size());
        if (src[si] != '=') return corrupt(si - 1);
        ++si;
      }
      while (si < src.size() && (src[si] == '\n' || src[si] == '\r')) ++si;
      if (si < src.size()) return corrupt(si);
      dlen = j;
      end = true;
      break;
    }
    const unsigned v = (static_cast<unsigned>(q[0]) << 18) | (static_cast<unsigned>(q[1]) << 12) |
                       (static_cast<unsigned>(q[2]) << 6) | static_cast<unsigned>(q[3]);
    out += static_cast<char>(v >> 16);
    if (dlen >= 3) out += static_cast<char>((v >> 8) & 0xFF);
    if (dlen == 4) out += static_cast<char>(v & 0xFF);
    if (end) return out;
  }
}

Result<std::string> base64url_decode_unpadded(std::string_view in) {
  std::string s(in);
  if (!s.ends_with("=")) {
    switch (s.size() % 4) {
      case 0:
        break;
      case 2:
        s += "==";
        break;
      case 3:
        s += "=";
        break;
      default:
        return fail("base64", "illegal base64url string: " + s);
    }
  }
  return base64_decode(s, Base64::Url);
}

std::string base64_encode(std::string_view in, Base64 enc) {
  std::string s = jwt::base64url_encode(in);  // URL alphabet, no padding
  if (!is_url(enc))
    for (char& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  if (padded(enc))
    while (s.size() % 4) s += '=';
  return s;
}

Result<std::string> hex_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size() / 2);
  size_t i = 0;
  for (; i + 1 < in.size(); i += 2) {
    const int hi = hex_value(static_cast<unsigned char>(in[i]));
    if (hi < 0) return fail("hex", invalid_byte(static_cast<unsigned char>(in[i])));
    const int lo = hex_value(static_cast<unsigned char>(in[i + 1]));
    if (lo < 0) return fail("hex", invalid_byte(static_cast<unsigned char>(in[i + 1])));
    out += static_cast<char>((hi << 4) | lo);
  }
  if (in.size() % 2 == 1) {
    if (hex_value(static_cast<unsigned char>(in.back())) < 0)
      return fail("hex", invalid_byte(static_cast<unsigned char>(in.back())));
    return fail("hex", "odd length hex string");
  }
  return out;
}

std::string hex_encode(std::string_view in) {
  return crypto::hex(reinterpret_cast<const unsigned char*>(in.data()), in.size());
}

std::string query_escape(std::string_view in) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out += ch;
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<std::string> query_unescape(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= in.size()) {
        return fail("url", "invalid URL escape " + quote(in.substr(i, 3)));
      }
      const int hi = hex_value(static_cast<unsigned char>(in[i + 1]));
      const int lo = hex_value(static_cast<unsigned char>(in[i + 2]));
      if (hi < 0 || lo < 0) return fail("url", "invalid URL escape " + quote(in.substr(i, 3)));
      out += static_cast<char>((hi << 4) | lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace mg::rego::go
