// The access log's JSON writer: every line must parse as JSON and give back the values written,
// whatever bytes a client put in a path or header.
#include "telemetry/json_line.h"
#include "telemetry/access_log.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <ctime>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

namespace mg::telemetry {
namespace {

std::string escaped(std::string_view s) {
  std::string out;
  append_json_escaped(out, s);
  return out;
}

// The string a JSON parser reads back from `s` escaped and quoted.
std::string round_trip(std::string_view s) {
  return nlohmann::json::parse("\"" + escaped(s) + "\"").get<std::string>();
}

TEST(JsonEscape, PlainAsciiIsCopied) {
  EXPECT_EQ(escaped("/details/1?x=y&z=%20"), "/details/1?x=y&z=%20");
  EXPECT_EQ(escaped(""), "");
}

TEST(JsonEscape, QuotesAndBackslashes) {
  EXPECT_EQ(escaped(R"(a"b\c)"), R"(a\"b\\c)");
  EXPECT_EQ(round_trip(R"("\"\\)"), R"("\"\\)");
}

TEST(JsonEscape, ControlCharacters) {
  EXPECT_EQ(escaped("\b\f\n\r\t"), "\\b\\f\\n\\r\\t");
  EXPECT_EQ(escaped(std::string_view("\x00\x01\x1f", 3)), "\\u0000\\u0001\\u001f");
  EXPECT_EQ(escaped("\x7f"), "\x7f");  // DEL needs no escape in JSON
  std::string all;
  for (int c = 0; c < 0x20; ++c) all += static_cast<char>(c);
  EXPECT_EQ(round_trip(all), all);
}

TEST(JsonEscape, ValidUtf8IsKept) {
  const std::string s = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF";  // é € 😀 U+FFFF
  EXPECT_EQ(escaped(s), s);
  EXPECT_EQ(round_trip(s), s);
}

TEST(JsonEscape, InvalidUtf8BecomesReplacementCharacters) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(escaped("a\xFF"
                    "b"),
            "a" + r + "b");
  EXPECT_EQ(escaped("\xC3"), r);                          // truncated sequence at the end
  EXPECT_EQ(escaped("\xC3(x"), r + "(x");                 // bad continuation byte
  EXPECT_EQ(escaped("\xC0\xAF"), r + r);                  // overlong '/'
  EXPECT_EQ(escaped("\xED\xA0\x80"), r + r + r);          // UTF-16 surrogate
  EXPECT_EQ(escaped("\xF4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(escaped("\x80\""), r + "\\\"");               // lone continuation byte, then a quote
  // Whatever the bytes, the result parses.
  std::string junk;
  for (int c = 0; c < 256; ++c) junk += static_cast<char>(c);
  EXPECT_NO_THROW(round_trip(junk + junk));
}

// The escaper reads plain ASCII eight bytes at a time: a byte to escape is found at every
// offset of a word and of the tail, whatever surrounds it.
TEST(JsonEscape, EveryOffsetOfAWord) {
  const std::vector<std::pair<std::string, std::string>> specials = {
      {"\"", "\\\""},          {"\\", "\\\\"},         {"\n", "\\n"},
      {std::string(1, '\0'), "\\u0000"}, {"\x1f", "\\u001f"}, {"\xC3\xA9", "\xC3\xA9"},
      {"\xFF", "\xEF\xBF\xBD"}};
  for (const auto& [special, written] : specials) {
    for (size_t at = 0; at < 24; ++at) {
      const std::string s = std::string(at, 'a') + special + std::string(24 - at, 'b');
      const std::string expected = std::string(at, 'a') + written + std::string(24 - at, 'b');
      EXPECT_EQ(escaped(s), expected) << "at " << at;
      std::string line_buf;
      JsonLine line(line_buf);
      line.str("v", s);
      EXPECT_EQ(line.finish(), "{\"v\":\"" + expected + "\"}") << "at " << at;
    }
  }
  // DEL and the bytes just around the special ones stay plain.
  EXPECT_EQ(escaped("\x7f\x20!#[]~\x7f\x7f"), "\x7f\x20!#[]~\x7f\x7f");
}

// A line longer than the writer's room grows it; the next line starts from an empty one.
TEST(JsonLine, LongLinesGrowTheRoom) {
  std::string buf;
  const std::string path(40000, 'p');
  const std::string quoted = "x\"" + std::string(3000, 'q');
  {
    JsonLine line(buf);
    line.str("path", path).num("n", uint64_t{42}).str("q", quoted).open("o").boolean("b", true).close();
    const std::string& out = line.finish();
    const auto parsed = nlohmann::json::parse(out);
    EXPECT_EQ(parsed["path"], path);
    EXPECT_EQ(parsed["n"], 42);
    EXPECT_EQ(parsed["q"], quoted);
    EXPECT_EQ(parsed["o"]["b"], true);
  }
  JsonLine next(buf);
  next.str("a", "b").null("c");
  EXPECT_EQ(next.finish(), R"({"a":"b","c":null})");
}

TEST(JsonLine, WritesTheSameValuesAsADocument) {
  std::string buf = "left over from the last line";
  JsonLine line(buf);
  line.str("time", "2026-11-30T05:00:00.000Z")
      .open("source")
      .str("principal", "spiffe://cluster.local/ns/a/sa/b")
      .str("address", "127.0.0.1:5")
      .close()
      .open("destination")
      .str("principal", "x")
      .num("port", 15006u)
      .close()
      .str("path", "/a\"b\n\xFF")
      .num("status", 200)
      .str_or_null("policy", std::nullopt)
      .str_or_null("policy2", std::string("ns/p"))
      .num_or_null("rule", 3)
      .num_or_null("rule2", std::nullopt)
      .boolean("audit", false)
      .boolean_or_null("dry_run", std::nullopt)
      .boolean_or_null("dry_run2", true)
      .null("action")
      .num("duration_ms", 1.25)
      .num("nan", std::numeric_limits<double>::quiet_NaN())
      .num("bytes_received", uint64_t{18446744073709551615u})
      .num("neg", int64_t{-7});
  std::string& out = line.finish();
  EXPECT_EQ(&out, &buf);
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["time"], "2026-11-30T05:00:00.000Z");
  EXPECT_EQ(j["source"]["principal"], "spiffe://cluster.local/ns/a/sa/b");
  EXPECT_EQ(j["source"]["address"], "127.0.0.1:5");
  EXPECT_EQ(j["destination"]["port"], 15006);
  EXPECT_EQ(j["path"], "/a\"b\n\xEF\xBF\xBD");
  EXPECT_EQ(j["status"], 200);
  EXPECT_TRUE(j["policy"].is_null());
  EXPECT_EQ(j["policy2"], "ns/p");
  EXPECT_EQ(j["rule"], 3);
  EXPECT_TRUE(j["rule2"].is_null());
  EXPECT_EQ(j["audit"], false);
  EXPECT_TRUE(j["dry_run"].is_null());
  EXPECT_EQ(j["dry_run2"], true);
  EXPECT_TRUE(j["action"].is_null());
  EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 1.25);
  EXPECT_TRUE(j["nan"].is_null());
  EXPECT_EQ(j["bytes_received"].get<uint64_t>(), 18446744073709551615u);
  EXPECT_EQ(j["neg"], -7);
  EXPECT_EQ(j.size(), 17u);
}

TEST(JsonLine, MillisAreWrittenToTheMicrosecond) {
  std::string buf;
  auto& out = JsonLine(buf)
                  .millis("a", 1.25)
                  .millis("b", 0.0004)
                  .millis("c", 12345.6789)
                  .millis("d", -0.5)
                  .millis("e", std::numeric_limits<double>::infinity())
                  .finish();
  EXPECT_EQ(out, R"({"a":1.250,"b":0.000,"c":12345.679,"d":-0.500,"e":null})");
  auto parsed = nlohmann::json::parse(out);
  EXPECT_DOUBLE_EQ(parsed["c"].get<double>(), 12345.679);
}

TEST(AccessLogTime, IsRfc3339UtcWithMilliseconds) {
  std::array<char, 64> buf;
  std::string_view first = now_rfc3339(buf);
  ASSERT_EQ(first.size(), 24u) << first;
  std::string a(first);
  // YYYY-MM-DDTHH:MM:SS.mmmZ
  for (size_t i : {4u, 7u}) EXPECT_EQ(a[i], '-') << a;
  EXPECT_EQ(a[10], 'T');
  EXPECT_EQ(a[13], ':');
  EXPECT_EQ(a[16], ':');
  EXPECT_EQ(a[19], '.');
  EXPECT_EQ(a[23], 'Z');
  // The cached date part is reused within a second and the result never goes backwards.
  std::string b(now_rfc3339(buf));
  EXPECT_LE(a, b);
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char year[16];
  std::snprintf(year, sizeof year, "%04d", tm.tm_year + 1900);
  EXPECT_EQ(b.substr(0, 4), year);
}

TEST(JsonLine, EmptyObject) {
  std::string buf;
  EXPECT_EQ(JsonLine(buf).finish(), "{}");
}

}  // namespace
}  // namespace mg::telemetry
