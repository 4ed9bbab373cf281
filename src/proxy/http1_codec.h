// proxy/http1_codec.h — the HTTP/1.x server codec behind proxy/codec.h: request heads found by
// http::HeadScanner and parsed strictly (http/parser.h: 400, 431), bodies decoded by
// http::BodyDecoder, responses restated as HTTP/1.1 (hop-by-hop fields removed; a streamed body
// chunked to an HTTP/1.1 client, delimited by the close for an HTTP/1.0 one; Connection stated
// when it differs from the version's default). Only a WebSocket upgrade of a bodiless HTTP/1.1
// request is relayed, as Envoy and Istio by default: an h2c upgrade would open an HTTP/2
// connection to the app whose requests this proxy never sees (request smuggling past
// authorization), so any other Upgrade is dropped like any hop-by-hop field.
// Owns: one connection's head scanner, request body decoder and response body framing.
#pragma once

#include "http/body.h"
#include "proxy/codec.h"

namespace mg::proxy {

class Http1Codec final : public ServerCodec {
 public:
  explicit Http1Codec(const http::Limits& limits) : limits_(limits) {}

  void begin_head() override { scanner_.reset(); }
  HeadState scan_head(std::string_view in) override;
  Result<http::Request, http::ParseError> take_head(std::string& in, size_t& consumed) override;
  std::optional<std::string> relayed_upgrade(const http::Request& req) const override;

  void begin_request_body(const http::Request& req) override {
    body_ = http::BodyDecoder(req.framing, req.content_length);
  }
  bool request_body_done() const override { return body_.done(); }
  Result<size_t, http::ParseError> read_request_body(std::string_view in, std::string& payload) override {
    return body_.feed(in, payload);
  }
  const http::Headers& request_trailers() const override { return body_.trailers(); }

  std::string_view continue_response() const override { return "HTTP/1.1 100 Continue\r\n\r\n"; }
  std::string begin_response(http::Response& resp, const http::Request& req, bool& keep_alive) override;
  void append_body(std::string& out, std::string_view payload) override;
  void end_body(std::string& out, const http::Headers& trailers) override;
  std::string switching_protocols(http::Response& resp, const std::string& protocol) override;
  std::string local_response(int status, std::string_view body, bool keep_alive,
                             const std::vector<http::Header>& extra) const override;

 private:
  const http::Limits& limits_;
  http::HeadScanner scanner_;
  http::HeadScan scan_;
  http::BodyDecoder body_;
  bool chunk_out_ = false;  // the response body is re-chunked (a streamed body to HTTP/1.1)
};

}  // namespace mg::proxy
