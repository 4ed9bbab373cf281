// telemetry/insights.h — what a proxy tells the control plane's console about the requests it
// decided (issue 17): counters per flow (source principal, mTLS or not, allowed or denied, the
// deciding policy, the method and the path prefix) and a bounded sample of recent denials and audits.
// Recording costs a lock and a hash lookup (no allocation once a flow is known); take() hands over everything
// since the last take and starts afresh, so the agent sends one message every few seconds, never one per
// request. Bounded: past max_flows distinct flows (or max_decisions samples, newest kept) what does not fit
// is counted as dropped. Pure: no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/thread_annotations.h"

namespace mg::telemetry {

// One flow's count since the last take. The destination is the reporting proxy's workload (a
// proxy reports what its inbound enforcement decided).
struct Flow {
  std::string source_principal;  // "" for plaintext (no peer identity)
  bool mtls = false;
  bool allowed = false;
  std::string policy;  // "ns/name" of the deciding policy; "" when none decided
  uint64_t requests = 0;
  std::string method;       // HTTP method; "" for a TCP connection
  std::string path_prefix;  // path_prefix() of the request's path; "" for a TCP connection
};

// One denied (or audited) request or connection.
struct DecisionSample {
  int64_t time_unix_ms = 0;
  std::string source_principal;  // "" for plaintext
  std::string source_address;
  std::string method, path;  // "" for a TCP connection
  int status = 0;            // the status answered; 0: connection refused or closed
  std::string policy;        // "" when none decided
  int rule = -1;             // the deciding rule's index; -1: none
  std::string reason;
  bool allowed = false;
  bool audit = false;
  bool mtls = false;
};

struct InsightBatch {
  std::vector<Flow> flows;
  std::vector<DecisionSample> decisions;  // oldest first
  uint64_t flows_dropped = 0;             // requests not counted: too many distinct flows
  uint64_t decisions_dropped = 0;         // samples pushed out by newer ones
  bool empty() const {
    return flows.empty() && decisions.empty() && flows_dropped == 0 && decisions_dropped == 0;
  }
};

// What a flow keeps of a request's path: its first segment as an Istio prefix pattern
// ("/status/200?x" → "/status/*"), the path itself when it has one segment ("/health", "/"),
// so the console can suggest an ALLOW rule per (principal, method, prefix) without a flow per path.
std::string path_prefix(std::string_view path);

// Milliseconds since the Unix epoch (a sample's time).
int64_t unix_millis_now();

class InsightRecorder {
 public:
  explicit InsightRecorder(size_t max_flows = 1024, size_t max_decisions = 64)
      : max_flows_(max_flows), max_decisions_(max_decisions) {}
  InsightRecorder(const InsightRecorder&) = delete;
  InsightRecorder& operator=(const InsightRecorder&) = delete;

  // `method` and `path` "" for a TCP connection.
  void count(std::string_view source_principal, bool mtls, bool allowed, std::string_view policy,
             std::string_view method = {}, std::string_view path = {}) MG_EXCLUDES(mutex_);
  // Keeps the newest max_decisions samples.
  void sample(DecisionSample s) MG_EXCLUDES(mutex_);
  InsightBatch take() MG_EXCLUDES(mutex_);

 private:
  const size_t max_flows_, max_decisions_;
  Mutex mutex_;
  std::unordered_map<std::string, Flow> flows_ MG_GUARDED_BY(mutex_);
  std::deque<DecisionSample> decisions_ MG_GUARDED_BY(mutex_);
  uint64_t flows_dropped_ MG_GUARDED_BY(mutex_) = 0;
  uint64_t decisions_dropped_ MG_GUARDED_BY(mutex_) = 0;
};

}  // namespace mg::telemetry
