// extauthz/grpc_client.h — the seam to the gRPC ext_authz client (envoy.service.auth.v3
// Authorization/Check), which lives in libmeshguard-extauthz-grpc.so with gRPC and protobuf: the
// proxy dlopens it the first time a policy names an envoyExtAuthzGrpc provider, so a proxy
// without one maps neither (the data-plane RSS goal, as agent/loader.h). Nothing here names a
// gRPC type.
// Owns: nothing (the library's factory owns one channel per provider address).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "extauthz/check.h"

namespace mg::extauthz {

// What a CheckRequest carries (AttributeContext), as the OPA-Envoy plugin reads it.
struct CheckAttributes {
  std::string source_address;  // IP of the downstream peer
  uint32_t source_port = 0;
  std::string source_principal;  // SPIFFE ID with scheme; empty without mTLS
  std::string destination_address;
  uint32_t destination_port = 0;
  std::string destination_principal;
  int64_t time_seconds = 0;
  int32_t time_nanos = 0;
  std::string id;  // x-request-id when present
  std::string method;
  std::string path;  // with the query, as Envoy's :path
  std::string host;
  std::string scheme;                                        // "http" / "https"
  std::string protocol;                                      // "HTTP/1.1"
  std::string query;                                         // without '?'
  int64_t size = -1;                                         // Content-Length, -1 when unknown
  std::vector<std::pair<std::string, std::string>> headers;  // names lower case, repeats joined with ','
  std::string sni;
  // includeRequestBodyInCheck: the buffered body, in `raw_body` (packAsBytes) or `body`.
  std::string body;
  bool pack_as_bytes = false;
};

class GrpcChecker {
 public:
  virtual ~GrpcChecker() = default;
  // Starts one Check on the provider's channel; `done` runs exactly once, on a gRPC thread, with
  // the result (an Error for a deadline, an unreachable provider or a non-OK gRPC status).
  virtual void check(const CheckAttributes& attributes, int64_t timeout_ms,
                     std::function<void(CheckResult)> done) = 0;
  // Cancels every call in flight (their `done` still runs, with an Error) and waits for them.
  virtual void shutdown() = 0;
};

// A provider that is a mesh workload is reached over mTLS: this proxy's SVID and trust bundle
// (PEM) and the SPIFFE IDs its server may present (secure naming: gRPC checks the chain against
// the bundle, the channel's verifier the leaf's one URI SAN against `identities`; host names are
// not checked). `generation` names the SVID (its fingerprint): a renewed one gets a new channel.
struct MeshTls {
  std::string key_pem;
  std::string cert_chain_pem;
  std::string bundle_pem;
  std::string generation;
};

class GrpcCheckers {
 public:
  virtual ~GrpcCheckers() = default;
  // The checker for "host:port", made once (one channel per provider address, reused).
  virtual std::shared_ptr<GrpcChecker> channel(const std::string& host, uint32_t port) = 0;
  // The mTLS checker for "host:port" expecting one of `identities`, made once per SVID generation
  // (the previous generation's channel for that address is let go).
  virtual std::shared_ptr<GrpcChecker> channel_mtls(const std::string& host, uint32_t port, const MeshTls& tls,
                                                    const std::vector<std::string>& identities) = 0;
  virtual void shutdown() = 0;
};

inline constexpr const char* kGrpcLibrary = "libmeshguard-extauthz-grpc.so";
inline constexpr const char* kGrpcFactory = "mg_extauthz_grpc_create";
using GrpcFactory = GrpcCheckers* (*)();

// The module's own factory (mg_extauthz_grpc; tests link it directly).
std::unique_ptr<GrpcCheckers> make_grpc_checkers();

// Loads the library ($MESHGUARD_EXTAUTHZ_GRPC_LIBRARY, else beside the executable) and makes
// the factory; never unloaded.
Result<std::unique_ptr<GrpcCheckers>> load_grpc_checkers();

}  // namespace mg::extauthz
