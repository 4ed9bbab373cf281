// The pure pieces: preface detection, the gRPC deny mapping, and how a request's header
// fields become the HTTP/1 request model (validation included).
#include <gtest/gtest.h>

#include "http2/grpc.h"
#include "http2/preface.h"
#include "http2/server.h"

namespace mg::http2 {
namespace {

TEST(Http2Preface, TellsH2cFromHttp1AsEarlyAsTheBytesAllow) {
  EXPECT_EQ(detect_preface(""), Preface::NeedMore);
  EXPECT_EQ(detect_preface("PRI * HTTP/2"), Preface::NeedMore);
  EXPECT_EQ(detect_preface(kClientPreface), Preface::Http2);
  EXPECT_EQ(detect_preface(std::string(kClientPreface) + "\x00\x00\x00\x04"), Preface::Http2);
  EXPECT_EQ(detect_preface("G"), Preface::Http1);
  EXPECT_EQ(detect_preface("GET / HTTP/1.1\r\n"), Preface::Http1);
  EXPECT_EQ(detect_preface("PRI * HTTP/1.1\r\n"), Preface::Http1);
  EXPECT_EQ(detect_preface("PRI * HTTP/2.0\r\n\r\nSM\r\n\r!"), Preface::Http1);
}

TEST(GrpcDeny, ForbiddenIsPermissionDeniedInATrailersOnlyOk) {
  http::Response r = grpc_deny_response(403, "RBAC: access denied");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.get("content-type"), "application/grpc");
  EXPECT_EQ(r.headers.get("grpc-status"), "7");
  EXPECT_EQ(r.headers.get("grpc-message"), "RBAC: access denied");
  EXPECT_EQ(r.framing, http::BodyFraming::None);
}

TEST(GrpcDeny, UnauthorizedIsUnauthenticated) {
  http::Response r = grpc_deny_response(401, "Jwt is missing");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.get("grpc-status"), "16");
  EXPECT_EQ(r.headers.get("grpc-message"), "Jwt is missing");
}

TEST(GrpcDeny, OtherStatusesFollowGrpcsHttpMapping) {
  EXPECT_EQ(grpc_status_for_http(400), 13);
  EXPECT_EQ(grpc_status_for_http(404), 12);
  EXPECT_EQ(grpc_status_for_http(429), 14);
  EXPECT_EQ(grpc_status_for_http(503), 14);
  EXPECT_EQ(grpc_status_for_http(504), 14);
  EXPECT_EQ(grpc_status_for_http(500), 2);
  EXPECT_EQ(grpc_status_for_http(431), 2);
}

TEST(GrpcDeny, MessageIsPercentEncoded) {
  EXPECT_EQ(grpc_percent_encode("100% denied\n"), "100%25 denied%0A");
  EXPECT_EQ(grpc_percent_encode("caf\xc3\xa9"), "caf%C3%A9");
  EXPECT_EQ(grpc_deny_response(403, "a\r\nb").headers.get("grpc-message"), "a%0D%0Ab");
}

TEST(GrpcDeny, RecognisesGrpcRequests) {
  http::Request req;
  EXPECT_FALSE(is_grpc_request(req));
  req.headers.set("content-type", "application/grpc");
  EXPECT_TRUE(is_grpc_request(req));
  req.headers.set("content-type", "application/grpc+proto");
  EXPECT_TRUE(is_grpc_request(req));
  req.headers.set("content-type", "application/grpc-web");
  EXPECT_FALSE(is_grpc_request(req));
  req.headers.set("content-type", "application/json");
  EXPECT_FALSE(is_grpc_request(req));
}

std::vector<http::Header> fields(std::vector<http::Header> extra = {}, std::string method = "GET",
                                 std::string path = "/a/b?x=1") {
  std::vector<http::Header> f = {
      {":method", method}, {":scheme", "https"}, {":authority", "svc.ns:8080"}, {":path", path}};
  for (auto& h : extra) f.push_back(std::move(h));
  return f;
}

TEST(Http2Request, PseudoHeadersBecomeTheRequestModel) {
  std::string scheme;
  auto req = request_from_fields(fields({{"cookie", "a=1"}, {"x-id", "7"}, {"cookie", "b=2"}}), true, scheme);
  ASSERT_TRUE(req);
  EXPECT_EQ(scheme, "https");
  EXPECT_EQ(req->method, "GET");
  EXPECT_EQ(req->target, "/a/b?x=1");
  EXPECT_EQ(req->path, "/a/b");
  EXPECT_EQ(req->query, "x=1");
  EXPECT_EQ(req->host, "svc.ns:8080");
  EXPECT_EQ(req->headers.get("host"), "svc.ns:8080");
  EXPECT_EQ(req->headers.get("cookie"), "a=1; b=2");  // RFC 9113 §8.2.3
  EXPECT_EQ(req->headers.count("cookie"), 1u);
  EXPECT_EQ(req->headers.get("x-id"), "7");
  EXPECT_EQ(req->framing, http::BodyFraming::None);
}

TEST(Http2Request, BodyFraming) {
  std::string scheme;
  auto sized = request_from_fields(fields({{"content-length", "12"}}, "POST"), false, scheme);
  ASSERT_TRUE(sized);
  EXPECT_EQ(sized->framing, http::BodyFraming::ContentLength);
  EXPECT_EQ(sized->content_length, 12u);
  auto streamed = request_from_fields(fields({}, "POST"), false, scheme);
  ASSERT_TRUE(streamed);
  EXPECT_EQ(streamed->framing, http::BodyFraming::Chunked);
  auto bad_length = request_from_fields(fields({{"content-length", "1x"}}, "POST"), false, scheme);
  ASSERT_FALSE(bad_length);
  EXPECT_EQ(bad_length.error().status, 400);
}

TEST(Http2Request, RefusedAsTheHttp1ParserRefuses) {
  std::string scheme;
  auto status = [&](std::vector<http::Header> f) {
    auto r = request_from_fields(f, true, scheme);
    return r ? 0 : r.error().status;
  };
  EXPECT_EQ(status(fields({{"host", "other.ns"}})), 400);  // :authority and Host disagree
  EXPECT_EQ(status(fields({{"host", "SVC.ns:8080"}})), 0);
  EXPECT_EQ(status(fields({}, "CONNECT")), 405);
  EXPECT_EQ(status(fields({}, "GET", "*")), 400);
  EXPECT_EQ(status(fields({}, "OPTIONS", "*")), 0);
  EXPECT_EQ(status(fields({}, "GET", "a/b")), 400);
  EXPECT_EQ(status(fields({}, "GET", "/a#frag")), 400);
  EXPECT_EQ(status(fields({{"expect", "something"}})), 417);
  EXPECT_EQ(status({{":method", "GET"}, {":scheme", "http"}, {":path", "/"}}), 400);  // no authority
  EXPECT_EQ(status({{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"host", "h.ns"}}), 0);
  EXPECT_EQ(status({{":method", "GET"}, {":scheme", "http"}, {":authority", "u@h"}, {":path", "/"}}), 400);
}

}  // namespace
TEST(GrpcTimeout, UnitsToMillisecondsRoundedUp) {
  EXPECT_EQ(parse_grpc_timeout_ms("1H"), 3'600'000u);
  EXPECT_EQ(parse_grpc_timeout_ms("2M"), 120'000u);
  EXPECT_EQ(parse_grpc_timeout_ms("10S"), 10'000u);
  EXPECT_EQ(parse_grpc_timeout_ms("250m"), 250u);
  EXPECT_EQ(parse_grpc_timeout_ms("1500u"), 2u);
  EXPECT_EQ(parse_grpc_timeout_ms("1n"), 1u);
  EXPECT_EQ(parse_grpc_timeout_ms("99999999S"), 99'999'999'000u);  // 8 digits: the most allowed
  EXPECT_EQ(parse_grpc_timeout_ms("0m"), 0u);
}

TEST(GrpcTimeout, MalformedIsIgnored) {
  for (const char* bad : {"", "S", "10", "10s", "123456789S", "-1S", "1.5S", " 1S", "1SS"}) {
    EXPECT_FALSE(parse_grpc_timeout_ms(bad)) << bad;
  }
}

}  // namespace mg::http2
