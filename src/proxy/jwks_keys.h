// proxy/jwks_keys.h — the proxy's keys from jwksUri and OpenID discovery: one JwksProvider that
// the request path's jwt::Authenticator reads, fed by a background thread running
// jwt::JwksRefresher over the jwksUri (or issuer, for an issuer-only rule) of the rules in force
// (re-targeted on every policy publish). Fetches never run on a
// worker thread; until keys for a URI arrive its tokens fail closed (401, as Envoy's jwt_authn
// answers while a remote JWKS is not fetched yet).
//
// Loopback: the fetcher refuses link-local and cloud-metadata addresses only (jwks_fetcher.h),
// so a jwksUri on 127.0.0.1 works without a proxy setting.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "jwt/jwks_fetcher.h"

namespace mg::proxy {

class JwksKeys {
 public:
  struct Options {
    std::chrono::seconds interval = std::chrono::minutes(20);  // Istio/Envoy's refresh
    std::chrono::seconds retry_interval = std::chrono::seconds(30);
    jwt::JwksRefresher::Fetch fetch;  // null: jwt::http_get
  };

  JwksKeys();
  explicit JwksKeys(Options options);
  ~JwksKeys();  // stops the thread (an in-flight fetch is bounded by its rule's timeout)
  JwksKeys(const JwksKeys&) = delete;
  JwksKeys& operator=(const JwksKeys&) = delete;

  const std::shared_ptr<jwt::JwksProvider>& provider() const { return provider_; }

  // Makes the jwksUri / discovered issuers of `rules` (those without an inline jwks) the set
  // kept fresh. Every call fetches each of them again soon (so a policy reload also picks up a
  // rotated key set or a moved jwks_uri) while the last good keys stay in use; keys of sources
  // no longer named are dropped. Returns at once.
  void retarget(const std::vector<jwt::JwtRule>& rules);

  struct UriState {
    std::string uri;
    bool has_keys = false;
    uint64_t fetches = 0;    // attempts finished since the last retarget
    std::string last_error;  // "" after a success or before the first attempt
  };
  // For /config_dump, in URI order.
  std::vector<UriState> status() const;

 private:
  void run(std::stop_token stop);

  Options options_;
  std::shared_ptr<jwt::JwksProvider> provider_ = std::make_shared<jwt::JwksProvider>();
  mutable std::mutex mu_;
  std::condition_variable_any wake_;
  std::vector<jwt::JwksRefresher::Source> wanted_;
  bool retargeted_ = false;
  std::set<std::string> known_;  // URIs that may have keys in provider_
  std::shared_ptr<jwt::JwksRefresher> refresher_;
  std::map<std::string, uint64_t> fetches_;
  std::jthread thread_;  // last: started on the first retarget that names a URI
};

}  // namespace mg::proxy
