// control/registry.h — the service registry's state: which proxies are registered (from their
// Hello: address, inbound ports, labels) and, once a proxy's stream ends, how long it stays listed
// (unhealthy) before it leaves — the grace period (`meshguard-control --endpoint-grace`). Holds the
// endpoints last computed from them (control/endpoints.h, pure), which the distributor pushes and
// `meshguardctl get endpoints` shows. Thread-safe; calls nothing outside itself.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/thread_annotations.h"
#include "control/endpoints.h"
#include "policy/resources.h"

namespace mg::control {

using EndpointsList = std::vector<policy::ServiceEndpoints>;

class Registry {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Registry(std::chrono::milliseconds grace) : grace_(grace) {}

  // The proxy `key` ("namespace/name") registered (again: it replaces what was there).
  void join(const std::string& key, Registration registration) MG_EXCLUDES(mutex_);
  // Its stream ended at `now`: listed unhealthy until now + grace, then it leaves (expire()).
  void leave(const std::string& key, Clock::time_point now) MG_EXCLUDES(mutex_);
  // Drops the registrations whose grace period ended by `now`; true when one did.
  bool expire(Clock::time_point now) MG_EXCLUDES(mutex_);
  // When the next grace period ends, if any is running.
  std::optional<Clock::time_point> next_expiry() const MG_EXCLUDES(mutex_);

  // The endpoints of every Service of `set` (at store revision `revision`, computed at `unix_time`)
  // from the current registrations, kept for endpoints().
  std::shared_ptr<const EndpointsList> recompute(const policy::ResourceSet& set, int64_t revision = 0,
                                                 int64_t unix_time = 0) MG_EXCLUDES(mutex_);
  // The last computed (empty before the first recompute).
  std::shared_ptr<const EndpointsList> endpoints() const MG_EXCLUDES(mutex_);
  // When the endpoints of service "ns/name" last changed (what `get endpoints` shows as its age).
  struct Changed {
    int64_t revision = 0, unix_time = 0;
  };
  Changed changed(const std::string& service) const MG_EXCLUDES(mutex_);

 private:
  struct Entry {
    Registration registration;
    std::optional<Clock::time_point> leaves_at;  // set while in the grace period
  };
  const std::chrono::milliseconds grace_;
  mutable Mutex mutex_;
  std::map<std::string, Entry> entries_ MG_GUARDED_BY(mutex_);
  std::shared_ptr<const EndpointsList> endpoints_ MG_GUARDED_BY(mutex_) = std::make_shared<const EndpointsList>();
  std::map<std::string, std::pair<std::string, Changed>> changed_ MG_GUARDED_BY(mutex_);  // document, when
};

}  // namespace mg::control
