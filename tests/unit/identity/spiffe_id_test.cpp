#include "identity/spiffe_id.h"

#include <cctype>
#include <gtest/gtest.h>
#include <ostream>

namespace {

using mg::identity::SpiffeId;

std::string code_of(std::string_view uri) {
  auto id = SpiffeId::parse(uri);
  return id ? std::string("ok") : id.error().code;
}

struct Vector {
  const char* input;
  const char* code;
};

void PrintTo(const Vector& v, std::ostream* os) { *os << "'" << v.input << "' -> " << v.code; }

// Stable, readable test names: "<index>_<expected code>", e.g. "6_spiffe_bad_scheme".
std::string vector_name(const ::testing::TestParamInfo<Vector>& info) {
  std::string name = std::to_string(info.index) + "_" + info.param.code;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

class SpiffeVectors : public ::testing::TestWithParam<Vector> {};

TEST_P(SpiffeVectors, ParsesToExpectedCode) {
  EXPECT_EQ(code_of(GetParam().input), GetParam().code) << GetParam().input;
}

INSTANTIATE_TEST_SUITE_P(
    Rules, SpiffeVectors,
    ::testing::Values(
        Vector{"spiffe://cluster.local/ns/default/sa/sleep", "ok"},
        Vector{"spiffe://example.org", "ok"},
        Vector{"spiffe://a-b_c.9/x.y-z_W/Q", "ok"},
        Vector{"spiffe://td/...", "ok"},  // three dots are an ordinary segment
        Vector{"spiffe://td/.a", "ok"},
        Vector{"", "spiffe.empty"},
        Vector{"http://td/x", "spiffe.bad_scheme"},
        Vector{"SPIFFE://td/x", "spiffe.bad_scheme"},
        Vector{"Spiffe://td/x", "spiffe.bad_scheme"},
        Vector{"spiffe:/td/x", "spiffe.bad_scheme"},
        Vector{"spiffe:td/x", "spiffe.bad_scheme"},
        Vector{"td/ns/a/sa/b", "spiffe.bad_scheme"},
        Vector{" spiffe://td/x", "spiffe.bad_scheme"},
        Vector{"spiffe://", "spiffe.empty_trust_domain"},
        Vector{"spiffe:///x", "spiffe.empty_trust_domain"},
        Vector{"spiffe://Cluster.local/x", "spiffe.uppercase_trust_domain"},
        Vector{"spiffe://clusteR.local", "spiffe.uppercase_trust_domain"},
        Vector{"spiffe://td!/x", "spiffe.bad_trust_domain_char"},
        Vector{"spiffe://t d/x", "spiffe.bad_trust_domain_char"},
        Vector{"spiffe://td\xc3\xa9/x", "spiffe.bad_trust_domain_char"},
        Vector{"spiffe://td:8080/x", "spiffe.port"},
        Vector{"spiffe://td:/x", "spiffe.port"},
        Vector{"spiffe://user@td/x", "spiffe.userinfo"},
        Vector{"spiffe://user:pw@td/x", "spiffe.userinfo"},
        Vector{"spiffe://td/x?a=b", "spiffe.query"},
        Vector{"spiffe://td?x", "spiffe.query"},
        Vector{"spiffe://td/x#frag", "spiffe.fragment"},
        Vector{"spiffe://td#x", "spiffe.fragment"},
        Vector{"spiffe://td/x%20y", "spiffe.percent_encoded"},
        Vector{"spiffe://t%64/x", "spiffe.percent_encoded"},
        Vector{"spiffe://td/", "spiffe.trailing_slash"},
        Vector{"spiffe://td/x/", "spiffe.trailing_slash"},
        Vector{"spiffe://td//x", "spiffe.empty_segment"},
        Vector{"spiffe://td/x//y", "spiffe.empty_segment"},
        Vector{"spiffe://td/./x", "spiffe.dot_segment"},
        Vector{"spiffe://td/x/..", "spiffe.dot_segment"},
        Vector{"spiffe://td/x/../y", "spiffe.dot_segment"},
        Vector{"spiffe://td/x y", "spiffe.bad_path_char"},
        Vector{"spiffe://td/x:y", "spiffe.bad_path_char"},
        Vector{"spiffe://td/x@y", "spiffe.bad_path_char"},
        Vector{"spiffe://td/x+y", "spiffe.bad_path_char"},
        Vector{"spiffe://td/\xc3\xa9", "spiffe.bad_path_char"}),
    vector_name);

TEST(SpiffeId, NulByteIsRejected) {
  EXPECT_EQ(code_of(std::string_view("spiffe://td/a\0b", 15)), "spiffe.bad_path_char");
  EXPECT_EQ(code_of(std::string_view("spiffe://t\0d/a", 14)), "spiffe.bad_trust_domain_char");
}

TEST(SpiffeId, TotalLengthBoundaryIs2048Bytes) {
  std::string prefix = "spiffe://td/";
  std::string ok = prefix + std::string(2048 - prefix.size(), 'a');
  ASSERT_EQ(ok.size(), 2048u);
  EXPECT_EQ(code_of(ok), "ok");
  std::string too_long = ok + "a";
  EXPECT_EQ(code_of(too_long), "spiffe.too_long");
}

TEST(SpiffeId, TrustDomainBoundaryIs255Bytes) {
  std::string td255(255, 'a');
  EXPECT_EQ(code_of("spiffe://" + td255 + "/x"), "ok");
  EXPECT_EQ(code_of("spiffe://" + td255), "ok");
  std::string td256(256, 'a');
  EXPECT_EQ(code_of("spiffe://" + td256 + "/x"), "spiffe.trust_domain_too_long");
  EXPECT_TRUE(mg::identity::validate_trust_domain(td255));
  EXPECT_EQ(mg::identity::validate_trust_domain(td256).error().code, "spiffe.trust_domain_too_long");
}

TEST(SpiffeId, ValidateTrustDomainUsesTheSameRules) {
  using mg::identity::validate_trust_domain;
  EXPECT_TRUE(validate_trust_domain("cluster.local"));
  EXPECT_EQ(validate_trust_domain("").error().code, "spiffe.empty_trust_domain");
  EXPECT_EQ(validate_trust_domain("Cluster.local").error().code, "spiffe.uppercase_trust_domain");
  EXPECT_EQ(validate_trust_domain("td:80").error().code, "spiffe.port");
  EXPECT_EQ(validate_trust_domain("u@td").error().code, "spiffe.userinfo");
  EXPECT_EQ(validate_trust_domain("td/x").error().code, "spiffe.bad_trust_domain_char");
  EXPECT_EQ(validate_trust_domain("t%41").error().code, "spiffe.percent_encoded");
}

TEST(SpiffeId, Accessors) {
  auto id = SpiffeId::parse("spiffe://cluster.local/ns/default/sa/sleep");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->str(), "spiffe://cluster.local/ns/default/sa/sleep");
  EXPECT_EQ(id->trust_domain(), "cluster.local");
  EXPECT_EQ(id->path(), "/ns/default/sa/sleep");
  EXPECT_EQ(id->principal(), "cluster.local/ns/default/sa/sleep");
  EXPECT_EQ(id->istio_namespace(), "default");
  EXPECT_EQ(id->istio_service_account(), "sleep");
  EXPECT_FALSE(id->is_trust_domain_id());

  auto td = SpiffeId::parse("spiffe://cluster.local");
  ASSERT_TRUE(td);
  EXPECT_TRUE(td->is_trust_domain_id());
  EXPECT_EQ(td->path(), "");
  EXPECT_EQ(td->principal(), "cluster.local");
  EXPECT_FALSE(td->istio_namespace());
}

TEST(SpiffeId, NonIstioPathsHaveNoNamespaceOrServiceAccount) {
  for (const char* uri : {"spiffe://td/ns/a/sa/b/extra", "spiffe://td/ns/a", "spiffe://td/ns/a/sb/b",
                          "spiffe://td/workload/x", "spiffe://td/ns/a/sa", "spiffe://td/xns/a/sa/b"}) {
    auto id = SpiffeId::parse(uri);
    ASSERT_TRUE(id) << uri;
    EXPECT_FALSE(id->istio_namespace()) << uri;
    EXPECT_FALSE(id->istio_service_account()) << uri;
  }
}

TEST(SpiffeId, IstioPrincipalRoundTrip) {
  auto id = SpiffeId::from_istio_principal("cluster.local/ns/foo/sa/bar");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->str(), "spiffe://cluster.local/ns/foo/sa/bar");
  EXPECT_EQ(id->principal(), "cluster.local/ns/foo/sa/bar");

  EXPECT_EQ(SpiffeId::from_istio_principal("cluster.local/workload/x").error().code, "spiffe.not_istio_principal");
  EXPECT_EQ(SpiffeId::from_istio_principal("cluster.local").error().code, "spiffe.not_istio_principal");
  EXPECT_EQ(SpiffeId::from_istio_principal("Cluster.local/ns/a/sa/b").error().code, "spiffe.uppercase_trust_domain");
  EXPECT_EQ(SpiffeId::from_istio_principal("spiffe://cluster.local/ns/a/sa/b").error().code, "spiffe.port");
}

TEST(SpiffeId, IstioConstructor) {
  auto id = SpiffeId::istio("cluster.local", "default", "sleep");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->str(), "spiffe://cluster.local/ns/default/sa/sleep");
  EXPECT_EQ(SpiffeId::istio("cluster.local", "a/b", "c").error().code, "spiffe.not_istio_principal");
  EXPECT_EQ(SpiffeId::istio("cluster.local", "", "c").error().code, "spiffe.empty_segment");
  EXPECT_EQ(SpiffeId::istio("cluster.local", "a", "..").error().code, "spiffe.dot_segment");
}

TEST(SpiffeId, EqualityAndOrdering) {
  auto a = SpiffeId::parse("spiffe://td/a");
  auto b = SpiffeId::parse("spiffe://td/b");
  auto a2 = SpiffeId::parse("spiffe://td/a");
  ASSERT_TRUE(a && b && a2);
  EXPECT_EQ(*a, *a2);
  EXPECT_FALSE(*a == *b);
  EXPECT_TRUE(*a < *b);
}

TEST(SpiffeId, ErrorMessagesAreBoundedAndPrintable) {
  std::string junk = "spiffe://td/" + std::string(1000, 'x') + "\x01";
  auto id = SpiffeId::parse(junk);
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code, "spiffe.bad_path_char");
  EXPECT_LT(id.error().message.size(), 300u);
  for (char c : id.error().message) EXPECT_TRUE(c >= 0x20 && c < 0x7f);
}

}  // namespace
