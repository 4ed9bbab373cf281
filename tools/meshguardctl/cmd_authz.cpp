// meshguardctl authz check: the offline decision contract (DESIGN.md "Offline decision
// contract"; the request format is in docs/AUTHZ-CHECK.md). Loads policy files (or, with
// --workload and no -f, the control plane's stored resources), reads one request.json, runs the
// same pipeline as the proxy (policy/decide.h) and prints one JSON object, or an explanation with
// --explain. It never fetches keys (the control plane holds no fetched keys: each proxy fetches
// its own); keys behind a jwksUri or OpenID discovery are given with --jwks NAME=FILE.
// Exit status: 0 for any decision, 3 for DENY with --fail-on-deny, 1 for bad input.
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "admin_client.h"
#include "commands.h"
#include "common/files.h"
#include "policy/check.h"
#include "policy/decide.h"
#include "policy/load.h"
#include "policy/offline_keys.h"
#include "policy/parse.h"
#include "policy/select.h"
#include "resources.h"

namespace mg::ctl {

namespace {

struct CheckOptions {
  std::vector<std::string> files;
  std::string ns;  // -n/--namespace
  std::string request_file;
  std::string root_namespace = "istio-system";
  std::string path_normalization = "BASE";
  std::string trust_domain = "cluster.local";
  std::optional<uint32_t> num_trusted_proxies;  // absent: the Mesh document's (remote_ip.h)
  std::vector<std::string> jwks;                // --jwks NAME=FILE (policy/offline_keys.h)
  std::string output;  // json | table; not given: json, or table with --explain
  std::string workload;  // --workload NS/NAME
  bool explain = false;
  bool fail_on_deny = false;
  Conn conn;  // without -f: the store's resources
};

// Exit status of a DENY under --fail-on-deny: apart from 1 (bad input) so scripts can tell them apart.
constexpr int kDeniedExit = 3;

std::string labels_text(const std::map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [k, v] : labels) out += (out.empty() ? "" : ",") + k + "=" + v;
  return out.empty() ? "-" : out;
}

void print_table(const policy::ResourceSet& set, const policy::AuthzSnapshot& snap, const policy::Request& req,
                 const policy::MeshConfig& mesh, const jwt::Authenticator& authenticator,
                 const policy::Decision& d, const policy::Decision* if_allowed, int64_t now) {
  auto& o = std::cout;
  const auto w = policy::destination_workload(req);
  o << "workload:        " << w.ns << " labels=" << labels_text(w.labels)
    << " serviceAccount=" << (w.service_account.empty() ? "-" : w.service_account) << " port=" << req.destination_port
    << "\n";
  o << "peer:            " << (req.source_principal.empty() ? "plaintext (no peer identity)" : "mTLS " + req.source_principal)
    << "\n";
  const auto& mtls = snap.peer_authn().for_port(req.destination_port);
  o << "mTLS mode:       " << policy::to_string(mtls.mode) << " ("
    << (mtls.decided_by.empty() ? "default: no PeerAuthentication sets a mode" : "PeerAuthentication " + mtls.decided_by)
    << (mtls.port_level ? ", portLevelMtls" : "") << ")";
  if (mtls.mode == policy::MtlsMode::Disable && !req.source_principal.empty()) {
    o << " — mTLS not terminated: the peer identity is not used";
  }
  o << "\n";
  o << "request:         ";
  if (req.http) o << req.http->method << " " << req.http->path << " host=" << (req.http->host.empty() ? "-" : req.http->host);
  else o << "TCP connection (no HTTP attributes)";
  o << "\n";

  std::string normalized;
  jwt::RequestAuth auth;
  bool path_ok = true;
  if (req.http) {
    path_ok = policy::normalize_path(req.http->path, mesh.path_normalization, normalized) == policy::PathVerdict::Ok;
    o << "normalized path: " << (path_ok ? normalized : "(malformed)") << " [" << policy::to_string(mesh.path_normalization)
      << "]\n";
    if (!snap.jwt_rules().empty()) auth = authenticator.authenticate(req.http->headers, req.http->path, now);
  }
  o << "request authn:   ";
  if (snap.request_authentications().empty()) {
    o << "no RequestAuthentication applies (tokens ignored)";
  } else {
    std::string names;
    for (const auto& n : snap.request_authentications()) names += (names.empty() ? "" : ", ") + n;
    o << names << " → ";
    switch (auth.outcome) {
      case jwt::RequestAuth::Outcome::NoToken: o << "no token (no request principal)"; break;
      case jwt::RequestAuth::Outcome::Authenticated: o << "authenticated as " << auth.principal; break;
      case jwt::RequestAuth::Outcome::Rejected: o << "rejected (" << auth.status << "): " << auth.reason; break;
    }
  }
  o << "\n\nauthorization policies applied to the workload:\n";
  const auto attrs = policy::make_attributes(req, normalized, &auth, mtls.mode != policy::MtlsMode::Disable,
                                             mesh.num_trusted_proxies);
  const auto explained = policy::explain(snap, attrs);
  if (explained.empty()) o << "  (none)\n";
  for (const auto& e : explained) {
    o << "  " << policy::to_string(e.action) << (e.dry_run ? " (dry-run)" : "") << "  " << e.policy;
    if (!e.note.empty()) o << " — " << e.note;
    o << "\n";
    for (const auto& r : e.rules) {
      o << "      rule " << r.index << ": " << (r.matched ? "MATCH  " : "no     ") << r.why << "\n";
    }
  }
  if (!d.opa.empty())
    o << "\nOPA policies (CUSTOM slot, evaluated in order; every enforced one must allow):\n";
  for (const auto& r : d.opa) {
    o << "  OPA" << (r.dry_run ? " (dry-run)" : "") << "  " << r.policy << " — "
      << policy::to_string(r.outcome);
    if (!r.error.empty())
      o << " (" << r.error << "; onError: " << (r.allow_on_error ? "Allow" : "Deny") << ")";
    o << "\n";
  }
  bool header = false;
  auto not_applied = [&](const char* label, const auto& list, bool spans) {
    for (const auto& p : list) {
      auto a = policy::applies_to(p.meta, p.selector, w, mesh, spans);
      if (a.applies) continue;
      if (!header) o << "\nnot applied:\n";
      header = true;
      o << "  " << label << "  " << p.meta.full_name() << " — " << a.why << "\n";
    }
  };
  for (const auto& p : set.authorization_policies) {
    auto a = policy::applies_to(p.meta, p.selector, w, mesh);
    if (a.applies) continue;
    if (!header) o << "\nnot applied:\n";
    header = true;
    o << "  " << policy::to_string(p.action) << "  " << p.meta.full_name() << " — " << a.why << "\n";
  }
  not_applied("PeerAuthentication", set.peer_authentications, false);
  not_applied("RequestAuthentication", set.request_authentications, true);
  not_applied("OPAPolicy", set.opa_policies, true);
  o << "\ndecision:        " << (d.allow ? "ALLOW" : "DENY") << " status=" << d.status << " — " << policy::describe(d)
    << "\n";
  if (if_allowed) {
    o << "note:            " << policy::kOfflineProviderNote << "\n";
    o << "if it allows:    " << (if_allowed->allow ? "ALLOW" : "DENY") << " status=" << if_allowed->status << " — "
      << policy::describe(*if_allowed) << "\n";
  }
  if (d.audit) o << "audit:           yes (" << d.audit_policy << " rule " << d.audit_rule << ")\n";
  for (const auto& r : d.dry_run) {
    o << "dry-run:         " << (r.opa ? "OPA" : policy::to_string(r.action)) << " " << r.policy
      << (r.opa       ? (r.matched ? " would deny" : " would allow")
          : r.matched ? " would match rule " + std::to_string(r.rule)
                      : " would not match")
      << "\n";
  }
}

int run_check(const CheckOptions& opt) {
  policy::MeshConfig mesh;
  mesh.root_namespace = opt.root_namespace;
  mesh.trust_domain = opt.trust_domain;
  auto mode = policy::parse_path_normalization(opt.path_normalization);
  if (!mode) {
    return fail_line("--path-normalization must be NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES");
  }
  mesh.path_normalization = *mode;
  if (mesh.root_namespace.empty() || mesh.trust_domain.empty()) {
    return fail_line("--root-namespace and --trust-domain must not be empty");
  }
  if (opt.request_file == "-" && std::find(opt.files.begin(), opt.files.end(), "-") != opt.files.end())
    return fail_line("-f - and --request - both want standard input");
  if (opt.files.empty() && opt.workload.empty())
    return fail_line("-f FILE is required (or --workload NS/NAME to decide against the control plane's store)");
  Result<policy::ResourceSet> set = opt.files.empty() ? stored_set(opt.conn) : policy::load_resource_files(opt.files, opt.ns);
  if (!set) return set.error().message.empty() ? 1 : fail_line(set.error().message);
  warn_line(policy::skipped_warning(*set));
  mesh = policy::mesh_config_of(*set, mesh);  // a Mesh document in the files wins over the flags
  if (opt.num_trusted_proxies) mesh.num_trusted_proxies = *opt.num_trusted_proxies;  // the flag wins over a Mesh document
  std::vector<policy::GivenKeys> given;
  for (const auto& flag : opt.jwks) {
    auto parts = policy::split_key_flag(flag);
    if (!parts) return fail_line(parts.error().message);
    auto json = files::read_file(parts->second);
    if (!json) {
      return fail_line("--jwks " + parts->first + ": " + parts->second + ": " + json.error().message);
    }
    given.push_back({parts->first, std::move(*json), parts->second});
  }
  auto keys = policy::given_keys_provider(*set, given);
  if (!keys) return fail_line(keys.error().message);
  auto text = files::read_file_or_stdin(opt.request_file);
  if (!text) return fail_line(opt.request_file + ": " + text.error().message);
  auto run = policy::run_authz_check(*set, mesh, *text, opt.workload, !opt.files.empty(), *keys);
  if (!run) return fail_line(opt.request_file + ": " + run.error().message);
  const policy::Decision& decision = (*run)->decision;
  const policy::Decision* after = (*run)->if_allowed ? &*(*run)->if_allowed : nullptr;
  const std::string output = opt.output.empty() ? (opt.explain ? "table" : "json") : opt.output;
  if (output == "table") {
    print_table(*set, *(*run)->snapshot, (*run)->request, mesh, *(*run)->authenticator, decision, after, (*run)->now);
  } else {
    auto j = policy::decision_json(decision, after);
    if (opt.explain) j["explain"] = policy::explain_json(*set, **run, mesh);
    std::cout << j.dump() << "\n";
  }
  return (opt.fail_on_deny && !decision.allow) ? kDeniedExit : 0;
}

}  // namespace

void register_authz_commands(CLI::App& app, Action& action) {
  auto* authz = app.add_subcommand("authz", "Authorization tools");
  authz->require_subcommand(1);
  auto opt = std::make_shared<CheckOptions>();
  auto* check = authz->add_subcommand("check", "Decide a request offline against policy files and explain the decision");
  check->add_option("-f,--filename", opt->files,
                    "Policy file, directory (*.yaml, *.yml) or - (stdin); repeatable. Without -f, --workload "
                    "decides against the control plane's stored resources");
  check->add_option("--request", opt->request_file,
                    "request.json describing the request, or - (stdin); format: docs/AUTHZ-CHECK.md")
      ->required();
  check->add_option("--workload", opt->workload,
                    "NS/NAME: the destination's namespace, labels and service account (and port, if the "
                    "request has none) from that Workload resource, in the -f files or the store");
  check->add_flag("--explain", opt->explain,
                  "List every policy considered and why it matched or not (-o json: an \"explain\" array)");
  check->add_flag("--fail-on-deny", opt->fail_on_deny, "Exit 3 when the decision is DENY (default: 0 for any decision)");
  add_conn_options(check, opt->conn);
  check->add_option("-n,--namespace", opt->ns,
                    "namespace of documents without metadata.namespace (default: default); a document naming "
                    "another one is refused");
  check->add_option("--root-namespace", opt->root_namespace, "Mesh root namespace")->capture_default_str();
  check->add_option("--path-normalization", opt->path_normalization,
                    "NONE | BASE | MERGE_SLASHES | DECODE_AND_MERGE_SLASHES")
      ->capture_default_str();
  check->add_option("--trust-domain", opt->trust_domain, "Mesh trust domain")->capture_default_str();
  check->add_option(
      "--num-trusted-proxies", opt->num_trusted_proxies,
      "Proxies trusted in front of the workload: remote.ip is the Nth X-Forwarded-For entry from "
      "the right (0: the peer's address); default: the Mesh document's "
      "gatewayTopology.numTrustedProxies, else 0");
  check->add_option("--jwks", opt->jwks,
                    "URI=FILE: the key set (JWKS) to verify tokens with for a jwtRule whose jwksUri is "
                    "URI, or ISSUER=FILE for a rule whose keys come by OpenID discovery from ISSUER; "
                    "repeatable");
  check->add_option("-o,--output", opt->output,
                    "json | table (table is the explanation); default: json, or table with --explain")
      ->check(CLI::IsMember({"json", "table"}));
  check->callback([&action, opt] { action = [opt] { return run_check(*opt); }; });
}

}  // namespace mg::ctl
