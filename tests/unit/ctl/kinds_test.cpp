#include "kinds.h"

#include <gtest/gtest.h>

namespace mg::ctl {
namespace {

std::string kind(std::string_view name) {
  auto k = find_kind(name);
  return k ? (*k)->kind : "error: " + k.error().message;
}

TEST(Kinds, EverySpellingOfEveryKind) {
  for (const auto& k : all_kinds()) {
    const std::string lower = qualified_name(k).substr(0, qualified_name(k).find('.'));
    for (std::string s : {std::string(k.kind), lower, std::string(k.plural), std::string(k.short_name),
                          qualified_name(k), std::string(k.plural) + "." + k.group}) {
      EXPECT_EQ(kind(s), k.kind) << s;
    }
  }
  EXPECT_EQ(kind("authorizationpolicy.security.istio.io"), "AuthorizationPolicy");
  EXPECT_EQ(kind("AuthorizationPolicies.v1beta1.security.istio.io"), "AuthorizationPolicy");
  EXPECT_EQ(kind("opapolicies.v1alpha1.meshguard.io"), "OPAPolicy");
  EXPECT_EQ(kind("Mesh"), "Mesh");
  // The service registry's kinds, with kubectl's spellings (svc; endpoints, ep).
  EXPECT_EQ(kind("svc"), "Service");
  EXPECT_EQ(kind("services.meshguard.io"), "Service");
  EXPECT_EQ(kind("endpoints"), "ServiceEndpoints");
  EXPECT_EQ(kind("ep"), "ServiceEndpoints");
  EXPECT_TRUE(kind_of("ServiceEndpoints")->computed);
  EXPECT_FALSE(kind_of("Service")->computed);
  // Istio's DestinationRule (issue 20), in every version networking.istio.io serves.
  EXPECT_EQ(kind("dr"), "DestinationRule");
  EXPECT_EQ(kind("destinationrules.v1alpha3.networking.istio.io"), "DestinationRule");
  EXPECT_EQ(kind("destinationrule.v1.networking.istio.io"), "DestinationRule");
  EXPECT_FALSE(find_kind("dr.v1alpha1.networking.istio.io"));
}

TEST(Kinds, WrongGroupOrVersionIsRefused) {
  EXPECT_EQ(find_kind("authorizationpolicy.meshguard.io").error().code, "ctl.bad_kind");
  EXPECT_FALSE(find_kind("ap.v2.security.istio.io"));
  EXPECT_FALSE(find_kind("sidecar"));
  EXPECT_FALSE(find_kind("vs.v2.networking.istio.io"));
  EXPECT_STREQ((*find_kind("vs.v1alpha3.networking.istio.io"))->kind, "VirtualService");
  EXPECT_STREQ((*find_kind("serviceentries"))->kind, "ServiceEntry");
  EXPECT_STREQ((*find_kind("gw"))->kind, "Gateway");
  EXPECT_FALSE(find_kind(""));
}

TEST(Kinds, ListsKeepOrderAndDropRepeats) {
  auto ks = resolve_kinds("pa,ap,pa");
  ASSERT_TRUE(ks);
  ASSERT_EQ(ks->size(), 2u);
  EXPECT_STREQ((*ks)[0]->kind, "PeerAuthentication");
  EXPECT_STREQ((*ks)[1]->kind, "AuthorizationPolicy");
  auto all = resolve_kinds("all");
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), all_kinds().size());
  EXPECT_FALSE(resolve_kinds("ap,"));
  EXPECT_FALSE(resolve_kinds("ap,nope"));
}

TEST(Kinds, StoreSpelling) {
  ASSERT_NE(kind_of("OPAPolicy"), nullptr);
  EXPECT_FALSE(kind_of("Mesh")->namespaced);
  EXPECT_EQ(kind_of("opapolicy"), nullptr);
}

}  // namespace
}  // namespace mg::ctl

namespace mg::ctl {
namespace {

std::string targets(std::vector<std::string> args) {
  auto t = parse_targets(args);
  if (!t) return "error " + t.error().code;
  std::string out;
  for (const auto& x : *t) out += std::string(out.empty() ? "" : " ") + x.kind->kind + "/" + x.name;
  return out;
}

TEST(Targets, KubectlArgumentForms) {
  EXPECT_EQ(targets({"ap"}), "AuthorizationPolicy/");
  EXPECT_EQ(targets({"pa,ap"}), "PeerAuthentication/ AuthorizationPolicy/");
  EXPECT_EQ(targets({"ap", "a", "b"}), "AuthorizationPolicy/a AuthorizationPolicy/b");
  EXPECT_EQ(targets({"ap/a", "peerauthentications.security.istio.io/b"}),
            "AuthorizationPolicy/a PeerAuthentication/b");
  EXPECT_EQ(targets({}), "error ctl.bad_args");
  EXPECT_EQ(targets({"ap/a", "b"}), "error ctl.bad_args");
  EXPECT_EQ(targets({"ap", "x/b"}), "error ctl.bad_args");
  EXPECT_EQ(targets({"pa,ap", "x"}), "error ctl.bad_args");
  EXPECT_EQ(targets({"ap/"}), "error ctl.bad_args");
  EXPECT_EQ(targets({"nope/x"}), "error ctl.bad_kind");
}

}  // namespace
}  // namespace mg::ctl
