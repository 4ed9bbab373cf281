// jwt/base64url.h — RFC 4648 §5 base64url as RFC 7515 §2 uses it: no padding, no whitespace,
// no characters outside the URL-safe alphabet, and canonical trailing bits (so one token has
// exactly one encoding).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mg::jwt {

// nullopt on any non-alphabet character ('=' included), an impossible length (len % 4 == 1)
// or non-zero unused trailing bits.
std::optional<std::string> base64url_decode(std::string_view in);

// Decodes into `out` (cleared first); false on the same errors. Lets hot paths reuse a buffer.
bool base64url_decode_into(std::string_view in, std::string& out);

std::string base64url_encode(std::string_view in);

}  // namespace mg::jwt
