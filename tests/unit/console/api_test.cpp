// The console's JSON API as pure functions: graph edges and badges, decision filters, policies'
// selected workloads, the what-if through authz check's pipeline, query parsing.
#include "console/api.h"

#include <gtest/gtest.h>

#include "policy/parse.h"

namespace mg::console {
namespace {

std::vector<ConsoleWorkload> mesh_workloads() {
  ConsoleWorkload details{.ns = "default",
                          .name = "details",
                          .service_account = "details",
                          .spiffe_id = "spiffe://cluster.local/ns/default/sa/details",
                          .labels = {{"app", "details"}}};
  details.connected = true;
  ConsoleWorkload sleep{.ns = "default",
                        .name = "sleep",
                        .service_account = "sleep",
                        .spiffe_id = "spiffe://cluster.local/ns/default/sa/sleep",
                        .labels = {{"app", "sleep"}}};
  ConsoleWorkload db{.ns = "data",
                     .name = "db",
                     .service_account = "db",
                     .spiffe_id = "spiffe://cluster.local/ns/data/sa/db",
                     .labels = {{"app", "db"}}};
  return {details, sleep, db};
}

const nlohmann::ordered_json* edge(const nlohmann::ordered_json& g, const std::string& src,
                                   const std::string& dst) {
  for (const auto& e : g["edges"]) {
    if (e["source"] == src && e["destination"] == dst) return &e;
  }
  return nullptr;
}

TEST(ConsoleGraph, EdgesWithBadgesCountsAndPolicies) {
  const std::string sleep = "spiffe://cluster.local/ns/default/sa/sleep";
  std::vector<FlowTotal> flows{
      {"default/details", {sleep, true, true, "", 6}},
      {"default/details", {sleep, true, false, "default/deny-admin", 3}},
      {"default/details", {"", false, true, "", 2}},
      {"data/db", {"spiffe://cluster.local/ns/other/sa/ghost", true, true, "data/allow", 4}},
  };
  WindowLimits limits;
  auto g = graph_json(mesh_workloads(), flows, {{"default/details", 30'000}, {"data/db", 60'000}}, limits);
  EXPECT_EQ(g["windowSeconds"], 300);
  ASSERT_EQ(g["namespaces"].size(), 2u);
  EXPECT_EQ(g["namespaces"][0]["name"], "data");
  EXPECT_EQ(g["namespaces"][1]["workloads"], nlohmann::ordered_json({"default/details", "default/sleep"}));
  const auto* e = edge(g, "default/sleep", "default/details");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ((*e)["mtls"], "mTLS");
  EXPECT_EQ((*e)["allowed"], 6);
  EXPECT_EQ((*e)["denied"], 3);
  EXPECT_DOUBLE_EQ((*e)["rate"].get<double>(), 0.3);  // 9 requests over 30 s
  ASSERT_EQ((*e)["policies"].size(), 2u);
  EXPECT_EQ((*e)["policies"][1]["policy"], "default/deny-admin");
  EXPECT_EQ((*e)["policies"][1]["denied"], 3);
  const auto* p = edge(g, "plaintext", "default/details");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ((*p)["mtls"], "plaintext");
  // An identity no workload runs as is a node of its own, in its principal's namespace.
  const auto* ghost = edge(g, "spiffe://cluster.local/ns/other/sa/ghost", "data/db");
  ASSERT_NE(ghost, nullptr);
  bool ghost_node = false;
  for (const auto& n : g["nodes"]) {
    if (n["id"] == "spiffe://cluster.local/ns/other/sa/ghost") {
      ghost_node = true;
      EXPECT_EQ(n["kind"], "principal");
      EXPECT_EQ(n["namespace"], "other");
    }
  }
  EXPECT_TRUE(ghost_node);
}

TEST(ConsoleGraph, MixedWhenOneSourceNodeSendsBoth) {
  // Two workloads share a service account: their principal is one node, and it sent both ways.
  auto w = mesh_workloads();
  const std::string p = "spiffe://cluster.local/ns/default/sa/shared";
  w[0].spiffe_id = p;
  w[1].spiffe_id = p;
  std::vector<FlowTotal> flows{{"data/db", {p, true, true, "", 1}}, {"data/db", {p, false, true, "", 1}}};
  auto g = graph_json(w, flows, {}, WindowLimits{});
  const auto* e = edge(g, p, "data/db");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ((*e)["mtls"], "mixed");
  EXPECT_EQ((*e)["rate"], 0.0) << "no covered time known: no rate";
}

TEST(ConsoleDecisions, FilteredByWorkloadAndPolicy) {
  std::vector<ReportedDecision> d{
      {"default/details",
       2,
       {.time_unix_ms = 2,
        .source_principal = "spiffe://cluster.local/ns/default/sa/sleep",
        .method = "GET",
        .path = "/admin",
        .status = 403,
        .policy = "default/deny-admin",
        .rule = 0,
        .reason = "denied"}},
      {"data/db", 1, {.time_unix_ms = 1, .status = 0, .reason = "plaintext_on_strict_port"}},
  };
  auto all = decisions_json(d, mesh_workloads(), {});
  ASSERT_EQ(all["decisions"].size(), 2u);
  EXPECT_EQ(all["decisions"][0]["source"], "default/sleep");
  EXPECT_EQ(all["decisions"][0]["rule"], 0);
  EXPECT_EQ(all["decisions"][0]["decision"], "DENY");
  EXPECT_TRUE(all["decisions"][1]["policy"].is_null());
  EXPECT_TRUE(all["decisions"][1]["rule"].is_null());
  EXPECT_EQ(all["decisions"][1]["source"], "plaintext");
  EXPECT_EQ(decisions_json(d, mesh_workloads(), {{"workload", "default/sleep"}})["decisions"].size(), 1u)
      << "a workload matches as the source too";
  EXPECT_EQ(decisions_json(d, mesh_workloads(), {{"workload", "data/db"}})["decisions"].size(), 1u);
  EXPECT_EQ(decisions_json(d, mesh_workloads(), {{"policy", "default/deny-admin"}})["decisions"].size(), 1u);
  EXPECT_EQ(decisions_json(d, mesh_workloads(), {{"policy", "x/y"}})["decisions"].size(), 0u);
  EXPECT_EQ(decisions_json(d, mesh_workloads(), {{"limit", "1"}})["decisions"].size(), 1u);
  EXPECT_EQ(decisions_json(d, mesh_workloads(), {{"limit", "x"}})["decisions"].size(), 2u)
      << "a bad limit is ignored";
}

// `describe`'s rows: a workload's as the destination only (not as a source), a policy's anywhere,
// newest first as given, at most `limit`, the source named as the graph names it.
TEST(ConsoleDecisions, RecentDecisionsForAWorkloadOrAPolicy) {
  std::vector<ReportedDecision> d{
      {"default/details",
       3,
       {.time_unix_ms = 3,
        .source_principal = "spiffe://cluster.local/ns/default/sa/sleep",
        .path = "/admin/2",
        .status = 403,
        .policy = "default/deny-admin",
        .rule = 0}},
      {"default/sleep",
       2,
       {.time_unix_ms = 2,
        .source_principal = "spiffe://cluster.local/ns/default/sa/details",
        .path = "/x",
        .status = 403,
        .policy = "default/deny-x"}},
      {"default/details", 1, {.time_unix_ms = 1, .status = 0, .reason = "plaintext_on_strict_port"}},
  };
  auto rows = recent_decisions(d, mesh_workloads(), "default/details", "", 10);
  ASSERT_EQ(rows.size(), 2u) << "details as the destination, not as the source of the sleep sample";
  EXPECT_EQ(rows[0].decision.sample.path, "/admin/2");
  EXPECT_EQ(rows[0].source, "default/sleep");
  EXPECT_EQ(rows[1].source, "plaintext");
  rows = recent_decisions(d, mesh_workloads(), "", "default/deny-admin", 10);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].decision.destination, "default/details");
  EXPECT_EQ(recent_decisions(d, mesh_workloads(), "default/details", "default/deny-x", 10).size(), 0u)
      << "both filters hold";
  EXPECT_EQ(recent_decisions(d, mesh_workloads(), "default/details", "", 1).size(), 1u);
  EXPECT_EQ(recent_decisions(d, mesh_workloads(), "default/nope", "", 10).size(), 0u);
}

constexpr const char* kPolicies = R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-all, namespace: default, annotations: {istio.io/dry-run: "true"}}
spec:
  action: AUDIT
  rules: [{}]
)";

TEST(ConsolePolicies, SelectedWorkloadsModesAndFindings) {
  auto set = policy::parse_resources(kPolicies, "test.yaml");
  ASSERT_TRUE(set) << set.error().to_string();
  auto j = policies_json(*set, policy::MeshConfig{}, mesh_workloads());
  ASSERT_EQ(j["resources"].size(), 2u);
  const auto& deny = j["resources"][0];
  EXPECT_EQ(deny["action"], "DENY");
  EXPECT_EQ(deny["selects"], nlohmann::ordered_json({"default/details"}));
  EXPECT_EQ(deny["dryRun"], false);
  EXPECT_TRUE(deny["findings"].is_array());
  const auto& audit = j["resources"][1];
  EXPECT_EQ(audit["audit"], true);
  EXPECT_EQ(audit["dryRun"], true);
  EXPECT_EQ(audit["selects"], nlohmann::ordered_json({"default/details", "default/sleep"}))
      << "namespace-wide";
}

TEST(ConsoleWhatif, DecidesWithAuthzChecksPipeline) {
  auto set = policy::parse_resources(kPolicies, "test.yaml");
  ASSERT_TRUE(set);
  const auto w = mesh_workloads();
  auto deny = whatif_json(*set, policy::MeshConfig{}, w,
                          R"({"workload": "default/details", "request": {"destination": {"port": 80},
                              "request": {"method": "GET", "path": "/admin/x"}}})");
  ASSERT_TRUE(deny) << deny.error().to_string();
  EXPECT_EQ((*deny)["decision"], "DENY");
  EXPECT_EQ((*deny)["policy"], "default/deny-admin");
  EXPECT_EQ((*deny)["rule"], 0);
  EXPECT_TRUE((*deny)["explain"].is_array());
  auto allow = whatif_json(*set, policy::MeshConfig{}, w,
                           R"({"workload": "default/details", "request": {"destination": {"port": 80},
                               "request": {"method": "GET", "path": "/ok"}}})");
  ASSERT_TRUE(allow);
  EXPECT_EQ((*allow)["decision"], "ALLOW");
  EXPECT_FALSE(whatif_json(*set, policy::MeshConfig{}, w, "not json"));
  EXPECT_FALSE(whatif_json(*set, policy::MeshConfig{}, w, R"({"request": 1})"));
  EXPECT_FALSE(whatif_json(*set, policy::MeshConfig{}, w, R"({"workload": 3, "request": {}})"));
  auto unknown = whatif_json(*set, policy::MeshConfig{}, w, R"({"workload": "x/y", "request": {}})");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("no workload x/y"), std::string::npos);
}

TEST(ConsoleQuery, DecodesEscapesAndPlus) {
  auto q = parse_query("workload=default%2Fdetails&policy=a+b&flag&bad=%zz&=v");
  EXPECT_EQ(q["workload"], "default/details");
  EXPECT_EQ(q["policy"], "a b");
  EXPECT_EQ(q["flag"], "");
  EXPECT_EQ(q["bad"], "%zz");
  EXPECT_EQ(q[""], "v");
  EXPECT_TRUE(parse_query("").empty());
  EXPECT_EQ(parse_query("a=%4")["a"], "%4");
}

}  // namespace
}  // namespace mg::console
