// proxy/proxy.h — meshguard-proxy's runtime: N workers (one io_context + thread each), the
// listeners (inbound http|tcp with STRICT/PERMISSIVE/DISABLE mTLS from PeerAuthentication or the
// config override, outbound mTLS routes, admin), certificate and policyDir hot reload, graceful drain.
//
// Usage (tools/meshguard-proxy is exactly this):
//   auto proxy = Proxy::create(config);         // loads credentials, opens the access log
//   proxy->start();                             // binds, prints "listening <kind>[i] ADDR:PORT"
//   return proxy->run();                        // until SIGTERM/SIGINT + drain
//
// Listener lines on stdout (tests read them, ports may be 0 in the config):
//   listening inbound[0] 127.0.0.1:41234
//   listening outbound[0] 127.0.0.1:41235
//   listening gateway[0] 0.0.0.0:41237          (gateway mode: proxy/gateway_mode.h; also printed
//   listening admin 127.0.0.1:41236               when a publish opens a gateway listener later)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policy/resources.h"
#include "proxy/chain.h"
#include "proxy/config.h"
#include "telemetry/insights.h"
#include "telemetry/metrics.h"

namespace mg::proxy {

// With a control plane: what /config_dump shows under "controlPlane" (the agent's view of the
// snapshot in force; `revision` is the store revision `apply` and `workload list` print).
struct ControlPlaneView {
  std::string address;
  bool connected = false;
  std::string version;     // content hash of the snapshot in force
  int64_t revision = 0;    // store revision it was computed at
  std::string received;    // RFC 3339, "" if unknown
  std::string last_error;  // why the config stream last ended, "" if never
};

class Proxy {
 public:
  static Result<std::unique_ptr<Proxy>> create(ProxyConfig config);
  ~Proxy();

  Status start();
  // Runs until a drain completes; returns the process exit code.
  int run();
  // Same as SIGTERM: stop accepting, finish in-flight requests, close idle connections.
  void request_drain();

  // The seam for the policy engine: publish new chains (thread-safe, takes effect per request).
  // A policyDir reload replaces them.
  ChainSet& chains();

  // Reloads policyDir now (thread-safe; the same as the 250 ms poll noticing a change, but
  // unconditional). On success the new policy is in force for new connections and for the next
  // request on every existing one, live TCP connections it no longer allows are closed; on
  // failure the last good policy stays in force and the error (file:line) is returned, logged,
  // counted and shown in /config_dump. A writer should replace files atomically (rename).
  // Callable from any thread between create() and the Proxy's destruction.
  Status reload_policies();
  // The agent's push, handed over in memory: `resources` as the agent parsed them, `text` what it
  // wrote to policyDir/`file_name` as the fail-static copy (its digest is the version hash in
  // /config_dump, as for a directory load). Compiled and published like a reload, with the same
  // outcome on failure; the file is not read back. Thread-safe.
  Status apply_policies(std::shared_ptr<const policy::ResourceSet> resources, const std::string& file_name,
                        std::string_view text);
  // Re-reads the certificate chain, key and trust bundle now (thread-safe; the 1 s poll's code).
  // New handshakes use them; a bad file keeps the previous credentials.
  void reload_credentials();
  telemetry::Registry& metrics();
  // What the inbound enforcement decided, per flow, for the control plane's console (thread-safe).
  telemetry::InsightBatch take_insights();
  // Before start(): where /config_dump reads the control plane's view from (called per request).
  void set_control_plane_view(std::function<ControlPlaneView()> view);

  struct Listener {
    std::string name;     // "inbound[0]", "outbound[1]", "admin"
    std::string address;  // "127.0.0.1:41234" (the bound port, also when the config said 0)
  };
  // After start(), before run(): every bound listener.
  std::vector<Listener> listeners() const;
  // Before run(): told, on the proxy's main thread, every bound listener after a publish opened or
  // closed gateway listeners (gateway mode), so the agent can register the ports again.
  void on_listeners_changed(std::function<void(const std::vector<Listener>&)> hook);

  struct Impl;

 private:
  explicit Proxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mg::proxy
