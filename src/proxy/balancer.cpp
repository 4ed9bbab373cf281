#include "proxy/balancer.h"

#include <algorithm>
#include <random>
#include <vector>

namespace mg::proxy {

namespace {
std::atomic<uint64_t> next_endpoint_id{0};
}

EndpointHealth::EndpointHealth() : id(next_endpoint_id.fetch_add(1, std::memory_order_relaxed)) {}

bool EndpointHealth::ejected(BalancerClock::time_point now) const {
  std::lock_guard lock(mutex_);
  return now < until_;
}

EndpointHealth::View EndpointHealth::view(BalancerClock::time_point now) const {
  std::lock_guard lock(mutex_);
  View v{consecutive_, multiplier_, total_, 0};
  if (now < until_) v.ejected_for_ms = std::chrono::duration_cast<std::chrono::milliseconds>(until_ - now).count();
  return v;
}

std::optional<size_t> pick_endpoint(const RegistryPort& port, policy::Service::LoadBalancer lb,
                                    BalancerClock::time_point now, uint64_t random, std::optional<size_t> exclude) {
  // Candidates, best class first: healthy and not ejected and not excluded; then (panic) healthy
  // and not excluded; then the excluded one itself if it is all there is.
  std::vector<size_t> candidates;
  for (int pass = 0; pass < 3 && candidates.empty(); ++pass) {
    for (size_t i = 0; i < port.endpoints.size(); ++i) {
      const RegistryEndpoint& e = port.endpoints[i];
      if (!e.healthy) continue;
      if (pass < 2 && exclude && *exclude == i) continue;
      if (pass == 0 && e.health->ejected(now)) continue;
      candidates.push_back(i);
    }
  }
  if (candidates.empty()) return std::nullopt;
  if (candidates.size() == 1) return candidates.front();
  if (lb == policy::Service::LoadBalancer::RoundRobin)
    return candidates[port.next->fetch_add(1, std::memory_order_relaxed) % candidates.size()];
  // Power of two choices: two distinct draws, fewer active requests wins (the first on a tie).
  const size_t n = candidates.size();
  size_t a = random % n;
  size_t b = (a + 1 + (random / n) % (n - 1)) % n;
  const auto& ea = *port.endpoints[candidates[a]].health;
  const auto& eb = *port.endpoints[candidates[b]].health;
  return ea.active.load(std::memory_order_relaxed) <= eb.active.load(std::memory_order_relaxed) ? candidates[a]
                                                                                               : candidates[b];
}

bool record_outcome(const RegistryPort& port, const RegistryEndpoint& endpoint, bool failed,
                    BalancerClock::time_point now, const OutlierSettings& settings) {
  EndpointHealth& h = *endpoint.health;
  if (!failed) {
    std::lock_guard lock(h.mutex_);
    h.consecutive_ = 0;
    if (h.multiplier_ > 0 && now >= h.until_ + settings.base_ejection) {
      --h.multiplier_;
      h.until_ = now - settings.base_ejection;  // the next decrement needs another clean period
      if (h.multiplier_ == 0) h.until_ = {};
    }
    return false;
  }
  {
    std::lock_guard lock(h.mutex_);
    if (now < h.until_) return false;  // already ejected (a request picked it before)
    if (++h.consecutive_ < std::max<uint32_t>(1, settings.consecutive_errors)) return false;
  }
  // The max-ejection rule, over the port's endpoints (other locks taken one at a time).
  size_t ejected = 0;
  for (const auto& e : port.endpoints) {
    if (&e != &endpoint && e.health->ejected(now)) ++ejected;
  }
  const size_t total = port.endpoints.size();
  const size_t allowed = std::max<size_t>(1, total * settings.max_ejection_percent / 100);
  if (ejected >= allowed || ejected + 1 >= total) return false;
  std::lock_guard lock(h.mutex_);
  if (now < h.until_) return false;
  ++h.multiplier_;
  ++h.total_;
  h.consecutive_ = 0;
  auto duration = std::min(settings.base_ejection * h.multiplier_, std::max(settings.base_ejection, settings.max_ejection));
  h.until_ = now + duration;
  return true;
}

namespace {

uint64_t random_draw() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

}  // namespace

uint32_t weight_draw() { return static_cast<uint32_t>(random_draw() % 100); }

namespace {

void count_in_flight(UpstreamTarget& t, EndpointHealth* h) {
  if (t.counted) t.counted->active.fetch_sub(1, std::memory_order_relaxed);
  t.counted = h;
  if (h) h->active.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

bool choose_endpoint(UpstreamTarget& t, BalancerClock::time_point now) {
  auto i = pick_endpoint(*t.port, t.load_balancer.value_or(t.service->load_balancer), now, random_draw());
  if (!i) return false;
  t.endpoint = &t.port->endpoints[*i];
  count_in_flight(t, t.endpoint->health.get());
  return true;
}

bool retry_elsewhere(UpstreamTarget& t, const OutlierSettings& settings, BalancerClock::time_point now) {
  if (!t.endpoint || t.retried) return false;  // finish_endpoint records this failure
  t.retried = true;
  const size_t current = static_cast<size_t>(t.endpoint - t.port->endpoints.data());
  auto i = pick_endpoint(*t.port, t.load_balancer.value_or(t.service->load_balancer), now, random_draw(), current);
  if (!i || *i == current) return false;
  if (record_outcome(*t.port, *t.endpoint, true, now, settings)) ++t.ejections;
  t.endpoint = &t.port->endpoints[*i];
  count_in_flight(t, t.endpoint->health.get());
  return true;
}

void finish_endpoint(UpstreamTarget& t, bool failed, const OutlierSettings& settings, BalancerClock::time_point now) {
  if (t.endpoint && record_outcome(*t.port, *t.endpoint, failed, now, settings)) ++t.ejections;
  count_in_flight(t, nullptr);
}

}  // namespace mg::proxy
