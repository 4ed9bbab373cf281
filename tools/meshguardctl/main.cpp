// meshguardctl: the operator's CLI (certificates, offline policy checks, later the admin API).
#include <iostream>

#include "commands.h"

namespace mg::ctl {

int fail_line(const std::string& what) {
  std::cerr << "meshguardctl: " << what << "\n";
  return 1;
}

void warn_line(const std::string& what) {
  if (!what.empty()) std::cerr << "meshguardctl: warning: " << what << "\n";
}

void register_version_command(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("version", "Print the meshguard version");
  cmd->callback([&action] {
    action = [] {
      std::cout << "meshguardctl 0.1.0\n";
      return 0;
    };
  });
}

}  // namespace mg::ctl

int main(int argc, char** argv) {
  CLI::App app{"meshguardctl — operate a meshguard zero-trust mesh"};
  app.require_subcommand(1);
  // Usage errors are one line on stderr, like every other meshguardctl error.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("meshguardctl: ") + e.what() + " (see --help)\n";
  });
  mg::ctl::Action action;
  mg::ctl::register_version_command(app, action);
  mg::ctl::register_ca_commands(app, action);
  mg::ctl::register_cert_commands(app, action);
  mg::ctl::register_authz_commands(app, action);
  mg::ctl::register_analyze_commands(app, action);
  mg::ctl::register_control_commands(app, action);
  mg::ctl::register_rego_commands(app, action);
  mg::ctl::register_proxy_commands(app, action);
  // Command groups: one call per group.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return action ? action() : 0;
}
