// control/etcd_client.cpp — see etcd_client.h.
#include "control/etcd_client.h"

#include <grpcpp/grpcpp.h>

#include <thread>

#include "common/files.h"

namespace mg::control {

namespace pb = ::etcdserverpb;

Result<std::unique_ptr<EtcdClient>> EtcdClient::create(const EtcdOptions& options) {
  if (options.endpoints.empty()) return fail(StoreError::Url, "no etcd endpoint");
  if (auto st = check_etcd_tls(options); !st) return fail(st.error());
  if (auto st = check_etcd_prefix(options.prefix); !st) return fail(st.error());
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options.ca_file.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    for (auto [file, out] : {std::pair{&options.ca_file, &ssl.pem_root_certs},
                             {&options.cert_file, &ssl.pem_cert_chain},
                             {&options.key_file, &ssl.pem_private_key}}) {
      if (file->empty()) continue;
      auto text = files::read_file(*file);
      if (!text) return fail(StoreError::Open, "etcd TLS: " + text.error().to_string());
      *out = std::move(*text);
    }
    creds = grpc::SslCredentials(ssl);
  }
  std::unique_ptr<EtcdClient> out(new EtcdClient());
  out->options_ = options;
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 64 * 1024 * 1024);
  // A member that went away is noticed within seconds, not at the next TCP timeout.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 5'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 3'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2'000);
  for (const auto& e : options.endpoints) out->channels_.push_back(grpc::CreateCustomChannel(e, creds, args));
  return out;
}

// gRPC reports a refused client certificate or a plaintext/TLS mismatch as a closed or reset
// connection: say which flags to check rather than leave the operator with transport words.
std::string EtcdClient::unreachable_hint() const {
  if (options_.ca_file.empty())
    return "; plaintext to etcd: an etcd serving TLS needs --etcd-cacert (and --etcd-cert/--etcd-key "
           "when it requires client certificates)";
  if (options_.cert_file.empty())
    return "; TLS to etcd without a client certificate: an etcd with --client-cert-auth needs "
           "--etcd-cert/--etcd-key";
  return "; TLS to etcd: check that --etcd-cacert holds the roots of etcd's certificate (which must "
         "name the host as written in --store) and that etcd trusts the issuer of --etcd-cert";
}

void EtcdClient::rotate() { current_.fetch_add(1); }

std::string EtcdClient::endpoint() const { return options_.endpoints[current_.load() % options_.endpoints.size()]; }

template <class Resp, class Call>
Result<Resp> EtcdClient::call(const char* what, Call&& fn) {
  return call_on<pb::KV, Resp>(what, std::forward<Call>(fn));
}

template <class Service, class Resp, class Call>
Result<Resp> EtcdClient::call_on(const char* what, Call&& fn) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  auto pause = std::chrono::milliseconds(50);
  std::string last;
  for (int attempt = 0;; ++attempt) {
    const size_t raw = current_.load();
    const size_t index = raw % channels_.size();
    auto stub = Service::NewStub(channels_[index]);
    grpc::ClientContext ctx;
    // One endpoint gets a share of the budget: a member that hangs does not use it all.
    const auto left = std::min<std::chrono::steady_clock::duration>(deadline - std::chrono::steady_clock::now(),
                                                                   std::chrono::seconds(5));
    ctx.set_deadline(std::chrono::system_clock::now() + left);
    Resp resp;
    const grpc::Status st = fn(*stub, &ctx, &resp);
    if (st.ok()) return resp;
    last = options_.endpoints[index] + ": " + st.error_message();
    const bool retry = st.error_code() == grpc::StatusCode::UNAVAILABLE ||
                       st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    if (!retry) return fail(StoreError::Etcd, std::string("etcd ") + what + ": " + last);
    size_t expected = raw;  // another caller may have moved on already: move once, not twice
    current_.compare_exchange_strong(expected, raw + 1);
    if (std::chrono::steady_clock::now() + pause >= deadline)
      return fail(StoreError::Etcd, std::string("etcd ") + what + ": no endpoint answered in " +
                                        std::to_string(budget.count()) + " ms (last: " + last + ")" +
                                        unreachable_hint());
    // Every endpoint tried once: wait a little (an election takes a moment) before the next round.
    if ((attempt + 1) % channels_.size() == 0) {
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(1000));
    }
  }
}

Result<pb::RangeResponse> EtcdClient::range(const pb::RangeRequest& req) {
  return call<pb::RangeResponse>("range", [&](pb::KV::Stub& s, grpc::ClientContext* c, pb::RangeResponse* r) {
    return s.Range(c, req, r);
  });
}

Result<pb::TxnResponse> EtcdClient::txn(const pb::TxnRequest& req) {
  return call<pb::TxnResponse>("txn", [&](pb::KV::Stub& s, grpc::ClientContext* c, pb::TxnResponse* r) {
    return s.Txn(c, req, r);
  });
}

Result<pb::DeleteRangeResponse> EtcdClient::delete_range(const pb::DeleteRangeRequest& req) {
  return call<pb::DeleteRangeResponse>(
      "delete", [&](pb::KV::Stub& s, grpc::ClientContext* c, pb::DeleteRangeResponse* r) {
        return s.DeleteRange(c, req, r);
      });
}

Result<int64_t> EtcdClient::lease_grant(int64_t ttl_seconds) {
  pb::LeaseGrantRequest req;
  req.set_ttl(ttl_seconds);
  auto got = call_on<pb::Lease, pb::LeaseGrantResponse>(
      "lease grant", [&](pb::Lease::Stub& s, grpc::ClientContext* c, pb::LeaseGrantResponse* r) {
        return s.LeaseGrant(c, req, r);
      });
  if (!got) return fail(got.error());
  if (!got->error().empty() || got->id() == 0) return fail(StoreError::Etcd, "etcd lease grant: " + got->error());
  return got->id();
}

Result<int64_t> EtcdClient::lease_keep_alive(int64_t id) {
  auto got = call_on<pb::Lease, pb::LeaseKeepAliveResponse>(
      "lease keep-alive", [&](pb::Lease::Stub& s, grpc::ClientContext* c, pb::LeaseKeepAliveResponse* r) {
        // One round on a stream of its own: a request, its answer.
        auto stream = s.LeaseKeepAlive(c);
        pb::LeaseKeepAliveRequest req;
        req.set_id(id);
        if (!stream->Write(req) || !stream->Read(r)) {
          c->TryCancel();
          auto st = stream->Finish();
          return st.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "keep-alive stream closed") : st;
        }
        stream->WritesDone();
        c->TryCancel();
        (void)stream->Finish();
        return grpc::Status::OK;
      });
  if (!got) return fail(got.error());
  return got->ttl();
}

Status EtcdClient::lease_revoke(int64_t id) {
  pb::LeaseRevokeRequest req;
  req.set_id(id);
  auto got = call_on<pb::Lease, pb::LeaseRevokeResponse>(
      "lease revoke", [&](pb::Lease::Stub& s, grpc::ClientContext* c, pb::LeaseRevokeResponse* r) {
        return s.LeaseRevoke(c, req, r);
      });
  if (!got) return fail(got.error());
  return {};
}

std::unique_ptr<grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>> EtcdClient::watch(
    grpc::ClientContext* ctx) {
  // etcd's "require leader": a member cut off from the quorum ends the stream rather than
  // letting it stall silently, so the store moves to a member that hears new writes.
  ctx->AddMetadata("hasleader", "true");
  auto stub = pb::Watch::NewStub(channels_[current_.load() % channels_.size()]);
  return stub->Watch(ctx);
}

}  // namespace mg::control
