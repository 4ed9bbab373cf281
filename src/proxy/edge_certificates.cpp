#include "proxy/edge_certificates.h"

#include "proxy/report.h"
#include "tls/edge.h"

namespace mg::proxy {

// One credentialName's context.
struct EdgeCertificates::Loaded {
  crypto::SslCtxPtr ctx;
};

// One listener's front context and, per server host, the context it shows (null: its
// credential never loaded). The front context's SNI callback points here, and the
// asio::ssl::context handed to a stream is an alias of this object: it lives as long as a
// handshake that started with it.
struct EdgeCertificates::Listener {
  std::vector<std::pair<std::string, std::shared_ptr<Loaded>>> by_host;  // in server order
  std::optional<asio::ssl::context> front;

  static SSL_CTX* choose(void* arg, std::string_view server_name) {
    const auto* self = static_cast<const Listener*>(arg);
    if (self->by_host.empty()) return nullptr;
    const std::pair<std::string, std::shared_ptr<Loaded>>* best = nullptr;
    if (server_name.empty()) {
      best = &self->by_host.front();
    } else {
      size_t best_rank = 0;
      for (const auto& entry : self->by_host) {
        if (!gateway::host_matches(entry.first, server_name)) continue;
        const size_t rank = entry.first == "*"              ? 1
                            : entry.first.starts_with("*.") ? 2 + entry.first.size()
                                                            : 100000 + entry.first.size();
        if (rank > best_rank) {
          best = &entry;
          best_rank = rank;
        }
      }
    }
    return best && best->second ? best->second->ctx.get() : nullptr;
  }
};

std::vector<EdgeCertificates::FileStamp> EdgeCertificates::stamps_of(const std::string& name) const {
  std::vector<FileStamp> out;
  for (const char* file : {"tls.crt", "tls.key"})
    out.push_back(files::stamp_of(dir_ + "/" + name + "/" + file));
  return out;
}

void EdgeCertificates::load(const std::string& name, Credential& c) {
  c.stamps = stamps_of(name);
  const std::string base = dir_ + "/" + name + "/";
  auto ctx = tls::edge_server_context(base + "tls.crt", base + "tls.key");
  if (!ctx) {
    log_line("gateway credential " + name +
             (c.loaded ? " reload failed, keeping the previous one: " : " not loaded: ") +
             ctx.error().to_string());
    return;
  }
  const bool reloaded = c.loaded != nullptr;
  c.loaded = std::make_shared<Loaded>(Loaded{std::move(*ctx)});
  log_line("gateway credential " + name + (reloaded ? " reloaded" : " loaded") + " from " + base);
}

void EdgeCertificates::configure(const std::vector<gateway::ListenerPlan>& listeners) {
  MutexLock lock(mutex_);
  listeners_ = listeners;
  for (const auto& l : listeners_)
    for (const auto& s : l.servers)
      if (!s.server.credential_name.empty() && !credentials_.contains(s.server.credential_name))
        load(s.server.credential_name, credentials_[s.server.credential_name]);
  publish();
}

void EdgeCertificates::reload(bool force) {
  MutexLock lock(mutex_);
  bool changed = false;
  for (auto& [name, c] : credentials_) {
    if (!force && stamps_of(name) == c.stamps) continue;
    load(name, c);
    changed = true;
  }
  if (changed) publish();
}

void EdgeCertificates::publish() {
  auto out = std::make_shared<std::vector<std::shared_ptr<Listener>>>();
  for (const auto& l : listeners_) {
    // Not SIMPLE, or a listener given up (no servers: closed, or closing).
    if (l.tls_mode != policy::GatewayServer::TlsMode::Simple || l.servers.empty()) {
      out->push_back(nullptr);
      continue;
    }
    auto listener = std::make_shared<Listener>();
    for (const auto& s : l.servers) {
      const auto it = credentials_.find(s.server.credential_name);
      for (const auto& host : s.server.hosts) {
        const auto slash = host.find('/');  // "NS/HOST": the namespace part is for binding only
        listener->by_host.emplace_back(slash == std::string::npos ? host : host.substr(slash + 1),
                                       it == credentials_.end() ? nullptr : it->second.loaded);
      }
    }
    auto front = tls::edge_front_context(&Listener::choose, listener.get());
    if (!front) {
      log_line("gateway listener context: " + front.error().to_string());
      out->push_back(nullptr);
      continue;
    }
    listener->front.emplace(front->release());  // asio::ssl::context owns it from here
    out->push_back(std::move(listener));
  }
  snapshot_.store(std::move(out));
}

std::shared_ptr<asio::ssl::context> EdgeCertificates::context(size_t index) const {
  auto snapshot = snapshot_.load();
  if (!snapshot || index >= snapshot->size() || !(*snapshot)[index]) return nullptr;
  const std::shared_ptr<Listener>& listener = (*snapshot)[index];
  return std::shared_ptr<asio::ssl::context>(listener, &*listener->front);
}

}  // namespace mg::proxy
