#include "proxy/policy_state.h"

#include "policy/load.h"
#include "proxy/report.h"
#include "telemetry/access_log.h"

namespace mg::proxy {

PolicyState::PolicyState(const ProxyConfig& config, Report& report, std::atomic<uint64_t>& config_version)
    : config_(config), report_(report), config_version_(config_version) {
  auto initial = std::make_shared<PublishedPolicy>();
  initial->inbound_modes = inbound_modes(nullptr);
  initial->registry = Registry::build({}, "cluster.local", config.workload.ns);
  initial->destination_rules = std::move(*DestinationRules::build({}, config.workload.ns, "istio-system"));
  initial->mesh_routing = MeshRouting::build({});
  published_.store(std::move(initial));
}

std::vector<EffectiveMtls> PolicyState::inbound_modes(const policy::AuthzSnapshot* snapshot) const {
  std::vector<EffectiveMtls> out;
  for (const auto& port : config_.inbound)
    out.push_back(effective_mtls(port, config_.tls.has_value(), snapshot));
  return out;
}

Result<PolicyState::Loaded> PolicyState::load(std::shared_ptr<const policy::ResourceSet> pushed,
                                              const std::string& hash, std::vector<PolicyFileDigest> files,
                                              uint64_t version) {
  std::shared_ptr<const policy::ResourceSet> resources = std::move(pushed);
  if (resources) {
    pushed_loads_.fetch_add(1);
  } else {
    auto read = policy::load_resource_files({*config_.policy_dir});
    directory_loads_.fetch_add(1);
    if (!read) return fail(read.error());
    resources = std::make_shared<const policy::ResourceSet>(std::move(*read));
  }
  const bool endpoints_only =
      in_force_resources_ && endpoints_only_change(*in_force_resources_, *resources);
  auto chains = endpoints_only ? with_new_endpoints(in_force_chains_, *resources, config_.workload,
                                                    config_.num_trusted_proxies)
                               : compile_policy_chains(*resources, config_.workload, jwks_.provider(),
                                                       config_.num_trusted_proxies);
  if (!chains) return fail(chains.error());
  (endpoints_only ? endpoints_only_ : compiles_).fetch_add(1);
  auto state = std::make_shared<PublishedPolicy>();
  state->version = version;
  state->hash = hash;
  state->loaded_at = telemetry::now_rfc3339();
  state->files = std::move(files);
  state->origins = chains->origins;
  state->snapshot = chains->snapshot;
  state->resources = chains->resources;
  state->inbound_modes = inbound_modes(state->snapshot.get());
  // Passive health (ejections, requests in flight) survives the publish for endpoints that stay.
  chains->registry->carry_health(*published_.load()->registry);
  state->registry = chains->registry;
  state->destination_rules = chains->destination_rules;
  state->mesh_routing = chains->mesh_routing;
  state->resource_set = resources;
  return Loaded{std::move(state), std::move(*chains), std::move(resources), !endpoints_only};
}

std::shared_ptr<const PublishedPolicy> PolicyState::publish(Loaded loaded) {
  std::shared_ptr<const PublishedPolicy> published = std::move(loaded.state);
  jwks_.retarget(published->snapshot->jwt_rules());
  published_.store(published);
  if (loaded.chains_changed) chains_.replace(loaded.chains.request, loaded.chains.connection);
  // A relabel (the Workload document changed) reaches the metrics and the metadata exchange too.
  report_.set_own_labels(loaded.chains.own_labels);
  in_force_resources_ = std::move(loaded.resources);
  in_force_chains_ = std::move(loaded.chains);
  return published;
}

Status PolicyState::load_initial() {
  if (!config_.policy_dir) return {};
  // Fail closed: a policy directory that does not load or compile refuses start-up (later
  // reloads keep the last good version instead).
  MutexLock lock(mutex_);
  if (auto stamps = stat_policy_dir(*config_.policy_dir)) stamps_ = std::move(*stamps);
  auto files = digest_policy_dir(*config_.policy_dir);
  if (!files) return fail(files.error());
  std::string hash = combined_policy_hash(*files);
  auto loaded = load(nullptr, hash, std::move(*files), 1);
  if (!loaded) return fail(loaded.error());
  attempted_hash_ = hash;
  publish(std::move(*loaded));
  return {};
}

void PolicyState::add_inbound(const std::function<void()>& append) {
  MutexLock lock(mutex_);
  append();
  auto state = std::make_shared<PublishedPolicy>(*published_.load());
  state->inbound_modes = inbound_modes(state->snapshot.get());
  published_.store(std::move(state));
}

void PolicyState::record_failure(const std::string& error) {
  error_ = error;
  error_at_ = telemetry::now_rfc3339();
  report_.registry()
      .counter("meshguard_config_reload_total", {{"resource", "policy"}, {"result", "error"}})
      .inc();
  log_line("policy reload failed, keeping version " + std::to_string(published_.load()->version) + ": " +
           error_);
}

// On success the next request on every connection and every new connection sees the new policy,
// and the publish hook re-judges live connections. Caller holds mutex_.
Status PolicyState::reload_locked(std::shared_ptr<const policy::ResourceSet> pushed, const std::string& hash,
                                  std::vector<PolicyFileDigest> files) {
  attempted_hash_ = hash;
  auto previous = published_.load();
  auto loaded = load(std::move(pushed), hash, std::move(files), previous->version + 1);
  if (!loaded) {
    record_failure(loaded.error().to_string());
    return fail(loaded.error());
  }
  auto request_chain = loaded->chains.request;
  auto connection_chain = loaded->chains.connection;
  const bool chains_changed = loaded->chains_changed;
  auto published = publish(std::move(*loaded));
  error_.clear();
  error_at_.clear();
  config_version_.fetch_add(1);
  report_.registry()
      .counter("meshguard_config_reload_total", {{"resource", "policy"}, {"result", "success"}})
      .inc();
  std::string modes;
  for (size_t i = 0; i < published->inbound_modes.size(); ++i) {
    if (previous->inbound_modes[i].mode != published->inbound_modes[i].mode) {
      modes += "; inbound[" + std::to_string(i) + "] mTLS " +
               std::string(to_string(previous->inbound_modes[i].mode)) + " -> " +
               std::string(to_string(published->inbound_modes[i].mode));
    }
  }
  log_line("policy reloaded: version " + std::to_string(published->version) + ", " +
           std::to_string(published->resources) + " resource(s), hash " + published->hash.substr(0, 16) +
           (chains_changed ? "" : " (endpoints only: not compiled)") + modes);
  if (on_publish_) on_publish_(published, request_chain, connection_chain, chains_changed);
  return {};
}

Status PolicyState::reload(bool force) {
  if (!config_.policy_dir) return {};
  MutexLock lock(mutex_);
  auto stamps = stat_policy_dir(*config_.policy_dir);
  stamps_ = stamps ? std::move(*stamps) : std::vector<PolicyFileStamp>{};
  auto files = digest_policy_dir(*config_.policy_dir);
  if (!files) {
    // Unreadable or missing directory: the last good policy stays; report once per distinct error.
    std::string key = "error:" + files.error().to_string();
    if (!force && key == attempted_hash_) return fail(files.error());
    attempted_hash_ = key;
    record_failure(files.error().to_string());
    return fail(files.error());
  }
  std::string hash = combined_policy_hash(*files);
  if (!force && hash == attempted_hash_) return {};
  return reload_locked(nullptr, hash, std::move(*files));
}

Status PolicyState::apply(std::shared_ptr<const policy::ResourceSet> resources,
                          std::vector<PolicyFileDigest> files) {
  if (!config_.policy_dir) return fail("proxy.no_policy_dir", "no policyDir is configured");
  if (!resources) return fail("proxy.no_resources", "no resources to apply");
  MutexLock lock(mutex_);
  std::string hash = combined_policy_hash(files);
  return reload_locked(std::move(resources), hash, std::move(files));
}

// A stat pass each time; the content is hashed when the stat pass changed, and every 16th poll
// anyway (an in-place rewrite of equal size within one mtime tick).
void PolicyState::poll() {
  {
    MutexLock lock(mutex_);
    auto stamps = stat_policy_dir(*config_.policy_dir);
    bool changed = !stamps || *stamps != stamps_;
    if (!changed && ++polls_ % 16 != 0) return;
  }
  (void)reload(false);
}

void PolicyState::start_polling(asio::io_context& io) {
  // With a control plane the agent's push is the update path; polling its file would parse it again.
  if (!config_.policy_dir || config_.policy_pushed) return;
  poller_.start(io, std::chrono::milliseconds(250), [this] { poll(); });
}

void PolicyState::stop_polling() { poller_.stop(); }

PolicyState::LastError PolicyState::last_error() const {
  MutexLock lock(mutex_);
  return {error_, error_at_};
}

}  // namespace mg::proxy
