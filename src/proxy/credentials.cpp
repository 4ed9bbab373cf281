#include "proxy/credentials.h"

#include <ctime>

#include "proxy/report.h"

namespace mg::proxy {

namespace {

// asio::ssl::context owns one reference to the SSL_CTX; the Credentials keep theirs.
std::shared_ptr<asio::ssl::context> wrap_context(SSL_CTX* ctx) {
  SSL_CTX_up_ref(ctx);
  return std::make_shared<asio::ssl::context>(ctx);
}

}  // namespace

std::string_view to_string(CertState state) {
  switch (state) {
    case CertState::None:
      return "None";
    case CertState::Available:
      return "Available";
    case CertState::Unavailable:
      return "Unavailable";
  }
  return "Unavailable";
}

Credentials::Credentials(std::optional<tls::TlsFiles> files, telemetry::Registry& registry,
                         std::atomic<uint64_t>& config_version)
    : files_(std::move(files)), registry_(registry), config_version_(config_version) {}

std::vector<Credentials::FileStamp> Credentials::stamps_of(const tls::TlsFiles& files) {
  std::vector<FileStamp> out;
  for (const auto* path : {&files.cert_chain, &files.key, &files.trust_bundle})
    out.push_back(mg::files::stamp_of(*path));
  if (!files.federated_bundles.empty()) out.push_back(mg::files::stamp_of(files.federated_bundles));
  return out;
}

Status Credentials::load() {
  auto creds = tls::load_credentials(*files_, std::time(nullptr));
  if (!creds) {
    error_ = creds.error().to_string();
    registry_.counter("meshguard_certificate_load_failures_total").inc();
    return fail(creds.error());
  }
  auto state = std::make_shared<TlsState>();
  state->creds = *creds;
  state->server = wrap_context((*creds)->server_ctx.get());
  state->client = wrap_context((*creds)->client_ctx.get());
  state_.store(std::shared_ptr<const TlsState>(std::move(state)));
  error_.clear();
  registry_.gauge("meshguard_certificate_expiry_timestamp_seconds", {{"identity", (*creds)->own_id.str()}})
      .set(static_cast<int64_t>((*creds)->not_after));
  return {};
}

void Credentials::load_initial() {
  if (!files_) return;
  MutexLock lock(mutex_);
  stamps_ = stamps_of(*files_);
  if (auto st = load(); !st) {
    // Fail closed but stay up: mTLS ports refuse until a valid certificate appears (hot reload).
    log_line("no usable certificate, mTLS is unavailable until it is fixed: " + st.error().to_string());
  }
}

void Credentials::reload(bool force) {
  if (!files_) return;
  MutexLock lock(mutex_);
  auto stamps = stamps_of(*files_);
  if (!force && stamps == stamps_) return;
  stamps_ = stamps;
  if (auto st = load(); st) {
    config_version_.fetch_add(1);
    auto state = state_.load();
    log_line("certificate reloaded: " + state->creds->own_id.str() + " serial " + state->creds->serial_hex);
  } else {
    log_line("certificate reload failed, keeping the previous one: " + st.error().to_string());
  }
}

void Credentials::start_polling(asio::io_context& io) {
  if (!files_) return;
  poller_.start(io, std::chrono::seconds(1), [this] { reload(false); });
}

void Credentials::stop_polling() { poller_.stop(); }

std::shared_ptr<const TlsState> Credentials::usable() const {
  auto state = state_.load();
  if (!state || state->creds->not_after < std::time(nullptr)) return nullptr;
  return state;
}

CertState Credentials::state() const {
  if (!files_) return CertState::None;
  auto state = state_.load();
  if (!state) return CertState::Unavailable;
  return state->creds->not_after < std::time(nullptr) ? CertState::Unavailable : CertState::Available;
}

std::string Credentials::own_principal() const {
  auto state = state_.load();
  return state && state->creds ? state->creds->own_id.str() : std::string("unknown");
}

std::string Credentials::last_error() const {
  MutexLock lock(mutex_);
  return error_;
}

}  // namespace mg::proxy
