// control/etcd_client.h — a small client of etcd's v3 gRPC API (api/etcd/etcd_v3.proto) for the
// etcd store: unary KV calls that move on to the next endpoint when one is unreachable or has no
// leader (bounded by a deadline), and a Watch stream. One channel per endpoint, TLS with client
// certificates when EtcdOptions names them.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/thread_annotations.h"
#include "control/etcd_keys.h"
#include "etcd/etcd_v3.grpc.pb.h"

namespace mg::control {

class EtcdClient {
 public:
  // Reads the TLS files (store.url / store.open on a bad one); connects lazily.
  static Result<std::unique_ptr<EtcdClient>> create(const EtcdOptions& options);

  // Each retries on the next endpoint while etcd answers UNAVAILABLE (down, no leader, leader
  // changed) until `budget` has passed; any other failure is returned at once (store.etcd).
  Result<etcdserverpb::RangeResponse> range(const etcdserverpb::RangeRequest& req);
  Result<etcdserverpb::TxnResponse> txn(const etcdserverpb::TxnRequest& req);
  Result<etcdserverpb::DeleteRangeResponse> delete_range(const etcdserverpb::DeleteRangeRequest& req);

  // Leases (the CA rotation's election and each replica's acknowledgement key live under one):
  // a new lease of `ttl` seconds; one keep-alive round (the TTL left, 0 once the lease is gone); revoke.
  Result<int64_t> lease_grant(int64_t ttl_seconds);
  Result<int64_t> lease_keep_alive(int64_t id);
  Status lease_revoke(int64_t id);

  // A Watch stream on the endpoint in use: the caller owns `ctx` (TryCancel() ends it).
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>> watch(
      grpc::ClientContext* ctx);
  // The endpoint in use failed (a watch stream broke): the next call starts at the next one.
  void rotate();
  std::string endpoint() const;

  std::chrono::milliseconds budget{15'000};  // per call, over every retry

 private:
  template <class Resp, class Call>
  Result<Resp> call(const char* what, Call&& fn);
  template <class Service, class Resp, class Call>
  Result<Resp> call_on(const char* what, Call&& fn);
  std::string unreachable_hint() const;

  EtcdOptions options_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::atomic<size_t> current_{0};
};

}  // namespace mg::control
