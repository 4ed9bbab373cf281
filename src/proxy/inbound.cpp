#include "proxy/inbound.h"

#include "proxy/connection_manager.h"
#include "proxy/credentials.h"
#include "proxy/enforcement.h"
#include "proxy/enforcement_step.h"
#include "proxy/gateway_mode.h"
#include "proxy/http_session.h"
#include "proxy/peer_exchange.h"
#include "proxy/policy_state.h"
#include "proxy/report.h"
#include "proxy/splice.h"
#include "proxy/worker.h"

namespace mg::proxy {

using namespace std::chrono_literals;
using net::nothrow;
using net::tcp;

Inbound::Inbound(const ProxyConfig& config, const Credentials& credentials, const PolicyState& policy,
                 Enforcement& enforcement, ConnectionManager& connections, HttpSession& http, Report& report,
                 const GatewayMode& gateway)
    : config_(config),
      credentials_(credentials),
      policy_(policy),
      enforcement_(enforcement),
      connections_(connections),
      http_(http),
      report_(report),
      gateway_(gateway) {}

net::awaitable<void> Inbound::serve(tcp::socket socket, Worker& worker, size_t index) {
  ConnectionManager::Registration guard(connections_, worker.connections);
  guard.entry.inbound = index;
  const InboundPort& port = config_.inbound[index];
  std::string source = net::remote_address(socket);
  auto start = Clock::now();
  // A gateway behind a balancer that speaks the PROXY protocol: the header comes before anything
  // else (TLS detection included) and its client address is this connection's direct peer for
  // source.ip / ipBlocks and what X-Forwarded-For names. No valid header, no connection.
  if (config_.gateway && config_.gateway->proxy_protocol) {
    auto header =
        co_await net::read_proxy_header(socket, std::chrono::milliseconds(config_.limits.header_timeout_ms));
    if (!header) {
      report_.connection_refused(source, port.port, Refusal::ProxyProtocolInvalid, header.error().to_string());
      co_return;
    }
    if (header->proxied) source = header->source_endpoint();
  }
  // The mode in force when the connection arrives (a later reload is checked per request).
  const MtlsMode mode = policy_.port_mode(index);

  std::optional<tls::PeerIdentity> peer;
  std::shared_ptr<const PeerLabels> peer_labels;
  const bool edge_tls = port.edge_tls;
  // Not a conditional expression: gcc 12 mishandles co_await in a conditional's operands.
  std::unique_ptr<net::Stream> stream;
  if (edge_tls) {
    stream = co_await open_edge(socket, port, source);
  } else {
    stream = co_await open(socket, index, mode, source, peer, peer_labels);
  }
  if (!stream) co_return;  // refused (logged) or gone
  guard.entry.stream = stream.get();

  if (port.passthrough) {
    co_await serve_passthrough(*stream, guard.entry, worker, index, source, peer, start);
  } else if (port.protocol == Protocol::Tcp) {
    co_await serve_tcp(*stream, guard.entry, worker.buffers, index, source, peer, peer_labels.get(), start);
  } else {
    if (!peer) guard.entry.plaintext_http_port = index;
    HttpSide side;
    side.entry = &guard.entry;
    side.inbound = &port;
    side.inbound_index = index;
    side.source = std::move(source);
    side.peer = std::move(peer);
    side.peer_labels = std::move(peer_labels);
    side.listen_port = port.port;
    side.gateway = port.gateway;
    side.edge_tls = edge_tls;
    co_await http_.serve(*stream, guard.entry, worker, side);
  }
  stream->close();
}

net::awaitable<std::unique_ptr<net::Stream>> Inbound::open(tcp::socket& socket, size_t index, MtlsMode mode,
                                                           const std::string& source,
                                                           std::optional<tls::PeerIdentity>& peer,
                                                           std::shared_ptr<const PeerLabels>& peer_labels) {
  const InboundPort& port = config_.inbound[index];
  // Decide plaintext vs TLS before a single byte is forwarded anywhere.
  bool use_tls = false;
  if (mode != MtlsMode::Disable) {
    net::Watchdog detect_deadline(socket.get_executor(), [&socket] {
      std::error_code ignored;
      socket.close(ignored);
    });
    detect_deadline.arm(std::chrono::milliseconds(config_.limits.header_timeout_ms));
    unsigned char first[2] = {0, 0};
    size_t n = 0;
    for (int attempt = 0; attempt < 1000 && n < 2; ++attempt) {
      std::error_code ec;
      n = co_await socket.async_receive(asio::buffer(first), tcp::socket::message_peek, nothrow(ec));
      if (ec || n == 0) co_return nullptr;    // closed (or timed out) before saying anything
      if (n == 1 && first[0] != 0x16) break;  // cannot be TLS
      if (n < 2) {
        asio::steady_timer wait(socket.get_executor(), 5ms);
        co_await wait.async_wait(nothrow(ec));
      }
    }
    use_tls = tls::looks_like_tls(std::string_view(reinterpret_cast<const char*>(first), n));
    // The STRICT rule on the connection path: nothing is read from a plaintext connection.
    if (!use_tls && refuses_plaintext(mode)) {
      report_.connection_refused(source, port.port, Refusal::PlaintextOnStrictPort,
                                 "mTLS is required (STRICT); the connection was closed before reading it");
      co_return nullptr;
    }
  }

  if (use_tls) {
    auto state = credentials_.usable();
    if (!state) {
      report_.connection_refused(source, port.port, Refusal::NoCertificate,
                                 "no valid certificate: mTLS service unavailable");
      co_return nullptr;
    }
    auto tls_stream = std::make_unique<net::TlsStream>(std::move(socket), state->server);
    std::error_code ec;
    co_await tls_stream->handshake_within(asio::ssl::stream_base::server,
                                          std::chrono::milliseconds(config_.limits.header_timeout_ms), ec);
    if (ec) {
      report_.connection_refused(source, port.port, Refusal::TlsHandshakeFailed, ec.message());
      co_return nullptr;
    }
    report_.registry()
        .counter(
            "meshguard_tls_handshakes_total",
            {{"side", "server"}, {"resumed", SSL_session_reused(tls_stream->ssl()) == 1 ? "true" : "false"}})
        .inc();
    auto verified = tls::verify_peer(tls_stream->ssl(), *state->creds, std::time(nullptr));
    if (!verified) {
      report_.connection_refused(source, port.port, Refusal::PeerCertificateRejected,
                                 verified.error().to_string());
      co_return nullptr;
    }
    if (peer_exchange_selected(*tls_stream)) {
      // Locals, not temporaries, across the co_await.
      const std::shared_ptr<const OwnMetadata> own = report_.own();
      const std::string principal = verified->id.str();
      auto exchanged = co_await exchange_peer_metadata(
          *tls_stream, *own, principal, std::chrono::milliseconds(config_.limits.header_timeout_ms));
      if (!exchanged) {
        log_line("inbound connection from " + source + " (" + principal + ") on port " +
                 std::to_string(port.port) + " closed: " + exchanged.error().to_string());
        report_.connection_refused(source, port.port, Refusal::PeerMetadataInvalid,
                                   exchanged.error().to_string());
        co_return nullptr;
      }
      peer_labels = std::move(*exchanged);
    }
    peer = std::move(*verified);
    co_return tls_stream;
  }
  co_return std::make_unique<net::PlainStream>(std::move(socket));
}

net::awaitable<std::unique_ptr<net::Stream>> Inbound::open_edge(tcp::socket& socket, const InboundPort& port,
                                                                const std::string& source) {
  auto ctx = gateway_.certificates().context(*port.gateway);
  if (!ctx) {
    report_.connection_refused(source, port.port, Refusal::NoCertificate,
                               "gateway listener without a usable certificate (credentialName)");
    co_return nullptr;
  }
  auto tls_stream = std::make_unique<net::TlsStream>(std::move(socket), std::move(ctx));
  std::error_code ec;
  co_await tls_stream->handshake_within(asio::ssl::stream_base::server,
                                        std::chrono::milliseconds(config_.limits.header_timeout_ms), ec);
  if (ec) {
    report_.connection_refused(source, port.port, Refusal::TlsHandshakeFailed, ec.message());
    co_return nullptr;
  }
  co_return tls_stream;
}

net::awaitable<void> Inbound::serve_tcp(net::Stream& down, ConnEntry& entry, BufferPool& buffers,
                                        size_t index, const std::string& source,
                                        const std::optional<tls::PeerIdentity>& peer,
                                        const PeerLabels* peer_labels, Clock::time_point start) {
  const InboundPort& port = config_.inbound[index];
  const Judgement judged = enforcement_.judge_connection(index, source, peer);
  const Verdict& decision = judged.decision;
  std::string source_principal = peer ? peer->id.str() : "unknown";
  const std::string own = credentials_.own_principal();
  // The source's workload from its proxy's metadata frame; else its principal's namespace only.
  const WorkloadLabels* source_labels = peer_labels ? &peer_labels->labels : nullptr;
  telemetry::Labels labels = report_.tcp_labels(true, source_principal, own, peer.has_value(), source_labels);
  if (!judged.verdict.allow) {
    report_.inbound_tcp(source, source_principal, own, port, 0, 0, start, ResponseFlag::Denied, decision,
                        source_labels);
    report_.count_refused(ListenerKind::Inbound, Refusal::Denied);
    co_return;
  }
  tcp::socket app(down.socket().get_executor());
  std::error_code ec;
  co_await app.async_connect({asio::ip::address_v4::loopback(), port.app_port}, nothrow(ec));
  if (ec) {
    report_.inbound_tcp(source, source_principal, own, port, 0, 0, start,
                        ResponseFlag::UpstreamConnectFailure, decision, source_labels);
    co_return;
  }
  report_.tcp_opened(labels);
  net::PlainStream up(std::move(app));
  // Registered for policy reloads while spliced (all on this worker's thread).
  LiveTcp live{index, source, peer, &up, false, judged.generation};
  entry.tcp = &live;
  struct Unregister {
    ConnEntry& entry;
    ~Unregister() { entry.tcp = nullptr; }
  } unregister{entry};
  connections_.rejudge_if_chains_changed(entry, live);
  auto [received, sent] =
      co_await splice(down, up, buffers, std::chrono::milliseconds(config_.limits.idle_timeout_ms));
  report_.tcp_closed(labels, received, sent);
  report_.inbound_tcp(
      source, source_principal, credentials_.own_principal(), port, received, sent, start, ResponseFlag::None,
      live.closed_by_policy ? Verdict::deny(0, "", "closed: no longer allowed after a policy reload")
                            : decision,
      source_labels);
}

}  // namespace mg::proxy
