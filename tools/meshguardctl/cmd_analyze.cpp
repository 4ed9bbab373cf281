// meshguardctl analyze: static checks over policy files (policy/analyze.h), one finding per line:
// "CODE severity ns/name: message (file:line)".
#include <iostream>

#include "commands.h"
#include "policy/analyze.h"
#include "policy/load.h"
#include "policy/parse.h"

namespace mg::ctl {

namespace {

struct AnalyzeOptions {
  std::vector<std::string> files;
  std::string ns;  // -n/--namespace
  std::string root_namespace = "istio-system";
  std::string trust_domain = "cluster.local";
  bool fail_on_warning = false;
};

int run_analyze(const AnalyzeOptions& opt) {
  policy::MeshConfig mesh;
  mesh.root_namespace = opt.root_namespace;
  mesh.trust_domain = opt.trust_domain;
  auto set = policy::load_resource_files(opt.files, opt.ns);
  if (!set) return fail_line(set.error().message);
  warn_line(policy::skipped_warning(*set));
  mesh = policy::mesh_config_of(*set, mesh);  // a Mesh document in the files wins over the flags
  const auto findings = policy::analyze(*set, mesh);
  bool warned = false;
  for (const auto& f : findings) {
    std::cout << f.code << " " << f.severity << " " << f.resource << ": " << f.message << " (" << f.location << ")\n";
    warned = warned || f.severity == "warning";
  }
  if (findings.empty()) std::cerr << "meshguardctl: no findings in " << set->size() << " resources\n";
  return (opt.fail_on_warning && warned) ? 1 : 0;
}

}  // namespace

void register_analyze_commands(CLI::App& app, Action& action) {
  auto opt = std::make_shared<AnalyzeOptions>();
  auto* cmd = app.add_subcommand("analyze", "Report common mistakes in policy files (stable MG#### codes)");
  cmd->add_option("-f,--filename", opt->files, "Policy file, directory or - (stdin); repeatable")->required();
  cmd->add_option(
      "-n,--namespace", opt->ns,
      "namespace of documents without metadata.namespace (default: default); a document naming another "
      "one is refused");
  cmd->add_option("--root-namespace", opt->root_namespace, "Mesh root namespace")->capture_default_str();
  cmd->add_option("--trust-domain", opt->trust_domain, "Mesh trust domain")->capture_default_str();
  cmd->add_flag("--fail-on-warning", opt->fail_on_warning, "Exit 1 when any warning is reported");
  cmd->callback([&action, opt] { action = [opt] { return run_analyze(*opt); }; });
}

}  // namespace mg::ctl
