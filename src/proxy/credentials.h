// proxy/credentials.h — the workload's certificate as the data plane uses it: the tls::Credentials
// loaded from the tls section's files, with the Asio contexts built from them, published as one
// immutable TlsState; the state machine operators see (CertState); and the one reload path, used
// both by the 1 s poll of the files and by reload_credentials(). A bad file keeps the previous
// credentials; an expired certificate makes the state Unavailable and fails new handshakes closed.
// Owns: the published TlsState, the file stamps and the last load error.
#pragma once

#include <sys/types.h>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/files.h"
#include "common/result.h"
#include "common/thread_annotations.h"
#include "proxy/poller.h"
#include "telemetry/metrics.h"
#include "tls/tls.h"

namespace mg::proxy {

// None: no tls section. Available: a certificate within its validity. Unavailable: none loaded
// yet, or the loaded one has expired.
enum class CertState { None, Available, Unavailable };
std::string_view to_string(CertState state);

// Certificates with the asio contexts built from them; swapped as one unit.
struct TlsState {
  std::shared_ptr<const tls::Credentials> creds;
  std::shared_ptr<asio::ssl::context> server;
  std::shared_ptr<asio::ssl::context> client;
};

class Credentials {
 public:
  // `files`: the tls section (nullopt: no mTLS at all). `config_version` is bumped on every
  // successful reload (the /config_dump version).
  Credentials(std::optional<tls::TlsFiles> files, telemetry::Registry& registry,
              std::atomic<uint64_t>& config_version);
  Credentials(const Credentials&) = delete;
  Credentials& operator=(const Credentials&) = delete;

  bool configured() const { return files_.has_value(); }

  // Start-up: loads the files; on failure mTLS stays unavailable until a reload succeeds (logged).
  void load_initial();
  // Re-reads the files if they changed (or always, with `force`); new handshakes use the new
  // credentials, live connections keep theirs. Any thread.
  void reload(bool force);

  // Polls the files once a second on `io` until stop_polling() (both on `io`'s thread).
  void start_polling(asio::io_context& io);
  void stop_polling();

  // The credentials in force (null before the first successful load).
  std::shared_ptr<const TlsState> current() const { return state_.load(); }
  // Credentials usable for a new handshake right now; nullptr fails the handshake closed.
  std::shared_ptr<const TlsState> usable() const;
  CertState state() const;
  // This workload's SPIFFE ID, "unknown" without credentials.
  std::string own_principal() const;
  // The last load error ("" after a success).
  std::string last_error() const;

 private:
  using FileStamp = files::FileStamp;
  static std::vector<FileStamp> stamps_of(const tls::TlsFiles& files);
  Status load() MG_REQUIRES(mutex_);

  const std::optional<tls::TlsFiles> files_;
  telemetry::Registry& registry_;
  std::atomic<uint64_t>& config_version_;
  std::atomic<std::shared_ptr<const TlsState>> state_;
  mutable Mutex mutex_;  // serializes loads
  std::string error_ MG_GUARDED_BY(mutex_);
  std::vector<FileStamp> stamps_ MG_GUARDED_BY(mutex_);
  Poller poller_;
};

}  // namespace mg::proxy
