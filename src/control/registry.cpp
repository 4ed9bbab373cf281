// control/registry.cpp — see registry.h.
#include "control/registry.h"

namespace mg::control {

void Registry::join(const std::string& key, Registration registration) {
  MutexLock lock(mutex_);
  registration.connected = true;
  entries_[key] = Entry{std::move(registration), std::nullopt};
}

void Registry::leave(const std::string& key, Clock::time_point now) {
  MutexLock lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  it->second.registration.connected = false;
  it->second.leaves_at = now + grace_;
}

bool Registry::expire(Clock::time_point now) {
  MutexLock lock(mutex_);
  return std::erase_if(entries_, [&](const auto& e) { return e.second.leaves_at && *e.second.leaves_at <= now; }) > 0;
}

std::optional<Registry::Clock::time_point> Registry::next_expiry() const {
  MutexLock lock(mutex_);
  std::optional<Clock::time_point> next;
  for (const auto& [key, e] : entries_) {
    if (e.leaves_at && (!next || *e.leaves_at < *next)) next = e.leaves_at;
  }
  return next;
}

std::shared_ptr<const EndpointsList> Registry::recompute(const policy::ResourceSet& set, int64_t revision,
                                                         int64_t unix_time) {
  std::vector<Registration> registrations;
  {
    MutexLock lock(mutex_);
    registrations.reserve(entries_.size());
    for (const auto& [key, e] : entries_) registrations.push_back(e.registration);
  }
  auto computed = std::make_shared<const EndpointsList>(compute_endpoints(set, registrations));
  MutexLock lock(mutex_);
  endpoints_ = computed;
  std::map<std::string, std::pair<std::string, Changed>> changed;
  for (const auto& e : *computed) {
    auto& [document, when] = changed[e.meta.full_name()];
    document = e.meta.document;
    auto it = changed_.find(e.meta.full_name());
    when = it != changed_.end() && it->second.first == document ? it->second.second : Changed{revision, unix_time};
  }
  changed_ = std::move(changed);
  return computed;
}

Registry::Changed Registry::changed(const std::string& service) const {
  MutexLock lock(mutex_);
  auto it = changed_.find(service);
  return it == changed_.end() ? Changed{} : it->second.second;
}

std::shared_ptr<const EndpointsList> Registry::endpoints() const {
  MutexLock lock(mutex_);
  return endpoints_;
}

}  // namespace mg::control
