// http/body.h — incremental body decoding for Content-Length, chunked and close-delimited
// framing. Chunk sizes, CRLFs and trailers are validated strictly; well-formed trailer fields
// are kept for the proxy to relay (trailers()), others dropped. Decoded payload is appended to the caller's string, so a proxy can re-encode it
// canonically (encode_chunk) instead of forwarding bytes it did not understand.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "http/message.h"
#include "http/parser.h"

namespace mg::http {

class BodyDecoder {
 public:
  BodyDecoder() = default;
  BodyDecoder(BodyFraming framing, uint64_t content_length);

  // Consumes a prefix of `in`, appending payload bytes to `out`; stops at the end of the body
  // (bytes after it belong to the next message). Returns the number of bytes consumed.
  Result<size_t, ParseError> feed(std::string_view in, std::string& out);

  // The peer closed the connection: fine only for close-delimited bodies (or a finished one).
  bool accept_eof();

  bool done() const { return state_ == State::Done; }
  BodyFraming framing() const { return framing_; }
  // A chunked body's trailer fields (name: value lines of token names), once done().
  const Headers& trailers() const { return trailers_; }

 private:
  enum class State {
    Length,  // Content-Length / UntilClose payload
    ChunkSizeStart,
    ChunkSize,
    ChunkExt,
    ChunkSizeLF,
    ChunkData,
    ChunkDataCR,
    ChunkDataLF,
    TrailerStart,
    Trailer,
    TrailerLF,
    FinalLF,
    Done,
  };
  BodyFraming framing_ = BodyFraming::None;
  State state_ = State::Done;
  uint64_t remaining_ = 0;
  uint64_t chunk_size_ = 0;
  size_t line_bytes_ = 0;  // chunk-size line / trailer section length so far
  std::string line_;       // the trailer line being read
  Headers trailers_;
};

// A trailer field a proxy relays: framing, routing, connection-management and authentication
// fields never go in a trailer (RFC 9110 §6.5.1); a recipient drops them.
bool relayable_trailer(std::string_view name);
// The last chunk of a chunked body, with the relayable `trailers`.
void append_last_chunk(std::string& out, const Headers& trailers);

// One chunk of a chunked body ("<hex>\r\n<data>\r\n"); empty data yields "" (never the last chunk).
std::string encode_chunk(std::string_view data);
// The same, appended to `out`.
void append_chunk(std::string& out, std::string_view data);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

}  // namespace mg::http
