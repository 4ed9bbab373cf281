// The proxy's per-flow insights: counted per flow, taken once, bounded.
#include "telemetry/insights.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace mg::telemetry {
namespace {

TEST(InsightRecorder, CountsPerFlowAndTakesOnce) {
  InsightRecorder r;
  for (int i = 0; i < 3; ++i) r.count("td/ns/a/sa/x", true, true, "");
  r.count("td/ns/a/sa/x", true, false, "default/deny");
  r.count("", false, true, "");
  auto b = r.take();
  ASSERT_EQ(b.flows.size(), 3u);
  uint64_t total = 0;
  for (const auto& f : b.flows) {
    total += f.requests;
    if (!f.allowed) {
      EXPECT_EQ(f.policy, "default/deny");
      EXPECT_EQ(f.requests, 1u);
      EXPECT_TRUE(f.mtls);
    }
    if (f.source_principal.empty()) {
      EXPECT_FALSE(f.mtls);
    }
  }
  EXPECT_EQ(total, 5u);
  EXPECT_TRUE(r.take().empty()) << "a take starts afresh";
}

TEST(InsightRecorder, PrincipalAndPolicyDoNotRunTogether) {
  // "ab" + "" must not be the same flow as "a" + "b".
  InsightRecorder r;
  r.count("ab", true, true, "");
  r.count("a", true, true, "b");
  EXPECT_EQ(r.take().flows.size(), 2u);
}

TEST(InsightRecorder, BoundedFlowsCountWhatDoesNotFit) {
  InsightRecorder r(2, 8);
  r.count("a", true, true, "");
  r.count("b", true, true, "");
  r.count("c", true, true, "");
  r.count("c", true, true, "");
  r.count("a", true, true, "");  // a known flow still counts
  auto b = r.take();
  EXPECT_EQ(b.flows.size(), 2u);
  EXPECT_EQ(b.flows_dropped, 2u);
  EXPECT_FALSE(b.empty());
}

TEST(InsightRecorder, KeepsTheNewestSamples) {
  InsightRecorder r(8, 2);
  for (int i = 0; i < 5; ++i) r.sample({.time_unix_ms = i, .path = "/" + std::to_string(i)});
  auto b = r.take();
  ASSERT_EQ(b.decisions.size(), 2u);
  EXPECT_EQ(b.decisions[0].path, "/3");
  EXPECT_EQ(b.decisions[1].path, "/4");
  EXPECT_EQ(b.decisions_dropped, 3u);
  InsightRecorder none(8, 0);
  none.sample({});
  EXPECT_EQ(none.take().decisions_dropped, 1u);
}

TEST(InsightRecorder, ManyThreadsLoseNoCount) {
  InsightRecorder r;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&r, t] {
      for (int i = 0; i < 1000; ++i) r.count(t % 2 ? "x" : "y", true, i % 3 != 0, "");
    });
  }
  for (auto& t : threads) t.join();
  uint64_t total = 0;
  for (const auto& f : r.take().flows) total += f.requests;
  EXPECT_EQ(total, 4000u);
}

}  // namespace
}  // namespace mg::telemetry
