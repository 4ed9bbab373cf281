// meshguard-proxy: the data-plane sidecar.
//   standalone:         meshguard-proxy --config proxy.yaml [--workers N]
//   with control plane: meshguard-proxy --config proxy.yaml --control-plane HOST:PORT --ca-bundle ROOTS.pem
//                                       --state-dir DIR [--token-file F] [--bootstrap-timeout SECONDS]
// With a control plane, the config's `tls` and `policyDir` are replaced by the agent's state
// directory (agent/agent.h): the SVID and the pushed snapshot live there, and survive restarts;
// a push reaches the proxy in memory, the file is its fail-static copy for the next start.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "agent/loader.h"
#include "common/time.h"
#include "common/version.h"
#include "proxy/config.h"
#include "proxy/proxy.h"

namespace {
constexpr const char* kUsage =
    "usage: meshguard-proxy --config FILE [--workers N]\n"
    "       [--control-plane HOST:PORT --ca-bundle FILE --state-dir DIR [--token-file FILE]"
    " [--bootstrap-timeout SECONDS]]\n";

// What the agent tells the control plane for the service registry: the inbound listeners as bound
// (a port 0 in the config is known only now). A gateway's listeners (gateway mode: not in the
// config's inbound list) are registered as inbound ports whose app port is their own, so a Service
// whose targetPort is a listener's port selects it (an egress gateway reached through the registry).
std::vector<mg::agent::Agent::Hooks::InboundPort> registered_ports(
    const mg::proxy::ProxyConfig& config, const std::vector<mg::proxy::Proxy::Listener>& listeners) {
  std::vector<mg::agent::Agent::Hooks::InboundPort> out;
  auto port_of = [](const std::string& address) {
    return static_cast<uint32_t>(std::strtoul(address.c_str() + address.rfind(':') + 1, nullptr, 10));
  };
  for (size_t i = 0; i < config.inbound.size(); ++i) {
    const auto& in = config.inbound[i];
    const std::string name = "inbound[" + std::to_string(i) + "]";
    for (const auto& l : listeners) {
      if (l.name != name || l.address.rfind(':') == std::string::npos) continue;
      out.push_back({port_of(l.address), in.app_port, std::string(mg::proxy::to_string(in.protocol))});
    }
  }
  for (const auto& l : listeners) {
    if (!l.name.starts_with("gateway[") || l.address.rfind(':') == std::string::npos) continue;
    const uint32_t port = port_of(l.address);
    out.push_back({port, port, std::string(mg::proxy::to_string(mg::proxy::Protocol::Http))});
  }
  return out;
}

// The address to reach the listeners at: workload.address, else the first inbound listener bound
// to a specific address, else "" (the control plane then takes the address it sees the stream
// come from).
void add_registration(mg::agent::Agent::Hooks& hooks, const mg::proxy::ProxyConfig& config,
                      const std::vector<mg::proxy::Proxy::Listener>& listeners) {
  hooks.address = config.workload.address;
  for (const auto& in : config.inbound) {
    if (hooks.address.empty() && in.address != "0.0.0.0" && in.address != "::") hooks.address = in.address;
  }
  hooks.inbound_ports = registered_ports(config, listeners);
}

int usage(const char* why) {
  std::fprintf(stderr, "meshguard-proxy: %s\n%s", why, kUsage);
  return 2;
}

int help() {
  std::printf(
      "meshguard-proxy %s — the meshguard data-plane proxy (sidecar)\n%s\n"
      "Options:\n"
      "  -c, --config FILE            proxy config (YAML; docs/PROXY-CONFIG.md). Required\n"
      "  --workers N                  worker threads, 1..256 (default: the config's workers, else 1)\n"
      "  --control-plane HOST:PORT[,HOST:PORT...]\n"
      "                               bootstrap from and follow meshguard-control; several replicas: the\n"
      "                               next one when the one in use goes (default: standalone,\n"
      "                               TLS files and policyDir from the config)\n"
      "  --ca-bundle FILE             with --control-plane: the roots to trust the control plane by\n"
      "  --state-dir DIR              with --control-plane: where the SVID and the pushed snapshot live\n"
      "  --token-file FILE            with --control-plane: bootstrap token (meshguardctl token create)\n"
      "  --bootstrap-timeout SECONDS  with --control-plane: give up start-up after this long, 1..3600\n"
      "                               (default: 30)\n"
      "  -h, --help                   this help\n"
      "  --version                    print the version\n",
      mg::version(), kUsage);
  return 0;
}
int error_exit(const std::string& what) {
  std::fprintf(stderr, "meshguard-proxy: %s\n", what.c_str());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  long workers = -1;
  long bootstrap_timeout = 30;
  mg::agent::AgentOptions agent_options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if ((arg == "--config" || arg == "-c") && i + 1 < argc) {
      config_path = value();
    } else if (arg == "--workers" && i + 1 < argc) {
      char* end = nullptr;
      workers = std::strtol(value(), &end, 10);
      if (!end || *end != '\0' || workers < 1 || workers > 256) return usage("--workers must be 1..256");
    } else if (arg == "--control-plane" && i + 1 < argc) {
      agent_options.control_plane = value();
    } else if (arg == "--ca-bundle" && i + 1 < argc) {
      agent_options.ca_bundle_file = value();
    } else if (arg == "--token-file" && i + 1 < argc) {
      agent_options.token_file = value();
    } else if (arg == "--state-dir" && i + 1 < argc) {
      agent_options.state_dir = value();
    } else if (arg == "--bootstrap-timeout" && i + 1 < argc) {
      char* end = nullptr;
      bootstrap_timeout = std::strtol(value(), &end, 10);
      if (!end || *end != '\0' || bootstrap_timeout < 1 || bootstrap_timeout > 3600)
        return usage("--bootstrap-timeout must be 1..3600 seconds");
    } else if (arg == "--help" || arg == "-h") {
      return help();
    } else if (arg == "--version") {
      std::printf("meshguard-proxy %s\n", mg::version());
      return 0;
    } else {
      return usage(("unknown argument: " + arg).c_str());
    }
  }
  if (config_path.empty()) return usage("--config is required");
  const bool with_control_plane = !agent_options.control_plane.empty();
  auto config = mg::proxy::load_config(
      config_path, with_control_plane ? mg::proxy::ConfigMode::ControlPlane : mg::proxy::ConfigMode::Standalone);
  if (!config) return error_exit(config.error().to_string());
  if (workers > 0) config->workers = static_cast<uint32_t>(workers);

  std::unique_ptr<mg::agent::Agent> agent;
  if (with_control_plane) {
    agent_options.workload_name = config->workload.name;
    agent_options.ns = config->workload.ns;
    agent_options.service_account = config->workload.service_account;
    agent_options.labels = config->workload.labels;
    auto created = mg::agent::load_agent(agent_options);
    if (!created) return error_exit(created.error().to_string());
    agent = std::move(*created);
    // Fail closed: no traffic is served before this workload has an identity and its policies.
    if (auto st = agent->ensure_ready(std::chrono::seconds(bootstrap_timeout)); !st)
      return error_exit(st.error().to_string());
    config->tls = mg::tls::TlsFiles{agent->cert_chain_path(), agent->key_path(), agent->bundle_path(),
                                    agent->federated_bundles_path()};
    // The agent's file is read at start-up only (a restart before any push); pushes arrive parsed,
    // in memory, through on_config below.
    config->policy_dir = agent->policy_dir();
    config->policy_pushed = true;
    // The control plane's view of the workload (a registered Workload) wins over the file's labels,
    // so the proxy selects exactly the policies the control plane selected for it.
    config->workload.labels = agent->status().labels;
  } else if (!agent_options.ca_bundle_file.empty() || !agent_options.state_dir.empty() ||
             !agent_options.token_file.empty()) {
    return usage("--ca-bundle, --state-dir and --token-file need --control-plane");
  }

  const mg::proxy::ProxyConfig registered = *config;  // the agent's Hello describes it (below)
  auto proxy = mg::proxy::Proxy::create(std::move(*config));
  if (!proxy) return error_exit(proxy.error().to_string());
  if (agent) {
    mg::agent::Agent* a = agent.get();
    (*proxy)->set_control_plane_view([a, address = agent_options.control_plane] {
      auto st = a->status();
      return mg::proxy::ControlPlaneView{
          .address = address,
          .connected = st.connected,
          .version = st.config_version,
          .revision = st.config_revision,
          .received = st.config_received > 0 ? mg::timefmt::utc_rfc3339(st.config_received) : "",
          .last_error = st.last_error};
    });
  }
  if (auto st = (*proxy)->start(); !st) return error_exit(st.error().to_string());
  if (agent) {
    mg::proxy::Proxy* p = proxy->get();
    std::string admin_address;
    for (const auto& l : p->listeners()) {
      if (l.name == "admin") admin_address = l.address;
    }
    mg::agent::Agent::Hooks hooks{.on_credentials = [p] { p->reload_credentials(); },
                                  .on_config = [p](std::shared_ptr<const mg::policy::ResourceSet> resources,
                                                   const std::string& file_name, const std::string& text) {
                                    return p->apply_policies(std::move(resources), file_name, text);
                                  },
                                  .admin_address = admin_address,
                                  .take_insights = [p] { return p->take_insights(); }};
    add_registration(hooks, registered, p->listeners());
    agent->start(std::move(hooks));
    // A publish that opens or closes a gateway listener: the registry follows (a new Hello).
    p->on_listeners_changed(
        [a = agent.get(), &registered](const std::vector<mg::proxy::Proxy::Listener>& listeners) {
          a->update_inbound_ports(registered_ports(registered, listeners));
        });
  }
  int code = (*proxy)->run();
  if (agent) agent->stop();
  return code;
}
