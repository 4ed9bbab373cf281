#include "telemetry/metrics.h"

#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "telemetry/access_log.h"

namespace mg::telemetry {
namespace {

TEST(Registry, CountersByLabelSetRenderAsPrometheusText) {
  Registry r;
  r.describe("istio_requests_total", "Requests");
  r.counter("istio_requests_total", {{"response_code", "200"}, {"reporter", "destination"}}).inc();
  r.counter("istio_requests_total", {{"response_code", "200"}, {"reporter", "destination"}}).inc(2);
  r.counter("istio_requests_total", {{"response_code", "403"}, {"reporter", "destination"}}).inc();
  r.gauge("meshguard_cert_expiry_seconds", {{"identity", "spiffe://a/\"x\""}}).set(1700000000);
  std::string text = r.render_prometheus();
  EXPECT_NE(text.find("# HELP istio_requests_total Requests\n# TYPE istio_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("istio_requests_total{response_code=\"200\",reporter=\"destination\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("istio_requests_total{response_code=\"403\",reporter=\"destination\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("meshguard_cert_expiry_seconds{identity=\"spiffe://a/\\\"x\\\"\"} 1700000000\n"), std::string::npos);
  EXPECT_EQ(r.counter_value("istio_requests_total", {{"response_code", "200"}, {"reporter", "destination"}}), 3u);
  EXPECT_EQ(r.counter_value("istio_requests_total", {{"response_code", "500"}, {"reporter", "destination"}}), 0u);
}

TEST(Registry, HistogramBucketsAreCumulative) {
  Registry r;
  auto& h = r.histogram("istio_request_duration_milliseconds");
  h.observe_ms(0.2);
  h.observe_ms(3);
  h.observe_ms(7000);
  std::string text = r.render_prometheus();
  EXPECT_NE(text.find("istio_request_duration_milliseconds_bucket{le=\"0.5\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("istio_request_duration_milliseconds_bucket{le=\"5\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("istio_request_duration_milliseconds_bucket{le=\"10000\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("istio_request_duration_milliseconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("istio_request_duration_milliseconds_count 3\n"), std::string::npos);
}

TEST(Registry, HistogramOfOtherBucketsKeepsItsBoundsAndExactSum) {
  Registry r;
  auto& h = r.histogram("pilot_proxy_convergence_time", {}, Histogram::kConvergenceBucketsSeconds);
  h.observe(0.0005);
  h.observe(0.25);
  h.observe(42);
  // Asking again (as every push does) finds the same series, bounds unchanged.
  EXPECT_EQ(&r.histogram("pilot_proxy_convergence_time", {}, Histogram::kConvergenceBucketsSeconds), &h);
  std::string text = r.render_prometheus();
  EXPECT_NE(text.find("pilot_proxy_convergence_time_bucket{le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("pilot_proxy_convergence_time_bucket{le=\"0.5\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("pilot_proxy_convergence_time_bucket{le=\"30\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("pilot_proxy_convergence_time_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_EQ(text.find("le=\"0.5\"} 2\npilot_proxy_convergence_time_bucket{le=\"10000\""), std::string::npos);
  EXPECT_NE(text.find("pilot_proxy_convergence_time_sum 42.2505\n"), std::string::npos) << text;
  // Envoy's defaults print whole numbers as integers.
  r.histogram("istio_request_bytes").observe(2000000);
  text = r.render_prometheus();
  EXPECT_NE(text.find("istio_request_bytes_bucket{le=\"3600000\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("istio_request_bytes_sum 2000000\n"), std::string::npos);
}

TEST(Registry, LabelValuesAreEscaped) {
  EXPECT_EQ(render_labels({}), "");
  EXPECT_EQ(render_labels({{"a", "plain"}, {"b", ""}}), "{a=\"plain\",b=\"\"}");
  EXPECT_EQ(render_labels({{"v", "x\\y\"z\nw\\"}}), "{v=\"x\\\\y\\\"z\\nw\\\\\"}");
}

// The same updates through bound thread caches (the proxy's workers) and through the locked
// lookup render byte for byte the same /metrics.
void workload(Registry& r, int thread) {
  for (int i = 0; i < 3000; ++i) {
    Labels labels = {{"response_code", std::to_string(200 + i % 3)}, {"source_principal", "spiffe://td/ns/a/sa/\"q\""}};
    r.counter("istio_requests_total", labels).inc();
    r.histogram("istio_request_duration_milliseconds", labels).observe_ms(i % 7);
    r.gauge("g", {{"t", std::to_string(thread)}}).set(i);
    r.counter("plain").inc();
  }
}

TEST(Registry, ThreadCacheRendersExactlyWhatTheLockedPathDoes) {
  Registry locked, cached;
  for (Registry* r : {&locked, &cached}) {
    r->describe("istio_requests_total", "Requests");
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([r, t, bind = r == &cached] {
        std::optional<Registry::ThreadCache> cache;
        if (bind) cache.emplace(r->bind_thread_cache());
        workload(*r, t);
      });
    }
    for (auto& th : threads) th.join();
  }
  EXPECT_EQ(cached.render_prometheus(), locked.render_prometheus());
  EXPECT_EQ(cached.counter_value("plain"), 6000u);
  EXPECT_EQ(cached.counter_value("istio_requests_total",
                                 {{"response_code", "201"}, {"source_principal", "spiffe://td/ns/a/sa/\"q\""}}),
            2000u);
}

TEST(Registry, ThreadCacheServesOnlyItsOwnRegistryAndHandlesStayValid) {
  Registry a, b;
  auto cache = a.bind_thread_cache();
  Counter& first = a.counter("c", {{"k", "v"}});
  EXPECT_EQ(&a.counter("c", {{"k", "v"}}), &first) << "cached handle is the registry's series";
  b.counter("c", {{"k", "v"}}).inc(5);  // not bound: the locked path, its own series
  first.inc();
  EXPECT_EQ(a.counter_value("c", {{"k", "v"}}), 1u);
  EXPECT_EQ(b.counter_value("c", {{"k", "v"}}), 5u);
  // A name used with another type still gets the private conflict series, cached or not.
  a.gauge("c", {{"k", "v"}}).set(3);
  EXPECT_EQ(a.counter_value("c", {{"k", "v"}}), 1u);
  // More distinct series than the cache keeps: it forgets, counts stay right.
  for (int i = 0; i < 5000; ++i) a.counter("many", {{"i", std::to_string(i)}}).inc();
  for (int i = 0; i < 5000; ++i) a.counter("many", {{"i", std::to_string(i)}}).inc();
  EXPECT_EQ(a.counter_value("many", {{"i", "0"}}), 2u);
  EXPECT_EQ(a.counter_value("many", {{"i", "4999"}}), 2u);
}

TEST(Registry, ThreadCacheUnbindsWithItsGuard) {
  Registry a;
  {
    auto cache = a.bind_thread_cache();
    a.counter("x").inc();
  }
  a.counter("x").inc();  // after the guard: the locked path, same series
  EXPECT_EQ(a.counter_value("x"), 2u);
}

TEST(Registry, ConcurrentIncrementsAreNotLost) {
  Registry r;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&r, t] {
      for (int i = 0; i < 10000; ++i) r.counter("c", {{"code", std::to_string(i % 3)}}).inc();
      (void)t;
    });
  }
  for (auto& t : threads) t.join();
  uint64_t total = 0;
  for (int code = 0; code < 3; ++code) total += r.counter_value("c", {{"code", std::to_string(code)}});
  EXPECT_EQ(total, 40000u);
}

TEST(Registry, TypeConflictDoesNotCorruptTheFirstUse) {
  Registry r;
  r.counter("x").inc();
  r.gauge("x").set(5);
  EXPECT_EQ(r.counter_value("x"), 1u);
  EXPECT_NE(r.render_prometheus().find("# TYPE x counter\nx 1\n"), std::string::npos);
}

TEST(Registry, RemoveDropsOneSeriesAndAnEmptiedFamily) {
  Registry r;
  r.describe("g", "per workload");
  r.gauge("g", {{"workload", "a/one"}}).set(1);
  r.gauge("g", {{"workload", "a/two"}}).set(2);
  EXPECT_TRUE(r.remove("g", {{"workload", "a/one"}}));
  EXPECT_FALSE(r.remove("g", {{"workload", "a/one"}})) << "already gone";
  EXPECT_FALSE(r.remove("absent", {}));
  const auto text = r.render_prometheus();
  EXPECT_EQ(text.find("a/one"), std::string::npos);
  EXPECT_NE(text.find("g{workload=\"a/two\"} 2\n"), std::string::npos);
  EXPECT_TRUE(r.remove("g", {{"workload", "a/two"}}));
  EXPECT_EQ(r.render_prometheus().find("# TYPE g"), std::string::npos) << "no family without a series";
  r.gauge("g", {{"workload", "a/one"}}).set(7);  // comes back fresh when used again
  EXPECT_NE(r.render_prometheus().find("g{workload=\"a/one\"} 7\n"), std::string::npos);
}

TEST(Registry, RemoveIsRefusedWhileAThreadCacheMayPointAtTheSeries) {
  Registry r;
  {
    auto cache = r.bind_thread_cache();
    r.counter("c", {{"k", "v"}}).inc();
    EXPECT_FALSE(r.remove("c", {{"k", "v"}}));
    auto moved = std::move(cache);  // still bound through the moved-to guard
    EXPECT_FALSE(r.remove("c", {{"k", "v"}}));
  }
  EXPECT_EQ(r.counter_value("c", {{"k", "v"}}), 1u);
  EXPECT_TRUE(r.remove("c", {{"k", "v"}})) << "no cache bound any more";
  EXPECT_EQ(r.counter_value("c", {{"k", "v"}}), 0u);
}

TEST(AccessLog, WritesOneJsonObjectPerLine) {
  char dir[] = "/tmp/mg-accesslog-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/access.log";
  {
    auto log = AccessLog::open(path);
    ASSERT_TRUE(log) << log.error().to_string();
    (*log)->write({{"path", "/a"}, {"status", 200}});
    (*log)->write({{"path", std::string("/\xff\xfe")}, {"status", 400}});
  }
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    EXPECT_TRUE(j.contains("status"));
    ++lines;
  }
  EXPECT_EQ(lines, 2);
  unlink(path.c_str());
  rmdir(dir);
  EXPECT_FALSE(AccessLog::open("/nonexistent-dir/x.log"));
}

}  // namespace
}  // namespace mg::telemetry
