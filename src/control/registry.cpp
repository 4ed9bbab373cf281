// control/registry.cpp — see registry.h.
#include "control/registry.h"

namespace mg::control {

void Registry::join(const std::string& key, Registration registration) {
  MutexLock lock(mutex_);
  registration.connected = true;
  entries_[key] = Entry{std::move(registration), std::nullopt, false};
  unsaved_.insert(key);
  ++live_version_;
}

void Registry::leave(const std::string& key, Clock::time_point now) {
  MutexLock lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  it->second.registration.connected = false;
  it->second.leaves_at = now + grace_;
  unsaved_.insert(key);
  ++live_version_;
}

bool Registry::expire(Clock::time_point now) {
  MutexLock lock(mutex_);
  bool any = false;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.leaves_at && *it->second.leaves_at <= now) {
      unsaved_.insert(it->first);
      if (!it->second.restored) ++live_version_;
      it = entries_.erase(it);
      any = true;
    } else {
      ++it;
    }
  }
  return any;
}

Registry::Restored Registry::restore(const std::vector<StoredRegistration>& stored, Clock::time_point now,
                                     int64_t now_unix) {
  Restored out;
  MutexLock lock(mutex_);
  for (const auto& s : stored) {
    unsaved_.insert(s.key);  // rewritten (restored) or deleted (dropped)
    auto registration = parse_registration_record(s.record);
    if (!registration) {
      out.errors.push_back(s.key + ": " + registration.error().message);
      continue;
    }
    if (registration->ns + "/" + registration->name != s.key) {
      out.errors.push_back(s.key + ": registration record names " + registration->ns + "/" + registration->name);
      continue;
    }
    Clock::time_point leaves_at = now + grace_;
    if (!s.connected) {
      const auto remaining = std::chrono::seconds(s.last_seen_unix - now_unix) + grace_;
      if (remaining <= std::chrono::milliseconds(0)) {
        ++out.expired;
        continue;
      }
      // A clock set back cannot stretch it beyond one grace period.
      leaves_at = now + std::min<std::chrono::milliseconds>(remaining, grace_);
    }
    registration->connected = s.connected || s.healthy;
    if (auto it = entries_.find(s.key); it != entries_.end() && !it->second.restored) ++live_version_;
    entries_[s.key] = Entry{std::move(*registration), leaves_at, true};
    ++out.restored;
  }
  return out;
}

Registry::Unsaved Registry::take_unsaved(Clock::time_point now, int64_t now_unix) {
  Unsaved out;
  MutexLock lock(mutex_);
  for (const auto& key : unsaved_) {
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      out.remove.push_back(key);
      continue;
    }
    const Entry& e = it->second;
    StoredRegistration s{key, registration_record(e.registration), !e.leaves_at, e.registration.connected, now_unix};
    if (e.leaves_at) {
      // Last seen a grace period before it leaves (rounded to the later second: a restart then
      // gives it at most the remaining grace).
      const auto seen_ago = std::chrono::duration_cast<std::chrono::seconds>(now - (*e.leaves_at - grace_));
      s.last_seen_unix = now_unix - seen_ago.count();
    }
    out.save.push_back(std::move(s));
  }
  unsaved_.clear();
  return out;
}

bool Registry::has_unsaved() const {
  MutexLock lock(mutex_);
  return !unsaved_.empty();
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
                                                         int64_t unix_time, std::vector<Change>* changes) {
  std::vector<Registration> registrations;
  {
    MutexLock lock(mutex_);
    if (peers_.empty()) {
      registrations.reserve(entries_.size());
      for (const auto& [key, e] : entries_) registrations.push_back(e.registration);
    } else {
      std::vector<LocalRegistration> own;
      own.reserve(entries_.size());
      for (const auto& [key, e] : entries_) own.push_back({e.registration, e.restored});
      registrations = merge_registrations(own, peers_);
    }
  }
  auto computed = std::make_shared<const EndpointsList>(compute_endpoints(set, registrations));
  MutexLock lock(mutex_);
  endpoints_ = computed;
  std::map<std::string, std::pair<std::string, Changed>> changed;
  // Numbered below, under the lock the analysis can see (a lambda's body is checked on its own).
  std::vector<Change> noted;
  auto note = [&](const std::string& ns, const std::string& name, const char* change) {
    noted.push_back({ns, name, change, 0});
  };
  for (const auto& e : *computed) {
    auto& [document, when] = changed[e.meta.full_name()];
    document = e.meta.document;
    auto it = changed_.find(e.meta.full_name());
    const bool same = it != changed_.end() && it->second.first == document;
    when = same ? it->second.second : Changed{revision, unix_time};
    if (!same) note(e.meta.ns, e.meta.name, it == changed_.end() ? "created" : "configured");
  }
  for (const auto& [full_name, was] : changed_) {
    if (changed.count(full_name)) continue;
    const auto slash = full_name.find('/');
    note(full_name.substr(0, slash), full_name.substr(slash + 1), "deleted");
  }
  for (Change& c : noted) {
    c.generation = ++generation_;
    if (changes) changes->push_back(std::move(c));
  }
  changed_ = std::move(changed);
  return computed;
}

uint64_t Registry::live_version() const {
  MutexLock lock(mutex_);
  return live_version_;
}

Registry::Live Registry::live() const {
  MutexLock lock(mutex_);
  Live out;
  out.version = live_version_;
  for (const auto& [key, e] : entries_) {
    if (!e.restored) out.registrations.emplace(key, e.registration);
  }
  return out;
}

void Registry::set_peers(std::vector<PeerRegistration> peers) {
  MutexLock lock(mutex_);
  peers_ = std::move(peers);
  peer_connected_.clear();
  for (const auto& p : peers_) {
    if (p.registration.connected)
      peer_connected_[p.registration.ns + "/" + p.registration.name].insert(p.registration.spiffe_id);
  }
}

std::optional<std::string> Registry::connected_at_peer_as_other(const std::string& key,
                                                                const std::string& spiffe_id) const {
  MutexLock lock(mutex_);
  auto it = peer_connected_.find(key);
  if (it == peer_connected_.end()) return std::nullopt;
  for (const auto& id : it->second) {
    if (id != spiffe_id) return id;
  }
  return std::nullopt;
}

Registry::Changed Registry::changed(const std::string& service) const {
  MutexLock lock(mutex_);
  auto it = changed_.find(service);
  return it == changed_.end() ? Changed{} : it->second.second;
}

int64_t Registry::generation() const {
  MutexLock lock(mutex_);
  return generation_;
}

std::shared_ptr<const EndpointsList> Registry::endpoints() const {
  MutexLock lock(mutex_);
  return endpoints_;
}

}  // namespace mg::control
