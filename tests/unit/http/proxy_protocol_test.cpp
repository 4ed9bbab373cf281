#include "http/proxy_protocol.h"

#include <gtest/gtest.h>

namespace mg::http {
namespace {

using State = ProxyHeaderParse::State;

std::string v2_signature() { return std::string("\r\n\r\n\0\r\nQUIT\n", 12); }

// A v2 header: signature, version/command byte, family byte, then `block` with its length.
std::string v2(unsigned char ver_cmd, unsigned char family, const std::string& block) {
  std::string s = v2_signature();
  s += static_cast<char>(ver_cmd);
  s += static_cast<char>(family);
  s += static_cast<char>((block.size() >> 8) & 0xff);
  s += static_cast<char>(block.size() & 0xff);
  return s + block;
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s += static_cast<char>(c);
  return s;
}

// 192.0.2.7:51000 → 198.51.100.1:443
std::string tcp4_block() { return bytes({192, 0, 2, 7, 198, 51, 100, 1, 0xC7, 0x38, 0x01, 0xBB}); }

TEST(ProxyProtocolV1, Tcp4HeaderGivesTheClientAndItsExactLength) {
  std::string line = "PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\n";
  auto p = parse_proxy_header(line + "GET / HTTP/1.1\r\n");
  ASSERT_EQ(p.state, State::Complete) << p.error.to_string();
  EXPECT_EQ(p.header.version, 1);
  EXPECT_TRUE(p.header.proxied);
  EXPECT_FALSE(p.header.ipv6);
  EXPECT_EQ(p.header.source_address, "192.0.2.7");
  EXPECT_EQ(p.header.destination_address, "198.51.100.1");
  EXPECT_EQ(p.header.source_port, 51000);
  EXPECT_EQ(p.header.destination_port, 443);
  EXPECT_EQ(p.header.length, line.size());
  EXPECT_EQ(p.header.source_endpoint(), "192.0.2.7:51000");
}

TEST(ProxyProtocolV1, Tcp6HeaderIsCanonicalAndBracketed) {
  auto p = parse_proxy_header("PROXY TCP6 2001:DB8:0:0::1 ::1 65535 0\r\n");
  ASSERT_EQ(p.state, State::Complete) << p.error.to_string();
  EXPECT_TRUE(p.header.ipv6);
  EXPECT_EQ(p.header.source_address, "2001:db8::1");
  EXPECT_EQ(p.header.source_port, 65535);
  EXPECT_EQ(p.header.destination_port, 0);
  EXPECT_EQ(p.header.source_endpoint(), "[2001:db8::1]:65535");
}

TEST(ProxyProtocolV1, UnknownKeepsTheConnectionsAddress) {
  for (std::string line : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"}) {
    auto p = parse_proxy_header(line);
    ASSERT_EQ(p.state, State::Complete) << line;
    EXPECT_FALSE(p.header.proxied);
    EXPECT_EQ(p.header.length, line.size());
  }
}

TEST(ProxyProtocolV1, EveryPrefixOfAValidHeaderIsIncomplete) {
  std::string line = "PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n";
  for (size_t n = 0; n < line.size(); ++n) {
    EXPECT_EQ(parse_proxy_header(line.substr(0, n)).state, State::Incomplete) << n;
  }
}

TEST(ProxyProtocolV1, MalformedLinesAreRefusedWithTheirReason) {
  struct Case {
    std::string input;
    std::string code;
  };
  const Case cases[] = {
      {"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\n", "proxy_protocol.v1_bad_character"},  // bare LF
      {"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\rX", "proxy_protocol.v1_bad_line_end"},
      {"PROXY TCP4 10.0.0.1  10.0.0.2 1 2\r\n", "proxy_protocol.v1_bad_fields"},
      {"PROXY TCP4 10.0.0.1 10.0.0.2 1 2 3\r\n", "proxy_protocol.v1_bad_fields"},
      {"PROXY TCP4 10.0.0.1 10.0.0.2 1\r\n", "proxy_protocol.v1_bad_fields"},
      {"PROXY UDP4 10.0.0.1 10.0.0.2 1 2\r\n", "proxy_protocol.v1_bad_protocol"},
      {"PROXY tcp4 10.0.0.1 10.0.0.2 1 2\r\n", "proxy_protocol.v1_bad_protocol"},
      {"PROXY TCP4 ::1 10.0.0.2 1 2\r\n", "proxy_protocol.v1_bad_address"},
      {"PROXY TCP6 10.0.0.1 ::2 1 2\r\n", "proxy_protocol.v1_bad_address"},
      {"PROXY TCP4 010.0.0.1 10.0.0.2 1 2\r\n", "proxy_protocol.v1_bad_address"},
      {"PROXY TCP4 10.0.0.1 10.0.0.2 65536 2\r\n", "proxy_protocol.v1_bad_port"},
      {"PROXY TCP4 10.0.0.1 10.0.0.2 01 2\r\n", "proxy_protocol.v1_bad_port"},
      {"PROXY TCP4 10.0.0.1 10.0.0.2 +1 2\r\n", "proxy_protocol.v1_bad_port"},
      {"PROXY UNKNOWN \x01\r\n", "proxy_protocol.v1_bad_character"},
      {"GET / HTTP/1.1\r\n", "proxy_protocol.missing"},
      {"\x16\x03\x01\x02\x00", "proxy_protocol.missing"},
      {"PROXX", "proxy_protocol.missing"},
  };
  for (const Case& c : cases) {
    auto p = parse_proxy_header(c.input);
    ASSERT_EQ(p.state, State::Invalid) << c.input;
    EXPECT_EQ(p.error.code, c.code) << c.input;
    EXPECT_FALSE(p.error.message.empty());
  }
}

TEST(ProxyProtocolV1, ALineWithoutCrlfWithin107BytesIsRefused) {
  std::string longest = "PROXY UNKNOWN " + std::string(kProxyV1MaxBytes - 16, 'x') + "\r\n";
  ASSERT_EQ(longest.size(), kProxyV1MaxBytes);
  EXPECT_EQ(parse_proxy_header(longest).state, State::Complete);
  std::string too_long = "PROXY UNKNOWN " + std::string(kProxyV1MaxBytes - 15, 'x') + "\r\n";
  auto p = parse_proxy_header(too_long);
  ASSERT_EQ(p.state, State::Invalid);
  EXPECT_EQ(p.error.code, "proxy_protocol.v1_too_long");
  // Refused as soon as the bound is passed, not when a CRLF finally comes.
  EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN " + std::string(200, 'x')).state, State::Invalid);
}

TEST(ProxyProtocolV2, Tcp4ProxyGivesTheClient) {
  std::string h = v2(0x21, 0x11, tcp4_block());
  auto p = parse_proxy_header(h + "\x16\x03\x01");
  ASSERT_EQ(p.state, State::Complete) << p.error.to_string();
  EXPECT_EQ(p.header.version, 2);
  EXPECT_TRUE(p.header.proxied);
  EXPECT_EQ(p.header.source_address, "192.0.2.7");
  EXPECT_EQ(p.header.destination_address, "198.51.100.1");
  EXPECT_EQ(p.header.source_port, 51000);
  EXPECT_EQ(p.header.destination_port, 443);
  EXPECT_EQ(p.header.length, 28u);
}

TEST(ProxyProtocolV2, Tcp6ProxyGivesTheClient) {
  std::string block(36, '\0');
  block[0] = 0x20, block[1] = 0x01, block[2] = 0x0d, block[3] = static_cast<char>(0xb8), block[15] = 9;
  block[31] = 1;
  block[32] = 0x01, block[33] = 0x02, block[34] = 0x00, block[35] = 0x50;
  auto p = parse_proxy_header(v2(0x21, 0x21, block));
  ASSERT_EQ(p.state, State::Complete) << p.error.to_string();
  EXPECT_TRUE(p.header.ipv6);
  EXPECT_EQ(p.header.source_address, "2001:db8::9");
  EXPECT_EQ(p.header.destination_address, "::1");
  EXPECT_EQ(p.header.source_port, 258);
  EXPECT_EQ(p.header.destination_port, 80);
  EXPECT_EQ(p.header.source_endpoint(), "[2001:db8::9]:258");
}

TEST(ProxyProtocolV2, TlvsAfterTheAddressesAreSkippedWhenWellFramed) {
  std::string tlvs = bytes({0x04, 0x00, 0x02, 'h', 'i', 0x05, 0x00, 0x00});  // NOOP(2), UNIQUE_ID(0)
  auto p = parse_proxy_header(v2(0x21, 0x11, tcp4_block() + tlvs));
  ASSERT_EQ(p.state, State::Complete) << p.error.to_string();
  EXPECT_EQ(p.header.length, 16 + 12 + tlvs.size());
  auto bad = parse_proxy_header(v2(0x21, 0x11, tcp4_block() + bytes({0x04, 0x00, 0x09, 'x'})));
  ASSERT_EQ(bad.state, State::Invalid);
  EXPECT_EQ(bad.error.code, "proxy_protocol.v2_bad_tlv");
  auto truncated = parse_proxy_header(v2(0x21, 0x11, tcp4_block() + bytes({0x04, 0x00})));
  EXPECT_EQ(truncated.error.code, "proxy_protocol.v2_bad_tlv");
}

TEST(ProxyProtocolV2, LocalAndUnspecKeepTheConnectionsAddress) {
  auto local = parse_proxy_header(v2(0x20, 0x00, ""));
  ASSERT_EQ(local.state, State::Complete);
  EXPECT_FALSE(local.header.proxied);
  EXPECT_EQ(local.header.length, 16u);
  // LOCAL ignores whatever address block it carries.
  auto local_with_block = parse_proxy_header(v2(0x20, 0x31, std::string(216, 'x')));
  ASSERT_EQ(local_with_block.state, State::Complete);
  EXPECT_FALSE(local_with_block.header.proxied);
  auto unspec = parse_proxy_header(v2(0x21, 0x00, ""));
  ASSERT_EQ(unspec.state, State::Complete);
  EXPECT_FALSE(unspec.header.proxied);
}

TEST(ProxyProtocolV2, EveryPrefixOfAValidHeaderIsIncomplete) {
  std::string h = v2(0x21, 0x11, tcp4_block());
  for (size_t n = 0; n < h.size(); ++n) {
    EXPECT_EQ(parse_proxy_header(h.substr(0, n)).state, State::Incomplete) << n;
  }
}

TEST(ProxyProtocolV2, MalformedHeadersAreRefusedWithTheirReason) {
  struct Case {
    std::string input;
    std::string code;
  };
  const Case cases[] = {
      {v2(0x11, 0x11, tcp4_block()), "proxy_protocol.v2_bad_version"},
      {v2(0x31, 0x11, tcp4_block()), "proxy_protocol.v2_bad_version"},
      {v2(0x22, 0x11, tcp4_block()), "proxy_protocol.v2_bad_command"},
      {v2(0x21, 0x12, tcp4_block()), "proxy_protocol.v2_unsupported_family"},  // UDP4
      {v2(0x21, 0x31, std::string(216, 'x')), "proxy_protocol.v2_unsupported_family"},  // UNIX
      {v2(0x21, 0x11, tcp4_block().substr(0, 11)), "proxy_protocol.v2_short_address"},
      {v2(0x21, 0x21, std::string(35, '\0')), "proxy_protocol.v2_short_address"},
      {v2(0x21, 0x11, tcp4_block() + std::string(kProxyV2MaxBytes, '\0')), "proxy_protocol.v2_too_long"},
      {v2_signature().substr(0, 11) + "X", "proxy_protocol.missing"},
  };
  for (const Case& c : cases) {
    auto p = parse_proxy_header(c.input);
    ASSERT_EQ(p.state, State::Invalid) << c.code;
    EXPECT_EQ(p.error.code, c.code);
  }
  // Too long is known from the fixed part alone: no waiting for the rest.
  std::string announced = v2_signature() + bytes({0x21, 0x11, 0x02, 0x10});
  EXPECT_EQ(parse_proxy_header(announced).state, State::Invalid);
}

}  // namespace
}  // namespace mg::http
