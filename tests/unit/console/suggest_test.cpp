// The suggested policy: rules from allowed mTLS traffic only, valid YAML the parser takes, and a
// dry run that replays the observed flows through authz check's pipeline.
#include "console/suggest.h"

#include <gtest/gtest.h>

#include "policy/parse.h"
#include "telemetry/insights.h"

namespace mg::console {
namespace {

const std::string kSleep = "spiffe://cluster.local/ns/default/sa/sleep";
const std::string kProduct = "spiffe://cluster.local/ns/default/sa/productpage";

std::vector<ConsoleWorkload> workloads() {
  ConsoleWorkload details{.ns = "default",
                          .name = "details",
                          .service_account = "details",
                          .spiffe_id = "spiffe://cluster.local/ns/default/sa/details",
                          .labels = {{"app", "details"}, {"version", "v1"}}};
  ConsoleWorkload bare{.ns = "default", .name = "bare"};
  return {details, bare};
}

std::vector<FlowTotal> flows() {
  return {
      {"default/details", {kSleep, true, true, "", 5, "GET", "/status/*"}},
      {"default/details", {kSleep, true, true, "", 2, "GET", "/health"}},
      {"default/details", {kSleep, true, true, "", 1, "POST", "/orders/*"}},
      {"default/details", {kProduct, true, true, "", 4, "GET", "/details/*"}},
      {"default/details", {kSleep, true, false, "default/deny-admin", 3, "GET", "/admin/*"}},
      {"default/details", {"", false, true, "", 2, "GET", "/status/*"}},
      {"default/other", {kSleep, true, true, "", 9, "DELETE", "/x/*"}},
  };
}

TEST(PathPrefix, FirstSegmentAsAPrefixPattern) {
  EXPECT_EQ(telemetry::path_prefix("/status/200?x=1"), "/status/*");
  EXPECT_EQ(telemetry::path_prefix("/status/"), "/status/*");
  EXPECT_EQ(telemetry::path_prefix("/health"), "/health");
  EXPECT_EQ(telemetry::path_prefix("/"), "/");
  EXPECT_EQ(telemetry::path_prefix(""), "");
  EXPECT_EQ(telemetry::path_prefix("/a#frag/b"), "/a");
  telemetry::InsightRecorder r;
  r.count("p", true, true, "", "GET", "/status/200?q");
  r.count("p", true, true, "", "GET", "/status/404");
  auto b = r.take();
  ASSERT_EQ(b.flows.size(), 1u) << "one flow per prefix, not per path";
  EXPECT_EQ(b.flows[0].path_prefix, "/status/*");
  EXPECT_EQ(b.flows[0].requests, 2u);
}

TEST(Suggest, RulesPerPrincipalAndMethodFromAllowedMtlsTraffic) {
  auto s = suggest_json(workloads(), flows(), "default/details");
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ((*s)["rules"], 3);
  EXPECT_EQ((*s)["observed"]["requests"], 17);
  EXPECT_EQ((*s)["observed"]["plaintextRequests"], 2);
  EXPECT_EQ((*s)["observed"]["deniedRequests"], 3);
  const std::string yaml = (*s)["yaml"];
  EXPECT_NE(yaml.find(R"(methods: ["GET"], paths: ["/health", "/status/*"])"), std::string::npos) << yaml;
  EXPECT_EQ(yaml.find("/admin"), std::string::npos) << "denied traffic makes no rule";
  EXPECT_EQ(yaml.find("spiffe://"), std::string::npos) << "principals without the scheme";
  auto parsed = policy::parse_resources(yaml, "suggested");
  ASSERT_TRUE(parsed) << parsed.error().to_string() << "\n" << yaml;
  ASSERT_EQ(parsed->authorization_policies.size(), 1u);
  const auto& p = parsed->authorization_policies[0];
  EXPECT_EQ(p.meta.name, "details-observed");
  EXPECT_TRUE(p.meta.dry_run);
  EXPECT_EQ(p.action, policy::Action::Allow);
  EXPECT_EQ(p.selector.match_labels.at("version"), "v1");
}

TEST(Suggest, RefusesUnknownOrUnselectableWorkloads) {
  EXPECT_EQ(suggest_json(workloads(), flows(), "default/nope").error().code, "console.no_workload");
  EXPECT_EQ(suggest_json(workloads(), flows(), "default/bare").error().code, "console.no_labels");
  auto none = suggest_json(workloads(), {}, "default/details");
  ASSERT_TRUE(none);
  EXPECT_EQ((*none)["rules"], 0);
  EXPECT_TRUE(policy::parse_resources((*none)["yaml"].get<std::string>(), "x")) << "still a valid document";
}

TEST(Suggest, DryRunReplaysTheObservedFlows) {
  auto deny = policy::parse_resources(R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
)",
                                      "store");
  ASSERT_TRUE(deny);
  auto s = suggest_json(workloads(), flows(), "default/details");
  ASSERT_TRUE(s);
  nlohmann::json body{{"workload", "default/details"}, {"yaml", (*s)["yaml"]}};
  auto r = dry_run_json(*deny, policy::MeshConfig{}, workloads(), flows(), body.dump());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ((*r)["flows"], 6);
  EXPECT_EQ((*r)["requests"], 17);
  EXPECT_EQ((*r)["wouldAllow"], 12) << "every allowed mTLS request stays allowed";
  EXPECT_EQ((*r)["wouldDeny"], 5);
  ASSERT_EQ((*r)["changed"].size(), 1u);
  EXPECT_TRUE((*r)["changed"][0]["sourcePrincipal"].is_null());
  EXPECT_EQ((*r)["changed"][0]["wouldBe"], "DENY");

  // An edited suggestion without sleep's POST rule: that flow would change.
  std::string edited = (*s)["yaml"];
  const auto at = edited.find(R"(  - from: [{source: {principals: ["cluster.local/ns/default/sa/sleep"]}}]
    to: [{operation: {methods: ["POST"])");
  ASSERT_NE(at, std::string::npos) << edited;
  edited.erase(at, edited.find('\n', edited.find("POST", at)) + 1 - at);
  body["yaml"] = edited;
  r = dry_run_json(*deny, policy::MeshConfig{}, workloads(), flows(), body.dump());
  ASSERT_TRUE(r) << r.error().to_string() << "\n" << edited;
  EXPECT_EQ((*r)["changed"].size(), 2u);
  EXPECT_EQ((*r)["wouldAllow"], 11);

  EXPECT_FALSE(dry_run_json(*deny, policy::MeshConfig{}, workloads(), flows(), "{}"));
  EXPECT_FALSE(dry_run_json(*deny, policy::MeshConfig{}, workloads(), flows(),
                            R"({"workload": "default/details", "yaml": "kind: [nope"})"));
  EXPECT_FALSE(
      dry_run_json(*deny, policy::MeshConfig{}, workloads(), flows(), R"({"workload": "x/y", "yaml": ""})"));
}

}  // namespace
}  // namespace mg::console
