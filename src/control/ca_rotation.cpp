// control/ca_rotation.cpp — see ca_rotation.h.
#include "control/ca_rotation.h"

#include <cstdio>

#include "common/files.h"
#include "control/distributor.h"
#include "control/model.h"
#include "control/support.h"
#include "crypto/openssl.h"

namespace mg::control {
namespace pb = ::meshguard::v1;

CaRotation::CaRotation(std::shared_ptr<const ca::Authority> authority, std::string data_dir, bool persist,
                       telemetry::Registry& metrics, std::string mesh)
    : data_dir_(std::move(data_dir)),
      persist_(persist),
      mesh_(std::move(mesh)),
      metrics_(metrics),
      authority_(std::move(authority)) {}

std::shared_ptr<const ca::Authority> CaRotation::signer() const {
  MutexLock lock(mutex_);
  return authority_;
}

identity::TrustBundle CaRotation::distributed_bundle() const {
  MutexLock lock(mutex_);
  return (pending_ ? pending_ : authority_)->bundle();
}

void CaRotation::delegate_rotation(Rotator rotator) {
  MutexLock lock(mutex_);
  rotator_ = std::move(rotator);
}

namespace {
bool same_ca(const std::shared_ptr<const ca::Authority>& a, const std::shared_ptr<const ca::Authority>& b) {
  if (!a || !b) return !a && !b;
  return X509_cmp(a->ca_cert(), b->ca_cert()) == 0 && a->bundle().to_pem() == b->bundle().to_pem();
}
}  // namespace

bool CaRotation::adopt(std::shared_ptr<const ca::Authority> current, std::shared_ptr<const ca::Authority> pending) {
  MutexLock lock(mutex_);
  if (same_ca(authority_, current) && same_ca(pending_, pending)) return false;
  if (!same_ca(authority_, current)) authority_ = std::move(current);
  pending_ = std::move(pending);
  return true;
}

void CaRotation::join() {
  if (thread_.joinable()) thread_.join();
}

Status CaRotation::complete_interrupted(const std::string& dir) {
  const std::string ca_dir = dir + "/ca";
  if (!files::exists(ca_dir + "/" + ca::kCaKeyFile) && files::exists(dir + "/ca.new/" + ca::kCaKeyFile)) {
    if (::rename((dir + "/ca.new").c_str(), ca_dir.c_str()) != 0)
      return fail("control.ca_dir", "cannot move " + dir + "/ca.new to " + ca_dir);
  }
  return {};
}

void CaRotation::rotate(Distributor& distributor, grpc::ServerUnaryReactor* reactor, int64_t wait_seconds,
                        pb::RotateCaResponse* resp) {
  int64_t wait = wait_seconds > 0 ? std::min<int64_t>(wait_seconds, 600) : 30;
  Rotator rotator;
  {
    MutexLock lock(mutex_);
    rotator = rotator_;
  }
  if (rotator) {
    rotator(reactor, wait, resp);
    return;
  }
  {
    MutexLock lock(mutex_);
    if (pending_) {
      reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "a rotation is in progress"));
      return;
    }
    if (!authority_->is_self_signed()) {
      reactor->Finish(
          grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                       "the CA is plugged in: rotate it where it is issued, then restart with it"));
      return;
    }
    auto next = authority_->rotate(unix_now());
    if (!next) {
      reactor->Finish(status_of(grpc::StatusCode::INTERNAL, next.error()));
      return;
    }
    pending_ = std::make_shared<const ca::Authority>(std::move(*next));
    resp->set_new_root_fingerprint(crypto::cert_sha256_fingerprint(pending_->ca_cert()));
  }
  // Phase 1: the new bundle goes out; phase 2 (finish) waits for the ACKs off this thread.
  distributor.mark_dirty();
  join();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait);
  thread_ = std::thread(
      [this, &distributor, reactor, resp, deadline] { finish(distributor, reactor, resp, deadline); });
}

Status CaRotation::persist(const ca::Authority& next) const {
  // Two renames: a crash between them leaves ca.new, which complete_interrupted() completes.
  const std::string& dir = data_dir_;
  const std::string staged = dir + "/ca.new", live = dir + "/ca",
                    previous = dir + "/ca.previous-" + std::to_string(unix_now());
  if (auto st = next.save_dir(staged); !st) return st;
  if (::rename(live.c_str(), previous.c_str()) != 0)
    return fail("control.ca_dir", "cannot move " + live + " aside to " + previous);
  if (::rename(staged.c_str(), live.c_str()) != 0)
    return fail("control.ca_dir", "cannot move " + staged + " to " + live);
  return {};
}

void CaRotation::finish(Distributor& distributor, grpc::ServerUnaryReactor* reactor,
                        pb::RotateCaResponse* resp, std::chrono::steady_clock::time_point deadline) {
  std::shared_ptr<const ca::Authority> next;
  {
    MutexLock lock(mutex_);
    next = pending_;
  }
  const std::string want = bundle_hash(next->bundle().to_pem());
  BundleRollout rollout;
  bool all = false;
  while (true) {
    rollout = distributor.bundle_rollout(want, mesh_);
    resp->clear_not_connected();
    for (const auto& key : rollout.not_connected) resp->add_not_connected(key);
    resp->set_proxies_acknowledged(rollout.acknowledged);
    all = rollout.waiting.empty() && !rollout.change_pending;
    if (all || rollout.stopping || std::chrono::steady_clock::now() >= deadline) break;
    distributor.sleep_unless_stopping(std::chrono::milliseconds(50));
  }
  grpc::Status result = grpc::Status::OK;
  if (all) {
    if (auto st = persist_ ? persist(*next) : Status(); !st) {
      result = status_of(grpc::StatusCode::INTERNAL, st.error());
      all = false;
    }
  }
  {
    MutexLock lock(mutex_);
    if (all) authority_ = next;  // the bundle (new + old roots) is already everywhere
    pending_.reset();
  }
  // The default mesh's as before several meshes; another mesh's per mesh, as its other series.
  auto rotations = [&](const char* outcome) -> telemetry::Counter& {
    return mesh_.empty() ? metrics_.counter("meshguard_ca_rotations_total", {{"result", outcome}})
                         : metrics_.counter("meshguard_mesh_ca_rotations_total",
                                            {{"mesh", mesh_}, {"result", outcome}});
  };
  const std::string whose = mesh_.empty() ? "" : "mesh " + mesh_ + ": ";
  if (all) {
    log_line(whose + "CA rotated: new root " + crypto::cert_sha256_fingerprint(next->ca_cert()) + "; " +
             std::to_string(resp->proxies_acknowledged()) + " proxies hold the new bundle");
    rotations("success").inc();
  } else {
    rotations("abandoned").inc();
    if (result.ok()) {
      std::string who;
      for (const auto& w : rollout.waiting) who += (who.empty() ? "" : ", ") + w;
      result = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                            "rotation called off, the old bundle is restored: not acknowledged by " + who);
    }
    log_line(whose + "CA rotation abandoned: " + result.error_message());
  }
  distributor.mark_dirty();  // abandoned: push the old bundle back; done: nothing changes for the proxies
  reactor->Finish(result);
}

}  // namespace mg::control
