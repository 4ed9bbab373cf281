// http2/preface.h — telling HTTP/2 with prior knowledge (h2c) from HTTP/1.x on one plaintext
// port by the first bytes a client sends (RFC 9113 §3.4: the 24-byte connection preface
// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"). Pure: the inbound listener peeks, asks, and hands every
// byte, the preface included, to the codec it picked.
#pragma once

#include <string_view>

namespace mg::http2 {

inline constexpr std::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum class Preface {
  NeedMore,  // what arrived so far is a prefix of the preface: read more before deciding
  Http2,     // the preface: an HTTP/2 connection
  Http1,     // anything else: HTTP/1.x (whose parser judges it)
};

// Decides as early as the bytes allow: the first byte that differs from the preface makes it
// HTTP/1 ("PRI" is no HTTP/1 method a proxy serves, and its parser refuses the rest).
Preface detect_preface(std::string_view first_bytes);

}  // namespace mg::http2
