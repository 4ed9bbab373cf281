// api/grpc_tls.h — TLS for the control-plane API, shared by meshguard-control, the proxy's agent
// and meshguardctl: credentials built from SVID files, and identities checked with the same
// X.509-SVID rules as the data plane (gRPC's own check is only X.509 path validation).
//
// Names: the control plane is spiffe://<td>/ns/meshguard-system/sa/meshguard-control and its
// serving certificate also carries the DNS SAN kControlPlaneHost, the TLS target name every client
// uses (gRPC checks host names, not URI SANs); only the CA's own issuance for the control plane
// adds it, so no workload SVID can pass for the control plane.
#pragma once

#include <chrono>
#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/result.h"
#include "identity/spiffe_id.h"
#include "identity/trust_bundle.h"

namespace mg::api {

inline constexpr const char* kSystemNamespace = "meshguard-system";
inline constexpr const char* kControlPlaneServiceAccount = "meshguard-control";
inline constexpr const char* kAdminServiceAccount = "meshguard-admin";
inline constexpr const char* kControlPlaneHost = "meshguard-control.meshguard-system";
inline constexpr size_t kMaxMessageBytes = 8 * 1024 * 1024;

// An identity on disk, in the layout `meshguardctl cert issue` writes: key.pem (0600),
// cert-chain.pem (leaf first), root-cert.pem (the trust bundle).
struct SvidFiles {
  std::string key_pem;
  std::string cert_chain_pem;
  std::string bundle_pem;
};
Result<SvidFiles> load_svid_dir(const std::string& dir);

// Client side. `own` absent: no client certificate (only CertificateService.Sign with a bootstrap
// token accepts that).
std::shared_ptr<grpc::Channel> make_channel(const std::string& address, const std::string& bundle_pem,
                                            const std::optional<SvidFiles>& own);

// Server side: requests a client certificate (optional); handlers verify it with peer_identity().
// The serving key and chain are read from `key_and_chain_file` (one file, so a renewal replaces
// both in one rename and gRPC never pairs a new key with an old certificate) and the bundle from
// `bundle_file`, and read again every `reread_every` (≥ 1 s): new handshakes then use what a
// renewal wrote, without a restart.
std::shared_ptr<grpc::ServerCredentials> server_credentials(const std::string& key_and_chain_file,
                                                            const std::string& bundle_file,
                                                            std::chrono::seconds reread_every);

// The caller's SPIFFE ID from its client certificate, verified with identity::verify_svid against
// `bundle` at `now`. nullopt: the caller presented no certificate. Error: it presented one that is
// not a valid SVID of this trust domain.
Result<std::optional<identity::SpiffeId>> peer_identity(const grpc::AuthContext& auth,
                                                        const identity::TrustBundle& bundle, std::time_t now);

// Secure naming for clients, once a call has started: the server must be the control plane of
// `trust_domain`.
Status check_control_plane_identity(const grpc::ClientContext& ctx, const std::string& trust_domain);

identity::SpiffeId control_plane_id(const std::string& trust_domain);
identity::SpiffeId admin_id(const std::string& trust_domain);

// gRPC status → one line for a person, e.g. "PERMISSION_DENIED: admin identity required".
std::string describe(const grpc::Status& status);

}  // namespace mg::api
