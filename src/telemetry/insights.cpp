// telemetry/insights.cpp — see insights.h.
#include "telemetry/insights.h"

#include <chrono>
#include <iterator>
#include <utility>

namespace mg::telemetry {

int64_t unix_millis_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

// The first segment of `path` (query and fragment dropped) and whether more followed it (then the
// prefix pattern ends with '*'): path_prefix() without allocating.
std::string_view first_segment(std::string_view path, bool& star) {
  path = path.substr(0, path.find_first_of("?#"));
  star = false;
  if (path.empty() || path.front() != '/') return path;
  const auto second = path.find('/', 1);
  if (second == std::string_view::npos) return path;
  star = true;
  return path.substr(0, second + 1);
}

}  // namespace

std::string path_prefix(std::string_view path) {
  bool star = false;
  std::string out(first_segment(path, star));
  if (star) out += '*';
  return out;
}

void InsightRecorder::count(std::string_view source_principal, bool mtls, bool allowed,
                            std::string_view policy, std::string_view method, std::string_view path) {
  bool star = false;
  const std::string_view bare = first_segment(path, star);
  // The lookup key, built in the thread's reused buffer: no allocation once warm.
  thread_local std::string key;
  key.clear();
  key += mtls ? 'm' : 'p';
  key += allowed ? 'a' : 'd';
  key += source_principal;
  key += '\0';
  key += policy;
  key += '\0';
  key += method;
  key += '\0';
  key += bare;
  if (star) key += '*';
  MutexLock lock(mutex_);
  auto it = flows_.find(key);
  if (it == flows_.end()) {
    if (flows_.size() >= max_flows_) {
      ++flows_dropped_;
      return;
    }
    it = flows_
             .emplace(key, Flow{std::string(source_principal), mtls, allowed, std::string(policy), 0,
                                std::string(method), path_prefix(path)})
             .first;
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
  out.decisions.assign(std::make_move_iterator(decisions_.begin()),
                       std::make_move_iterator(decisions_.end()));
  decisions_.clear();
  out.flows_dropped = std::exchange(flows_dropped_, 0);
  out.decisions_dropped = std::exchange(decisions_dropped_, 0);
  return out;
}

}  // namespace mg::telemetry
