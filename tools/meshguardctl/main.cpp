// meshguardctl: the operator's CLI — certificates, offline policy checks, and the control plane's
// admin API. main() parses once and runs the selected command (commands.h).
#include <iostream>

#include <grpc/grpc.h>

#include "admin_client.h"
#include "commands.h"
#include "common/version.h"

namespace mg::ctl {

int fail_line(const std::string& what) {
  std::cerr << "meshguardctl: " << what << "\n";
  return 1;
}

void warn_line(const std::string& what) {
  if (!what.empty()) std::cerr << "meshguardctl: warning: " << what << "\n";
}

}  // namespace mg::ctl

namespace {
// `meshguardctl --help`: the index a newcomer reads first, in the order the commands are met.
constexpr const char* kIndex = R"(
Getting started (docs/OPERATIONS.md walks each step):
  control plane    meshguard-control --data-dir DIR; then export MESHGUARD_SERVER=HOST:PORT
                   MESHGUARD_ADMIN_DIR=DIR/admin for the commands below
  a proxy          meshguardctl token create --namespace NS --service-account SA
  policies         meshguardctl apply -f FILE    (diff -f FILE first; --dry-run=server to validate)
  look around      meshguardctl get all -A       (describe ap/NAME: the workloads it selects)
                   meshguardctl workload list    (identity, certificate, config state)
  ask a question   meshguardctl authz check -f FILE --request REQ.json --explain
                   meshguardctl analyze -f FILE
  offline CA       meshguardctl ca init | cert issue | cert inspect
Resource types: ap, pa, ra, wl, mesh, opa, svc, endpoints, gw, vs, se (or their kind, plural, KIND.GROUP), all.
Every command answers --help. Exit status: 0 success, 1 an error (one line on stderr).)";
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"meshguardctl " + std::string(mg::version()) + " — operate a meshguard zero-trust mesh"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("meshguardctl ") + mg::version());
  app.footer(kIndex);
  // Usage errors are one line on stderr, like every other meshguardctl error.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("meshguardctl: ") + e.what() + " (see --help)\n";
  });
  mg::ctl::Action action;
  // --mesh NAME is global: given before or after the sub-command (fall-through is inherited by
  // the sub-commands added below).
  mg::ctl::add_mesh_option(app);
  app.fallthrough();
  // Command groups: one call per group.
  mg::ctl::register_apply_commands(app, action);
  mg::ctl::register_get_commands(app, action);
  mg::ctl::register_control_commands(app, action);
  mg::ctl::register_authz_commands(app, action);
  mg::ctl::register_analyze_commands(app, action);
  mg::ctl::register_ca_commands(app, action);
  mg::ctl::register_cert_commands(app, action);
  mg::ctl::register_rego_commands(app, action);
  mg::ctl::register_proxy_commands(app, action);
  mg::ctl::register_dashboard_command(app, action);
  mg::ctl::register_completion_command(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // gRPC finishes tearing a channel down on its own threads; returning while they still run can
  // leave its TLS objects half-freed when the process exits (LeakSanitizer saw it once under
  // load). Holding one library reference for the command and releasing it blocking makes exit
  // wait for that clean-up.
  grpc_init();
  const int status = action ? action() : 0;
  grpc_shutdown_blocking();
  return status;
}
