// meshguardctl apply | delete | diff — changing the store from files and names, the kubectl way:
// `apply -f` (all or nothing; --dry-run=server has the control plane validate and compare without
// storing; --wait until the proxies it selects ACKed it, cmd_proxy.cpp), `delete TYPE NAME | TYPE/NAME | TYPE --all | TYPE -l SEL | -f FILE`, and `diff -f`
// (the stored documents against the files', with the system's `diff -u`; exit 1 when they differ,
// as kubectl diff).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "admin_client.h"
#include "ca/authority.h"
#include "commands.h"
#include "common/files.h"
#include "policy/parse.h"
#include "resources.h"

extern char** environ;

namespace mg::ctl {
namespace {

// The resources of files as -n places them, parsed as the control plane will parse them.
Result<policy::ResourceSet> parse_inputs(const std::vector<std::pair<std::string, std::string>>& texts,
                                         const std::string& ns) {
  policy::ResourceSet all;
  for (const auto& [source, text] : texts) {
    // --mesh labels the documents as the control plane's apply does (and refuses another mesh's).
    auto parsed = policy::parse_resources(text, source, ns, selected_mesh());
    if (!parsed)
      return fail("ctl.parse",
                  parsed.error().message.empty() ? parsed.error().to_string() : parsed.error().message);
    all.append(std::move(*parsed));
  }
  return all;
}

struct KeyedDoc {
  pb::ResourceKey key;
  std::string document;
};

std::vector<KeyedDoc> keys_of(const policy::ResourceSet& set) {
  std::vector<std::pair<int, KeyedDoc>> ordered;
  policy::for_each_kind(set, [&](const char* kind, const auto& list) {
    for (const auto& r : list) {
      KeyedDoc d;
      d.key.set_kind(kind);
      d.key.set_namespace_(r.meta.ns);
      d.key.set_name(r.meta.name);
      d.document = r.meta.document;
      ordered.emplace_back(r.meta.order, std::move(d));
    }
  });
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<KeyedDoc> out;
  for (auto& [order, d] : ordered) out.push_back(std::move(d));
  return out;
}

struct ApplyOptions {
  std::vector<std::string> inputs;
  std::string ns;
  std::string dry_run = "none";
  std::string wait;  // --wait[=TIMEOUT]: "" when not given
  int64_t if_revision = 0;
  Conn conn;
};

int run_apply(const ApplyOptions& o) {
  std::chrono::milliseconds wait_timeout{0};
  if (!o.wait.empty()) {
    if (o.dry_run != "none") return fail_line("--wait: a dry run changes nothing to wait for");
    auto parsed = ca::parse_duration(o.wait);
    if (!parsed) return fail_line("--wait: " + parsed.error().to_string());
    wait_timeout = *parsed;
  }
  auto texts = read_inputs(o.inputs);
  if (!texts) return fail_line(texts.error().to_string());
  // Same parser as the server: errors show before anything is sent, with file and line.
  auto all = parse_inputs(*texts, o.ns);
  if (!all) return fail_line(all.error().message);
  if (auto st = policy::check_appliable(*all); !st) return fail_line(st.error().message);
  warn_line(policy::skipped_warning(*all));
  if (o.dry_run == "client") {
    for (const auto& d : keys_of(*all)) std::cout << key_str(d.key) << " valid (client dry run)\n";
    return 0;
  }
  pb::ApplyRequest req;
  for (auto& [source, text] : *texts) {
    auto* f = req.add_files();
    f->set_yaml(std::move(text));
    f->set_source(source);
  }
  req.set_namespace_(o.ns);
  req.set_mesh(selected_mesh());
  req.set_dry_run(o.dry_run == "server");
  req.set_if_revision(o.if_revision);
  auto stub = admin_stub(o.conn);
  if (!stub) return fail_line(stub.error().to_string());
  pb::ApplyResponse resp;
  auto ctx = call_context();
  auto st = (*stub)->Apply(ctx.get(), req, &resp);
  if (!st.ok()) return rpc_failed(o.conn, st);
  const std::string suffix = req.dry_run() ? " (server dry run)" : "";
  for (const auto& k : resp.created()) std::cout << key_str(k) << " created" << suffix << "\n";
  for (const auto& k : resp.configured()) std::cout << key_str(k) << " configured" << suffix << "\n";
  for (const auto& k : resp.unchanged()) std::cout << key_str(k) << " unchanged" << suffix << "\n";
  std::cout << "revision " << resp.revision() << (req.dry_run() ? " (nothing stored)" : "") << "\n";
  if (!o.wait.empty()) return wait_for_revision(o.conn, resp.revision(), wait_timeout);
  return 0;
}

struct DeleteOptions {
  std::vector<std::string> args;
  std::vector<std::string> files;
  std::string ns;  // -n; not given: "default", and -f files place documents as apply does
  bool all = false;
  bool all_namespaces = false;
  bool ignore_not_found = false;
  std::string selector;
  Conn conn;
};

// The keys a delete names; a missing name is deleted (and reported) by the server.
Result<std::vector<pb::ResourceKey>> delete_keys(const DeleteOptions& o) {
  std::vector<pb::ResourceKey> keys;
  if (!o.files.empty()) {
    if (!o.args.empty() || o.all || !o.selector.empty())
      return fail("ctl.bad_args", "-f names what to delete: no TYPE, NAME, --all or -l with it");
    auto texts = read_inputs(o.files);
    if (!texts) return fail(texts.error());
    auto set = parse_inputs(*texts, o.ns);
    if (!set) return fail(set.error());
    for (auto& d : keys_of(*set)) keys.push_back(std::move(d.key));
    return keys;
  }
  auto targets = parse_targets(o.args);
  if (!targets) return fail(targets.error());
  // Computed kinds (ServiceEndpoints) cannot be deleted; `delete all` leaves them out.
  const std::string types = "," + o.args[0] + ",";
  const bool everything = types.find(",all,") != std::string::npos;
  for (const auto& t : *targets) {
    if (t.kind->computed && !everything)
      return fail("ctl.bad_args", std::string(t.kind->kind) +
                                      " are computed by the control plane: delete the Service, or stop the "
                                      "workload's proxy");
  }
  std::erase_if(*targets, [](const Target& t) { return t.kind->computed; });
  if (targets->empty()) return keys;
  const std::string ns = o.ns.empty() ? "default" : o.ns;
  const bool named = !targets->front().name.empty();
  if (named && (o.all || !o.selector.empty()))
    return fail("ctl.bad_args", "NAME arguments and --all / -l exclude each other");
  if (!named && !o.all && o.selector.empty())
    return fail("ctl.bad_args", "name what to delete: NAME, TYPE/NAME, --all, -l SELECTOR or -f FILE");
  if (o.all_namespaces && !o.all && o.selector.empty()) return fail("ctl.bad_args", "-A needs --all or -l");
  if (named) {
    for (const auto& t : *targets) {
      pb::ResourceKey k;
      k.set_kind(t.kind->kind);
      k.set_namespace_(t.kind->namespaced ? ns : "");
      k.set_name(t.name);
      keys.push_back(std::move(k));
    }
    return keys;
  }
  auto selector = LabelSelector::parse(o.selector);
  if (!selector) return fail(selector.error());
  auto fetched = fetch(o.conn, *targets, o.all_namespaces ? "" : ns, *selector);
  if (!fetched) return fail(fetched.error());
  for (const auto& r : fetched->items) keys.push_back(r.key());
  return keys;
}

bool named_in(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

// One Delete call for every key: the server deletes them in one transaction, all or nothing. A
// missing one fails it (NOT_FOUND, naming each) unless --ignore-not-found.
int run_delete(const DeleteOptions& o) {
  auto keys = delete_keys(o);
  if (!keys) return keys.error().message.empty() ? 1 : fail_line(keys.error().message);
  if (keys->empty()) {
    std::cerr << "No resources found.\n";
    return 0;
  }
  auto stub = admin_stub(o.conn);
  if (!stub) return fail_line(stub.error().to_string());
  pb::DeleteRequest req;
  for (auto& key : *keys) *req.add_keys() = std::move(key);
  req.set_ignore_not_found(o.ignore_not_found);
  req.set_mesh(selected_mesh());
  pb::DeleteResponse resp;
  auto ctx = call_context();
  auto st = (*stub)->Delete(ctx.get(), req, &resp);
  if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
    // The server names each absent resource as KIND/NS/NAME (store.not_found); said here as get
    // names them.
    bool named = false;
    for (const auto& k : req.keys()) {
      const std::string listed = k.kind() + "/" + k.namespace_() + "/" + k.name();
      const std::string& m = st.error_message();
      if (named_in(m, ": " + listed + ",") || named_in(m, ": " + listed + " not found") ||
          named_in(m, ", " + listed + ",") || named_in(m, ", " + listed + " not found")) {
        fail_line(key_str(k) + " not found");
        named = true;
      }
    }
    if (!named) fail_line(st.error_message());
    return fail_line(o.ignore_not_found ? "nothing was deleted"
                                        : "nothing was deleted (--ignore-not-found deletes the others)");
  }
  if (!st.ok()) return rpc_failed(o.conn, st);
  for (const auto& k : resp.deleted()) std::cout << key_str(k) << " deleted\n";
  if (resp.deleted_size() > 0) std::cout << "revision " << resp.revision() << "\n";
  return 0;
}

// ---- diff ---------------------------------------------------------------------------------------

// `diff -u -N -r LIVE MERGED`'s exit status (0 same, 1 different), or -1 when it could not run.
int run_diff_program(const std::string& live, const std::string& merged) {
  std::vector<std::string> args{"diff", "-u", "-N", "-r", live, merged};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  std::cout.flush();
  if (posix_spawnp(&pid, "diff", nullptr, nullptr, argv.data(), environ) != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status) <= 1 ? WEXITSTATUS(status) : -1;
}

struct DiffOptions {
  std::vector<std::string> files;
  std::string ns;
  Conn conn;
};

int run_diff(const DiffOptions& o) {
  auto texts = read_inputs(o.files);
  if (!texts) return fail_line(texts.error().to_string());
  auto set = parse_inputs(*texts, o.ns);
  if (!set) return fail_line(set.error().message);
  warn_line(policy::skipped_warning(*set));
  auto stored = get_resources(o.conn, "", "");
  if (!stored) return 1;
  std::map<std::string, const pb::Resource*> live;
  for (const auto& r : stored->resources()) live[key_str(r.key())] = &r;

  std::error_code ec;
  std::string tmpl = (std::filesystem::temp_directory_path(ec) / "meshguardctl-diff-XXXXXX").string();
  if (ec || !mkdtemp(tmpl.data())) return fail_line("diff: cannot create a temporary directory");
  const std::filesystem::path dir(tmpl);
  struct Cleanup {
    std::filesystem::path p;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(p, ec);
    }
  } cleanup{dir};
  for (const char* side : {"live", "merged"}) {
    if (auto s = files::make_dirs((dir / side).string(), 0700); !s) return fail_line(s.error().to_string());
  }
  for (const auto& d : keys_of(*set)) {
    // kind.namespace.name.yaml: one file per resource, the names kubectl diff uses.
    std::string file = d.key.kind() + "." + (d.key.namespace_().empty() ? "" : d.key.namespace_() + ".") +
                       d.key.name() + ".yaml";
    auto it = live.find(key_str(d.key));
    if (it != live.end()) {
      if (auto s = files::write_file_atomic((dir / "live" / file).string(), document_text(it->second->yaml()),
                                            0600);
          !s)
        return fail_line(s.error().to_string());
    }
    if (auto s = files::write_file_atomic((dir / "merged" / file).string(), document_text(d.document), 0600);
        !s)
      return fail_line(s.error().to_string());
  }
  int rc = run_diff_program((dir / "live").string(), (dir / "merged").string());
  if (rc < 0) return fail_line("diff: could not run the diff program (diffutils) to compare");
  return rc;
}

}  // namespace

void register_apply_commands(CLI::App& app, Action& action) {
  static ApplyOptions apply_opt;
  auto* apply = app.add_subcommand("apply", "Apply resources to the control plane (all or nothing)");
  apply->add_option("-f,--filename", apply_opt.inputs, "FILE, DIR or - (stdin); repeatable")->required();
  apply->add_option("-n,--namespace", apply_opt.ns,
                    "namespace of documents without metadata.namespace (default: default); a document naming "
                    "another one is refused");
  apply
      ->add_option("--dry-run", apply_opt.dry_run,
                   "none | client (parse here only) | server (the control plane validates and compares, "
                   "nothing is stored)")
      ->check(CLI::IsMember({"none", "client", "server"}))
      ->capture_default_str();
  apply->add_flag("--wait{30s}", apply_opt.wait,
                  "--wait[=TIMEOUT] (default 30s): return once every connected proxy the change selects has "
                  "ACKed it; names those that have not (exit 1 on timeout or NACK)");
  apply
      ->add_option("--if-revision", apply_opt.if_revision,
                   "the files were edited from the store at this revision (`get -o json` shows it): refused "
                   "(nothing stored) when a resource they write changed after it")
      ->check(CLI::PositiveNumber);
  add_conn_options(apply, apply_opt.conn);
  apply->callback([&action] { action = [] { return run_apply(apply_opt); }; });

  static DeleteOptions del_opt;
  auto* del = app.add_subcommand(
      "delete", "Delete stored resources by name, label, --all, or the files that made them");
  del->add_option("args", del_opt.args, "TYPE NAME..., TYPE/NAME..., or TYPE with --all / -l");
  del->add_option("-f,--filename", del_opt.files,
                  "FILE, DIR or - (stdin): delete the resources it holds; repeatable");
  del->add_option("-n,--namespace", del_opt.ns, "namespace (default: default)");
  del->add_flag("--all", del_opt.all, "every resource of TYPE in the namespace");
  del->add_flag("-A,--all-namespaces", del_opt.all_namespaces, "with --all or -l: in every namespace");
  del->add_option("-l,--selector", del_opt.selector, "label query, as for get");
  del->add_flag("--ignore-not-found", del_opt.ignore_not_found,
                "a resource that does not exist is not an error (the others are deleted); without it "
                "nothing is deleted when one is missing");
  add_conn_options(del, del_opt.conn);
  del->callback([&action] { action = [] { return run_delete(del_opt); }; });

  static DiffOptions diff_opt;
  auto* diff =
      app.add_subcommand("diff",
                         "Show what apply -f would change (diff -u of stored and file documents; exit 1 "
                         "when they differ)");
  diff->add_option("-f,--filename", diff_opt.files, "FILE, DIR or - (stdin); repeatable")->required();
  diff->add_option("-n,--namespace", diff_opt.ns,
                   "namespace of documents without metadata.namespace (default: default)");
  add_conn_options(diff, diff_opt.conn);
  diff->callback([&action] { action = [] { return run_diff(diff_opt); }; });
}

}  // namespace mg::ctl
