#include "http/body.h"

#include <gtest/gtest.h>

namespace mg::http {
namespace {

// Feeds `wire` in pieces of `step` bytes; returns the decoded payload or the error status.
struct Decoded {
  bool ok = false;
  std::string payload;
  size_t consumed = 0;
  bool done = false;
};

Decoded decode(BodyFraming framing, uint64_t length, std::string_view wire, size_t step) {
  BodyDecoder decoder(framing, length);
  Decoded d;
  size_t pos = 0;
  while (pos < wire.size() && !decoder.done()) {
    auto piece = wire.substr(pos, std::min(step, wire.size() - pos));
    auto n = decoder.feed(piece, d.payload);
    if (!n) return d;
    pos += *n;
    if (*n < piece.size()) break;
  }
  d.ok = true;
  d.consumed = pos;
  d.done = decoder.done();
  return d;
}

TEST(BodyDecoder, ContentLengthStopsAtTheEnd) {
  for (size_t step : {1u, 3u, 100u}) {
    auto d = decode(BodyFraming::ContentLength, 5, "helloGET /next", step);
    ASSERT_TRUE(d.ok);
    EXPECT_TRUE(d.done);
    EXPECT_EQ(d.payload, "hello");
    EXPECT_EQ(d.consumed, 5u);
  }
}

TEST(BodyDecoder, ChunkedWithExtensionsAndTrailers) {
  std::string wire = "5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
  for (size_t step : {1u, 2u, 7u, 1000u}) {
    auto d = decode(BodyFraming::Chunked, 0, wire, step);
    ASSERT_TRUE(d.ok) << step;
    EXPECT_TRUE(d.done);
    EXPECT_EQ(d.payload, "hello0123456789");
    EXPECT_EQ(d.consumed, wire.size() - 4);
  }
}

TEST(BodyDecoder, TrailersAreKeptForRelayMalformedLinesDropped) {
  std::string wire = "3\r\nabc\r\n0\r\nGrpc-Status: 0\r\nno colon here\r\nbad name: x\r\nX-Sum:  \t42 \r\n\r\n";
  for (size_t step : {1u, 5u, 1000u}) {
    BodyDecoder decoder(BodyFraming::Chunked, 0);
    std::string out;
    size_t at = 0;
    while (at < wire.size() && !decoder.done()) {
      auto used = decoder.feed(std::string_view(wire).substr(at, step), out);
      ASSERT_TRUE(used) << step;
      at += *used;
    }
    ASSERT_TRUE(decoder.done());
    ASSERT_EQ(decoder.trailers().size(), 2u) << step;
    EXPECT_EQ(decoder.trailers().get("grpc-status"), "0");
    EXPECT_EQ(decoder.trailers().get("x-sum"), "42");
  }
}

TEST(BodyDecoder, LastChunkCarriesOnlyRelayableTrailers) {
  Headers t;
  t.add("grpc-status", "0");
  t.add("Content-Length", "5");
  t.add("authorization", "Bearer x");
  t.add("transfer-encoding", "chunked");
  std::string out;
  append_last_chunk(out, t);
  EXPECT_EQ(out, "0\r\ngrpc-status: 0\r\n\r\n");
  out.clear();
  append_last_chunk(out, Headers());
  EXPECT_EQ(out, kLastChunk);
}

TEST(BodyDecoder, BadChunksAreRejected) {
  for (std::string_view wire : {"g\r\nx\r\n0\r\n\r\n", "5\r\nhelloX\r\n0\r\n\r\n", "5\nhello\r\n0\r\n\r\n",
                                " 5\r\nhello\r\n0\r\n\r\n", "5 \r\nhello\r\n0\r\n\r\n", "-1\r\n",
                                "fffffffffffffffffff\r\n", "0\r\n\r\x01", "0\r\nX: a\nb\r\n\r\n",
                                "0\r\n b\r\n\r\n", "\r\n"}) {
    BodyDecoder decoder(BodyFraming::Chunked, 0);
    std::string out;
    auto n = decoder.feed(wire, out);
    EXPECT_FALSE(n && decoder.done()) << wire;
    if (!n) {
      EXPECT_EQ(n.error().status, 400);
    }
  }
}

TEST(BodyDecoder, UntilCloseEndsAtEof) {
  BodyDecoder decoder(BodyFraming::UntilClose, 0);
  std::string out;
  ASSERT_TRUE(decoder.feed("abc", out));
  EXPECT_FALSE(decoder.done());
  EXPECT_TRUE(decoder.accept_eof());
  EXPECT_TRUE(decoder.done());
  EXPECT_EQ(out, "abc");
  BodyDecoder truncated(BodyFraming::ContentLength, 10);
  ASSERT_TRUE(truncated.feed("abc", out));
  EXPECT_FALSE(truncated.accept_eof());
}

TEST(EncodeChunk, RoundTrips) {
  std::string wire = encode_chunk("hello") + encode_chunk(std::string(300, 'x')) + std::string(kLastChunk);
  auto d = decode(BodyFraming::Chunked, 0, wire, 4);
  ASSERT_TRUE(d.ok);
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.payload, "hello" + std::string(300, 'x'));
  EXPECT_EQ(encode_chunk(""), "");
}

}  // namespace
}  // namespace mg::http
