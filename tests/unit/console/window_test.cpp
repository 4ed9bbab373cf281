// The control plane's telemetry window: sums per flow over time buckets, forgets what left the
// window, stays within its bounds.
#include "console/window.h"

#include <gtest/gtest.h>

namespace mg::console {
namespace {

telemetry::InsightBatch batch(std::vector<telemetry::Flow> flows,
                              std::vector<telemetry::DecisionSample> samples = {}) {
  telemetry::InsightBatch b;
  b.flows = std::move(flows);
  b.decisions = std::move(samples);
  return b;
}

constexpr int64_t kT0 = 1'700'000'000'000;  // a bucket boundary (multiple of 30 s)

TEST(InsightWindow, SumsAFlowAcrossReportsAndBuckets) {
  InsightWindow w;
  w.report("default/details", batch({{"p", true, true, "", 2}, {"p", true, false, "default/deny", 1}}),
           kT0 + 1000);
  w.report("default/details", batch({{"p", true, true, "", 3}}), kT0 + 4000);
  w.report("default/details", batch({{"p", true, true, "", 5}}), kT0 + 31'000);  // the next bucket
  w.report("default/reviews", batch({{"", false, true, "", 7}}), kT0 + 31'000);
  auto flows = w.flows(kT0 + 32'000);
  ASSERT_EQ(flows.size(), 3u);
  EXPECT_EQ(flows[0].destination, "default/details");
  uint64_t allowed = 0, denied = 0;
  for (const auto& f : flows) {
    if (f.destination != "default/details") continue;
    (f.flow.allowed ? allowed : denied) += f.flow.requests;
  }
  EXPECT_EQ(allowed, 10u);
  EXPECT_EQ(denied, 1u);
  EXPECT_EQ(flows[2].destination, "default/reviews");
  EXPECT_EQ(flows[2].flow.requests, 7u);
  EXPECT_EQ(w.stats(kT0 + 32'000).proxies, 2u);
}

TEST(InsightWindow, ForgetsWhatLeftTheWindow) {
  WindowLimits limits;
  limits.bucket_ms = 1000;
  limits.buckets = 3;
  InsightWindow w(limits);
  w.report("a/x", batch({{"p", true, true, "", 1}}, {{.time_unix_ms = 1, .path = "/old"}}), kT0);
  w.report("a/x", batch({{"p", true, true, "", 2}}), kT0 + 2500);
  auto flows = w.flows(kT0 + 2600);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0].flow.requests, 3u);
  EXPECT_EQ(w.decisions(kT0 + 2600).size(), 1u);
  flows = w.flows(kT0 + 3500);  // the first bucket [T0, T0+1000) still overlaps the window
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0].flow.requests, 3u);
  flows = w.flows(kT0 + 4000);  // now all of it is older than 3 s
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0].flow.requests, 2u);
  EXPECT_TRUE(w.decisions(kT0 + 4000).empty());
  EXPECT_TRUE(w.flows(kT0 + 10'000).empty());
  EXPECT_EQ(w.stats(kT0 + 10'000).proxies, 0u) << "a proxy with nothing in the window is forgotten";
  EXPECT_EQ(w.covered_ms("a/x", kT0 + 10'000), 0);
}

TEST(InsightWindow, CoveredTimeIsAtLeastOneBucket) {
  InsightWindow w;
  w.report("a/x", batch({{"p", true, true, "", 1}}), kT0);
  EXPECT_EQ(w.covered_ms("a/x", kT0 + 100), 30'000);
  EXPECT_EQ(w.covered_ms("a/x", kT0 + 200'000), 200'000);
  EXPECT_EQ(w.covered_ms("a/x", kT0 + 299'000), 299'000);
}

TEST(InsightWindow, BoundsFlowsSamplesAndText) {
  WindowLimits limits;
  limits.max_flows_per_bucket = 2;
  limits.max_decisions = 3;
  limits.max_text = 8;
  InsightWindow w(limits);
  telemetry::InsightBatch b =
      batch({{"a", true, true, "", 1}, {"b", true, true, "", 1}, {"c", true, true, "", 4}});
  b.flows_dropped = 10;
  for (int i = 0; i < 5; ++i)
    b.decisions.push_back({.time_unix_ms = i, .path = "/a-very-long-path-" + std::to_string(i)});
  w.report("a/x", std::move(b), kT0);
  EXPECT_EQ(w.flows(kT0).size(), 2u);
  auto d = w.decisions(kT0);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].sample.time_unix_ms, 4) << "newest first";
  EXPECT_EQ(d[0].sample.path.size(), 8u) << "texts are cut";
  auto stats = w.stats(kT0);
  EXPECT_EQ(stats.flows_dropped, 14u);
  EXPECT_EQ(stats.decisions_dropped, 2u);
}

TEST(InsightWindow, DecisionsNewestFirstAcrossProxies) {
  InsightWindow w;
  w.report("a/x", batch({}, {{.time_unix_ms = 1, .path = "/1"}}), kT0);
  w.report("b/y", batch({}, {{.time_unix_ms = 2, .path = "/2"}}), kT0 + 10);
  auto d = w.decisions(kT0 + 20);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].destination, "b/y");
  EXPECT_EQ(d[1].destination, "a/x");
}

// A report ages its own proxy and a bounded few others, never every proxy: with thousands of
// proxies reporting every few seconds, a scan of all of them per report was the window's main cost.
TEST(InsightWindow, AReportAgesItsOwnProxyAndABoundedFew) {
  InsightWindow w;
  constexpr int kProxies = 1000;
  for (int i = 0; i < kProxies; ++i)
    w.report("ns/p" + std::to_string(i), batch({{"p", true, true, "", 1}}), kT0 + i);
  const uint64_t before = w.work().aged;
  for (int i = 0; i < 100; ++i) w.report("ns/p7", batch({{"p", true, true, "", 1}}), kT0 + 2000 + i);
  const uint64_t per_report = (w.work().aged - before) / 100;
  EXPECT_LE(per_report, 1 + InsightWindow::kSweepPerReport);
  EXPECT_GE(per_report, 1u);
  EXPECT_EQ(w.work().held, static_cast<size_t>(kProxies)) << "nothing left the window yet";
}

// Proxies that stopped reporting are forgotten by the sweep of the ones still reporting, with no
// console read in between; what a proxy still reporting counted stays.
TEST(InsightWindow, SilentProxiesAreSweptByOthersReports) {
  WindowLimits limits;
  limits.bucket_ms = 1000;
  limits.buckets = 3;
  InsightWindow w(limits);
  constexpr int kSilent = 50;
  for (int i = 0; i < kSilent; ++i)
    w.report("ns/silent" + std::to_string(i), batch({{"p", true, true, "", 1}}), kT0);
  w.report("ns/live", batch({{"p", true, true, "", 1}}), kT0);
  // After the window has passed, the live proxy alone reports; each report sweeps a few.
  const int reports = kSilent / static_cast<int>(InsightWindow::kSweepPerReport) + 2;
  for (int i = 0; i < reports; ++i) w.report("ns/live", batch({{"p", true, true, "", 1}}), kT0 + 10'000 + i);
  EXPECT_EQ(w.work().held, 1u) << "every silent proxy's window was dropped";
  auto flows = w.flows(kT0 + 10'000 + reports);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0].destination, "ns/live");
  EXPECT_EQ(flows[0].flow.requests, static_cast<uint64_t>(reports)) << "the old report left the window";
  EXPECT_EQ(w.covered_ms("ns/live", kT0 + 10'000 + reports), 1000);
}

// A proxy's own aging on report: a report after its window passed starts its coverage afresh.
TEST(InsightWindow, AReportAfterTheWindowStartsCoverageAfresh) {
  WindowLimits limits;
  limits.bucket_ms = 1000;
  limits.buckets = 3;
  InsightWindow w(limits);
  w.report("a/x", batch({{"p", true, true, "", 1}}), kT0);
  w.report("a/x", batch({{"p", true, true, "", 2}}), kT0 + 20'000);
  EXPECT_EQ(w.covered_ms("a/x", kT0 + 22'000), 2000);
  auto flows = w.flows(kT0 + 22'000);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0].flow.requests, 2u);
}

}  // namespace
}  // namespace mg::console
