// proxy/codec.h — the HTTP codec seam: how the session (http_session.h) and the forwarder
// (forwarder.h) read requests from, and write responses to, the downstream connection, whatever
// HTTP version it speaks. A codec does no I/O: bytes in, requests and body payload out; responses
// in, bytes out. Enforcement and the upstream side see only http::Request / http::Response, so
// the wire version never reaches authorization. Requests here come one after another: on an
// HTTP/1 connection (http1_codec.h) one instance serves the connection; HTTP/2 (src/http2, same
// vocabulary) multiplexes streams, so its connection loop (http2_session.h) gives every stream
// an instance of its own (H2StreamCodec), and each stream is then handled as an HTTP/1 request is.
// Owns: one downstream connection's (or HTTP/2 stream's) framing state (the head being scanned,
// the request body being decoded, how the response body is framed).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "http/message.h"
#include "http/parser.h"

namespace mg::proxy {

class ServerCodec {
 public:
  virtual ~ServerCodec() = default;

  // --- requests in ---------------------------------------------------------------------------

  enum class HeadState {
    Incomplete,  // more bytes are needed
    Complete,    // take_head() yields the request (or why it is refused)
    Refused,     // not a head this codec accepts (too large, malformed framing): take_head() says which
  };
  // Before looking for the next request head.
  virtual void begin_head() = 0;
  // Looks for the next request head at the front of `in`, which only grows between calls until
  // begin_head(). Cheap enough to call after every read.
  virtual HeadState scan_head(std::string_view in) = 0;
  // After scan_head() said Complete or Refused: the request, or the error whose status the
  // client is answered with (the connection ends after it). Takes the head's bytes out of `in`
  // and counts them in `consumed` (0 when nothing was taken).
  virtual Result<http::Request, http::ParseError> take_head(std::string& in, size_t& consumed) = 0;

  // The protocol `req` asks to switch to, when the proxy relays the switch (only a WebSocket);
  // any other upgrade is not relayed and the request is answered as it is.
  virtual std::optional<std::string> relayed_upgrade(const http::Request& req) const = 0;

  // The request body of the request just taken, decoded: begin, then feed `in` until done().
  virtual void begin_request_body(const http::Request& req) = 0;
  virtual bool request_body_done() const = 0;
  // Consumes a prefix of `in`, appending payload to `payload`; an error is a malformed body.
  virtual Result<size_t, http::ParseError> read_request_body(std::string_view in, std::string& payload) = 0;
  // Once request_body_done(): the body's trailer fields (a chunked body's, an HTTP/2 stream's).
  virtual const http::Headers& request_trailers() const = 0;

  // --- responses out -------------------------------------------------------------------------

  // Sent before reading the body of a request that expects it (Expect: 100-continue).
  virtual std::string_view continue_response() const = 0;
  // The head of the relayed response to `req` (`resp` is edited into it). `keep_alive` says
  // whether the proxy means to keep the connection; it comes back false when this response's
  // framing ends it. The body then goes through append_body and end_body.
  virtual std::string begin_response(http::Response& resp, const http::Request& req, bool& keep_alive) = 0;
  virtual void append_body(std::string& out, std::string_view payload) = 0;
  // `trailers` (from an HTTP/2 upstream: gRPC's grpc-status) go out where the framing carries
  // them: HTTP/2 trailers, or the last chunk of a chunked HTTP/1.1 body; else they are dropped.
  virtual void end_body(std::string& out, const http::Headers& trailers) = 0;
  // The head accepting `protocol` (a relayed 101); the connection then carries that protocol.
  virtual std::string switching_protocols(http::Response& resp, const std::string& protocol) = 0;
  // A response made by the proxy itself: status, text/plain `body` (unless `extra`, headers a
  // denying OPAPolicy sets, names the content-type itself).
  virtual std::string local_response(int status, std::string_view body, bool keep_alive,
                                     const std::vector<http::Header>& extra) const = 0;
};

}  // namespace mg::proxy
