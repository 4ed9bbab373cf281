// remote_ip (policy/remote_ip.h): the address remote.ip / remoteIpBlocks match, Envoy's
// xff_num_trusted_hops rule (issue 12: a client-written X-Forwarded-For entry was trusted).
#include "policy/remote_ip.h"

#include <gtest/gtest.h>

#include <vector>

namespace mg::policy {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string text_of(const std::optional<IpAddress>& ip) {
  if (!ip) return "none";
  if (ip->v6) return "v6";
  return std::to_string(ip->bytes[0]) + "." + std::to_string(ip->bytes[1]) + "." +
         std::to_string(ip->bytes[2]) + "." + std::to_string(ip->bytes[3]);
}

std::string remote(const Headers& headers, uint32_t trusted) {
  return text_of(remote_ip(parse_ip("10.0.0.1"), headers, trusted));
}

TEST(RemoteIp, WithoutTrustedProxiesItIsThePeerAndXffIsIgnored) {
  EXPECT_EQ(remote({{"X-Forwarded-For", "10.9.9.9, 127.0.0.1"}}, 0), "10.0.0.1");
  EXPECT_EQ(remote({{"x-forwarded-for", "10.9.9.9"}}, 0), "10.0.0.1");
  EXPECT_EQ(remote({}, 0), "10.0.0.1");
  EXPECT_EQ(text_of(remote_ip(std::nullopt, Headers{{"x-forwarded-for", "10.9.9.9"}}, 0)), "none");
}

TEST(RemoteIp, TheNthEntryFromTheRight) {
  const Headers xff = {{"x-forwarded-for", "192.0.2.1, 198.51.100.2 ,203.0.113.3"}};
  EXPECT_EQ(remote(xff, 1), "203.0.113.3");  // what the one trusted proxy saw
  EXPECT_EQ(remote(xff, 2), "198.51.100.2");
  EXPECT_EQ(remote(xff, 3), "192.0.2.1");
  EXPECT_EQ(remote(xff, 4), "10.0.0.1");  // fewer entries than trusted proxies: the peer
  EXPECT_EQ(remote(xff, 4'000'000'000u), "10.0.0.1");
}

TEST(RemoteIp, RepeatedFieldsAreOneListInOrder) {
  const Headers split = {{"X-Forwarded-For", "192.0.2.1"},
                         {"other", "1.1.1.1"},
                         {"x-forwarded-for", "198.51.100.2, 203.0.113.3"}};
  EXPECT_EQ(remote(split, 1), "203.0.113.3");
  EXPECT_EQ(remote(split, 2), "198.51.100.2");
  EXPECT_EQ(remote(split, 3), "192.0.2.1");
  EXPECT_EQ(remote(split, 4), "10.0.0.1");
}

TEST(RemoteIp, AnEntryThatIsNotAnAddressGivesThePeer) {
  EXPECT_EQ(remote({{"x-forwarded-for", "192.0.2.1, unknown"}}, 1), "10.0.0.1");
  EXPECT_EQ(remote({{"x-forwarded-for", "192.0.2.1,"}}, 1), "10.0.0.1");    // empty entry
  EXPECT_EQ(remote({{"x-forwarded-for", "192.0.2.1:80"}}, 1), "10.0.0.1");  // a port
  EXPECT_EQ(remote({{"x-forwarded-for", "192.0.2.1, 2001:db8::1"}}, 1), "v6");
  EXPECT_EQ(remote({{"x-forwarded-for", "\t192.0.2.1 "}}, 1), "192.0.2.1");
}

}  // namespace
}  // namespace mg::policy
