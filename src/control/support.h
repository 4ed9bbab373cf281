// control/support.h — the few things every control-plane component shares: its log line on
// stderr, the wall clock it stamps records and certificates with, a gRPC status from an Error, and
// the caller checks every RPC but a bootstrap Sign makes (the caller's SVID against the trust
// bundle; the admin identity for the admin API).
#pragma once

#include <ctime>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/result.h"
#include "identity/spiffe_id.h"
#include "identity/trust_bundle.h"

namespace mg::control {

void log_line(const std::string& line);  // "meshguard-control: <line>" on stderr

inline std::time_t unix_now() { return std::time(nullptr); }

inline grpc::Status status_of(grpc::StatusCode code, const Error& e) {
  return grpc::Status(code, e.to_string());
}

// The caller's SVID, verified with `bundle`: auth.no_tls, auth.bad_certificate, auth.no_certificate.
Result<identity::SpiffeId> require_peer(grpc::CallbackServerContext* ctx,
                                        const identity::TrustBundle& bundle);
struct Model;
// As require_peer, with the bundle of the mesh whose trust domain the SVID names (docs/MESHES.md):
// the default mesh's first, then each other mesh's.
Result<identity::SpiffeId> require_mesh_peer(grpc::CallbackServerContext* ctx, const Model& model);
// The caller's SVID if it presented one, verified that way (api::peer_identity over every mesh).
Result<std::optional<identity::SpiffeId>> mesh_peer_identity(const grpc::AuthContext& auth,
                                                             const Model& model, std::time_t now);
// As require_peer, and the SVID must be the admin identity of `trust_domain` (auth.not_admin).
Status require_admin(grpc::CallbackServerContext* ctx, const identity::TrustBundle& bundle,
                     const std::string& trust_domain);

}  // namespace mg::control
