// jwt/jwks_fetcher.h — fetching jwksUri key sets for the JwksProvider, and the 20-minute
// refresh schedule. The only part of the jwt module that does I/O.
//
// Security: the URL's host is resolved first and the request is refused when any resolved
// address is link-local (169.254.0.0/16, fe80::/10) or a cloud metadata endpoint
// (169.254.169.254, fd00:ec2::254, 100.100.100.200, metadata.google.internal) — a jwksUri must
// not become a way to read instance credentials. We connect to the checked address itself (no
// second lookup). HTTPS verifies the server certificate against the system trust store and the
// host name. Redirects are not followed. Response size and total time are bounded.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <sys/socket.h>

#include "common/result.h"
#include "jwt/authenticator.h"

namespace mg::jwt {

struct Url {
  bool https = false;
  std::string host;  // without brackets for IPv6 literals
  uint16_t port = 0;
  std::string path_and_query;  // starts with '/'
};

// http:// or https:// only; no user info, no whitespace or control characters.
Result<Url> parse_url(std::string_view url);

// True for addresses a JWKS fetch must never reach (see the file comment).
bool is_forbidden_address(const sockaddr* addr);
// True for host names refused before any lookup (metadata.google.internal and friends).
bool is_forbidden_host_name(std::string_view host);

struct FetchOptions {
  int timeout_ms = 5000;             // whole request: resolve, connect, TLS, send, receive
  size_t max_body_bytes = kMaxJwksBytes;
  std::string ca_file;               // HTTPS trust anchors; empty: the system store
};

// Blocking GET; the body of a 200 response or a clear error.
Result<std::string> http_get(const std::string& url, const FetchOptions& options);

// OpenID discovery (Istio's rule): the document at `<issuer without trailing '/'>` +
// "/.well-known/openid-configuration".
std::string openid_configuration_url(std::string_view issuer);
// The `jwks_uri` of a discovery document: it must be a JSON object whose jwks_uri is an
// http(s) URL parse_url accepts. Its address is checked when it is fetched, like any jwksUri.
Result<std::string> jwks_uri_of_discovery(std::string_view document);

// Keeps a JwksProvider fed for a set of jwksUri and discovered issuers. Successful fetches are
// re-done every `interval` (Istio/Envoy default 20 min) — for an issuer, the discovery document
// first, then the jwks_uri it names now; failures are retried after `retry_interval` while the
// last good keys stay in place (fail static); a source that never succeeded has no keys, so its
// tokens fail closed.
class JwksRefresher {
 public:
  using Fetch = std::function<Result<std::string>(const std::string& uri, int timeout_ms)>;
  struct Source {
    std::string uri;  // the jwksUri, or the issuer when `discover` (jwt::remote_keys_name)
    int timeout_ms = 5000;
    bool discover = false;  // keys through the issuer's OpenID discovery document
  };

  JwksRefresher(std::shared_ptr<JwksProvider> provider, std::vector<Source> sources, Fetch fetch = nullptr,
                std::chrono::seconds interval = std::chrono::minutes(20),
                std::chrono::seconds retry_interval = std::chrono::seconds(30));

  // Sources for every rule without inline jwks: its jwksUri, or its issuer's discovery.
  static std::vector<Source> sources_for(const std::vector<JwtRule>& rules);

  // Fetches every source due at `now` (unix seconds); returns when the next one is due.
  int64_t refresh_due(int64_t now);
  // Loops refresh_due on the wall clock until `stop` is requested (run it on its own thread).
  void run(std::stop_token stop);

  // Last error per source name ("" after a success).
  std::map<std::string, std::string> last_errors() const;

 private:
  struct State {
    Source source;
    int64_t next_due = 0;
    std::string last_error;
  };
  std::shared_ptr<JwksProvider> provider_;
  Fetch fetch_;
  int64_t interval_;
  int64_t retry_interval_;
  mutable std::mutex mu_;
  std::vector<State> states_;
  std::condition_variable_any wake_;
};

}  // namespace mg::jwt
