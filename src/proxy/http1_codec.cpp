#include "proxy/http1_codec.h"

#include <algorithm>

namespace mg::proxy {

ServerCodec::HeadState Http1Codec::scan_head(std::string_view in) {
  scan_ = scanner_.scan(in, limits_.max_head_bytes);
  switch (scan_.state) {
    case http::HeadScan::State::Incomplete:
      return HeadState::Incomplete;
    case http::HeadScan::State::Complete:
      return HeadState::Complete;
    default:
      return HeadState::Refused;
  }
}

Result<http::Request, http::ParseError> Http1Codec::take_head(std::string& in, size_t& consumed) {
  consumed = 0;
  if (scan_.state != http::HeadScan::State::Complete) {
    int status = scan_.state == http::HeadScan::State::TooLarge ? 431 : 400;
    return fail(http::ParseError{status, std::string(http::reason_phrase(status))});
  }
  auto parsed = http::parse_request_head(std::string_view(in).substr(0, scan_.length), limits_);
  consumed = scan_.length;
  in.erase(0, scan_.length);
  return parsed;
}

std::optional<std::string> Http1Codec::relayed_upgrade(const http::Request& req) const {
  if (req.version_minor != 1 || req.framing != http::BodyFraming::None) return std::nullopt;
  auto upgrade = http::upgrade_protocol(req.headers);
  if (upgrade && !http::iequals(*upgrade, "websocket")) return std::nullopt;
  return upgrade;
}

std::string Http1Codec::begin_response(http::Response& resp, const http::Request& req, bool& keep_alive) {
  const bool streamed =
      resp.framing == http::BodyFraming::Chunked || resp.framing == http::BodyFraming::UntilClose;
  chunk_out_ = streamed && req.version_minor == 1;
  if (streamed && !chunk_out_) keep_alive = false;  // HTTP/1.0 client: the end of the body is our close
  resp.version_minor = 1;
  http::remove_hop_by_hop(resp.headers);
  if (chunk_out_) {
    resp.headers.remove("content-length");
    resp.headers.add("transfer-encoding", "chunked");
  }
  if (!keep_alive)
    resp.headers.add("connection", "close");
  else if (req.version_minor == 0)
    resp.headers.add("connection", "keep-alive");
  return http::serialize_response_head(resp);
}

void Http1Codec::append_body(std::string& out, std::string_view payload) {
  if (chunk_out_) {
    http::append_chunk(out, payload);
  } else {
    out += payload;
  }
}

void Http1Codec::end_body(std::string& out, const http::Headers& trailers) {
  if (chunk_out_) http::append_last_chunk(out, trailers);  // RFC 9112 §7.1.2: after the last chunk
}

std::string Http1Codec::switching_protocols(http::Response& resp, const std::string& protocol) {
  http::remove_hop_by_hop(resp.headers);
  resp.version_minor = 1;
  resp.headers.add("connection", "upgrade");
  resp.headers.add("upgrade", protocol);
  return http::serialize_response_head(resp);
}

std::string Http1Codec::local_response(int status, std::string_view body, bool keep_alive,
                                       const std::vector<http::Header>& extra) const {
  const bool typed = std::any_of(extra.begin(), extra.end(), [](const auto& h) { return h.name == "content-type"; });
  return http::make_response(status, typed ? "" : "text/plain", body, keep_alive, extra);
}

}  // namespace mg::proxy
