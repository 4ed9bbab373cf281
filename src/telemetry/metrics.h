// telemetry/metrics.h — a small Prometheus registry. Metric values are atomics; a series stays
// until remove() drops it, so references stay valid — remove() is for a registry no thread cache
// is bound to (the control plane's), whose callers look a series up each time. A lookup finds (or, once per label set, creates) a series
// under the registry's lock — except on a thread bound with bind_thread_cache() (the proxy's
// workers), which finds the series it used before in a cache only it touches: no shared lock on
// the request path, no cache line bounced between workers.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mg::telemetry {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Bucket upper bounds (at most kMaxBuckets), in the unit the caller observes in.
using Buckets = std::span<const double>;

class Histogram {
 public:
  static constexpr size_t kMaxBuckets = 19;
  // Envoy's default buckets, which Istio keeps for every proxy histogram (durations in ms, sizes
  // in bytes): istio_request_duration_milliseconds, istio_request_bytes, istio_response_bytes.
  static constexpr std::array<double, kMaxBuckets> kBucketsMs = {
      0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000};
  // Istio's pilot_proxy_convergence_time buckets (seconds).
  static constexpr std::array<double, 8> kConvergenceBucketsSeconds = {0.1, 0.5, 1, 3, 5, 10, 20, 30};

  explicit Histogram(Buckets bounds = kBucketsMs) : bounds_(bounds.first(std::min(bounds.size(), kMaxBuckets))) {}
  void observe(double value);
  void observe_ms(double ms) { observe(ms); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  Buckets bounds() const { return bounds_; }
  // Cumulative count of observations <= bounds()[i].
  uint64_t bucket(size_t i) const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  double sum_ms() const { return sum(); }

 private:
  Buckets bounds_;
  std::array<std::atomic<uint64_t>, kMaxBuckets> buckets_{};  // non-cumulative
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

enum class MetricType { Counter, Gauge, Histogram };

class Registry {
  struct ThreadCacheState;

 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Binds a series cache to this registry on the calling thread until the guard is destroyed
  // (on the same thread, before the registry). Bounded: it forgets everything past 4096 series.
  class ThreadCache {
   public:
    ThreadCache(ThreadCache&& other) noexcept;
    ThreadCache& operator=(ThreadCache&&) = delete;
    ~ThreadCache();

   private:
    friend class Registry;
    explicit ThreadCache(const Registry& owner);
    std::unique_ptr<ThreadCacheState> state_;
    ThreadCacheState* previous_ = nullptr;
  };
  [[nodiscard]] ThreadCache bind_thread_cache() const;

  // Optional: a HELP line. The type is fixed by the first use of the name.
  void describe(std::string_view name, std::string_view help);

  Counter& counter(std::string_view name, const Labels& labels = {});
  Gauge& gauge(std::string_view name, const Labels& labels = {});
  Histogram& histogram(std::string_view name, const Labels& labels = {});
  // A histogram of other buckets than Envoy's defaults (a family keeps one set: give the same).
  Histogram& histogram(std::string_view name, const Labels& labels, Buckets bounds);

  // Prometheus text exposition format 0.0.4, families and series in a stable (sorted) order.
  std::string render_prometheus() const;

  // Drops one series (a forgotten proxy's, so a long-lived control plane does not keep a series
  // for every workload it ever saw). The caller holds no reference to it. Refused (false) while a
  // thread cache is bound to this registry, since a cache may still point at the series; false
  // too when there is no such series. A family left empty is dropped with its last series.
  bool remove(std::string_view name, const Labels& labels);

  // Current value of one counter series (0 when absent): for tests and /config_dump.
  uint64_t counter_value(std::string_view name, const Labels& labels = {}) const;

 private:
  struct Series {
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    MetricType type = MetricType::Counter;
    std::string help;
    std::map<std::string, Series, std::less<>> series;  // key: rendered label set
  };
  struct ThreadCacheState {
    const Registry* owner = nullptr;
    struct Entry {
      Series* series;
      MetricType type;
    };
    std::unordered_map<std::string, Entry> entries;  // key: name '\0' rendered labels
    std::string scratch;                             // the lookup key, capacity reused
  };
  static constexpr size_t kThreadCacheMax = 4096;
  static thread_local ThreadCacheState* t_cache_;  // bound on this thread, for its owner only

  Series& series(std::string_view name, const Labels& labels, MetricType type, Buckets bounds = Histogram::kBucketsMs);
  Series& locked_series(std::string_view name, const std::string& key, MetricType type, Buckets bounds);
  static Series& series_for(Family& family, const std::string& key, MetricType type, Buckets bounds);

  mutable std::shared_mutex mutex_;
  mutable std::atomic<int> bound_thread_caches_{0};
  std::map<std::string, Family, std::less<>> families_;
  std::map<std::string, std::string, std::less<>> help_;
};

// `{a="x",b="y"}` with Prometheus escaping; "" for no labels.
std::string render_labels(const Labels& labels);
// The same, appended to `out`.
void append_labels(std::string& out, const Labels& labels);

}  // namespace mg::telemetry
