// http2/grpc.h — gRPC facts the proxy needs without speaking protobuf: whether a request is a
// gRPC call, and how a request the proxy refuses is answered to a gRPC caller. A gRPC client
// reads the outcome from grpc-status, not from the HTTP status, so a denial is answered as
// Envoy does: HTTP 200, "trailers-only" (one HEADERS frame ending the stream) with
// grpc-status from the HTTP status (403 → 7 PERMISSION_DENIED, 401 → 16 UNAUTHENTICATED, the
// rest by gRPC's HTTP-to-gRPC status mapping) and grpc-message saying why, percent-encoded as
// the gRPC wire protocol requires.
// Pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/message.h"

namespace mg::http2 {

// content-type application/grpc, alone or with a "+proto"-style suffix or parameters.
bool is_grpc_request(const http::Request& req);

// The gRPC status code an HTTP status stands for.
int grpc_status_for_http(int http_status);

// grpc-message's encoding: bytes outside printable ASCII, and '%', as %XX.
std::string grpc_percent_encode(std::string_view message);

// grpc-timeout (gRPC over HTTP/2: 1-8 digits and a unit H M S m u n) in milliseconds, rounded
// up; nullopt when malformed (the proxy then keeps its own timeouts).
std::optional<uint64_t> parse_grpc_timeout_ms(std::string_view value);

// The trailers-only response denying a gRPC call that would have been answered `http_status`
// (ServerSession::respond with end_stream).
http::Response grpc_deny_response(int http_status, std::string_view why);

}  // namespace mg::http2
