// The abuse protections the codec enforces, each driven by a raw peer that does what a
// well-behaved client never would. Every limit under test is set below nghttp2's own default
// (or the protection is ours alone), so each test fails if the protection is taken away.
#include "h2_test_util.h"

namespace mg::http2 {
namespace {

using test::client_start;
using test::count_frames;
using test::Encoder;
using test::frame;
using test::frames_of;
using test::get_fields;
using test::make_server;

// Feeds `bytes` to a fresh server and returns what it wrote back and whether receive() failed.
struct Outcome {
  bool failed = false;
  std::string reason;
  std::vector<test::Frame> frames;
  std::vector<Event> events;
};

Outcome feed(ServerSession& server, const std::string& bytes) {
  Outcome out;
  auto st = server.receive(bytes);
  out.failed = !st;
  if (!st) out.reason = st.error().message;
  while (auto ev = server.next_event()) out.events.push_back(std::move(*ev));
  std::string written;
  server.take_output(written);
  out.frames = frames_of(written);
  if (!server.alive()) out.failed = true;  // a GOAWAY nghttp2 queued itself ended it
  if (out.reason.empty()) out.reason = server.close_reason();
  return out;
}

size_t count_events(const Outcome& o, Event::Kind kind) {
  size_t n = 0;
  for (const auto& ev : o.events) n += ev.kind == kind;
  return n;
}

// GET requests, each HEADERS ending its stream and immediately cancelled: the attack of
// CVE-2023-44487.
std::string rapid_resets(Encoder& enc, int pairs) {
  std::string bytes;
  for (int i = 0; i < pairs; ++i) {
    int32_t id = 1 + 2 * i;
    bytes += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, id,
                   enc.encode(get_fields()));
    bytes += frame(NGHTTP2_RST_STREAM, 0, id, test::u32(NGHTTP2_CANCEL));
  }
  return bytes;
}

TEST(Http2Abuse, MaxConcurrentStreamsRefusesTheStreamsBeyondIt) {
  Limits limits;
  limits.max_concurrent_streams = 5;
  auto server = make_server(limits);
  Encoder enc;
  std::string bytes = client_start();
  for (int i = 0; i < 8; ++i) {  // open streams (no END_STREAM): each holds a slot
    bytes += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1 + 2 * i, enc.encode(get_fields()));
  }
  Outcome o = feed(*server, bytes);
  EXPECT_FALSE(o.failed);
  EXPECT_EQ(count_events(o, Event::Kind::Head), 5u);
  EXPECT_EQ(count_frames(o.frames, NGHTTP2_RST_STREAM, NGHTTP2_REFUSED_STREAM), 3u);
}

TEST(Http2Abuse, RapidResetEndsTheConnection) {
  Limits limits;
  limits.reset_burst = 100000;  // nghttp2's token bucket out of the way: our window alone
  auto server = make_server(limits);
  Encoder enc;
  Outcome o = feed(*server, client_start() + rapid_resets(enc, 300));
  EXPECT_TRUE(o.failed);
  EXPECT_NE(o.reason.find("rapid reset"), std::string::npos) << o.reason;
  EXPECT_EQ(count_frames(o.frames, NGHTTP2_GOAWAY, NGHTTP2_ENHANCE_YOUR_CALM), 1u);
  EXPECT_FALSE(server->alive());
  EXPECT_LT(count_events(o, Event::Kind::Head), 300u);
}

TEST(Http2Abuse, RapidResetTokenBucketEndsTheConnection) {
  Limits limits;
  limits.max_resets_per_window = limits.reset_window;  // our window out of the way: nghttp2's bucket alone
  limits.reset_burst = 20;
  auto server = make_server(limits);
  Encoder enc;
  Outcome o = feed(*server, client_start() + rapid_resets(enc, 200));  // below nghttp2's default burst (1000)
  EXPECT_TRUE(o.failed);
  EXPECT_EQ(count_frames(o.frames, NGHTTP2_GOAWAY, NGHTTP2_INTERNAL_ERROR), 1u);  // nghttp2's choice of code
  EXPECT_FALSE(server->alive());
}

TEST(Http2Abuse, CancellationsBelowTheBoundAreFine) {
  Limits limits;
  limits.max_concurrent_streams = 500;  // the streams not cancelled stay open, unanswered
  auto server = make_server(limits);
  Encoder enc;
  // 40 of every 100 streams cancelled: a client giving up on slow calls, not an attack.
  std::string bytes = client_start();
  for (int i = 0; i < 300; ++i) {
    int32_t id = 1 + 2 * i;
    bytes += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, id,
                   enc.encode(get_fields()));
    if (i % 5 < 2) bytes += frame(NGHTTP2_RST_STREAM, 0, id, test::u32(NGHTTP2_CANCEL));
  }
  Outcome o = feed(*server, bytes);
  EXPECT_FALSE(o.failed) << o.reason;
  EXPECT_TRUE(server->alive());
  EXPECT_EQ(count_events(o, Event::Kind::Head), 300u);
}

TEST(Http2Abuse, ContinuationFloodEndsTheConnection) {
  Limits limits;
  static_assert(Limits{}.max_continuations + 2 <= 8, "the flood must stay below nghttp2's default (8)");
  auto server = make_server(limits);
  Encoder enc;
  std::string bytes = client_start();
  bytes += frame(NGHTTP2_HEADERS, 0, 1, enc.encode(get_fields()));
  for (size_t i = 0; i < limits.max_continuations + 2; ++i) {
    bool last = i + 1 == limits.max_continuations + 2;
    bytes += frame(NGHTTP2_CONTINUATION, last ? NGHTTP2_FLAG_END_HEADERS : 0, 1,
                   enc.encode({{"x-c" + std::to_string(i), "v"}}));
  }
  Outcome o = feed(*server, bytes);
  EXPECT_TRUE(o.failed);
  EXPECT_EQ(count_events(o, Event::Kind::Head), 0u);
  EXPECT_FALSE(server->alive());
}

TEST(Http2Abuse, HpackBombIsRefusedWithoutBeingKept) {
  auto server = make_server();
  Encoder enc;
  // One 2000-byte field enters the encoder's dynamic table; each repetition is then a one-byte
  // reference: ~2 KB on the wire decode to ~120 KB.
  auto fields = get_fields();
  for (int i = 0; i < 60; ++i) fields.emplace_back("x-bomb", std::string(2000, 'a'));  // under max_headers
  std::string block = enc.encode(fields);
  ASSERT_LT(block.size(), 16384u);
  Outcome o =
      feed(*server, client_start() +
                        frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1, block));
  EXPECT_FALSE(o.failed);
  ASSERT_EQ(count_events(o, Event::Kind::Refused), 1u);
  EXPECT_EQ(count_events(o, Event::Kind::Head), 0u);
  for (const auto& ev : o.events) {
    if (ev.kind == Event::Kind::Refused) {
      EXPECT_EQ(ev.refusal.status, 431);
    }
  }
  // The connection's HPACK state survived the refused block: the next request decodes.
  Outcome next = feed(*server, frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 3,
                                     enc.encode(get_fields("/after"))));
  ASSERT_EQ(count_events(next, Event::Kind::Head), 1u);
  EXPECT_EQ(next.events[0].request.path, "/after");
}

TEST(Http2Abuse, TooManyHeaderFieldsAreRefused) {
  auto server = make_server();
  Encoder enc;
  auto fields = get_fields();
  for (int i = 0; i < 150; ++i) fields.emplace_back("x-f" + std::to_string(i), "1");
  Outcome o = feed(
      *server, client_start() + frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1,
                                      enc.encode(fields)));
  ASSERT_EQ(count_events(o, Event::Kind::Refused), 1u);
  EXPECT_EQ(count_events(o, Event::Kind::Head), 0u);
}

TEST(Http2Abuse, DynamicTableBeyondOurSettingIsACompressionError) {
  Limits limits;
  limits.header_table_size = 256;
  auto server = make_server(limits);
  std::string ours;
  server->take_output(ours);  // our SETTINGS, which the peer now acknowledges
  Encoder enc;
  std::string bytes = client_start() + frame(NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0, "");
  // A header block opening with a dynamic table size update to 4096 (RFC 7541 §6.3), over
  // the 256 we allowed; nghttp2's default (4096) would accept it.
  std::string update = "\x3f\xe1\x1f";
  bytes += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1,
                 update + enc.encode(get_fields()));
  Outcome o = feed(*server, bytes);
  EXPECT_TRUE(o.failed);
  EXPECT_EQ(count_events(o, Event::Kind::Head), 0u);
  EXPECT_EQ(count_frames(o.frames, NGHTTP2_GOAWAY, NGHTTP2_COMPRESSION_ERROR), 1u);
}

TEST(Http2Abuse, SettingsFloodEndsTheConnection) {
  Limits limits;
  auto server = make_server(limits);
  std::string bytes = client_start();
  for (size_t i = 0; i < limits.max_outbound_ack + 50; ++i) bytes += frame(NGHTTP2_SETTINGS, 0, 0, "");
  ASSERT_LT(limits.max_outbound_ack + 50, 1000u);  // nghttp2's default would let this pass
  Outcome o = feed(*server, bytes);
  EXPECT_TRUE(o.failed);
  EXPECT_FALSE(server->alive());
}

TEST(Http2Abuse, PingFloodEndsTheConnection) {
  Limits limits;
  auto server = make_server(limits);
  std::string bytes = client_start();
  for (size_t i = 0; i < limits.max_outbound_ack + 50; ++i)
    bytes += frame(NGHTTP2_PING, 0, 0, std::string(8, 'p'));
  Outcome o = feed(*server, bytes);
  EXPECT_TRUE(o.failed);
  EXPECT_FALSE(server->alive());
}

TEST(Http2Abuse, ASettingsFrameWithTooManyEntriesEndsTheConnection) {
  Limits limits;
  auto server = make_server(limits);
  std::string entries;
  for (size_t i = 0; i < limits.max_settings_entries + 4; ++i) {  // below nghttp2's default (32)
    entries += test::settings_entry(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535);
  }
  Outcome o = feed(*server, std::string(kClientPreface) + frame(NGHTTP2_SETTINGS, 0, 0, entries));
  EXPECT_TRUE(o.failed);
  EXPECT_FALSE(server->alive());
}

// A peer that ignores flow control gets no more than a window's worth handed to the caller
// (nghttp2 alone resets the stream but still hands over the frame that overran it).
TEST(Http2Abuse, DataBeyondTheWindowIsNotHandedOver) {
  Limits limits;
  limits.stream_window = NGHTTP2_INITIAL_WINDOW_SIZE;
  auto server = make_server(limits);
  Encoder enc;
  std::string bytes = client_start();
  bytes += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, enc.encode(get_fields()));
  for (int i = 0; i < 6; ++i)
    bytes += frame(NGHTTP2_DATA, 0, 1, std::string(16384, 'd'));  // 96 KiB, nothing consumed
  Outcome o = feed(*server, bytes);
  size_t data = 0;
  for (const auto& ev : o.events) data += ev.kind == Event::Kind::Data ? ev.data.size() : 0;
  EXPECT_LE(data, size_t{NGHTTP2_INITIAL_WINDOW_SIZE});
  EXPECT_GE(count_frames(o.frames, NGHTTP2_RST_STREAM, NGHTTP2_FLOW_CONTROL_ERROR) +
                count_frames(o.frames, NGHTTP2_GOAWAY, NGHTTP2_FLOW_CONTROL_ERROR),
            1u);
}

TEST(Http2Abuse, NotAPrefaceIsRefused) {
  auto server = make_server();
  Outcome o = feed(*server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(o.failed);
  EXPECT_FALSE(server->alive());
}

}  // namespace
}  // namespace mg::http2
