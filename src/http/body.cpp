#include "http/body.h"

#include <algorithm>
#include <cstdio>

namespace mg::http {

namespace {
constexpr size_t kMaxChunkLine = 4096;  // chunk size + extensions
constexpr size_t kMaxTrailerBytes = 16 * 1024;
constexpr uint64_t kMaxChunkSize = uint64_t{1} << 60;

Unexpected<ParseError> bad(std::string reason) { return fail(ParseError{400, std::move(reason)}); }

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

BodyDecoder::BodyDecoder(BodyFraming framing, uint64_t content_length) : framing_(framing) {
  switch (framing) {
    case BodyFraming::None:
      state_ = State::Done;
      break;
    case BodyFraming::ContentLength:
      remaining_ = content_length;
      state_ = content_length == 0 ? State::Done : State::Length;
      break;
    case BodyFraming::UntilClose:
      state_ = State::Length;
      break;
    case BodyFraming::Chunked:
      state_ = State::ChunkSizeStart;
      break;
  }
}

bool BodyDecoder::accept_eof() {
  if (state_ == State::Done) return true;
  if (framing_ == BodyFraming::UntilClose) {
    state_ = State::Done;
    return true;
  }
  return false;
}

Result<size_t, ParseError> BodyDecoder::feed(std::string_view in, std::string& out) {
  size_t i = 0;
  while (i < in.size() && state_ != State::Done) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    switch (state_) {
      case State::Length: {
        size_t n = in.size() - i;
        if (framing_ == BodyFraming::ContentLength)
          n = static_cast<size_t>(std::min<uint64_t>(n, remaining_));
        out.append(in.data() + i, n);
        i += n;
        if (framing_ == BodyFraming::ContentLength) {
          remaining_ -= n;
          if (remaining_ == 0) state_ = State::Done;
        }
        continue;
      }
      case State::ChunkSizeStart:
        if (hex_value(c) < 0) return bad("malformed chunk size");
        chunk_size_ = static_cast<uint64_t>(hex_value(c));
        line_bytes_ = 1;
        state_ = State::ChunkSize;
        break;
      case State::ChunkSize:
        if (++line_bytes_ > kMaxChunkLine) return bad("chunk size line too long");
        if (hex_value(c) >= 0) {
          if (chunk_size_ > kMaxChunkSize / 16) return bad("chunk size too large");
          chunk_size_ = chunk_size_ * 16 + static_cast<uint64_t>(hex_value(c));
        } else if (c == ';') {
          state_ = State::ChunkExt;
        } else if (c == '\r') {
          state_ = State::ChunkSizeLF;
        } else {
          return bad("malformed chunk size");
        }
        break;
      case State::ChunkExt:
        if (++line_bytes_ > kMaxChunkLine) return bad("chunk extension too long");
        if (c == '\r') {
          state_ = State::ChunkSizeLF;
        } else if (c != '\t' && (c < 0x20 || c == 0x7f)) {
          return bad("invalid character in chunk extension");
        }
        break;
      case State::ChunkSizeLF:
        if (c != '\n') return bad("chunk size line without LF");
        if (chunk_size_ == 0) {
          state_ = State::TrailerStart;
          line_bytes_ = 0;
        } else {
          remaining_ = chunk_size_;
          state_ = State::ChunkData;
        }
        break;
      case State::ChunkData: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(in.size() - i, remaining_));
        out.append(in.data() + i, n);
        i += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::ChunkDataCR;
        continue;
      }
      case State::ChunkDataCR:
        if (c != '\r') return bad("chunk data not followed by CRLF");
        state_ = State::ChunkDataLF;
        break;
      case State::ChunkDataLF:
        if (c != '\n') return bad("chunk data not followed by CRLF");
        state_ = State::ChunkSizeStart;
        break;
      case State::TrailerStart:
        if (c == '\r') {
          state_ = State::FinalLF;
          break;
        }
        if (c == ' ' || c == '\t') return bad("obsolete line folding in trailer");
        state_ = State::Trailer;
        line_.clear();
        [[fallthrough]];
      case State::Trailer:
        if (++line_bytes_ > kMaxTrailerBytes) return bad("trailer section too large");
        if (c == '\r') {
          state_ = State::TrailerLF;
        } else if (c != '\t' && (c < 0x20 || c == 0x7f)) {
          return bad("invalid character in trailer");
        } else {
          line_.push_back(static_cast<char>(c));
        }
        break;
      case State::TrailerLF: {
        if (c != '\n') return bad("trailer line without LF");
        state_ = State::TrailerStart;
        // "name: value" with a token name; anything else is not kept.
        const size_t colon = line_.find(':');
        const std::string_view name = std::string_view(line_).substr(0, colon == std::string::npos ? 0 : colon);
        if (!name.empty() && std::all_of(name.begin(), name.end(), [](char ch) { return is_token_char(static_cast<unsigned char>(ch)); })) {
          trailers_.add(to_lower(name), std::string(trim_ows(std::string_view(line_).substr(colon + 1))));
        }
        break;
      }
      case State::FinalLF:
        if (c != '\n') return bad("chunked body not terminated by CRLF");
        state_ = State::Done;
        break;
      case State::Done:
        break;
    }
    ++i;
  }
  return i;
}

bool relayable_trailer(std::string_view name) {
  for (std::string_view banned : {"content-length", "transfer-encoding", "host", "connection", "keep-alive", "te",
                                  "trailer", "upgrade", "proxy-connection", "authorization", "proxy-authorization",
                                  "cookie", "set-cookie", "content-type", "content-encoding", "expect"}) {
    if (iequals(name, banned)) return false;
  }
  return !name.empty() && name.front() != ':';
}

void append_last_chunk(std::string& out, const Headers& trailers) {
  out += "0\r\n";
  for (const auto& t : trailers) {
    if (!relayable_trailer(t.name)) continue;
    out += t.name;
    out += ": ";
    out += t.value;
    out += "\r\n";
  }
  out += "\r\n";
}

void append_chunk(std::string& out, std::string_view data) {
  if (data.empty()) return;
  char size[32];
  int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  out.reserve(out.size() + static_cast<size_t>(n) + data.size() + 2);
  out.append(size, static_cast<size_t>(n));
  out.append(data);
  out.append("\r\n");
}

std::string encode_chunk(std::string_view data) {
  std::string out;
  append_chunk(out, data);
  return out;
}

}  // namespace mg::http
