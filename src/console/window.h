// console/window.h — the control plane's bounded memory of what proxies reported for the console
// (issue 17): per proxy, its flow counts in time buckets covering the last `window`, and its
// newest denial/audit samples. Bounded per proxy (WindowLimits; docs/CONSOLE.md states the
// memory): flows past max_flows_per_bucket in one bucket and samples past max_decisions are
// dropped and counted. A proxy with nothing left in the window is forgotten. Pure: the caller
// gives the time; thread-safe (gRPC threads report, console requests read).
//
// Aging is per proxy, so a report costs the same with 10 or 10,000 proxies: a report ages only its
// own proxy's buckets and samples, plus a bounded sweep (kSweepPerReport) of the others in turn that
// forgets silent proxies; a console read, which visits every proxy anyway, ages all of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "common/thread_annotations.h"
#include "telemetry/insights.h"

namespace mg::console {

struct WindowLimits {
  int64_t bucket_ms = 30'000;
  size_t buckets = 10;  // the window: buckets × bucket_ms (5 minutes)
  size_t max_flows_per_bucket = 256;
  size_t max_decisions = 100;
  size_t max_text = 256;  // longest principal, path, reason... kept (bytes); longer is cut
  int64_t window_ms() const { return bucket_ms * static_cast<int64_t>(buckets); }
};

// One reporting proxy's flows summed over the window, by (source principal, mTLS, allowed, policy,
// method, path prefix).
struct FlowTotal {
  std::string destination;  // the reporting proxy ("ns/name")
  telemetry::Flow flow;
};

struct ReportedDecision {
  std::string destination;  // the reporting proxy ("ns/name")
  int64_t received_unix_ms = 0;
  telemetry::DecisionSample sample;
};

struct WindowStats {
  size_t proxies = 0;
  uint64_t flows_dropped = 0;  // by the proxies' bounds and ours, over the window's life
  uint64_t decisions_dropped = 0;
};

// What the window holds and has done, without aging anything (tests and bench/control).
struct WindowWork {
  size_t held = 0;    // proxy windows in memory, silent ones not yet swept included
  uint64_t aged = 0;  // proxy windows aged so far (a report: its own and at most kSweepPerReport more)
};

class InsightWindow {
 public:
  explicit InsightWindow(WindowLimits limits = {}) : limits_(limits) {}

  // One proxy's Telemetry, received at `now_ms` (Unix milliseconds). Texts are cut to max_text.
  void report(const std::string& proxy, telemetry::InsightBatch batch, int64_t now_ms) MG_EXCLUDES(mutex_);

  // Every proxy's flows summed over the window at `now_ms`, sorted by destination then source.
  std::vector<FlowTotal> flows(int64_t now_ms) MG_EXCLUDES(mutex_);
  // How long the window's counts for `proxy` cover (ms, at least one bucket's worth of the time
  // since its first report in the window): the denominator of a rate. 0 for an unknown proxy.
  int64_t covered_ms(const std::string& proxy, int64_t now_ms) MG_EXCLUDES(mutex_);
  // The samples still in the window, newest first.
  std::vector<ReportedDecision> decisions(int64_t now_ms) MG_EXCLUDES(mutex_);
  WindowStats stats(int64_t now_ms) MG_EXCLUDES(mutex_);
  WindowWork work() MG_EXCLUDES(mutex_);
  const WindowLimits& limits() const { return limits_; }

  // Other proxies a report ages after its own, in key order from where the last report stopped.
  static constexpr size_t kSweepPerReport = 2;

 private:
  // principal, mTLS, allowed, policy, method, path prefix
  using FlowKey = std::tuple<std::string, bool, bool, std::string, std::string, std::string>;
  struct Bucket {
    int64_t start_ms = 0;
    std::map<FlowKey, uint64_t> counts;
  };
  struct ProxyWindow {
    std::deque<Bucket> buckets;  // oldest first
    std::deque<ReportedDecision> decisions;
    int64_t first_report_ms = 0;  // of the reports still in the window
  };
  using Proxies = std::map<std::string, ProxyWindow>;
  // Drops what left the window from one proxy's; true when nothing is left (forget it then).
  bool age(ProxyWindow& w, int64_t now_ms) MG_REQUIRES(mutex_);
  // Ages at most `max` proxies from the sweep cursor on (wrapping), forgetting the empty ones;
  // `keep` (the reporting proxy, aged by the report itself) is passed over.
  void sweep(int64_t now_ms, size_t max, const std::string& keep) MG_REQUIRES(mutex_);
  // Ages every proxy (a reader's way: it visits all of them anyway).
  void prune(int64_t now_ms) MG_REQUIRES(mutex_);

  const WindowLimits limits_;
  Mutex mutex_;
  Proxies proxies_ MG_GUARDED_BY(mutex_);
  std::string sweep_next_ MG_GUARDED_BY(mutex_);  // the first proxy the next sweep ages
  uint64_t aged_ MG_GUARDED_BY(mutex_) = 0;
  uint64_t flows_dropped_ MG_GUARDED_BY(mutex_) = 0;
  uint64_t decisions_dropped_ MG_GUARDED_BY(mutex_) = 0;
};

}  // namespace mg::console
