// proxy/outbound.h — an outbound listener's connection from the local app: an HTTP route's
// requests go through the HTTP session (each forwarded over a pooled mTLS connection to the
// route's destination); a TCP route's connection is joined to one new mTLS connection (the
// server's SVID verified, secure naming checked: proxy/upstream_pool.h) and spliced. A registry
// route (no destination) is HTTP by Host, or one service port: HTTP or TCP as its Service
// declares it, a TCP connection going to an endpoint the balancer picks (another one tried once
// when no connection can be made). The by-Host listener also takes an app's own TLS
// (outbound_tls.cpp): its ClientHello's SNI routes it (egress.h decide_outbound_tls), the bytes
// relayed as they are — over mTLS to a mesh service (an egress gateway), or straight to a
// MESH_EXTERNAL host.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "proxy/config.h"
#include "proxy/exchange.h"
#include "proxy/net.h"

namespace mg::proxy {

class ConnectionManager;
class HttpSession;
class PolicyState;
class Report;
struct UpstreamConn;
struct Worker;

class Outbound {
 public:
  Outbound(const ProxyConfig& config, ConnectionManager& connections, HttpSession& http, const PolicyState& policy,
           Report& report);

  // A connection accepted on config.outbound[index], on `worker`'s thread, until it ends.
  net::awaitable<void> serve(net::tcp::socket socket, Worker& worker, size_t index);

 private:
  // The by-Host listener's connection whose first byte is a TLS handshake record: the app's TLS,
  // routed by SNI and relayed untouched until either side ends.
  net::awaitable<void> serve_tls(net::PlainStream& down, Worker& worker, const HttpSide& side,
                                 std::chrono::steady_clock::time_point start);

  // A TCP connection to a registry service port (`target`, its endpoint not chosen yet): an
  // endpoint the balancer picks, connected over mTLS (secure naming by the service's identities,
  // the metadata exchange offered), another tried while outlier detection allows; the outcome
  // counted for the service. nullptr with `reason` ("no_healthy_upstream", `destination` then
  // `name`) when none can be had; `destination` is the endpoint's address otherwise.
  net::awaitable<std::unique_ptr<UpstreamConn>> connect_service(Worker& worker, UpstreamTarget& target,
                                                                const HttpSide& side, const std::string& name,
                                                                std::string& destination, std::string& reason,
                                                                std::string& detail);

  const ProxyConfig& config_;
  ConnectionManager& connections_;
  HttpSession& http_;
  const PolicyState& policy_;
  Report& report_;
};

}  // namespace mg::proxy
