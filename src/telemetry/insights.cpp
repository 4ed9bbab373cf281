// telemetry/insights.cpp — see insights.h.
#include "telemetry/insights.h"

#include <chrono>
#include <iterator>
#include <utility>

namespace mg::telemetry {

int64_t unix_millis_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void InsightRecorder::count(std::string_view source_principal, bool mtls, bool allowed, std::string_view policy) {
  // The lookup key, built in the thread's reused buffer: no allocation once warm.
  thread_local std::string key;
  key.clear();
  key += mtls ? 'm' : 'p';
  key += allowed ? 'a' : 'd';
  key += source_principal;
  key += '\0';
  key += policy;
  MutexLock lock(mutex_);
  auto it = flows_.find(key);
  if (it == flows_.end()) {
    if (flows_.size() >= max_flows_) {
      ++flows_dropped_;
      return;
    }
    it = flows_.emplace(key, Flow{std::string(source_principal), mtls, allowed, std::string(policy), 0}).first;
  }
  ++it->second.requests;
}

void InsightRecorder::sample(DecisionSample s) {
  MutexLock lock(mutex_);
  if (max_decisions_ == 0) {
    ++decisions_dropped_;
    return;
  }
  if (decisions_.size() >= max_decisions_) {
    decisions_.pop_front();
    ++decisions_dropped_;
  }
  decisions_.push_back(std::move(s));
}

InsightBatch InsightRecorder::take() {
  InsightBatch out;
  MutexLock lock(mutex_);
  out.flows.reserve(flows_.size());
  for (auto& [key, flow] : flows_) out.flows.push_back(std::move(flow));
  flows_.clear();
  out.decisions.assign(std::make_move_iterator(decisions_.begin()), std::make_move_iterator(decisions_.end()));
  decisions_.clear();
  out.flows_dropped = std::exchange(flows_dropped_, 0);
  out.decisions_dropped = std::exchange(decisions_dropped_, 0);
  return out;
}

}  // namespace mg::telemetry
