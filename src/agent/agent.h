// agent/agent.h — the control-plane agent inside meshguard-proxy: it generates the workload's key
// locally (P-256; the key never leaves the host), gets an X.509-SVID for it (a bootstrap token
// the first time, its current certificate afterwards), renews at half-life with jitter and
// backoff, watches the configuration stream, and keeps the last good snapshot on disk so the
// proxy enforces it across restarts while the control plane is away (fail static).
//
// State directory (0700), the files the proxy itself reads:
//   key.pem (0600), cert-chain.pem, root-cert.pem      the SVID (tls section of the proxy)
//   federated-bundles.pem, control-plane-roots.pem     several meshes (docs/MESHES.md): the
//                                                       federated trust domains' roots, and the
//                                                       control plane's for a non-default mesh
//   policies/snapshot.yaml                              the documents pushed for this workload
//                                                       (the proxy reads it at start-up only)
//   snapshot.json                                       {version, revision, receivedUnix, labels}
// A snapshot is parsed once, here, and handed to the proxy in memory (Hooks::on_config), whose
// compile validates it (before start(): compiled here); one that does not parse or compile is
// refused (NACK), the previous file is put back and the last good policy stays in force.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/result.h"
#include "policy/resources.h"
#include "telemetry/insights.h"

namespace mg::agent {

struct AgentOptions {
  // host:port, or several comma-separated (control-plane replicas sharing one store): the agent
  // uses one at a time and moves to the next when it cannot reach it or its stream ends.
  std::string control_plane;
  std::string ca_bundle_file;  // roots trusted for the control plane (its CA's root-cert.pem)
  std::string token_file;      // bootstrap token (needed only while no valid SVID is stored)
  std::string state_dir;
  std::string workload_name;
  std::string ns;                              // expected identity (checked against the SVID)
  std::string service_account;
  std::map<std::string, std::string> labels;   // used by the control plane only if unregistered
};

enum class CertState { Initializing, Available, Unavailable };
const char* to_string(CertState s);

struct AgentStatus {
  CertState cert_state = CertState::Initializing;
  std::string spiffe_id, serial;
  std::time_t not_after = 0;
  std::string config_version;
  int64_t config_revision = 0;    // store revision of the snapshot in force
  std::time_t config_received = 0;
  std::map<std::string, std::string> labels;  // as the control plane knows the workload (last snapshot)
  bool connected = false;
  std::string last_error;
};

// A pure interface (the implementation is in agent.cpp): meshguard-proxy loads the agent at run
// time (agent/loader.h) and calls it only through this table, so a standalone proxy maps none of
// gRPC. No out-of-line virtual member here, so every user gets the type information it needs.
class Agent {
 public:
  // Called after new files are in place. on_config hands the pushed policies over in memory, as
  // parsed here (once), with the name and text of the file just written to policy_dir() as the
  // fail-static copy; it returns the proxy's verdict (its compile is the validation: NACK on error).
  struct Hooks {
    std::function<void()> on_credentials;
    std::function<Status(std::shared_ptr<const policy::ResourceSet> resources, const std::string& file_name,
                         const std::string& text)>
        on_config;
    std::string admin_address;  // the proxy's admin endpoint, told to the control plane (proxy-config)
    // Service registration, told to the control plane in every Hello: where other proxies reach
    // this one ("" : the control plane takes the stream's peer address) and its inbound listeners.
    struct InboundPort {
      uint32_t port = 0;      // the listener's bound port
      uint32_t app_port = 0;  // the workload's port behind it
      std::string protocol;   // http | http2 | grpc | tcp
    };
    std::string address;
    std::vector<InboundPort> inbound_ports;
    // The console's telemetry (telemetry/insights.h): taken every insights_interval while the
    // stream is up and sent on it as one Telemetry message when not empty. Null: none sent.
    std::function<telemetry::InsightBatch()> take_insights;
    std::chrono::milliseconds insights_interval{3000};
  };

  static Result<std::unique_ptr<Agent>> create(AgentOptions options);
  virtual ~Agent() = default;

  // Blocks until the state directory holds a valid SVID and a snapshot (fetched now if missing),
  // or `timeout` passes. A restart with both persisted returns at once: the control plane may be down.
  virtual Status ensure_ready(std::chrono::seconds timeout) = 0;

  // Background renewal and config watch; hooks run on the agent's threads.
  virtual void start(Hooks hooks) = 0;
  virtual void stop() = 0;

  // The proxy's inbound listeners changed (a gateway opened or closed one at a publish): the next
  // Hello carries `ports`, and the stream in use is restarted so the control plane's registry
  // follows now. Any thread, after start().
  virtual void update_inbound_ports(std::vector<Hooks::InboundPort> ports) = 0;

  virtual AgentStatus status() const = 0;
  virtual std::string cert_chain_path() const = 0;
  virtual std::string key_path() const = 0;
  virtual std::string bundle_path() const = 0;
  virtual std::string policy_dir() const = 0;
  // The federated trust domains' bundles (docs/MESHES.md); the file may be absent (no federation).
  virtual std::string federated_bundles_path() const = 0;
};

}  // namespace mg::agent
