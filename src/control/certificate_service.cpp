// control/certificate_service.cpp — see certificate_service.h.
#include "control/certificate_service.h"

#include <openssl/x509.h>

#include <optional>

#include "api/grpc_tls.h"
#include "control/bootstrap_credentials.h"
#include "control/ca_rotation.h"
#include "control/model.h"
#include "control/support.h"
#include "crypto/openssl.h"
#include "meshguard/v1/meshguard.grpc.pb.h"
#include "policy/mesh.h"

namespace mg::control {
namespace pb = ::meshguard::v1;

namespace {

class CertificateServiceImpl final : public pb::CertificateService::CallbackService {
 public:
  explicit CertificateServiceImpl(const CertificateServiceDeps& deps) : d_(deps) {}

  grpc::ServerUnaryReactor* Sign(grpc::CallbackServerContext* ctx, const pb::SignRequest* req,
                                 pb::SignResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(sign(ctx, *req, *resp));
    return reactor;
  }

 private:
  grpc::Status sign(grpc::CallbackServerContext* ctx, const pb::SignRequest& req, pb::SignResponse& resp) {
    const auto now = unix_now();
    auto auth = ctx->auth_context();
    auto model = d_.model.current();
    if (!auth) return grpc::Status(grpc::StatusCode::INTERNAL, "no TLS context");
    // Verified with the bundle of the mesh its trust domain names (docs/MESHES.md).
    auto peer = mesh_peer_identity(*auth, *model, now);
    if (!peer) return status_of(grpc::StatusCode::UNAUTHENTICATED, peer.error());

    std::optional<identity::SpiffeId> id;
    std::string how;
    const MeshView* view = nullptr;
    if (*peer) {
      view = model->view_for_trust_domain((*peer)->trust_domain());
      if (!view)
        return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                            "trust domain " + std::string((*peer)->trust_domain()) +
                                " is no mesh's this control plane serves");
      // The control plane's own and the admin identity are issued from its data dir only; a copied
      // admin SVID must not be able to extend itself here.
      if ((*peer)->istio_namespace() == std::string_view(api::kSystemNamespace))
        return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                            "identities of namespace meshguard-system are not renewed through this API");
      id = **peer;  // renewal: the caller's current, valid SVID names it
      how = "renewal";
    } else {
      const auto& md = ctx->client_metadata();
      auto it = md.find("authorization");
      if (it == md.end())
        return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                            "a bootstrap token or a client certificate is required");
      std::string value(it->second.data(), it->second.size());
      if (value.rfind("Bearer ", 0) != 0)
        return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "authorization must be \"Bearer <token>\"");
      const std::string_view token = std::string_view(value).substr(7);
      auto claims = d_.bootstrap.verify(token, now, &how);
      if (!claims) {
        d_.metrics.counter("meshguard_csr_total", {{"result", "bad_token"}}).inc();
        return status_of(grpc::StatusCode::UNAUTHENTICATED, claims.error());
      }
      if (claims->ns == api::kSystemNamespace)
        return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "namespace meshguard-system is reserved");
      // The token says which mesh the workload joins; its CA and trust domain make the identity.
      view = model->view(claims->mesh);
      if (!view)
        return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                            "mesh " + claims->mesh + " does not exist (or has no CA yet)");
      const std::string& td = view->authority ? view->mesh.config.trust_domain : d_.trust_domain;
      auto made = identity::SpiffeId::istio(td, claims->ns, claims->service_account);
      if (!made) return status_of(grpc::StatusCode::INVALID_ARGUMENT, made.error());
      id = std::move(*made);
      if (how.empty()) how = "bootstrap";
    }

    const std::string& der = req.csr_der();
    if (der.empty() || der.size() > 16 * 1024)
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "csr_der must be a DER CSR of at most 16 KiB");
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    crypto::X509ReqPtr csr(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
    if (!csr || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
      crypto::last_error();
      d_.metrics.counter("meshguard_csr_total", {{"result", "bad_csr"}}).inc();
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "csr_der is not a DER PKCS#10 request");
    }
    int64_t ttl = view->mesh.certificate_ttl_seconds;
    if (req.requested_ttl_seconds() > 0) ttl = std::min<int64_t>(ttl, req.requested_ttl_seconds());
    const auto signer_now = view->authority ? view->authority : d_.ca.signer();
    auto issued = signer_now->sign_csr(csr.get(), *id, std::chrono::seconds(ttl), now);
    if (!issued) {
      d_.metrics.counter("meshguard_csr_total", {{"result", "refused"}}).inc();
      return status_of(grpc::StatusCode::INVALID_ARGUMENT, issued.error());
    }
    d_.metrics.counter("meshguard_csr_total", {{"result", "signed"}, {"kind", how}}).inc();
    d_.metrics.counter("meshguard_mesh_certificates_issued_total", {{"mesh", view->name}}).inc();
    // The CA's own rule (ca/authority.h), so no need to decode the certificate just issued.
    const int64_t not_after = std::min<int64_t>(now + ttl, signer_now->ca_not_after());
    resp.set_cert_chain_pem(issued->chain_pem);
    resp.set_trust_bundle_pem(view->bundle_pem);
    resp.set_control_plane_bundle_pem(view->control_plane_bundle_pem);
    resp.set_federated_bundles(view->federated_text);
    if (view->name != policy::kDefaultMesh) resp.set_mesh_name(view->name);
    resp.set_spiffe_id(id->str());
    resp.set_not_after_unix(not_after);
    return grpc::Status::OK;
  }

  const CertificateServiceDeps d_;
};

}  // namespace

std::unique_ptr<grpc::Service> make_certificate_service(const CertificateServiceDeps& deps) {
  return std::make_unique<CertificateServiceImpl>(deps);
}

}  // namespace mg::control
