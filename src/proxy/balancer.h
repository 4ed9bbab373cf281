// proxy/balancer.h — choosing an endpoint of a service port for one request or connection, and
// passive health (outlier detection), Envoy's way:
//  - LEAST_REQUEST (the default): power of two choices — two distinct endpoints drawn at random,
//    the one with fewer active requests wins. ROUND_ROBIN: a per-port counter.
//  - An endpoint whose last `consecutive_errors` attempts failed (connection not made: refused,
//    timeout, TLS or secure-naming failure; or a 5xx answer) is ejected for
//    base_ejection × (times ejected), at most max_ejection; back by itself when the time is up.
//    Each success after a clean base_ejection period lowers the multiplier by one.
//  - Max-ejection rule: an ejection happens only while the port's ejected endpoints stay within
//    max(1, ⌊N × max_ejection_percent / 100⌋) of its N endpoints AND at least one endpoint stays
//    un-ejected (never all: with one endpoint nothing is ever ejected).
//  - Endpoints registered unhealthy are never picked; if every healthy endpoint is ejected (only
//    after endpoints left the registry), the healthy ones are used anyway (Envoy's panic mode).
// The state is shared by every worker (one EndpointHealth per endpoint, small mutex); the pick
// and the rules are pure functions of it and the time given.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

#include "proxy/exchange.h"
#include "proxy/registry.h"

namespace mg::proxy {

using BalancerClock = std::chrono::steady_clock;

struct EndpointHealth {
  EndpointHealth();
  const uint64_t id;  // unique in the process: the per-worker connection pools' key
  std::atomic<uint32_t> active{0};  // requests (or TCP connections) in flight to it

  bool ejected(BalancerClock::time_point now) const;
  struct View {
    uint32_t consecutive_failures = 0;
    uint32_t ejections = 0;  // the current backoff multiplier
    uint64_t ejections_total = 0;
    int64_t ejected_for_ms = 0;  // remaining; 0: not ejected
  };
  View view(BalancerClock::time_point now) const;

 private:
  friend bool record_outcome(const RegistryPort&, const RegistryEndpoint&, bool, BalancerClock::time_point,
                             const OutlierSettings&);
  mutable std::mutex mutex_;
  uint32_t consecutive_ = 0;
  uint32_t multiplier_ = 0;
  uint64_t total_ = 0;
  BalancerClock::time_point until_{};
};

// The endpoint of `port` for the next request; `exclude` (a retry) is not chosen unless it is the
// only one left. `random` is any random number (two draws are made from it). nullopt: no endpoint
// is registered healthy (503 UH).
std::optional<size_t> pick_endpoint(const RegistryPort& port, policy::Service::LoadBalancer lb,
                                    BalancerClock::time_point now, uint64_t random,
                                    std::optional<size_t> exclude = std::nullopt);

// Records one attempt's outcome for `endpoint` (one of `port`'s); returns true when this failure
// ejected it.
bool record_outcome(const RegistryPort& port, const RegistryEndpoint& endpoint, bool failed,
                    BalancerClock::time_point now, const OutlierSettings& settings);

// A request's (or TCP connection's) endpoint over its life, on `target` (service and port set):
// choose_endpoint picks one and counts it in flight; retry_elsewhere, after a connection to it
// could not be made, records that failure and picks another (once per request; false: nothing
// else to try); finish_endpoint records the outcome and ends the in-flight count.
bool choose_endpoint(UpstreamTarget& target, BalancerClock::time_point now);
// A uniform draw in [0, 100): a VirtualService's weighted destination (gateway/routes.h `pick`).
uint32_t weight_draw();
bool retry_elsewhere(UpstreamTarget& target, const OutlierSettings& settings, BalancerClock::time_point now);
void finish_endpoint(UpstreamTarget& target, bool failed, const OutlierSettings& settings,
                     BalancerClock::time_point now);

// Counts one request (or connection) in flight to an endpoint while it lives.
class ActiveRequest {
 public:
  explicit ActiveRequest(EndpointHealth& h) : health_(&h) { health_->active.fetch_add(1, std::memory_order_relaxed); }
  ~ActiveRequest() {
    if (health_) health_->active.fetch_sub(1, std::memory_order_relaxed);
  }
  ActiveRequest(ActiveRequest&& o) noexcept : health_(o.health_) { o.health_ = nullptr; }
  ActiveRequest(const ActiveRequest&) = delete;
  ActiveRequest& operator=(const ActiveRequest&) = delete;
  ActiveRequest& operator=(ActiveRequest&&) = delete;

 private:
  EndpointHealth* health_;
};

}  // namespace mg::proxy
