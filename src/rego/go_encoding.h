// rego/go_encoding.h — decoders with Go's exact acceptance rules and error texts, which OPA's
// encoding built-ins surface to policies: encoding/base64 (std and URL alphabets, padded or raw,
// CR/LF skipped, "illegal base64 data at input byte N"), encoding/hex ("invalid byte: U+0067 'g'"),
// and net/url's QueryEscape / QueryUnescape.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace mg::rego::go {

enum class Base64 { Std, Url, RawStd, RawUrl };

Result<std::string> base64_decode(std::string_view in, Base64 enc);
std::string base64_encode(std::string_view in, Base64 enc);
// OPA's base64url.decode: padding is optional (restored from the length, RFC 7515 Appendix C).
Result<std::string> base64url_decode_unpadded(std::string_view in);

Result<std::string> hex_decode(std::string_view in);
std::string hex_encode(std::string_view in);

std::string query_escape(std::string_view in);
Result<std::string> query_unescape(std::string_view in);

}  // namespace mg::rego::go
