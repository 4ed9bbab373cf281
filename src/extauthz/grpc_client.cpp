// The gRPC ext_authz client, built into libmeshguard-extauthz-grpc.so (grpc_client.h): one
// channel per provider address (HTTP/2, connections kept and re-established by gRPC), one
// callback-API unary call per check with the provider's timeout as its deadline. A provider in
// the mesh gets an mTLS channel whose verifier does secure naming by URI SAN.
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>

#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "extauthz/grpc_mapping.h"

namespace mg::extauthz {
namespace {

namespace pb = envoy::service::auth::v3;

// Secure naming after gRPC verified the server's chain against the mesh bundle: the leaf is an
// X.509-SVID (exactly one URI SAN) naming one of the identities the provider's service has.
class SpiffeIdVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit SpiffeIdVerifier(std::vector<std::string> identities) : identities_(std::move(identities)) {}
  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*async callback: unused, the check is synchronous*/,
              grpc::Status* sync_status) override {
    const auto uris = request->uri_names();
    if (uris.size() != 1) {
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                  "secure naming: the server certificate is not an X.509-SVID (" +
                                      std::to_string(uris.size()) + " URI SANs)");
      return true;
    }
    const std::string id(uris[0].data(), uris[0].size());
    if (std::find(identities_.begin(), identities_.end(), id) != identities_.end()) {
      *sync_status = grpc::Status::OK;
    } else {
      std::string expected;
      for (const auto& i : identities_) expected += (expected.empty() ? "" : ", ") + i;
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                  "secure naming: server identity " + id + " is not one of [" + expected + "]");
    }
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  const std::vector<std::string> identities_;
};

std::shared_ptr<grpc::ChannelCredentials> mesh_credentials(const MeshTls& tls,
                                                           const std::vector<std::string>& identities) {
  namespace ex = grpc::experimental;
  auto certificates = std::make_shared<ex::StaticDataCertificateProvider>(
      tls.bundle_pem, std::vector<ex::IdentityKeyCertPair>{{tls.key_pem, tls.cert_chain_pem}});
  ex::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(certificates);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  options.set_check_call_host(false);  // SVIDs name workloads by URI SAN, not by host name
  options.set_certificate_verifier(ex::ExternalCertificateVerifier::Create<SpiffeIdVerifier>(identities));
  return ex::TlsCredentials(options);
}

class Checker final : public GrpcChecker {
 public:
  Checker(const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials) {
    grpc::ChannelArguments args;
    // Keep the connection warm between bursts, as Envoy's gRPC client does with its pool.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
    channel_ = grpc::CreateCustomChannel(target, std::move(credentials), args);
    stub_ = pb::Authorization::NewStub(channel_);
  }
  ~Checker() override { shutdown(); }

  void check(const CheckAttributes& attributes, int64_t timeout_ms,
             std::function<void(CheckResult)> done) override {
    struct Call {
      grpc::ClientContext context;
      pb::CheckRequest request;
      pb::CheckResponse response;
    };
    auto call = std::make_shared<Call>();
    to_check_request(attributes, call->request);
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
    {
      std::lock_guard lock(mu_);
      if (closed_) {
        done(CheckResult::failure("ext_authz client shut down"));
        return;
      }
      inflight_.insert(&call->context);
    }
    stub_->async()->Check(
        &call->context, &call->request, &call->response,
        [this, call, done = std::move(done)](grpc::Status status) {
          CheckResult result;
          if (status.ok()) {
            result = from_check_response(call->response);
          } else {
            const bool deadline = status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
            result = CheckResult::failure(deadline ? "timeout"
                                                   : "gRPC status " + std::to_string(status.error_code()) +
                                                         ": " + status.error_message(),
                                          deadline);
          }
          done(std::move(result));
          std::lock_guard lock(mu_);
          inflight_.erase(&call->context);
          if (inflight_.empty()) idle_.notify_all();
        });
  }

  void shutdown() override {
    std::unique_lock lock(mu_);
    closed_ = true;
    for (auto* context : inflight_) context->TryCancel();
    // Bounded: a cancelled call completes promptly; never hang a shutdown on a provider.
    idle_.wait_for(lock, std::chrono::seconds(5), [this] { return inflight_.empty(); });
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Authorization::Stub> stub_;
  std::mutex mu_;
  std::condition_variable idle_;
  std::set<grpc::ClientContext*> inflight_;
  bool closed_ = false;
};

std::string target_of(const std::string& host, uint32_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

class Checkers final : public GrpcCheckers {
 public:
  std::shared_ptr<GrpcChecker> channel(const std::string& host, uint32_t port) override {
    const std::string target = target_of(host, port);
    std::lock_guard lock(mu_);
    auto& slot = checkers_[target];
    if (!slot) slot = std::make_shared<Checker>(target, grpc::InsecureChannelCredentials());
    return slot;
  }
  std::shared_ptr<GrpcChecker> channel_mtls(const std::string& host, uint32_t port, const MeshTls& tls,
                                            const std::vector<std::string>& identities) override {
    const std::string target = target_of(host, port);
    std::string key = target + "|" + tls.generation;
    for (const auto& id : identities) key += "|" + id;
    std::lock_guard lock(mu_);
    auto& slot = mesh_[target];
    if (!slot.checker || slot.key != key) {
      // A new SVID or other identities: a new channel. The old one is kept a while, not dropped:
      // a call's completion still runs on it after the caller let go (every call is bounded by
      // its provider's timeout, long over after kRetired renewals).
      if (slot.checker) {
        retired_.push_back(std::move(slot.checker));
        if (retired_.size() > kRetired) retired_.erase(retired_.begin());
      }
      slot.key = std::move(key);
      slot.checker = std::make_shared<Checker>(target, mesh_credentials(tls, identities));
    }
    return slot.checker;
  }
  void shutdown() override {
    std::lock_guard lock(mu_);
    for (auto& [target, checker] : checkers_) checker->shutdown();
    for (auto& [target, slot] : mesh_) slot.checker->shutdown();
    for (auto& checker : retired_) checker->shutdown();
  }

 private:
  struct MeshSlot {
    std::string key;
    std::shared_ptr<Checker> checker;
  };
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Checker>> checkers_;
  std::map<std::string, MeshSlot> mesh_;
  static constexpr size_t kRetired = 16;
  std::vector<std::shared_ptr<Checker>> retired_;
};

}  // namespace

std::unique_ptr<GrpcCheckers> make_grpc_checkers() { return std::make_unique<Checkers>(); }

}  // namespace mg::extauthz
