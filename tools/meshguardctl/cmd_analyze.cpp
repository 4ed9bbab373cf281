// meshguardctl analyze: static checks (policy/analyze.h, docs/ANALYZE.md) over policy files, or
// without -f over the control plane's stored resources. One finding per line,
// "CODE severity ns/name: message (file:line)", or -o json.
#include <iostream>
#include <nlohmann/json.hpp>

#include "admin_client.h"
#include "commands.h"
#include "policy/analyze.h"
#include "policy/load.h"
#include "policy/parse.h"
#include "resources.h"

namespace mg::ctl {

namespace {

struct AnalyzeOptions {
  std::vector<std::string> files;
  std::string ns;  // -n/--namespace
  std::string root_namespace = "istio-system";
  std::string trust_domain = "cluster.local";
  std::string output = "text";
  bool fail_on_warning = false;
  Conn conn;  // without -f: the store
};

int run_analyze(const AnalyzeOptions& opt) {
  policy::MeshConfig mesh;
  mesh.root_namespace = opt.root_namespace;
  mesh.trust_domain = opt.trust_domain;
  auto set = opt.files.empty() ? stored_set(opt.conn) : policy::load_resource_files(opt.files, opt.ns);
  if (!set) return set.error().message.empty() ? 1 : fail_line(set.error().message);
  warn_line(policy::skipped_warning(*set));
  mesh = policy::mesh_config_of(*set, mesh);  // a Mesh document wins over the flags
  const auto findings = policy::analyze(*set, mesh);
  bool warned = false;
  for (const auto& f : findings) warned = warned || f.severity == "warning";
  if (opt.output == "json") {
    auto items = nlohmann::ordered_json::array();
    for (const auto& f : findings)
      items.push_back({{"code", f.code},
                       {"severity", f.severity},
                       {"resource", f.resource},
                       {"message", f.message},
                       {"location", f.location}});
    std::cout << items.dump(2) << "\n";
  } else {
    for (const auto& f : findings)
      std::cout << f.code << " " << f.severity << " " << f.resource << ": " << f.message << " (" << f.location
                << ")\n";
    if (findings.empty()) std::cerr << "meshguardctl: no findings in " << set->size() << " resources\n";
  }
  return (opt.fail_on_warning && warned) ? 1 : 0;
}

}  // namespace

void register_analyze_commands(CLI::App& app, Action& action) {
  auto opt = std::make_shared<AnalyzeOptions>();
  auto* cmd = app.add_subcommand(
      "analyze", "Report common mistakes in policy files or the live store (stable MG#### codes: docs/ANALYZE.md)");
  cmd->add_option("-f,--filename", opt->files,
                  "Policy file, directory or - (stdin); repeatable. Without -f: the control plane's stored resources");
  cmd->add_option(
      "-n,--namespace", opt->ns,
      "namespace of documents without metadata.namespace (default: default); a document naming another "
      "one is refused");
  cmd->add_option("--root-namespace", opt->root_namespace, "Mesh root namespace")->capture_default_str();
  cmd->add_option("--trust-domain", opt->trust_domain, "Mesh trust domain")->capture_default_str();
  cmd->add_option("-o,--output", opt->output, "text | json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_flag("--fail-on-warning", opt->fail_on_warning, "Exit 1 when any warning is reported");
  add_conn_options(cmd, opt->conn);
  cmd->callback([&action, opt] { action = [opt] { return run_analyze(*opt); }; });
}

}  // namespace mg::ctl
