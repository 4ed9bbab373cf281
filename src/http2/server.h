// http2/server.h — the server side of an HTTP/2 connection (h2c with prior knowledge, or h2 after
// ALPN): requests out, responses in. It speaks the vocabulary of the proxy's codec seam
// (proxy/codec.h: http::Request or the http::ParseError it is answered with, http::Response in,
// bytes out) but cannot be a ServerCodec itself, whose requests come one after another: here many
// streams run at once, so a request arrives as events tagged with its stream (session.h).
// Requests are validated as the HTTP/1 parser does (CONNECT 405; :path origin-form or "*";
// :authority a valid host and equal to any Host field; Expect), header lists are capped (431),
// and the connection is ended on abuse: rapid reset, CONTINUATION / SETTINGS / PING floods.
// Driven by the proxy: proxy/http2_session.h (server), proxy/h2_upstream.h (client).
// Owns: one downstream HTTP/2 connection's protocol state.
#pragma once

#include "http2/session.h"

namespace mg::http2 {

class ServerSession final : public Session {
 public:
  // The session with our SETTINGS queued (take_output() has them); fed from the first byte the
  // client sent, its connection preface included (preface.h tells the caller it is one).
  static Result<std::unique_ptr<ServerSession>> create(const Limits& limits);

  // The response head to the request on `stream`; the body follows through append_body and
  // end_body unless `end_stream`. Hop-by-hop fields are dropped, names lower-cased.
  Status respond(int32_t stream, const http::Response& resp, bool end_stream);
  // A response made by the proxy itself: status and text/plain `body`, ending the stream.
  Status local_response(int32_t stream, int status, std::string_view body);
  // "100 Continue" to a request that expects it (Event::request.expect_continue).
  Status send_continue(int32_t stream);

  // Peer resets counted against the rapid-reset bound in the current window.
  uint32_t premature_resets() const { return resets_in_window_; }

 private:
  explicit ServerSession(const Limits& limits) : Session(Role::Server, limits) {}
  void on_begin_stream(int32_t stream_id) override;
  void on_block_complete(int32_t stream_id, Stream& st, bool end_stream) override;
  void on_peer_reset(int32_t stream_id, Stream& st) override;

  uint32_t streams_in_window_ = 0;
  uint32_t resets_in_window_ = 0;
};

// The request a complete first header block stands for, validated; or the status to answer.
// `fields` are as received, pseudo-headers first (nghttp2 has checked their presence and order);
// taken, so the regular fields' strings move into the request rather than being copied.
Result<http::Request, http::ParseError> request_from_fields(std::vector<http::Header> fields, bool end_stream,
                                                            std::string& scheme);

}  // namespace mg::http2
