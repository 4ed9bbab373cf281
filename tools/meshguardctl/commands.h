// meshguardctl command groups. Each group adds its sub-commands to the CLI11 app and stores
// the action to run; main() parses once and runs it. A command returns the process exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace mg::ctl {

// Set by the sub-command that was selected; main() runs it after parsing.
using Action = std::function<int()>;

// Prints one clear line on stderr ("meshguardctl: <what>") and returns exit code 1.
int fail_line(const std::string& what);
// Prints "meshguardctl: warning: <what>" on stderr, unless `what` is empty.
void warn_line(const std::string& what);

void register_ca_commands(CLI::App& app, Action& action);    // cmd_ca.cpp: ca init | ca rotate
void register_cert_commands(CLI::App& app, Action& action);  // cmd_cert.cpp: cert issue | cert inspect
void register_authz_commands(CLI::App& app, Action& action);
void register_analyze_commands(CLI::App& app, Action& action);
void register_apply_commands(CLI::App& app, Action& action);  // cmd_apply.cpp: apply | delete | diff
void register_get_commands(CLI::App& app, Action& action);    // cmd_get.cpp: get | describe
// cmd_control.cpp: workload list | token create | version
void register_control_commands(CLI::App& app, Action& action);
// cmd_completion.cpp: completion bash | zsh | fish, generated from the parsed command tree.
void register_completion_command(CLI::App& app, Action& action);
void register_rego_commands(CLI::App& app, Action& action);  // cmd_rego.cpp: rego eval
void register_proxy_commands(CLI::App& app, Action& action);  // cmd_proxy.cpp: proxy-config secret|policies|endpoints
// cmd_dashboard.cpp: dashboard — the zero-trust console on a local listener (docs/CONSOLE.md).
void register_dashboard_command(CLI::App& app, Action& action);
// `ca rotate` without --dir: the control plane's two-phase rotation (cmd_control.cpp).
int rotate_ca_online(const std::string& server, const std::string& admin_dir, int wait_seconds);
// Each issue's command group declares its register_*() here and adds one call in main.cpp.

}  // namespace mg::ctl
