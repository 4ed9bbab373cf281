// The gRPC ext_authz client, built into libmeshguard-extauthz-grpc.so (grpc_client.h): one
// channel per provider address (HTTP/2, connections kept and re-established by gRPC), one
// callback-API unary call per check with the provider's timeout as its deadline.
#include <grpcpp/grpcpp.h>

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

class Checker final : public GrpcChecker {
 public:
  explicit Checker(const std::string& target) {
    grpc::ChannelArguments args;
    // Keep the connection warm between bursts, as Envoy's gRPC client does with its pool.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
    channel_ = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
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

class Checkers final : public GrpcCheckers {
 public:
  std::shared_ptr<GrpcChecker> channel(const std::string& host, uint32_t port) override {
    const std::string target =
        (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
    std::lock_guard lock(mu_);
    auto& slot = checkers_[target];
    if (!slot) slot = std::make_shared<Checker>(target);
    return slot;
  }
  void shutdown() override {
    std::lock_guard lock(mu_);
    for (auto& [target, checker] : checkers_) checker->shutdown();
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Checker>> checkers_;
};

}  // namespace

std::unique_ptr<GrpcCheckers> make_grpc_checkers() { return std::make_unique<Checkers>(); }

}  // namespace mg::extauthz
