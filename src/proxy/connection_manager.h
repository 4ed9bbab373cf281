// proxy/connection_manager.h — the live downstream connections: counted (maxConnections, the
// drain's wait), registered with their worker (so a drain closes idle ones), and judged again
// when a policy is published. A TCP connection is judged by the connection chain; a WebSocket-
// upgraded one by the request chain with its upgrade request; an idle or upgraded plaintext HTTP
// connection on a port a reload made STRICT is closed. Those no longer allowed are closed on their
// own worker thread, counted and logged.
// Owns: the active-connection count and every worker's ConnectionList (each touched only on its
// worker's thread).
#pragma once

#include <asio.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/message.h"
#include "proxy/chain.h"
#include "proxy/config.h"
#include "proxy/exchange.h"
#include "proxy/net.h"
#include "tls/tls.h"

namespace mg::proxy {

class PolicyState;
class Report;
struct PublishedPolicy;

// An inbound connection spliced to the app: what a policy reload needs to judge it again. A TCP
// port's connection is judged by the connection chain.
struct LiveTcp {
  size_t index = 0;  // config.inbound
  std::string source;
  std::optional<tls::PeerIdentity> peer;
  net::Stream* upstream = nullptr;  // the app side, once connected
  bool closed_by_policy = false;
  uint64_t judged_by = 0;  // the ChainSet generation that admitted it
  std::string sni;         // a TLS passthrough connection's SNI (connection.sni), judged again with it
};

// The upgrade request of a WebSocket, as it arrived (before the chain edited it), with when and
// by which chain it was judged: what an inbound spliced HTTP connection is judged again with.
struct JudgedUpgrade {
  http::Request request;
  int64_t judged_at = 0;
  uint64_t generation = 0;  // ChainSet
};

// An HTTP connection spliced after a WebSocket upgrade is judged by the request chain, with its
// upgrade request: no later request on the connection ever would be. So is an inbound HTTP/2
// stream while it is relayed (LiveRequest), whatever the app's protocol.
struct LiveUpgrade : LiveTcp {
  uint16_t listen_port = 0;
  http::Request request;
  int64_t judged_at = 0;
  // An HTTP/2 stream being relayed (its request as received): closing `downstream` resets only
  // that stream, `upstream` its stream or connection to the app; the connection carries on.
  net::Stream* downstream = nullptr;
};

// A live downstream connection, registered with its worker so a drain can close idle ones and a
// policy reload can re-judge TCP and upgraded ones.
struct ConnEntry {
  net::Stream* stream = nullptr;
  bool idle = false;
  LiveTcp* tcp = nullptr;
  LiveUpgrade* upgrade = nullptr;             // inbound, while spliced after a WebSocket upgrade
  std::optional<size_t> plaintext_http_port;  // config.inbound index of a plaintext HTTP connection
  bool upgraded = false;                      // spliced after a 101 (WebSocket), either direction
  std::list<LiveUpgrade*> streams;            // inbound HTTP/2 streams being relayed (LiveRequest)
  std::function<void()> drain;                // an HTTP/2 connection's GOAWAY (its streams finish)
  std::optional<size_t> inbound;              // config.inbound index of a connection an inbound port accepted
  bool listener_closed = false;               // its listener was closed (a gateway's, at a publish)
};

// One worker's connections; only that worker's thread touches it.
struct ConnectionList {
  asio::io_context* io = nullptr;
  std::list<ConnEntry*> entries;
};

class ConnectionManager {
 public:
  ConnectionManager(const ProxyConfig& config, PolicyState& policy, Report& report);
  ConnectionManager(const ConnectionManager&) = delete;
  ConnectionManager& operator=(const ConnectionManager&) = delete;

  // Before any connection: every worker's list (rejudge_all posts onto each list's io).
  void add_worker(ConnectionList& list) { workers_.push_back(&list); }

  // Accepting: a connection past maxConnections is refused; an admitted one is counted until
  // its Registration ends.
  bool at_capacity() const { return active_.load() >= config_.limits.max_connections; }
  void admitted() { active_.fetch_add(1); }
  uint32_t active() const { return active_.load(); }

  // Keeps the count and the worker's list right however the connection's coroutine exits.
  class Registration {
   public:
    Registration(ConnectionManager& manager, ConnectionList& list);
    ~Registration();
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    ConnEntry entry;

   private:
    ConnectionManager& manager_;
    ConnectionList& list_;
    std::list<ConnEntry*>::iterator it_;
  };

  // After a publish (any thread, once the workers were added): every registered connection judged
  // again under `state` and its chains, on its own worker's thread.
  void rejudge_all(std::shared_ptr<const PublishedPolicy> state,
                   std::shared_ptr<const RequestChain> request_chain,
                   std::shared_ptr<const ConnectionChain> chain);
  // A spliced connection registers after its decision (and a connect, or the app's 101): a reload
  // in between posted its pass too early to see it. Judged now when the chains changed since.
  void rejudge_if_chains_changed(ConnEntry& c, const LiveTcp& live);

  // Drain: closes the connections waiting between requests, and tells HTTP/2 ones to go away
  // (GOAWAY: no new stream; those begun finish). On the list's worker thread.
  static void close_idle(ConnectionList& list);
  // A gateway listener closed at a publish: its connections drain as on a proxy drain (the idle
  // ones closed, HTTP/2 ones told to go away, HTTP/1 ones closed after their request in flight).
  static void close_listener(ConnectionList& list, size_t inbound_index);

 private:
  void rejudge(ConnEntry& c, const PublishedPolicy& state, const RequestChain& request_chain,
               const ConnectionChain& chain);
  // A request as received judged again, its JWT as of its first judgement.
  Verdict rejudge_request(const LiveUpgrade& live, MtlsMode mode, const RequestChain& request_chain);

  const ProxyConfig& config_;
  PolicyState& policy_;
  Report& report_;
  std::atomic<uint32_t> active_{0};
  std::vector<ConnectionList*> workers_;
};

// An inbound HTTP/2 stream while it is relayed, to an app of either protocol: registered with
// its connection so each policy publish judges it again with its request as received (the rule of
// spliced WebSocket connections, docs/ARCHITECTURE.md "Policy reloads and live traffic"); one no
// longer allowed has both sides closed, and its exchange's details say so when it goes out of
// scope (unregistered then). On the worker's thread only.
class LiveRequest {
 public:
  LiveRequest(ConnectionManager& manager, const HttpSide& side, JudgedUpgrade& as_received, net::Stream& down,
              Exchange& ex);
  ~LiveRequest();
  LiveRequest(const LiveRequest&) = delete;
  LiveRequest& operator=(const LiveRequest&) = delete;
  // Relayed to `upstream` now (a retry may change it; nullptr while it changes). The first call
  // registers the request and judges it at once if a policy was published since it was judged.
  void relay_to(net::Stream* upstream);
  bool closed_by_policy() const { return live_.closed_by_policy; }

 private:
  ConnectionManager& manager_;
  ConnEntry* entry_;
  Exchange& ex_;
  LiveUpgrade live_;
  std::optional<std::list<LiveUpgrade*>::iterator> registered_;  // erased in O(1): 100 streams a connection
};

}  // namespace mg::proxy
