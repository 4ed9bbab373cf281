// control/etcd_ca_rotation.cpp — see etcd_ca_rotation.h.
#include "control/etcd_ca_rotation.h"

#include "control/ca_rotation.h"
#include "control/distributor.h"
#include "control/etcd_client.h"
#include "control/etcd_lease.h"
#include "control/model.h"
#include "control/shared_ca.h"
#include "control/support.h"
#include "crypto/openssl.h"

namespace mg::control {

namespace pb = ::etcdserverpb;

namespace {

constexpr auto kTick = std::chrono::milliseconds(100);  // acknowledgements, and a leader's wait
constexpr auto kReread = std::chrono::seconds(2);       // shared/ca read again without a watch event

void range_op(pb::RequestOp* op, const std::string& key) { op->mutable_request_range()->set_key(key); }

void compare_create(pb::TxnRequest* txn, const std::string& key, int64_t create_revision) {
  auto* cmp = txn->add_compare();
  cmp->set_key(key);
  cmp->set_target(pb::Compare::CREATE);
  cmp->set_result(pb::Compare::EQUAL);
  cmp->set_create_revision(create_revision);
}

void compare_mod(pb::TxnRequest* txn, const std::string& key, int64_t mod_revision) {
  auto* cmp = txn->add_compare();
  cmp->set_key(key);
  cmp->set_target(pb::Compare::MOD);
  cmp->set_result(pb::Compare::EQUAL);
  cmp->set_mod_revision(mod_revision);
}

std::string root_fingerprint(const ca::Authority& a) { return crypto::cert_sha256_fingerprint(a.ca_cert()); }

bool is_default_mesh(std::string_view mesh) { return mesh.empty() || mesh == "default"; }

}  // namespace

// The default mesh's keys are those it had before several meshes. Another mesh's acknowledgements
// live outside <prefix>ca-acks/, whose listing must show the default mesh's only.
CaElection::CaElection(EtcdClient& client, const std::string& prefix, std::string replica,
                       std::string_view mesh)
    : client_(client),
      replica_(std::move(replica)),
      shared_key_(etcd_shared_key(prefix, shared_ca_name(mesh))),
      election_key_(prefix + "election/" +
                    (is_default_mesh(mesh) ? "ca" : "meshes/" + std::string(mesh) + "/ca")),
      acks_prefix_(is_default_mesh(mesh) ? prefix + "ca-acks/"
                                         : prefix + "mesh-ca-acks/" + std::string(mesh) + "/") {}

Result<CaElection::State> CaElection::read() const {
  pb::TxnRequest txn;  // both keys at one revision
  range_op(txn.add_success(), shared_key_);
  range_op(txn.add_success(), election_key_);
  auto got = client_.txn(txn);
  if (!got) return fail(got.error());
  State out;
  const auto& ca = got->responses(0).response_range().kvs();
  if (!ca.empty()) {
    out.value = ca[0].value();
    out.mod_revision = ca[0].mod_revision();
  }
  const auto& leader = got->responses(1).response_range().kvs();
  if (!leader.empty()) out.leader = leader[0].value();
  return out;
}

Result<int64_t> CaElection::begin(int64_t lease, int64_t mod_revision, const std::string& value) const {
  pb::TxnRequest txn;
  compare_create(&txn, election_key_, 0);  // nobody leads
  compare_mod(&txn, shared_key_, mod_revision);
  auto* elect = txn.add_success()->mutable_request_put();
  elect->set_key(election_key_);
  elect->set_value(replica_);
  elect->set_lease(lease);
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(shared_key_);
  put->set_value(value);
  range_op(txn.add_failure(), election_key_);
  auto done = client_.txn(txn);
  if (!done) return fail(done.error());
  if (done->succeeded()) return done->header().revision();  // the election key's create revision
  const auto& kvs = done->responses(0).response_range().kvs();
  if (!kvs.empty())
    return fail("control.ca_rotation_busy", "a CA rotation is in progress, led by replica " + kvs[0].value());
  return fail("control.ca_rotation_busy", "the CA changed meanwhile (another replica's rotation): try again");
}

Status CaElection::finish(int64_t fence, const std::string& value) const {
  pb::TxnRequest txn;
  compare_create(&txn, election_key_, fence);  // the fence: still this replica's election key
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(shared_key_);
  put->set_value(value);
  txn.add_success()->mutable_request_delete_range()->set_key(election_key_);
  auto done = client_.txn(txn);
  if (!done) return fail(done.error());
  if (!done->succeeded())
    return fail(
        "control.ca_rotation_deposed",
        "replica " + replica_ +
            " no longer leads the CA rotation (its etcd lease expired: it was paused or cut off from etcd), "
            "so its write was refused; the rotation is what the other replicas made of it");
  return {};
}

Result<bool> CaElection::recover(int64_t mod_revision, const std::string& value) const {
  pb::TxnRequest txn;
  compare_create(&txn, election_key_, 0);
  compare_mod(&txn, shared_key_, mod_revision);
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(shared_key_);
  put->set_value(value);
  auto done = client_.txn(txn);
  if (!done) return fail(done.error());
  return done->succeeded();
}

Status CaElection::put_ack(int64_t lease, const std::string& bundle_hash) const {
  pb::TxnRequest txn;
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(acks_prefix_ + replica_);
  put->set_value(bundle_hash);
  put->set_lease(lease);
  auto done = client_.txn(txn);
  if (!done) return fail(done.error());
  return {};
}

Result<std::map<std::string, std::string>> CaElection::acks() const {
  pb::RangeRequest req;
  const std::string& head = acks_prefix_;
  req.set_key(head);
  req.set_range_end(etcd_prefix_end(head));
  auto got = client_.range(req);
  if (!got) return fail(got.error());
  std::map<std::string, std::string> out;
  for (const auto& kv : got->kvs()) out[kv.key().substr(head.size())] = kv.value();
  return out;
}

EtcdCaRotation::EtcdCaRotation(Deps deps, std::string replica)
    : d_(deps),
      election_(deps.etcd.client(), deps.etcd.prefix(), std::move(replica), deps.mesh),
      shared_name_(shared_ca_name(deps.mesh)),
      ca_key_(election_.shared_key()),
      whose_(is_default_mesh(deps.mesh) ? "" : "mesh " + deps.mesh + ": "),
      lease_generation_(deps.lease.generation()) {
  if (is_default_mesh(d_.mesh)) d_.mesh.clear();
}

telemetry::Counter& EtcdCaRotation::rotations(const char* result) {
  return d_.mesh.empty() ? d_.metrics.counter("meshguard_ca_rotations_total", {{"result", result}})
                         : d_.metrics.counter("meshguard_mesh_ca_rotations_total",
                                              {{"mesh", d_.mesh}, {"result", result}});
}

Result<std::unique_ptr<EtcdCaRotation>> EtcdCaRotation::start(Deps deps, std::string replica) {
  std::unique_ptr<EtcdCaRotation> r(new EtcdCaRotation(deps, std::move(replica)));
  deps.etcd.on_shared_ca_change(r->shared_name_, [self = r.get()] {
    MutexLock lock(self->mutex_);
    self->shared_changed_ = true;
    self->cv_.notify_all();
  });
  r->loop_thread_ = std::thread([self = r.get()] { self->loop(); });
  deps.ca.delegate_rotation(
      [self = r.get()](grpc::ServerUnaryReactor* reactor, int64_t wait,
                       ::meshguard::v1::RotateCaResponse* resp) { self->rotate(reactor, wait, resp); });
  log_line(r->whose_ + "replica " + r->election_.replica() + ": CA rotations through etcd (lease " +
           std::to_string(deps.lease.ttl().count()) + " s)");
  return r;
}

void EtcdCaRotation::stop() {
  {
    MutexLock lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  d_.ca.delegate_rotation(nullptr);
  d_.etcd.on_shared_ca_change(shared_name_, nullptr);
  if (rotation_thread_.joinable()) rotation_thread_.join();
  if (loop_thread_.joinable()) loop_thread_.join();
}

bool EtcdCaRotation::sleep_unless_stopping(std::chrono::milliseconds d) {
  MutexLock lock(mutex_);
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stopping_ && !shared_changed_ && cv_.wait_until(lock, until)) {
  }
  return !stopping_;
}

void EtcdCaRotation::loop() {
  while (true) {
    {
      MutexLock lock(mutex_);
      if (stopping_) return;
    }
    follow_lease();
    follow();
    acknowledge();
    if (!sleep_unless_stopping(std::chrono::duration_cast<std::chrono::milliseconds>(kTick))) return;
  }
}

void EtcdCaRotation::follow_lease() {
  // A new lease (the last one expired: this process was paused, or cut off from etcd, past its
  // TTL): its keys are gone, and with them any rotation this replica led. A new ack key.
  const uint64_t generation = d_.lease.generation();
  if (generation == lease_generation_) return;
  lease_generation_ = generation;
  acked_.clear();
}

bool EtcdCaRotation::adopt(const std::string& value) {
  auto shared = decode_shared_ca(value, d_.seal, ca_key_, shared_name_);
  if (!shared) {
    log_line(whose_ + "CA rotation: " + shared.error().to_string() + " (still signing with the CA it had)");
    return false;
  }
  const auto now = unix_now();
  auto current = ca::Authority::from_pem(shared->trust_domain, shared->current, now);
  if (!current) {
    log_line(whose_ + "CA rotation: " + ca_key_ + ": " + current.error().to_string());
    return false;
  }
  std::shared_ptr<const ca::Authority> pending;
  if (shared->pending) {
    auto next = ca::Authority::from_pem(shared->trust_domain, *shared->pending, now);
    if (!next) {
      log_line(whose_ + "CA rotation: " + ca_key_ + " (pending): " + next.error().to_string());
      return false;
    }
    pending = std::make_shared<const ca::Authority>(std::move(*next));
  }
  auto signer = std::make_shared<const ca::Authority>(std::move(*current));
  const std::string root = root_fingerprint(*signer);
  const std::string next_root = pending ? root_fingerprint(*pending) : "";
  if (!d_.ca.adopt(std::move(signer), std::move(pending))) return true;
  d_.distributor.mark_dirty();
  if (!next_root.empty())
    log_line(whose_ + "CA rotation led by replica " + shared->rotation_leader +
             ": pushing the bundle with new root " + next_root);
  else
    log_line(whose_ + "signing with CA root " + root + " (" + ca_key_ + ")");
  return true;
}

void EtcdCaRotation::follow() {
  {
    MutexLock lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (!shared_changed_ && now < next_read_) return;
    shared_changed_ = false;
    next_read_ = now + kReread;
  }
  auto state = election_.read();
  if (!state) {
    log_line(whose_ + "CA rotation: " + state.error().to_string());
    return;
  }
  if (!state->value) return;
  if (state->mod_revision != adopted_revision_ && adopt(*state->value))
    adopted_revision_ = state->mod_revision;
  // A pending rotation nobody leads: its leader's lease expired with it. Roll it back.
  if (!state->leader.empty() || leading_.load()) return;
  auto shared = decode_shared_ca(*state->value, d_.seal, ca_key_, shared_name_);
  if (!shared || !shared->pending) return;
  const std::string gone = shared->rotation_leader;
  shared->pending.reset();
  shared->rotation_leader.clear();
  shared->rotation_deadline_unix = 0;
  auto value = encode_shared_ca(*shared, d_.seal, shared_name_);
  if (!value) return;
  auto recovered = election_.recover(state->mod_revision, *value);
  if (!recovered) {
    log_line(whose_ + "CA rotation: " + recovered.error().to_string());
  } else if (*recovered) {
    log_line(whose_ + "CA rotation led by replica " + gone +
             " rolled back: its leader is gone (its etcd lease expired)");
    rotations("abandoned").inc();
    MutexLock lock(mutex_);
    shared_changed_ = true;
  }
}

void EtcdCaRotation::acknowledge() {
  const std::string want = bundle_hash(d_.ca.distributed_bundle().to_pem());
  const BundleRollout rollout = d_.distributor.bundle_rollout(want, d_.mesh);
  if (!rollout.waiting.empty() || rollout.change_pending || rollout.stopping || want == acked_) return;
  if (auto st = election_.put_ack(d_.lease.id(), want); !st) {
    log_line(whose_ + "CA rotation: " + st.error().to_string());
    return;
  }
  acked_ = want;
}

void EtcdCaRotation::rotate(grpc::ServerUnaryReactor* reactor, int64_t wait_seconds,
                            ::meshguard::v1::RotateCaResponse* resp) {
  MutexLock lock(mutex_);
  if (stopping_) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the control plane is shutting down"));
    return;
  }
  if (rotating_) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                     "a CA rotation is in progress, led by this replica (" + election_.replica() + ")"));
    return;
  }
  rotating_ = true;
  if (rotation_thread_.joinable()) rotation_thread_.join();  // the last one, finished
  rotation_thread_ = std::thread([this, reactor, wait_seconds, resp] {
    lead(reactor, wait_seconds, resp);
    MutexLock done(mutex_);
    rotating_ = false;
  });
}

void EtcdCaRotation::lead(grpc::ServerUnaryReactor* reactor, int64_t wait_seconds,
                          ::meshguard::v1::RotateCaResponse* resp) {
  const auto refuse = [&](grpc::StatusCode code, const std::string& why) {
    reactor->Finish(grpc::Status(code, why));
  };
  auto state = election_.read();
  if (!state) return refuse(grpc::StatusCode::UNAVAILABLE, state.error().to_string());
  if (!state->leader.empty())
    return refuse(grpc::StatusCode::FAILED_PRECONDITION, "a CA rotation is in progress, led by replica " +
                                                             state->leader + "; try again when it is done");
  if (!state->value) return refuse(grpc::StatusCode::FAILED_PRECONDITION, ca_key_ + " is gone");
  auto shared = decode_shared_ca(*state->value, d_.seal, ca_key_, shared_name_);
  if (!shared) return refuse(grpc::StatusCode::INTERNAL, shared.error().to_string());
  if (shared->pending)
    return refuse(grpc::StatusCode::FAILED_PRECONDITION,
                  "a CA rotation whose leader (replica " + shared->rotation_leader +
                      ") is gone is being rolled back; try again in a moment");
  const auto now = unix_now();
  auto current = ca::Authority::from_pem(shared->trust_domain, shared->current, now);
  if (!current) return refuse(grpc::StatusCode::INTERNAL, current.error().to_string());
  auto next = current->rotate(now);
  if (!next) return refuse(grpc::StatusCode::INTERNAL, next.error().to_string());
  const ca::CaPem old_pem = shared->current, next_pem = next->to_pem();
  SharedCa started{shared->trust_domain, old_pem, next_pem, election_.replica(), now + wait_seconds};
  auto value = encode_shared_ca(started, d_.seal, shared_name_);
  if (!value) return refuse(grpc::StatusCode::INTERNAL, value.error().to_string());

  // Phase 1: lead (one transaction with the pending CA), then push the new bundle.
  leading_ = true;
  auto fence = election_.begin(d_.lease.id(), state->mod_revision, *value);
  if (!fence) {
    leading_ = false;
    return refuse(grpc::StatusCode::FAILED_PRECONDITION, fence.error().message);
  }
  resp->set_new_root_fingerprint(root_fingerprint(*next));
  log_line(whose_ + "CA rotation: this replica (" + election_.replica() + ") leads it; new root " +
           resp->new_root_fingerprint());
  auto next_shared = std::make_shared<const ca::Authority>(std::move(*next));
  d_.ca.adopt(std::make_shared<const ca::Authority>(std::move(*current)), next_shared);
  d_.distributor.mark_dirty();

  // Phase 2 once every live replica's acknowledgement key shows the new bundle.
  const std::string want = bundle_hash(next_shared->bundle().to_pem());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
  bool all = false, stopped = false;
  std::string waiting;
  while (true) {
    const BundleRollout local = d_.distributor.bundle_rollout(want, d_.mesh);
    resp->clear_not_connected();
    for (const auto& key : local.not_connected) resp->add_not_connected(key);
    resp->set_proxies_acknowledged(local.acknowledged);
    if (auto acks = election_.acks(); acks) {
      waiting.clear();
      for (const auto& [replica, hash] : *acks) {
        if (hash != want) waiting += (waiting.empty() ? "" : ", ") + replica;
      }
      all = waiting.empty() && acks->count(election_.replica()) == 1;
      if (!acks->count(election_.replica())) waiting += (waiting.empty() ? "" : ", ") + election_.replica();
    }
    if (all || std::chrono::steady_clock::now() >= deadline) break;
    {
      MutexLock lock(mutex_);
      if (stopping_) {
        stopped = true;
        break;
      }
    }
    std::this_thread::sleep_for(kTick);
  }
  SharedCa end{shared->trust_domain, all ? next_pem : old_pem, std::nullopt, "", 0};
  auto end_value = encode_shared_ca(end, d_.seal, shared_name_);
  Status written = end_value ? election_.finish(*fence, *end_value) : Status(fail(end_value.error()));
  leading_ = false;
  {
    MutexLock lock(mutex_);
    shared_changed_ = true;  // the loop reads (and adopts) what etcd now says
    cv_.notify_all();
  }
  if (!written) {
    log_line(whose_ + "CA rotation: " + written.error().to_string());
    rotations("deposed").inc();
    return refuse(grpc::StatusCode::ABORTED, written.error().to_string());
  }
  if (all) {
    log_line(whose_ + "CA rotated: new root " + resp->new_root_fingerprint() +
             "; every replica's proxies hold the new bundle");
    rotations("success").inc();
    reactor->Finish(grpc::Status::OK);
    return;
  }
  rotations("abandoned").inc();
  const std::string why =
      stopped ? "rotation called off, the old bundle is restored: the replica is shutting down"
              : "rotation called off, the old bundle is restored: not acknowledged by the "
                "proxies of replica(s) " +
                    waiting;
  log_line(whose_ + "CA rotation abandoned: " + why);
  refuse(stopped ? grpc::StatusCode::UNAVAILABLE : grpc::StatusCode::DEADLINE_EXCEEDED, why);
}

}  // namespace mg::control
