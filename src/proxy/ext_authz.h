// proxy/ext_authz.h — the I/O of a CUSTOM policy's call to its extension provider, awaited on the
// worker's io_context (the worker never blocks on a provider): HTTP providers over kept-alive
// connections pooled per worker — plaintext, or mTLS when the provider is a mesh workload (its
// `service` names a registry service: this proxy's SVID, the endpoint's identity checked against
// the service's, as any call into the mesh) —, built and read by extauthz/check.h with the
// project's HTTP/1.1 parser; gRPC providers through libmeshguard-extauthz-grpc.so (one channel
// per provider address, loaded the first time one is asked), whose completion is posted back
// to the asking worker. The provider's timeout bounds the whole call (resolve, connect, write,
// read). A gRPC provider that is a mesh workload gets an mTLS channel to an endpoint the
// balancer picks, with this proxy's SVID (its PEM made once per certificate) and secure naming.
// Narrow on purpose: `check` is all an HTTP/1 or HTTP/2 request loop needs.
// Owns: the gRPC module's checkers; each worker's ExtAuthzPool owns its idle connections.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "extauthz/check.h"
#include "extauthz/grpc_client.h"
#include "http/message.h"
#include "proxy/exchange.h"
#include "proxy/credentials.h"
#include "proxy/net.h"
#include "proxy/registry.h"
#include "proxy/upstream_pool.h"

namespace mg::policy {
struct ExtensionProvider;
}

namespace mg::proxy {

// One worker's idle connections to HTTP providers, by "host:port"; touched only on its thread.
class ExtAuthzPool {
 public:
  struct Conn {
    std::unique_ptr<net::Stream> stream;  // a provider outside the mesh: plaintext
    std::unique_ptr<UpstreamConn> mesh;   // a mesh workload: mTLS (the stream and its TLS state)
    net::Stream* io() { return mesh ? mesh->stream.get() : stream.get(); }
  };
  ~ExtAuthzPool() { clear(); }
  // An idle connection to `key` holding nothing to read (else closed), or null.
  std::unique_ptr<Conn> take(const std::string& key);
  void put(const std::string& key, std::unique_ptr<Conn> conn);
  void clear() { idle_.clear(); }

 private:
  std::unordered_map<std::string, std::vector<std::unique_ptr<Conn>>> idle_;
};

// An HTTP provider that is a mesh workload: the registry service port its `service` and `port`
// name (Registry::resolve), reached through the worker's upstream pool over mTLS.
struct ProviderInMesh {
  std::shared_ptr<const Registry> registry;  // keeps `match` alive
  Registry::Match match;
  UpstreamPool& upstreams;
  const OutlierSettings& outlier;
};
// `provider`'s service port in `registry`, if its `service` names one (any of a registry name's
// forms, with its port).
std::optional<Registry::Match> provider_in_mesh(const Registry& registry, const policy::ExtensionProvider& provider);

// What the provider is asked about: the client's request (after normalization) and who sent it.
struct ExtAuthzQuery {
  const http::Request& request;
  const HttpSide& side;
  std::string_view own_principal;             // this workload's SPIFFE ID ("" without a certificate)
  const extauthz::CheckBody* body = nullptr;  // includeRequestBodyInCheck: what was buffered
};

// includeRequestBodyInCheck on HTTP/1: reads the client's body into `in` without consuming it
// (the forwarder sends it on from there, unchanged) until maxRequestBytes of payload are known or
// it ends, each read under `idle_timeout` (the watchdog closes `down`). TooLarge: the body goes
// on past maxRequestBytes and allowPartialMessage is false (Envoy answers 413). Failed: the
// client closed or sent a malformed body. A request that expects 100-continue is not buffered
// (its client waits for the 100 the forwarder sends): Skipped.
enum class BodyBuffering { Buffered, Skipped, TooLarge, Failed };
net::awaitable<BodyBuffering> buffer_request_body(net::Stream& down, std::string& in,
                                                  const http::Request& request,
                                                  const policy::ExtensionProvider& provider,
                                                  net::Watchdog& watchdog,
                                                  std::chrono::milliseconds idle_timeout,
                                                  extauthz::CheckBody& out);

class ExtAuthz {
 public:
  ExtAuthz() = default;
  ~ExtAuthz() { shutdown(); }
  ExtAuthz(const ExtAuthz&) = delete;
  ExtAuthz& operator=(const ExtAuthz&) = delete;

  // Asks `provider` about the request; an Error result (never an exception) when it cannot
  // answer in time or answers nonsense. Runs on the calling worker's executor. `in_mesh`: an
  // HTTP provider that is a mesh workload (null: reached in plaintext at its service and port).
  net::awaitable<extauthz::CheckResult> check(const policy::ExtensionProvider& provider,
                                              const ExtAuthzQuery& query, ExtAuthzPool& pool,
                                              const ProviderInMesh* in_mesh = nullptr);

  // Cancels the gRPC calls in flight and waits for them (before the workers' loops go: their
  // completions are posted there).
  void shutdown();

 private:
  net::awaitable<extauthz::CheckResult> check_http(const policy::ExtensionProvider& provider,
                                                   const ExtAuthzQuery& query, ExtAuthzPool& pool,
                                                   const ProviderInMesh* in_mesh);
  net::awaitable<extauthz::CheckResult> check_grpc(const policy::ExtensionProvider& provider,
                                                   const ExtAuthzQuery& query, const ProviderInMesh* in_mesh);
  // This proxy's SVID as the gRPC module takes it, made again only when the certificate changed.
  std::shared_ptr<const extauthz::MeshTls> mesh_tls(const TlsState& state);
  Result<extauthz::GrpcCheckers*> grpc_checkers();

  std::mutex mu_;
  std::unique_ptr<extauthz::GrpcCheckers> grpc_;  // loaded on first use
  std::string grpc_error_;                        // why it could not be loaded (kept: not retried)
  std::shared_ptr<const extauthz::MeshTls> mesh_tls_;  // under mu_
};

// The AttributeContext of a gRPC check (what the OPA-Envoy plugin's input is made of).
extauthz::CheckAttributes check_attributes(const ExtAuthzQuery& query);

}  // namespace mg::proxy
