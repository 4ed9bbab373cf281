// proxy/inbound.h — an inbound listener's connection up to the point it is known and allowed:
// plaintext or TLS decided from its first bytes before anything is read (STRICT refuses
// plaintext here), the mTLS handshake with the credentials in force, the client's SVID verified;
// and a TCP port's whole life: judged by the connection chain (Enforcement), connected to the
// app, registered for re-judging and spliced. HTTP ports go on to the HTTP session.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "proxy/buffer_pool.h"
#include "proxy/config.h"
#include "proxy/net.h"
#include "tls/tls.h"

namespace mg::proxy {

class ConnectionManager;
class Credentials;
class Enforcement;
class GatewayMode;
class HttpSession;
class PolicyState;
class Report;
struct ConnEntry;
struct PeerLabels;
struct Worker;

class Inbound {
 public:
  using Clock = std::chrono::steady_clock;

  Inbound(const ProxyConfig& config, const Credentials& credentials, const PolicyState& policy,
          Enforcement& enforcement, ConnectionManager& connections, HttpSession& http, Report& report,
          const GatewayMode& gateway);

  // A connection accepted on config.inbound[index], on `worker`'s thread, until it ends.
  net::awaitable<void> serve(net::tcp::socket socket, Worker& worker, size_t index);

 private:
  // The connection's stream once it is known to be plaintext or (handshake done, client SVID
  // verified into `peer`) mTLS; null when it was refused (logged) or went away. Its own coroutine,
  // so the detection and handshake state is not kept in the frame of a connection that lives on.
  // A client proxy that offered istio-peer-exchange (a TCP route) has exchanged metadata frames
  // with it: its labels in `peer_labels` (null when not believed or not exchanged).
  net::awaitable<std::unique_ptr<net::Stream>> open(net::tcp::socket& socket, size_t index, MtlsMode mode,
                                                    const std::string& source,
                                                    std::optional<tls::PeerIdentity>& peer,
                                                    std::shared_ptr<const PeerLabels>& peer_labels);

  // A gateway's HTTPS (SIMPLE) listener: TLS with the certificate the client's SNI picks
  // (proxy/edge_certificates.h); no client certificate. Null when refused (logged) or gone.
  net::awaitable<std::unique_ptr<net::Stream>> open_edge(net::tcp::socket& socket, const InboundPort& port,
                                                         const std::string& source);

  // A TCP port's connection: judged, then spliced to the app until either side ends.
  net::awaitable<void> serve_tcp(net::Stream& down, ConnEntry& entry, BufferPool& buffers, size_t index,
                                 const std::string& source, const std::optional<tls::PeerIdentity>& peer,
                                 const PeerLabels* peer_labels, Clock::time_point start);

  // A TLS PASSTHROUGH gateway listener's connection (inbound_passthrough.cpp), its mTLS done: the
  // app's ClientHello read from inside it, the connection judged with its SNI (connection.sni)
  // and the caller's principal, routed by the gateway-bound tls[] entry to a MESH_EXTERNAL host
  // and relayed byte for byte; one egress audit line whatever the outcome.
  net::awaitable<void> serve_passthrough(net::Stream& down, ConnEntry& entry, Worker& worker, size_t index,
                                         const std::string& source, const std::optional<tls::PeerIdentity>& peer,
                                         Clock::time_point start);

  const ProxyConfig& config_;
  const Credentials& credentials_;
  const PolicyState& policy_;
  Enforcement& enforcement_;
  ConnectionManager& connections_;
  HttpSession& http_;
  Report& report_;
  const GatewayMode& gateway_;
};

}  // namespace mg::proxy
