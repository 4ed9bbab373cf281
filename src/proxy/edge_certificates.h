// proxy/edge_certificates.h — the certificates a gateway's HTTPS (tls mode SIMPLE) listeners show
// clients outside the mesh: for every credentialName their Gateway servers name,
// <credentialsDir>/NAME/{tls.crt,tls.key}, loaded into a TLS context (tls/edge.h). A listener's
// handshake picks the server whose host matches the client's SNI (the most specific: exact, then
// the longest "*." suffix, then "*"), a client without SNI gets the listener's first server, a
// name no server host matches is refused (Envoy: no filter chain matches). The files are polled
// every second: a replaced certificate is used by the next handshake, live connections keep
// theirs; a file that does not load keeps the previous certificate (logged), and a name that has
// never loaded fails its handshakes closed.
// Owns: the loaded contexts and their file stamps; the per-listener contexts are published as one
// immutable snapshot (std::atomic<std::shared_ptr>), read lock-free by every handshake.
#pragma once

#include <sys/types.h>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/files.h"
#include "common/thread_annotations.h"
#include "gateway/routes.h"
#include "proxy/poller.h"

namespace mg::proxy {

class EdgeCertificates {
 public:
  explicit EdgeCertificates(std::string credentials_dir) : dir_(std::move(credentials_dir)) {}
  EdgeCertificates(const EdgeCertificates&) = delete;
  EdgeCertificates& operator=(const EdgeCertificates&) = delete;

  // The listeners in force (start-up, and every publish: a Gateway's hosts or credentialName may
  // change); loads the credentials not loaded yet. Any thread.
  void configure(const std::vector<gateway::ListenerPlan>& listeners);
  // Reloads the credentials whose files changed (all with `force`). Any thread.
  void reload(bool force);
  void start_polling(asio::io_context& io) {
    poller_.start(io, std::chrono::seconds(1), [this] { reload(false); });
  }
  void stop_polling() { poller_.stop(); }

  // The context a new handshake on listener `index` starts with (SNI then picks the certificate);
  // null for a listener that is not HTTPS SIMPLE.
  std::shared_ptr<asio::ssl::context> context(size_t index) const;

  struct Loaded;
  struct Listener;

 private:
  using FileStamp = files::FileStamp;
  struct Credential {
    std::vector<FileStamp> stamps;
    std::shared_ptr<Loaded> loaded;  // null: never loaded
  };
  std::vector<FileStamp> stamps_of(const std::string& name) const;
  void load(const std::string& name, Credential& c) MG_REQUIRES(mutex_);
  void publish() MG_REQUIRES(mutex_);

  const std::string dir_;
  mutable Mutex mutex_;
  std::vector<gateway::ListenerPlan> listeners_ MG_GUARDED_BY(mutex_);
  std::map<std::string, Credential> credentials_ MG_GUARDED_BY(mutex_);
  std::atomic<std::shared_ptr<const std::vector<std::shared_ptr<Listener>>>> snapshot_;
  Poller poller_;
};

}  // namespace mg::proxy
