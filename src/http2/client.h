// http2/client.h — the client side of an HTTP/2 connection: what the proxy will use toward an
// app that speaks h2c and between proxies (one connection, many concurrent streams; requests
// beyond the server's SETTINGS_MAX_CONCURRENT_STREAMS wait inside nghttp2 for a free slot).
// Requests in (the HTTP/1 model: Host becomes :authority, hop-by-hop fields dropped but
// "te: trailers", which gRPC needs), responses out as events (session.h): 1xx heads are
// skipped, a header list over the limits resets the stream, server push is refused.
// Driven by the proxy: proxy/http2_session.h (server), proxy/h2_upstream.h (client).
// Owns: one upstream HTTP/2 connection's protocol state.
#pragma once

#include "http2/session.h"

namespace mg::http2 {

class ClientSession final : public Session {
 public:
  // The session with the connection preface and our SETTINGS queued (take_output()).
  static Result<std::unique_ptr<ClientSession>> create(const Limits& limits);

  // Sends `req` (its target as :path, its host as :authority) with `scheme`; the body follows
  // through append_body / end_body unless `end_stream`. Returns the stream's id; its response
  // comes as events on that id.
  Result<int32_t> submit(const http::Request& req, std::string_view scheme, bool end_stream);

 private:
  explicit ClientSession(const Limits& limits) : Session(Role::Client, limits) {}
  void on_begin_stream(int32_t) override {}
  void on_block_complete(int32_t stream_id, Stream& st, bool end_stream) override;
};

}  // namespace mg::http2
