#include "proxy/jwks_keys.h"

#include <algorithm>
#include <climits>

namespace mg::proxy {

JwksKeys::JwksKeys() : JwksKeys(Options{}) {}

JwksKeys::JwksKeys(Options options) : options_(std::move(options)) {
  if (!options_.fetch) {
    options_.fetch = [](const std::string& uri, int timeout_ms) {
      jwt::FetchOptions o;
      o.timeout_ms = timeout_ms;
      return jwt::http_get(uri, o);
    };
  }
}

JwksKeys::~JwksKeys() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

void JwksKeys::retarget(const std::vector<jwt::JwtRule>& rules) {
  auto sources = jwt::JwksRefresher::sources_for(rules);
  std::lock_guard lock(mu_);
  wanted_ = std::move(sources);
  retargeted_ = true;
  // No thread for a proxy that never sees a jwksUri.
  if (!thread_.joinable() && (!wanted_.empty() || !known_.empty())) {
    thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
  }
  wake_.notify_all();
}

void JwksKeys::run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    std::shared_ptr<jwt::JwksRefresher> refresher;
    {
      std::lock_guard lock(mu_);
      if (retargeted_) {
        retargeted_ = false;
        std::set<std::string> wanted;
        for (const auto& s : wanted_) wanted.insert(s.uri);
        for (const auto& uri : known_)
          if (!wanted.count(uri)) provider_->remove(uri);
        known_ = std::move(wanted);
        fetches_.clear();
        // A fresh refresher has every source due now: the reload re-fetches, the old keys serve
        // meanwhile (the provider keeps them until a good document replaces them).
        auto counted = [this](const std::string& uri, int timeout_ms) {
          auto body = options_.fetch(uri, timeout_ms);
          std::lock_guard count_lock(mu_);
          ++fetches_[uri];
          return body;
        };
        refresher_ = std::make_shared<jwt::JwksRefresher>(provider_, wanted_, counted, options_.interval,
                                                          options_.retry_interval);
      }
      refresher = refresher_;
    }
    const int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    const int64_t next = refresher ? refresher->refresh_due(now) : INT64_MAX;
    std::unique_lock lock(mu_);
    const int64_t wait_s = next == INT64_MAX ? options_.interval.count() : std::max<int64_t>(1, next - now);
    wake_.wait_for(lock, stop, std::chrono::seconds(wait_s), [this] { return retargeted_; });
  }
}

std::vector<JwksKeys::UriState> JwksKeys::status() const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::string> errors;
  if (refresher_) errors = refresher_->last_errors();
  std::vector<UriState> out;
  for (const auto& s : wanted_) {
    UriState st;
    st.uri = s.uri;
    st.has_keys = provider_->get(s.uri) != nullptr;
    if (auto it = fetches_.find(s.uri); it != fetches_.end()) st.fetches = it->second;
    if (auto it = errors.find(s.uri); it != errors.end()) st.last_error = it->second;
    out.push_back(std::move(st));
  }
  std::sort(out.begin(), out.end(), [](const UriState& a, const UriState& b) { return a.uri < b.uri; });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const UriState& a, const UriState& b) { return a.uri == b.uri; }),
            out.end());
  return out;
}

}  // namespace mg::proxy
