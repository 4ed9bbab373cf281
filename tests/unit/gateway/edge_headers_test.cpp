// gateway/edge_headers.h: X-Forwarded-For appended, X-Forwarded-Proto set, X-Request-Id kept or
// made, a client's X-Forwarded-Client-Cert dropped; the UUID's version and variant bits.
#include "gateway/edge_headers.h"

#include <gtest/gtest.h>

namespace mg::gateway {
namespace {

TEST(EdgeHeaders, AppendsThePeerToXForwardedFor) {
  http::Headers h;
  h.add("x-forwarded-for", "198.51.100.1");
  h.add("X-Forwarded-For", "203.0.113.9, 10.0.0.1");
  set_edge_headers(h, "192.0.2.7", true, [] { return std::string("id"); });
  EXPECT_EQ(h.count("x-forwarded-for"), 1u);
  EXPECT_EQ(*h.get("x-forwarded-for"), "198.51.100.1, 203.0.113.9, 10.0.0.1, 192.0.2.7");
  EXPECT_EQ(*h.get("x-forwarded-proto"), "https");
}

TEST(EdgeHeaders, StartsXForwardedForWithThePeer) {
  http::Headers h;
  h.add("x-forwarded-proto", "https");  // the client's claim is replaced
  set_edge_headers(h, "192.0.2.7", false, [] { return std::string("id"); });
  EXPECT_EQ(*h.get("x-forwarded-for"), "192.0.2.7");
  EXPECT_EQ(h.count("x-forwarded-proto"), 1u);
  EXPECT_EQ(*h.get("x-forwarded-proto"), "http");
}

TEST(EdgeHeaders, KeepsAClientRequestIdAndMakesOneOtherwise) {
  http::Headers kept;
  kept.add("X-Request-Id", "abc");
  bool asked = false;
  set_edge_headers(kept, "192.0.2.7", false, [&] {
    asked = true;
    return std::string("new");
  });
  EXPECT_FALSE(asked);  // no randomness spent on a request that has an id
  EXPECT_EQ(*kept.get("x-request-id"), "abc");
  http::Headers made;
  set_edge_headers(made, "192.0.2.7", false, [] { return std::string("new"); });
  EXPECT_EQ(*made.get("x-request-id"), "new");
  http::Headers empty;
  empty.add("x-request-id", "");
  set_edge_headers(empty, "192.0.2.7", false, [] { return std::string("new"); });
  http::Headers none;
  set_edge_headers(none, "192.0.2.7", false, [] { return std::string(); });  // the random source failed
  EXPECT_FALSE(none.contains("x-request-id"));
  EXPECT_EQ(*empty.get("x-request-id"), "new");
}

TEST(EdgeHeaders, DropsAClientCertificateClaim) {
  http::Headers h;
  h.add("x-forwarded-client-cert",
        "By=spiffe://cluster.local/ns/a/sa/b;URI=spiffe://cluster.local/ns/x/sa/admin");
  set_edge_headers(h, "192.0.2.7", true, [] { return std::string("id"); });
  EXPECT_FALSE(h.contains("x-forwarded-client-cert"));
}

TEST(EdgeHeaders, UuidV4) {
  std::array<uint8_t, 16> all_ones;
  all_ones.fill(0xff);
  EXPECT_EQ(uuid_v4(all_ones), "ffffffff-ffff-4fff-bfff-ffffffffffff");
  std::array<uint8_t, 16> zeros{};
  EXPECT_EQ(uuid_v4(zeros), "00000000-0000-4000-8000-000000000000");
}

}  // namespace
}  // namespace mg::gateway
