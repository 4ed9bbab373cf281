// The HTTP/1 server codec (proxy/http1_codec.h): what the session reads as a request and what the
// client receives for a relayed response, without sockets.
#include <gtest/gtest.h>

#include "proxy/http1_codec.h"

namespace mg::proxy {
namespace {

http::Limits limits() { return http::Limits{1024, 20}; }

// Feeds `bytes` and takes the head the codec finds.
Result<http::Request, http::ParseError> take(Http1Codec& codec, std::string& bytes, size_t& consumed) {
  codec.begin_head();
  EXPECT_NE(codec.scan_head(bytes), ServerCodec::HeadState::Incomplete);
  return codec.take_head(bytes, consumed);
}

TEST(Http1Codec, TakesOneHeadAndLeavesWhatFollows) {
  auto l = limits();
  Http1Codec codec(l);
  std::string in = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b";
  codec.begin_head();
  std::string partial = in.substr(0, 10);
  EXPECT_EQ(codec.scan_head(partial), ServerCodec::HeadState::Incomplete);
  size_t consumed = 0;
  auto req = take(codec, in, consumed);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->method, "POST");
  EXPECT_EQ(req->path, "/a");
  EXPECT_EQ(consumed, 48u);  // the head, through its blank line
  EXPECT_EQ(in, "abcGET /b");

  codec.begin_request_body(*req);
  std::string payload;
  auto used = codec.read_request_body(in, payload);
  ASSERT_TRUE(used);
  EXPECT_EQ(*used, 3u);
  EXPECT_EQ(payload, "abc");
  EXPECT_TRUE(codec.request_body_done());
}

TEST(Http1Codec, RefusedHeadsCarryTheirStatus) {
  auto l = limits();
  Http1Codec codec(l);
  size_t consumed = 7;
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(2000, 'a');
  codec.begin_head();
  EXPECT_EQ(codec.scan_head(big), ServerCodec::HeadState::Refused);
  auto too_large = codec.take_head(big, consumed);
  ASSERT_FALSE(too_large);
  EXPECT_EQ(too_large.error().status, 431);
  EXPECT_EQ(consumed, 0u);

  // Both framings at once: request smuggling's shape, refused by the parser.
  std::string smuggled =
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n";
  auto smuggled_req = take(codec, smuggled, consumed);
  ASSERT_FALSE(smuggled_req);
  EXPECT_EQ(smuggled_req.error().status, 400);
}

TEST(Http1Codec, RelaysOnlyWebSocketUpgradesOfBodilessHttp11Requests) {
  auto l = limits();
  Http1Codec codec(l);
  size_t consumed = 0;
  std::string ws = "GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
  auto req = take(codec, ws, consumed);
  ASSERT_TRUE(req);
  EXPECT_EQ(codec.relayed_upgrade(*req), "websocket");
  std::string h2c = "GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n";
  req = take(codec, h2c, consumed);
  ASSERT_TRUE(req);
  EXPECT_EQ(codec.relayed_upgrade(*req), std::nullopt);
  std::string old = "GET / HTTP/1.0\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
  req = take(codec, old, consumed);
  ASSERT_TRUE(req);
  EXPECT_EQ(codec.relayed_upgrade(*req), std::nullopt);
}

TEST(Http1Codec, StreamedBodyIsChunkedToHttp11AndEndsTheConnectionForHttp10) {
  auto l = limits();
  http::Response streamed;
  streamed.framing = http::BodyFraming::UntilClose;
  streamed.headers.add("content-type", "text/plain");
  streamed.headers.add("keep-alive", "timeout=5");

  Http1Codec codec(l);
  http::Request req11;
  bool keep = true;
  http::Response r = streamed;
  std::string out = codec.begin_response(r, req11, keep);
  EXPECT_TRUE(keep);
  EXPECT_NE(out.find("transfer-encoding: chunked\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("keep-alive"), std::string::npos) << out;  // hop-by-hop: removed
  out.clear();
  codec.append_body(out, "hello");
  codec.end_body(out, {});
  EXPECT_EQ(out, "5\r\nhello\r\n0\r\n\r\n");

  http::Request req10;
  req10.version_minor = 0;
  r = streamed;
  out = codec.begin_response(r, req10, keep);
  EXPECT_FALSE(keep);
  EXPECT_EQ(out.find("transfer-encoding"), std::string::npos) << out;
  EXPECT_NE(out.find("connection: close\r\n"), std::string::npos) << out;
  out.clear();
  codec.append_body(out, "hello");
  codec.end_body(out, {});
  EXPECT_EQ(out, "hello");
}

TEST(Http1Codec, KeepAliveIsStatedToHttp10Clients) {
  auto l = limits();
  Http1Codec codec(l);
  http::Response resp;
  resp.framing = http::BodyFraming::ContentLength;
  resp.content_length = 2;
  resp.headers.add("content-length", "2");
  http::Request req10;
  req10.version_minor = 0;
  bool keep = true;
  std::string out = codec.begin_response(resp, req10, keep);
  EXPECT_TRUE(keep);
  EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out;
  EXPECT_NE(out.find("connection: keep-alive\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("content-length: 2\r\n"), std::string::npos) << out;
}

TEST(Http1Codec, TrailersGoInTheLastChunkWithoutFramingFields) {
  auto l = limits();
  Http1Codec codec(l);
  http::Response resp;
  resp.framing = http::BodyFraming::Chunked;
  http::Request req11;
  req11.version_minor = 1;
  bool keep = true;
  std::string out = codec.begin_response(resp, req11, keep);
  out.clear();
  codec.append_body(out, "ab");
  http::Headers trailers;
  trailers.add("grpc-status", "0");
  trailers.add("content-length", "9");  // a framing field never goes in a trailer
  codec.end_body(out, trailers);
  EXPECT_EQ(out, "2\r\nab\r\n0\r\ngrpc-status: 0\r\n\r\n");
  // Not chunked (HTTP/1.0 client, close-delimited): nowhere to put them, dropped.
  http::Request req10;
  req10.version_minor = 0;
  out = codec.begin_response(resp, req10, keep);
  out.clear();
  codec.end_body(out, trailers);
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace mg::proxy
