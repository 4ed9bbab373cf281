#include "api/grpc_tls.h"

#include <absl/synchronization/mutex.h>

#include <openssl/err.h>

#include <algorithm>
#include <thread>
#include <vector>

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "common/files.h"
#include "crypto/openssl.h"
#include "identity/svid.h"

namespace mg::api {

namespace {

// Debian's abseil leaves absl::Mutex deadlock detection on (a debugging aid that records every
// lock acquisition in a global graph), and gRPC takes absl mutexes on every call: measured at 2,000
// connected proxies, GraphCycles bookkeeping was ~7% of the control plane's CPU per push. It finds
// lock-order bugs in gRPC, not in meshguard (our own locks are std::mutex, checked by clang's
// thread-safety analysis), so every process turns it off before its first channel or server.
void skip_abseil_deadlock_detection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace

Result<SvidFiles> load_svid_dir(const std::string& dir) {
  const std::string key_path = dir + "/key.pem";
  if (auto st = files::check_private_key_permissions(key_path); !st) return fail(st.error());
  // A renewal replaces key.pem and cert-chain.pem with one rename each: a reader in between sees
  // a key that does not match the certificate (the two renames are a write and an fsync apart:
  // milliseconds, more on a loaded disk). Such a pair is read again, 20 ms apart for up to a
  // second, and never handed to TLS.
  for (int attempt = 1;; ++attempt) {
    auto key = files::read_file(key_path);
    if (!key) return fail(key.error());
    auto chain = files::read_file(dir + "/cert-chain.pem");
    if (!chain) return fail(chain.error());
    auto bundle = files::read_file(dir + "/root-cert.pem");
    if (!bundle) return fail(bundle.error());
    auto parsed_key = crypto::parse_private_key_pem(*key);
    if (!parsed_key) return fail(parsed_key.error());
    auto parsed_chain = crypto::parse_cert_chain_pem(*chain);
    if (!parsed_chain) return fail(parsed_chain.error());
    if (parsed_chain->empty())
      return fail("api.no_certificate", dir + "/cert-chain.pem holds no certificate");
    if (X509_check_private_key(parsed_chain->front().get(), parsed_key->get()) == 1)
      return SvidFiles{std::move(*key), std::move(*chain), std::move(*bundle)};
    ERR_clear_error();
    if (attempt == 50)
      return fail("api.key_mismatch", dir + "/key.pem is not the key of the certificate in cert-chain.pem");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::shared_ptr<grpc::Channel> make_channel(const std::string& address, const std::string& bundle_pem,
                                            const std::optional<SvidFiles>& own) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = bundle_pem;
  if (own) {
    options.pem_private_key = own->key_pem;
    options.pem_cert_chain = own->cert_chain_pem;
  }
  skip_abseil_deadlock_detection();
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(kControlPlaneHost);
  args.SetMaxReceiveMessageSize(static_cast<int>(kMaxMessageBytes));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // No bandwidth-delay probing: a config stream carries one small message per change, and each
  // probe is a PING the server must answer — at 10,000 proxies, more than a third of its writes.
  // Without it the window stays where it is set, so a large snapshot still arrives in one flight.
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, static_cast<int>(kMaxMessageBytes));
  // Each channel gets its own subchannel: a proxy renewing its certificate must not reuse a
  // connection made with the old one.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(options), args);
}

std::shared_ptr<grpc::ServerCredentials> server_credentials(const std::string& key_and_chain_file,
                                                            const std::string& bundle_file,
                                                            std::chrono::seconds reread_every) {
  skip_abseil_deadlock_detection();
  const auto seconds = static_cast<unsigned>(std::max<int64_t>(1, reread_every.count()));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      key_and_chain_file, key_and_chain_file, bundle_file, seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  options.watch_root_certs();
  // The trust bundle changes at run time (CA rotation), so the handshake only collects the
  // client certificate; every handler verifies it with peer_identity() against the current bundle
  // before anything else.
  options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

Result<std::optional<identity::SpiffeId>> peer_identity(const grpc::AuthContext& auth,
                                                        const identity::TrustBundle& bundle, std::time_t now) {
  auto leaf_values = auth.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (leaf_values.empty()) return std::optional<identity::SpiffeId>();
  auto leaf = crypto::parse_cert_chain_pem(std::string(leaf_values.front().data(), leaf_values.front().size()));
  if (!leaf) return fail(leaf.error());
  if (leaf->size() != 1) return fail("api.bad_peer_certificate", "the peer presented no single leaf certificate");
  // The chain property holds what the peer sent, in no order we rely on: keep the leaf first and
  // add the others as intermediates (verify_svid builds and checks the path to the bundle).
  std::vector<crypto::X509Ptr> chain_certs;
  const std::string leaf_der = crypto::cert_der(leaf->front().get());
  chain_certs.push_back(std::move(leaf->front()));
  auto chain_values = auth.FindPropertyValues(GRPC_X509_PEM_CERT_CHAIN_PROPERTY_NAME);
  if (!chain_values.empty()) {
    auto rest = crypto::parse_cert_chain_pem(std::string(chain_values.front().data(), chain_values.front().size()));
    if (!rest) return fail(rest.error());
    for (auto& c : *rest) {
      if (crypto::cert_der(c.get()) != leaf_der) chain_certs.push_back(std::move(c));
    }
  }
  auto* chain = &chain_certs;
  auto id = identity::verify_svid(*chain, bundle, now);
  if (!id) return fail(id.error().to_error());
  return std::optional<identity::SpiffeId>(std::move(*id));
}

Status check_control_plane_identity(const grpc::ClientContext& ctx, const std::string& trust_domain) {
  auto auth = ctx.auth_context();
  if (!auth) return fail("api.no_peer", "no TLS peer information for the control plane connection");
  auto ids = auth->FindPropertyValues(GRPC_PEER_SPIFFE_ID_PROPERTY_NAME);
  const std::string expected = control_plane_id(trust_domain).str();
  if (ids.size() != 1 || std::string(ids.front().data(), ids.front().size()) != expected)
    return fail("api.wrong_server_identity", "the server is not " + expected);
  return {};
}

identity::SpiffeId control_plane_id(const std::string& trust_domain) {
  return *identity::SpiffeId::istio(trust_domain, kSystemNamespace, kControlPlaneServiceAccount);
}

identity::SpiffeId admin_id(const std::string& trust_domain) {
  return *identity::SpiffeId::istio(trust_domain, kSystemNamespace, kAdminServiceAccount);
}

std::string describe(const grpc::Status& status) {
  static const char* names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                                "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  int code = static_cast<int>(status.error_code());
  std::string name = code >= 0 && code < 17 ? names[code] : std::to_string(code);
  return status.error_message().empty() ? name : name + ": " + status.error_message();
}

}  // namespace mg::api
