#include "http/parser.h"

#include <gtest/gtest.h>

namespace mg::http {
namespace {

Result<Request, ParseError> parse(std::string_view text, Limits limits = {}) {
  HeadScanner scanner;
  auto scan = scanner.scan(text, limits.max_head_bytes);
  if (scan.state == HeadScan::State::TooLarge) return fail(ParseError{431, "too large"});
  if (scan.state != HeadScan::State::Complete) return fail(ParseError{-1, "not complete"});
  return parse_request_head(text.substr(0, scan.length), limits);
}

int status_of(std::string_view text, Limits limits = {}) {
  auto r = parse(text, limits);
  return r ? 0 : r.error().status;
}

TEST(RequestHead, ParsesMethodPathQueryHostAndHeaders) {
  auto r = parse("GET /details/1?x=1&y=2 HTTP/1.1\r\nHost: details:9080\r\nX-Test:  v a l  \r\nx-test: second\r\n\r\n");
  ASSERT_TRUE(r) << r.error().reason;
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->target, "/details/1?x=1&y=2");
  EXPECT_EQ(r->path, "/details/1");
  EXPECT_EQ(r->query, "x=1&y=2");
  EXPECT_EQ(r->host, "details:9080");
  EXPECT_EQ(r->version_minor, 1);
  EXPECT_EQ(r->headers.get("X-TEST").value(), "v a l");
  EXPECT_EQ(r->headers.get_all("x-test").size(), 2u);
  EXPECT_EQ(r->framing, BodyFraming::None);
  EXPECT_TRUE(r->keep_alive);
}

TEST(RequestHead, AbsoluteFormTakesAuthorityAsHost) {
  auto r = parse("GET http://example.com:8080/a?b HTTP/1.1\r\nHost: other\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->host, "example.com:8080");
  EXPECT_EQ(r->path, "/a");
  EXPECT_EQ(r->query, "b");
}

TEST(RequestHead, AbsoluteFormReplacesHostAndGoesOnInOriginForm) {
  // RFC 9112 §3.2.2 (issue 12): what is judged (host) and what is forwarded (the Host field and
  // the target) must be the same host, or a `hosts` rule is bypassed at a Host-routed app.
  auto r = parse("GET http://public/x?y=1 HTTP/1.1\r\nHost: admin.internal\r\nX-A: b\r\n\r\n");
  ASSERT_TRUE(r) << r.error().reason;
  EXPECT_EQ(r->host, "public");
  EXPECT_EQ(r->headers.get_all("host").size(), 1u);
  EXPECT_EQ(r->headers.get("host").value(), "public");
  EXPECT_EQ(r->target, "/x?y=1");
  EXPECT_EQ(serialize_request_head(*r).rfind("GET /x?y=1 HTTP/1.1\r\n", 0), 0u) << serialize_request_head(*r);
  auto bare = parse("GET https://h.example HTTP/1.0\r\n\r\n");  // no Host, no path
  ASSERT_TRUE(bare) << bare.error().reason;
  EXPECT_EQ(bare->target, "/");
  EXPECT_EQ(bare->headers.get("host").value(), "h.example");
}

TEST(RequestHead, KeepAliveRules) {
  EXPECT_FALSE(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")->keep_alive);
  EXPECT_FALSE(parse("GET / HTTP/1.0\r\n\r\n")->keep_alive);
  EXPECT_TRUE(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")->keep_alive);
}

TEST(RequestHead, Framing) {
  auto cl = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n");
  ASSERT_TRUE(cl);
  EXPECT_EQ(cl->framing, BodyFraming::ContentLength);
  EXPECT_EQ(cl->content_length, 42u);
  auto same = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\nContent-Length: 7\r\n\r\n");
  ASSERT_TRUE(same);
  EXPECT_EQ(same->content_length, 7u);
  auto ch = parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
  ASSERT_TRUE(ch);
  EXPECT_EQ(ch->framing, BodyFraming::Chunked);
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")->framing, BodyFraming::None);
}

TEST(RequestHead, SmugglingVectorsAreRejected) {
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n"), 400);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), 400);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n"), 400);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n"), 400);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), 400);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"), 501);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  EXPECT_EQ(status_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n"), 400);  // empty coding
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), 501);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n"), 400);  // empty item
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5, 4\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"), 400);           // obs-fold
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n"), 400);   // space before colon
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), 400);             // bare CR
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n"), 400);            // control char
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\n\r\n"), 400);  // no Host
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
}

TEST(RequestHead, BareLineFeedIsMalformedAtScanTime) {
  HeadScanner scanner;
  std::string text = "GET / HTTP/1.1\nHost: a\n\n";
  EXPECT_EQ(scanner.scan(text, 1024).state, HeadScan::State::Malformed);
}

TEST(RequestHead, RequestLineErrors) {
  EXPECT_EQ(status_of("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("G@T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
  EXPECT_EQ(status_of("GET / HTTQ/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
  EXPECT_EQ(status_of("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"), 405);
  EXPECT_EQ(status_of("GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

TEST(RequestHead, HeaderCountLimitGives431) {
  std::string text = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 100; ++i) text += "X-" + std::to_string(i) + ": v\r\n";
  text += "\r\n";
  EXPECT_EQ(status_of(text), 431);  // 101 fields
  Limits roomy;
  roomy.max_headers = 101;
  EXPECT_EQ(status_of(text, roomy), 0);
}

// A field value is checked eight bytes at a time: every byte value, at every offset of values
// long enough to fill words and leave a tail, is accepted or refused exactly as RFC 9110's rule
// (HTAB, SP, VCHAR, obs-text) says; so is every byte of a header name (a token).
TEST(RequestHead, EveryByteOfAFieldIsCheckedWhereverItSits) {
  auto allowed_in_value = [](unsigned char c) { return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f); };
  for (int c = 0; c < 256; ++c) {
    if (c == '\r' || c == '\n') continue;  // they end lines
    const auto byte = static_cast<unsigned char>(c);
    for (size_t length : {1u, 7u, 8u, 9u, 17u, 24u}) {
      for (size_t at = 0; at < length; ++at) {
        std::string value(length, 'v');
        value[at] = static_cast<char>(byte);
        // Leading and trailing spaces and tabs are OWS, not part of the value: still allowed.
        const std::string text = "GET / HTTP/1.1\r\nHost: a\r\nX-V: " + value + "\r\n\r\n";
        EXPECT_EQ(status_of(text), allowed_in_value(byte) ? 0 : 400) << "byte " << c << " at " << at << " of " << length;
      }
    }
    if (c == ':') continue;  // it ends the name
    std::string name = "X-Name";
    name[3] = static_cast<char>(byte);
    const int status = status_of("GET / HTTP/1.1\r\nHost: a\r\n" + name + ": v\r\n\r\n");
    EXPECT_EQ(status, is_token_char(byte) ? 0 : 400) << "byte " << c << " in a name";
  }
  // A CR not followed by LF inside a line is a bare CR, wherever the next CRLF is.
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), 400);
  auto bare = parse_request_head("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", {});
  ASSERT_FALSE(bare);
  EXPECT_EQ(bare.error().reason, "bare CR or LF in head");
  auto unterminated = parse_request_head("GET / HTTP/1.1\r\nHost: a\r", {});
  ASSERT_FALSE(unterminated);
  EXPECT_EQ(unterminated.error().reason, "unterminated line");
}

TEST(HeadScanner, SizeLimitGives431AndIsIncremental) {
  Limits limits;
  limits.max_head_bytes = 64;
  HeadScanner scanner;
  std::string buffer = "GET / HTTP/1.1\r\nHost: a\r\n";
  EXPECT_EQ(scanner.scan(buffer, limits.max_head_bytes).state, HeadScan::State::Incomplete);
  buffer += "X-Long: " + std::string(40, 'a');
  EXPECT_EQ(scanner.scan(buffer, limits.max_head_bytes).state, HeadScan::State::TooLarge);
}

TEST(HeadScanner, PipelinedBytesStayAfterTheHead) {
  std::string buffer = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
  HeadScanner scanner;
  // Arrives in small pieces: the scanner finds the same end however it is split.
  HeadScan scan;
  for (size_t n = 1; n <= buffer.size(); ++n) {
    scan = scanner.scan(std::string_view(buffer).substr(0, n), 1024);
    if (scan.state == HeadScan::State::Complete) break;
  }
  ASSERT_EQ(scan.state, HeadScan::State::Complete);
  auto first = parse_request_head(std::string_view(buffer).substr(0, scan.length), {});
  ASSERT_TRUE(first);
  EXPECT_EQ(first->path, "/1");
  buffer.erase(0, scan.length);
  scanner.reset();
  scan = scanner.scan(buffer, 1024);
  ASSERT_EQ(scan.state, HeadScan::State::Complete);
  EXPECT_EQ(parse_request_head(std::string_view(buffer).substr(0, scan.length), {})->path, "/2");
}

TEST(ResponseHead, FramingAndKeepAlive) {
  auto r = parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", {}, "GET");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->reason, "OK");
  EXPECT_EQ(r->framing, BodyFraming::ContentLength);
  EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", {}, "HEAD")->framing,
            BodyFraming::None);
  EXPECT_EQ(parse_response_head("HTTP/1.1 204 No Content\r\n\r\n", {}, "GET")->framing, BodyFraming::None);
  auto close = parse_response_head("HTTP/1.1 200 OK\r\n\r\n", {}, "GET");
  ASSERT_TRUE(close);
  EXPECT_EQ(close->framing, BodyFraming::UntilClose);
  EXPECT_FALSE(close->keep_alive);
  EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", {}, "GET")->framing,
            BodyFraming::Chunked);
  EXPECT_TRUE(parse_response_head("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", {}, "GET"));
  auto both = parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", {}, "GET");
  ASSERT_FALSE(both);
  EXPECT_EQ(both.error().status, 502);
  EXPECT_FALSE(parse_response_head("HTTP/1.1 2x0 OK\r\n\r\n", {}, "GET"));
}

}  // namespace
}  // namespace mg::http
