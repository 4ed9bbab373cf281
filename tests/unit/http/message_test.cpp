#include "http/message.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http/parser.h"

namespace mg::http {
namespace {

// iequals compares eight bytes at a time: every byte pair, at every offset of a word and of the
// tail, must compare as ASCII case folding says (only A-Z fold; bytes >= 0x80 and the
// neighbours of the letters — '@', '[', '`', '{' — never do).
TEST(Iequals, EveryBytePairAtEveryOffset) {
  auto fold = [](unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; };
  for (size_t at : {0u, 3u, 7u, 8u, 12u, 15u, 17u}) {
    for (int x = 0; x < 256; ++x) {
      for (int y = 0; y < 256; ++y) {
        std::string a(18, 'k'), b(18, 'K');
        a[at] = static_cast<char>(x);
        b[at] = static_cast<char>(y);
        const bool same = fold(static_cast<unsigned char>(x)) == fold(static_cast<unsigned char>(y));
        ASSERT_EQ(iequals(a, b), same) << "at " << at << ": " << x << " vs " << y;
      }
    }
  }
  EXPECT_TRUE(iequals("X-Envoy-Peer-Metadata", "x-envoy-peer-metadata"));
  EXPECT_FALSE(iequals("x-envoy-peer-metadata", "x-envoy-peer-metadatb"));
  EXPECT_FALSE(iequals("x-envoy-peer-metadata", "x-envoy-peer-metadat"));
  EXPECT_TRUE(iequals("", ""));
}

TEST(Headers, CaseInsensitiveLookupSetRemove) {
  Headers h;
  h.add("X-Forwarded-Client-Cert", "evil");
  h.add("Authorization", "Bearer t");
  h.add("x-forwarded-client-cert", "evil2");
  EXPECT_EQ(h.count("X-FORWARDED-CLIENT-CERT"), 2u);
  h.set("x-forwarded-client-cert", "By=a");
  EXPECT_EQ(h.get_all("x-forwarded-client-cert").size(), 1u);
  EXPECT_EQ(h.get("X-Forwarded-Client-Cert").value(), "By=a");
  EXPECT_EQ(h.remove("AUTHORIZATION"), 1u);
  EXPECT_FALSE(h.get("authorization"));
}

TEST(Headers, FindGivesTheFirstFieldOfANameInPlace) {
  Headers h;
  h.add("Accept", "*/*");
  h.add("X-Token", "first");
  h.add("x-token", "second");
  Header* found = h.find("x-TOKEN");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->value, "first");
  found->value = "changed";
  EXPECT_EQ(h.get("x-token"), "changed");
  EXPECT_EQ(h.find("x-absent"), nullptr);
}

TEST(Headers, HopByHopRemovalKeepsHostAndLength) {
  Headers h;
  h.add("Host", "a");
  h.add("Connection", "keep-alive, X-Secret, host, content-length");
  h.add("X-Secret", "1");
  h.add("Keep-Alive", "timeout=5");
  h.add("Upgrade", "websocket");
  h.add("Content-Length", "3");
  h.add("X-Other", "2");
  remove_hop_by_hop(h);
  EXPECT_TRUE(h.get("host"));
  EXPECT_TRUE(h.get("content-length"));
  EXPECT_TRUE(h.get("x-other"));
  EXPECT_FALSE(h.get("x-secret"));
  EXPECT_FALSE(h.get("connection"));
  EXPECT_FALSE(h.get("keep-alive"));
  EXPECT_FALSE(h.get("upgrade"));
}

TEST(Headers, HopByHopRemovalCoversEveryFixedNameAndListedOnes) {
  Headers h;
  for (const char* name : {"TE", "Trailer", "Upgrade", "Connection", "Keep-Alive", "Proxy-Connection",
                           "Transfer-Encoding", "Proxy-Authenticate"}) {
    h.add(name, "x");
  }
  h.add("connection", "\tX-A ,, x-b\t");  // items trimmed, empty ones ignored
  h.add("X-A", "1");
  h.add("x-B", "2");
  h.add("X-Ab", "kept");  // a name that only starts like a listed one
  h.add("Trailers", "kept");
  h.add("Proxy-Authorization", "kept");  // end-to-end (only the -authenticate response field is hop-by-hop)
  remove_hop_by_hop(h);
  std::vector<std::string> left;
  for (const auto& f : h) left.push_back(f.name);
  EXPECT_EQ(left, (std::vector<std::string>{"X-Ab", "Trailers", "Proxy-Authorization"}));
}

TEST(Headers, UpgradeProtocolNeedsConnectionUpgradeAndOneUpgradeField) {
  Headers ws;
  ws.add("Connection", "keep-alive, Upgrade");
  ws.add("Upgrade", "websocket");
  EXPECT_EQ(upgrade_protocol(ws), "websocket");
  Headers no_connection;
  no_connection.add("Upgrade", "websocket");
  EXPECT_FALSE(upgrade_protocol(no_connection));
  Headers no_upgrade;
  no_upgrade.add("Connection", "upgrade");
  EXPECT_FALSE(upgrade_protocol(no_upgrade));
  Headers two;
  two.add("Connection", "upgrade");
  two.add("Upgrade", "websocket");
  two.add("Upgrade", "h2c");
  EXPECT_FALSE(upgrade_protocol(two));
  Headers lookalike;
  lookalike.add("Connection", "upgraded, x-upgrade");
  lookalike.add("Upgrade", "websocket");
  EXPECT_FALSE(upgrade_protocol(lookalike));
}

TEST(Serialize, RequestRoundTrip) {
  Request req;
  req.method = "POST";
  req.target = "/a?b=c";
  req.headers.add("Host", "svc");
  req.headers.add("Content-Length", "3");
  std::string wire = serialize_request_head(req);
  EXPECT_EQ(wire, "POST /a?b=c HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\n\r\n");
  auto parsed = parse_request_head(wire, {});
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->content_length, 3u);
}

TEST(Serialize, MakeResponse) {
  EXPECT_EQ(
      make_response(403, "text/plain", "RBAC: access denied", false),
      "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 19\r\nconnection: close\r\n\r\n"
      "RBAC: access denied");
  auto parsed = parse_response_head("HTTP/1.1 404 Not Found\r\n\r\n", {}, "GET");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(serialize_response_head(*parsed), "HTTP/1.1 404 Not Found\r\n\r\n");
}

}  // namespace
}  // namespace mg::http
