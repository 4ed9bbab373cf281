// proxy/policy_state.h — the policy in force and the one path that loads and publishes it.
// Loading reads policyDir (policy_watch.h: stat pass, content hash), or takes resources already
// parsed (the agent's push, handed over in memory: apply()), compiles them (load_policy_chains /
// compile_policy_chains), and publishes as one unit: the PublishedPolicy snapshot (what /config_dump
// shows and what each inbound port's mTLS mode is), the chains every request and connection runs
// (ChainSet), and the jwksUri set the key fetcher keeps fresh (JwksKeys). Start-up fails closed on
// a bad directory; a later reload that fails keeps the last good version, and the error is logged
// once, counted and kept. Watchers of a publish (the connection manager re-judging live
// connections) are told through on_publish. With a control plane (config.policy_pushed) policyDir
// is the agent's fail-static copy: read at start-up only, never polled; updates come by apply().
// A load whose resources differ from those in force only in their ServiceEndpoints (an endpoint
// joined, left or changed health: the commonest push in a mesh) compiles nothing: it publishes the
// same chains with a new registry (with_new_endpoints), and live connections are not re-judged
// (the chains would decide the same); only the pools of endpoints that left are dropped.
// Owns: the published policy, the ChainSet, the JwksKeys, the directory's watch state, and the
// resources and chains in force (to tell an endpoints-only change).
#pragma once

#include <asio.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/thread_annotations.h"
#include "policy/engine.h"
#include "proxy/chain.h"
#include "proxy/config.h"
#include "proxy/jwks_keys.h"
#include "proxy/policy_chain.h"
#include "proxy/policy_watch.h"
#include "proxy/poller.h"

namespace mg::proxy {

class Report;

// The policy in force: compiled snapshot (null without policyDir), its version and origins, and
// what it makes of each inbound port. Immutable; replaced as a whole by a reload.
struct PublishedPolicy {
  uint64_t version = 0;  // 0: no policyDir; 1: the start-up load; +1 per successful reload
  std::string hash;      // combined content hash of the files (policy_watch.h)
  std::string loaded_at;
  std::vector<PolicyFileDigest> files;
  std::vector<PolicyOrigin> origins;
  std::shared_ptr<const policy::AuthzSnapshot> snapshot;
  size_t resources = 0;
  std::vector<EffectiveMtls> inbound_modes;  // one per config.inbound entry
  std::shared_ptr<const Registry> registry;   // never null (empty without services)
  // DestinationRules (TLS origination); never null (empty without rules)
  std::shared_ptr<const DestinationRules> destination_rules;
  // The VirtualServices bound to `mesh` and the ServiceEntries (proxy/egress.h); never null
  std::shared_ptr<const MeshRouting> mesh_routing;
  // What it was compiled from (null without policyDir): the gateway mode's routing documents.
  std::shared_ptr<const policy::ResourceSet> resource_set;
};

class PolicyState {
 public:
  // Told after every successful reload, with what was published (any thread; not at start-up).
  // `chains_changed` is false when only the endpoints changed (the chains are those in force).
  using PublishHook = std::function<void(const std::shared_ptr<const PublishedPolicy>&,
                                         const std::shared_ptr<const RequestChain>&,
                                         const std::shared_ptr<const ConnectionChain>&, bool chains_changed)>;

  // `config` outlives this (its policyDir, workload, inbound ports and tls section are read).
  PolicyState(const ProxyConfig& config, Report& report, std::atomic<uint64_t>& config_version);
  PolicyState(const PolicyState&) = delete;
  PolicyState& operator=(const PolicyState&) = delete;

  // Start-up: loads policyDir (if configured); fails closed on any error.
  Status load_initial();
  // config.inbound grows: `append` adds ports to it (a gateway listener just bound, on the main
  // thread; proxy/gateway_mode.h), under the reload lock, so that a reload on another thread
  // computes the modes of every port or of none of the new ones; then the policy in force gets
  // their modes, before any connection reaches them. The vector must not reallocate (its capacity
  // is reserved before start-up: connections hold references into it).
  void add_inbound(const std::function<void()>& append);
  // Reads the directory's content hash and reloads when it differs from the last attempt (or
  // always, with `force`). Any thread; reloads are serialized.
  Status reload(bool force);
  void on_publish(PublishHook hook) { on_publish_ = std::move(hook); }

  // Compiles and publishes resources parsed elsewhere (the agent's push; `files` are the digests
  // of the text it wrote to policyDir, for /config_dump). Same outcome as a reload: on failure the
  // last good policy stays and the error is returned. Any thread.
  Status apply(std::shared_ptr<const policy::ResourceSet> resources, std::vector<PolicyFileDigest> files);

  // How many publishes were parsed here from policyDir and how many arrived parsed (apply()):
  // shown in /config_dump, so a test can tell that a push is not parsed again from its file. Of
  // the loads, how many compiled the policies and how many changed only the endpoints (no compile).
  struct Loads {
    uint64_t directory = 0;
    uint64_t pushed = 0;
    uint64_t compiles = 0;
    uint64_t endpoints_only = 0;
  };
  Loads loads() const {
    return {directory_loads_.load(), pushed_loads_.load(), compiles_.load(), endpoints_only_.load()};
  }

  // The 250 ms poll on `io` until stop_polling() (both on `io`'s thread); none with policy_pushed.
  void start_polling(asio::io_context& io);
  void stop_polling();

  std::shared_ptr<const PublishedPolicy> current() const { return published_.load(); }
  // The listener mode of inbound port `index` under the policy in force.
  MtlsMode port_mode(size_t index) const { return published_.load()->inbound_modes[index].mode; }
  ChainSet& chains() { return chains_; }
  const ChainSet& chains() const { return chains_; }
  const JwksKeys& jwks() const { return jwks_; }

  struct LastError {
    std::string message;  // "" after a success
    std::string at;       // RFC 3339
  };
  LastError last_error() const;

 private:
  struct Loaded {
    std::shared_ptr<PublishedPolicy> state;
    PolicyChains chains;
    std::shared_ptr<const policy::ResourceSet> resources;
    bool chains_changed = true;
  };
  // The one load: compiles `pushed`, or else policyDir, into the state to publish as `version`
  // (or, for an endpoints-only change, takes the chains in force with a new registry).
  Result<Loaded> load(std::shared_ptr<const policy::ResourceSet> pushed, const std::string& hash,
                      std::vector<PolicyFileDigest> files, uint64_t version) MG_REQUIRES(mutex_);
  // The one publish: keys, snapshot, chains.
  std::shared_ptr<const PublishedPolicy> publish(Loaded loaded) MG_REQUIRES(mutex_);
  Status reload_locked(std::shared_ptr<const policy::ResourceSet> pushed, const std::string& hash,
                       std::vector<PolicyFileDigest> files) MG_REQUIRES(mutex_);
  void record_failure(const std::string& error) MG_REQUIRES(mutex_);
  std::vector<EffectiveMtls> inbound_modes(const policy::AuthzSnapshot* snapshot) const;
  void poll();

  const ProxyConfig& config_;
  Report& report_;
  std::atomic<uint64_t>& config_version_;
  ChainSet chains_;
  std::atomic<std::shared_ptr<const PublishedPolicy>> published_;  // never null
  JwksKeys jwks_;  // jwksUri keys for the policy in force, fetched off the request path
  PublishHook on_publish_;
  std::atomic<uint64_t> directory_loads_{0}, pushed_loads_{0}, compiles_{0}, endpoints_only_{0};

  // Reloads (the poll on the main loop, or reload() from any thread) are serialized by this
  // mutex, which also guards the watch state and the last error below.
  mutable Mutex mutex_;
  std::vector<PolicyFileStamp> stamps_ MG_GUARDED_BY(mutex_);
  std::string attempted_hash_ MG_GUARDED_BY(mutex_);  // content hash of the last load attempt ("" = none yet)
  std::string error_ MG_GUARDED_BY(mutex_);           // last failed reload ("" after a success)
  std::string error_at_ MG_GUARDED_BY(mutex_);
  unsigned polls_ MG_GUARDED_BY(mutex_) = 0;
  // What the published policy was loaded from and compiled into (null before the first load).
  std::shared_ptr<const policy::ResourceSet> in_force_resources_ MG_GUARDED_BY(mutex_);
  PolicyChains in_force_chains_ MG_GUARDED_BY(mutex_);

  Poller poller_;
};

}  // namespace mg::proxy
