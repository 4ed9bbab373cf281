// proxy/admin.h — the admin listener's endpoints, GET/HEAD only, one request per connection:
//   /healthz/ready  200 once started, not draining and (with tls) the certificate Available
//   /metrics        Prometheus text of the proxy's registry (certificate state read at scrape)
//   /config_dump    JSON: config version, workload, listeners (a gateway's with its routes: the
//                   VirtualServices bound, their hosts and destinations), registry (services, endpoints with
//                   health and ejection state, expected identities), certificate (chain, trust bundle),
//                   policy, control plane (snapshot revision), drain state
// Reads the other components; owns nothing but the view it is given.
#pragma once

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <vector>

#include "http/parser.h"
#include "proxy/config.h"
#include "proxy/listener.h"
#include "proxy/net.h"

namespace mg::proxy {

struct ControlPlaneView;
class ConnectionManager;
class GatewayMode;
class Credentials;
class PolicyState;
class Report;

class Admin {
 public:
  // What the proxy's lifecycle shows: whether it is serving, its config version and listeners.
  struct Runtime {
    const std::atomic<bool>& started;
    const std::atomic<bool>& draining;
    const std::atomic<uint64_t>& config_version;
    const std::vector<ListenerInfo>& listeners;
    const std::function<ControlPlaneView()>& control_plane;  // empty: standalone
    const GatewayMode& gateway;                              // its routes, on gateway listeners
  };

  Admin(const ProxyConfig& config, const http::Limits& limits, Report& report, const Credentials& credentials,
        const PolicyState& policy, const ConnectionManager& connections, Runtime runtime);

  // One admin connection: reads a request head (header timeout), answers, closes.
  net::awaitable<void> serve(net::tcp::socket socket);
  nlohmann::json config_dump() const;

 private:
  const ProxyConfig& config_;
  const http::Limits& limits_;
  Report& report_;
  const Credentials& credentials_;
  const PolicyState& policy_;
  const ConnectionManager& connections_;
  Runtime runtime_;
};

}  // namespace mg::proxy
