// http/parser.h — strict HTTP/1.1 head parsing with hard limits (request-smuggling hygiene).
// Rejects rather than guesses: bare LF/CR, obs-fold, whitespace before ':', Content-Length
// together with Transfer-Encoding, differing Content-Lengths, unknown transfer codings.
// Incremental: HeadScanner remembers how far it looked, so a slowly arriving head is scanned
// once; bytes after the head stay in the caller's buffer (pipelining).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"
#include "http/message.h"

namespace mg::http {

struct Limits {
  size_t max_head_bytes = 60 * 1024;  // request/status line + headers + blank line → 431
  size_t max_headers = 100;           // → 431
};

// What the peer should be told: 400, 405, 431, 501 or 505, with a short reason.
struct ParseError {
  int status = 400;
  std::string reason;
};

struct HeadScan {
  enum class State { Incomplete, Complete, TooLarge, Malformed };
  State state = State::Incomplete;
  size_t length = 0;  // when Complete: bytes of the head, including the final CRLF CRLF
};

class HeadScanner {
 public:
  // Looks for the end of a head at the front of `buffer` (which only ever grows between calls
  // until reset()).
  HeadScan scan(std::string_view buffer, size_t max_head_bytes);
  void reset() { scanned_ = 0; }

 private:
  size_t scanned_ = 0;
};

// A Host field value or an authority (reg-name / IP literal, optional port; no userinfo): the
// characters RFC 3986 allows there, at most 255. HTTP/2's :authority is checked the same way.
bool valid_host(std::string_view host);

// `head` is exactly one complete head as found by HeadScanner.
Result<Request, ParseError> parse_request_head(std::string_view head, const Limits& limits);

// `request_method` decides whether the response can carry a body (HEAD never does).
Result<Response, ParseError> parse_response_head(std::string_view head, const Limits& limits,
                                                 std::string_view request_method);

}  // namespace mg::http
