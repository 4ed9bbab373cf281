// control/support.cpp — see support.h.
#include "control/support.h"

#include <cstdio>

#include "api/grpc_tls.h"
#include "control/model.h"

namespace mg::control {

void log_line(const std::string& line) {
  std::fprintf(stderr, "meshguard-control: %s\n", line.c_str());
  std::fflush(stderr);
}

Result<identity::SpiffeId> require_peer(grpc::CallbackServerContext* ctx,
                                        const identity::TrustBundle& bundle) {
  auto auth = ctx->auth_context();
  if (!auth) return fail("auth.no_tls", "no TLS peer information");
  auto id = api::peer_identity(*auth, bundle, unix_now());
  if (!id) return fail("auth.bad_certificate", "client certificate refused: " + id.error().to_string());
  if (!*id) return fail("auth.no_certificate", "a client certificate (the caller's SVID) is required");
  return std::move(**id);
}

Result<std::optional<identity::SpiffeId>> mesh_peer_identity(const grpc::AuthContext& auth,
                                                             const Model& model, std::time_t now) {
  auto id = api::peer_identity(auth, *model.bundle, now);
  if (id || id.error().code != "svid.wrong_trust_domain") return id;
  for (const auto& [name, view] : model.meshes) {
    if (view.bundle == model.bundle) continue;
    auto other = api::peer_identity(auth, *view.bundle, now);
    if (other || other.error().code != "svid.wrong_trust_domain") return other;
  }
  return id;
}

Result<identity::SpiffeId> require_mesh_peer(grpc::CallbackServerContext* ctx, const Model& model) {
  auto auth = ctx->auth_context();
  if (!auth) return fail("auth.no_tls", "no TLS peer information");
  auto id = mesh_peer_identity(*auth, model, unix_now());
  if (!id) return fail("auth.bad_certificate", "client certificate refused: " + id.error().to_string());
  if (!*id) return fail("auth.no_certificate", "a client certificate (the caller's SVID) is required");
  return std::move(**id);
}

Status require_admin(grpc::CallbackServerContext* ctx, const identity::TrustBundle& bundle,
                     const std::string& trust_domain) {
  auto id = require_peer(ctx, bundle);
  if (!id) return fail(id.error());
  if (!(*id == api::admin_id(trust_domain)))
    return fail("auth.not_admin", id->str() + " is not the admin identity");
  return {};
}

}  // namespace mg::control
