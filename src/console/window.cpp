// console/window.cpp — see window.h.
#include "console/window.h"

#include <algorithm>

namespace mg::console {

namespace {

void cut(std::string& s, size_t max) {
  if (s.size() > max) s.resize(max);
}

}  // namespace

void InsightWindow::report(const std::string& proxy, telemetry::InsightBatch batch, int64_t now_ms) {
  MutexLock lock(mutex_);
  sweep(now_ms, kSweepPerReport, proxy);
  ProxyWindow& w = proxies_[proxy];
  if (age(w, now_ms)) w.first_report_ms = now_ms;
  const int64_t start = now_ms - now_ms % limits_.bucket_ms;
  if (w.buckets.empty() || w.buckets.back().start_ms != start) w.buckets.push_back({start, {}});
  Bucket& b = w.buckets.back();
  flows_dropped_ += batch.flows_dropped;
  for (auto& f : batch.flows) {
    cut(f.source_principal, limits_.max_text);
    cut(f.policy, limits_.max_text);
    cut(f.method, limits_.max_text);
    cut(f.path_prefix, limits_.max_text);
    FlowKey key{std::move(f.source_principal), f.mtls, f.allowed, std::move(f.policy), std::move(f.method),
                std::move(f.path_prefix)};
    auto it = b.counts.find(key);
    if (it == b.counts.end()) {
      if (b.counts.size() >= limits_.max_flows_per_bucket) {
        flows_dropped_ += f.requests;
        continue;
      }
      it = b.counts.emplace(std::move(key), 0).first;
    }
    it->second += f.requests;
  }
  decisions_dropped_ += batch.decisions_dropped;
  for (auto& d : batch.decisions) {
    for (auto* s : {&d.source_principal, &d.source_address, &d.method, &d.path, &d.policy, &d.reason})
      cut(*s, limits_.max_text);
    if (limits_.max_decisions == 0) {
      ++decisions_dropped_;
      continue;
    }
    if (w.decisions.size() >= limits_.max_decisions) {
      w.decisions.pop_front();
      ++decisions_dropped_;
    }
    w.decisions.push_back({proxy, now_ms, std::move(d)});
  }
}

bool InsightWindow::age(ProxyWindow& w, int64_t now_ms) {
  ++aged_;
  const int64_t oldest = now_ms - limits_.window_ms();
  while (!w.buckets.empty() && w.buckets.front().start_ms + limits_.bucket_ms <= oldest)
    w.buckets.pop_front();
  while (!w.decisions.empty() && w.decisions.front().received_unix_ms <= oldest) w.decisions.pop_front();
  if (w.buckets.empty() && w.decisions.empty()) return true;
  w.first_report_ms = std::max(w.first_report_ms, oldest);
  return false;
}

void InsightWindow::sweep(int64_t now_ms, size_t max, const std::string& keep) {
  auto it = proxies_.lower_bound(sweep_next_);
  for (size_t n = 0; n < max && !proxies_.empty(); ++n) {
    if (it == proxies_.end()) it = proxies_.begin();
    if (it->first != keep && age(it->second, now_ms)) {
      it = proxies_.erase(it);
    } else {
      ++it;
    }
  }
  sweep_next_ = it == proxies_.end() ? std::string() : it->first;
}

void InsightWindow::prune(int64_t now_ms) {
  for (auto it = proxies_.begin(); it != proxies_.end();) {
    if (age(it->second, now_ms)) {
      it = proxies_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<FlowTotal> InsightWindow::flows(int64_t now_ms) {
  MutexLock lock(mutex_);
  prune(now_ms);
  std::vector<FlowTotal> out;
  for (const auto& [proxy, w] : proxies_) {
    std::map<FlowKey, uint64_t> sum;
    for (const auto& b : w.buckets) {
      for (const auto& [key, n] : b.counts) sum[key] += n;
    }
    for (const auto& [key, n] : sum) {
      const auto& [principal, mtls, allowed, policy, method, prefix] = key;
      out.push_back({proxy, {principal, mtls, allowed, policy, n, method, prefix}});
    }
  }
  return out;
}

int64_t InsightWindow::covered_ms(const std::string& proxy, int64_t now_ms) {
  MutexLock lock(mutex_);
  auto it = proxies_.find(proxy);
  if (it == proxies_.end()) return 0;
  if (age(it->second, now_ms)) {
    proxies_.erase(it);
    return 0;
  }
  return std::max(now_ms - it->second.first_report_ms, limits_.bucket_ms);
}

std::vector<ReportedDecision> InsightWindow::decisions(int64_t now_ms) {
  MutexLock lock(mutex_);
  prune(now_ms);
  std::vector<ReportedDecision> out;
  for (const auto& [proxy, w] : proxies_) out.insert(out.end(), w.decisions.begin(), w.decisions.end());
  std::stable_sort(out.begin(), out.end(), [](const ReportedDecision& a, const ReportedDecision& b) {
    return std::tie(a.received_unix_ms, a.sample.time_unix_ms) >
           std::tie(b.received_unix_ms, b.sample.time_unix_ms);
  });
  return out;
}

WindowStats InsightWindow::stats(int64_t now_ms) {
  MutexLock lock(mutex_);
  prune(now_ms);
  return {proxies_.size(), flows_dropped_, decisions_dropped_};
}

WindowWork InsightWindow::work() {
  MutexLock lock(mutex_);
  return {proxies_.size(), aged_};
}

}  // namespace mg::console
