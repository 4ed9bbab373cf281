// Istio's DestinationRule (networking.istio.io v1 / v1beta1 / v1alpha3) through
// policy::parse_resources: the TLS-origination subset meshguard acts on, host matching, and every
// refusal with its file:line (issue 20).
#include <gtest/gtest.h>

#include "policy/parse.h"

namespace mg::policy {
namespace {

TEST(DestinationRuleParse, TlsOriginationRuleAsIstioWritesIt) {
  const char* text = R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: originate-tls-for-edition-cnn-com
  namespace: istio-system
spec:
  host: edition.cnn.com
  trafficPolicy:
    tls:
      mode: SIMPLE
      sni: edition.cnn.com
      caCertificates: /etc/meshguard/external-ca.pem
)";
  auto set = parse_resources(text, "dr.yaml");
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_EQ(set->destination_rules.size(), 1u);
  EXPECT_EQ(set->size(), 1u);
  EXPECT_TRUE(set->skipped.empty());
  const DestinationRule& r = set->destination_rules[0];
  EXPECT_EQ(r.meta.full_name(), "istio-system/originate-tls-for-edition-cnn-com");
  EXPECT_EQ(r.host, "edition.cnn.com");
  ASSERT_TRUE(r.traffic_policy.tls);
  EXPECT_EQ(r.traffic_policy.tls->mode, DestinationRule::Tls::Mode::Simple);
  EXPECT_EQ(r.traffic_policy.tls->sni, "edition.cnn.com");
  EXPECT_EQ(r.traffic_policy.tls->ca_certificates, "/etc/meshguard/external-ca.pem");
  // The stored text re-parses alone (the control plane stores and pushes it).
  auto again = parse_resources(r.meta.document);
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_EQ(again->destination_rules.size(), 1u);
  EXPECT_EQ(again->destination_rules[0].traffic_policy.tls, r.traffic_policy.tls);
}

TEST(DestinationRuleParse, EveryNetworkingVersionAndTheOtherModes) {
  for (const char* version : {"v1", "v1beta1", "v1alpha3"}) {
    std::string text = std::string("apiVersion: networking.istio.io/") + version +
                       "\nkind: DestinationRule\nmetadata: {name: r, namespace: ns}\n"
                       "spec: {host: \"*.example.com\", trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}\n";
    auto set = parse_resources(text, "dr.yaml");
    ASSERT_TRUE(set) << version << ": " << set.error().message;
    ASSERT_EQ(set->destination_rules.size(), 1u);
    EXPECT_EQ(set->destination_rules[0].traffic_policy.tls->mode, DestinationRule::Tls::Mode::IstioMutual);
  }
  auto disable = parse_resources(
      "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\n"
      "spec: {host: api.example.com, trafficPolicy: {tls: {mode: DISABLE}}}\n");
  ASSERT_TRUE(disable) << disable.error().message;
  EXPECT_EQ(disable->destination_rules[0].traffic_policy.tls->mode, DestinationRule::Tls::Mode::Disable);
  EXPECT_EQ(disable->destination_rules[0].meta.ns, "default");
  auto bare = parse_resources(
      "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec: {host: a.b}\n");
  ASSERT_TRUE(bare) << bare.error().message;
  EXPECT_FALSE(bare->destination_rules[0].traffic_policy.tls);
}

// Istio's egress-gateway-tls-origination task writes its two rules this way: a subset of the egress
// gateway's service whose port-level tls is ISTIO_MUTUAL with the external host as sni, and the
// external host's rule originating TLS on port 443.
TEST(DestinationRuleParse, SubsetsPortLevelSettingsAndLoadBalancer) {
  const char* text = R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: egressgateway-for-cnn}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
      portLevelSettings:
      - port:
          number: 80
        tls:
          mode: ISTIO_MUTUAL
          sni: edition.cnn.com
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: originate-tls-for-edition-cnn-com}
spec:
  host: edition.cnn.com
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
    portLevelSettings:
    - port:
        number: 443
      tls:
        mode: SIMPLE # initiates HTTPS for connections to edition.cnn.com
)";
  auto set = parse_resources(text, "dr.yaml");
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_EQ(set->destination_rules.size(), 2u);
  const DestinationRule& gw = set->destination_rules[0];
  ASSERT_EQ(gw.subsets.size(), 1u);
  EXPECT_EQ(gw.subsets[0].name, "cnn");
  // No subset named: the rule's own policy (nothing set).
  auto plain = gw.effective(80, "");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->tls);
  EXPECT_FALSE(plain->load_balancer);
  // The subset on port 80: its port-level entry replaces everything (no inherited load balancer).
  auto on80 = gw.effective(80, "cnn");
  ASSERT_TRUE(on80 && on80->tls);
  EXPECT_EQ(on80->tls->mode, DestinationRule::Tls::Mode::IstioMutual);
  EXPECT_EQ(on80->tls->sni, "edition.cnn.com");
  EXPECT_FALSE(on80->load_balancer);
  // The subset on another port: the subset's own fields.
  auto on81 = gw.effective(81, "cnn");
  ASSERT_TRUE(on81);
  EXPECT_FALSE(on81->tls);
  EXPECT_EQ(on81->load_balancer, DestinationRule::LoadBalancer::RoundRobin);
  EXPECT_FALSE(gw.effective(80, "other"));  // no such subset

  const DestinationRule& ext = set->destination_rules[1];
  auto tls443 = ext.effective(443, "");
  ASSERT_TRUE(tls443 && tls443->tls);
  EXPECT_EQ(tls443->tls->mode, DestinationRule::Tls::Mode::Simple);
  EXPECT_TRUE(tls443->tls->sni.empty());
  EXPECT_FALSE(tls443->load_balancer);  // port-level settings do not inherit
  auto on80ext = ext.effective(80, "");
  ASSERT_TRUE(on80ext);
  EXPECT_FALSE(on80ext->tls);
  EXPECT_EQ(on80ext->load_balancer, DestinationRule::LoadBalancer::RoundRobin);
  // The stored text re-parses to the same policy.
  auto again = parse_resources(ext.meta.document);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->destination_rules[0].traffic_policy, ext.traffic_policy);
}

TEST(DestinationRuleParse, HostMatching) {
  DestinationRule exact;
  exact.host = "api.example.com";
  EXPECT_TRUE(exact.matches("api.example.com"));
  EXPECT_FALSE(exact.matches("x.api.example.com"));
  EXPECT_FALSE(exact.matches("api.example.co"));
  DestinationRule wildcard;
  wildcard.host = "*.example.com";
  EXPECT_TRUE(wildcard.matches("api.example.com"));
  EXPECT_TRUE(wildcard.matches("a.b.example.com"));
  EXPECT_FALSE(wildcard.matches("example.com"));
  EXPECT_FALSE(wildcard.matches(".example.com"));
  EXPECT_FALSE(wildcard.matches("badexample.com"));
}

TEST(DestinationRuleParse, RefusalsNameTheLine) {
  struct Case {
    std::string spec;  // the document's spec, starting at line 4
    std::string want;  // in the message
  };
  const Case cases[] = {
      {"spec:\n  host: a.example.com\n  subsets: [{name: v1, labels: {version: v1}}]\n",
       "dr.yaml:6: unknown field \"labels\" in DestinationRule.spec.subsets[]"},
      {"spec:\n  host: a.example.com\n  subsets: [{name: v1}, {name: v1}]\n", "dr.yaml:6: DestinationRule.spec.subsets: \"v1\" is listed twice"},
      {"spec:\n  host: a.example.com\n  subsets: [{trafficPolicy: {}}]\n", "dr.yaml:6: DestinationRule.spec.subsets[].name is required"},
      {"spec:\n  host: a.example.com\n  trafficPolicy:\n    loadBalancer: {simple: RANDOM}\n",
       "dr.yaml:7: DestinationRule.spec.trafficPolicy.loadBalancer.simple must be ROUND_ROBIN or LEAST_REQUEST"},
      {"spec:\n  host: a.example.com\n  trafficPolicy:\n    loadBalancer: {consistentHash: {}}\n",
       "dr.yaml:7: unknown field \"consistentHash\""},
      {"spec:\n  host: a.example.com\n  trafficPolicy:\n    outlierDetection: {}\n",
       "dr.yaml:7: unknown field \"outlierDetection\" in DestinationRule.spec.trafficPolicy"},
      {"spec:\n  host: a.example.com\n  trafficPolicy:\n    portLevelSettings: [{tls: {mode: SIMPLE}}]\n",
       "dr.yaml:7: DestinationRule.spec.trafficPolicy.portLevelSettings[].port.number is required"},
      {"spec:\n  host: a.example.com\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 80}\n    - port: {number: 80}\n",
       "dr.yaml:9: DestinationRule.spec.trafficPolicy.portLevelSettings: port 80 is listed twice"},
      {"spec:\n  host: a.example.com\n  trafficPolicy:\n    portLevelSettings: [{port: {number: 80}, connectionPool: {}}]\n",
       "dr.yaml:7: unknown field \"connectionPool\""},
      {"spec:\n  host: a.example.com\n  trafficPolicy:\n    tls:\n      mode: SIMPLE\n      insecureSkipVerify: true\n",
       "dr.yaml:9: unknown field \"insecureSkipVerify\""},
      {"spec:\n  host: a.example.com\n  trafficPolicy:\n    tls: {mode: MUTUAL}\n", "dr.yaml:7: trafficPolicy.tls.mode MUTUAL"},
      {"spec:\n  host: a.example.com\n  trafficPolicy:\n    tls: {mode: simple}\n", "dr.yaml:7: trafficPolicy.tls.mode must be"},
      {"spec:\n  host: a.example.com\n  trafficPolicy:\n    tls: {sni: a.example.com}\n",
       "dr.yaml:7: trafficPolicy.tls.mode is required"},
      {"spec:\n  host: a.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE, caCertificates: ca.pem}\n",
       "dr.yaml:7: trafficPolicy.tls.caCertificates must be an absolute file path"},
      {"spec:\n  host: a.example.com\n  trafficPolicy:\n    tls: {mode: DISABLE, sni: a.example.com}\n",
       "dr.yaml:7: trafficPolicy.tls: sni applies to modes SIMPLE and ISTIO_MUTUAL only"},
      {"spec:\n  host: a.example.com\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL, caCertificates: /ca.pem}\n",
       "dr.yaml:7: trafficPolicy.tls: caCertificates applies to mode SIMPLE only"},
      {"spec:\n  host: a.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE, sni: \"*.example.com\"}\n",
       "dr.yaml:7: trafficPolicy.tls.sni must be a DNS name"},
      {"spec:\n  host: API.example.com\n", "dr.yaml:5: DestinationRule.spec.host must be"},
      {"spec:\n  host: \"*\"\n", "dr.yaml:5: DestinationRule.spec.host must be"},
      {"spec:\n  trafficPolicy: {}\n", "dr.yaml:5: DestinationRule.spec.host is required"},
      {"spec:\n  host: a.example.com\n  exportTo: [\".\"]\n", "dr.yaml:6: unknown field \"exportTo\""},
  };
  for (const Case& c : cases) {
    std::string text = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\n" + c.spec;
    auto set = parse_resources(text, "dr.yaml");
    ASSERT_FALSE(set) << c.spec;
    EXPECT_NE(set.error().message.find(c.want), std::string::npos) << set.error().message;
  }
  auto wrong_group = parse_resources(
      "apiVersion: networking.istio.io/v2\nkind: DestinationRule\nmetadata: {name: r}\nspec: {host: a.b}\n", "dr.yaml");
  ASSERT_FALSE(wrong_group);
  EXPECT_NE(wrong_group.error().message.find("dr.yaml:1: DestinationRule: apiVersion must be networking.istio.io/v1"),
            std::string::npos)
      << wrong_group.error().message;
}

}  // namespace
}  // namespace mg::policy
