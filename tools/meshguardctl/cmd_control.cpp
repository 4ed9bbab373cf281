// meshguardctl apply | get | delete | workload list | token create — the control plane's admin API
// (gRPC over mTLS with the admin identity meshguard-control writes to <data-dir>/admin).
//   --server HOST:PORT   (env MESHGUARD_SERVER, default 127.0.0.1:15012)
//   --admin-dir DIR      (env MESHGUARD_ADMIN_DIR)
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include <grpc/support/log.h>

#include "admin_client.h"
#include "api/grpc_tls.h"
#include "ca/authority.h"
#include "commands.h"
#include "common/files.h"
#include "common/time.h"
#include "meshguard/v1/meshguard.grpc.pb.h"
#include "policy/parse.h"

namespace mg::ctl {
namespace pb = ::meshguard::v1;

void add_conn_options(CLI::App* cmd, Conn& c) {
  const char* server = std::getenv("MESHGUARD_SERVER");
  const char* admin = std::getenv("MESHGUARD_ADMIN_DIR");
  c.server = server ? server : "127.0.0.1:15012";
  c.admin_dir = admin ? admin : "";
  cmd->add_option("--server", c.server, "control plane address (env MESHGUARD_SERVER)");
  cmd->add_option("--admin-dir", c.admin_dir, "admin identity directory (env MESHGUARD_ADMIN_DIR)");
}

// The admin stub, or a one-line error.
Result<std::unique_ptr<pb::AdminService::Stub>> admin_stub(const Conn& c) {
  if (c.admin_dir.empty()) return fail("ctl.no_admin", "--admin-dir (or MESHGUARD_ADMIN_DIR) is required");
  // Failures reach the user as one line from the call's status; gRPC's own log lines would repeat them.
  gpr_set_log_function([](gpr_log_func_args*) {});
  auto files = api::load_svid_dir(c.admin_dir);
  if (!files) return fail(files.error());
  return pb::AdminService::NewStub(api::make_channel(c.server, files->bundle_pem, *files));
}

std::unique_ptr<grpc::ClientContext> call_context() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
  return ctx;
}

int rpc_failed(const grpc::Status& st) { return fail_line(api::describe(st)); }

namespace {

// "authorizationpolicies", "ap", "AuthorizationPolicy" → "AuthorizationPolicy"; "" for all.
Result<std::string> canonical_kind(std::string kind) {
  std::string k;
  for (char ch : kind) k += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  struct Alias { const char* name; const char* kind; };
  static const Alias aliases[] = {{"authorizationpolicy", "AuthorizationPolicy"},
                                  {"authorizationpolicies", "AuthorizationPolicy"},
                                  {"ap", "AuthorizationPolicy"},
                                  {"peerauthentication", "PeerAuthentication"},
                                  {"peerauthentications", "PeerAuthentication"},
                                  {"pa", "PeerAuthentication"},
                                  {"requestauthentication", "RequestAuthentication"},
                                  {"requestauthentications", "RequestAuthentication"},
                                  {"ra", "RequestAuthentication"},
                                  {"workload", "Workload"},
                                  {"workloads", "Workload"},
                                  {"mesh", "Mesh"},
                                  {"meshes", "Mesh"},
                                  {"opapolicy", "OPAPolicy"},
                                  {"opapolicies", "OPAPolicy"},
                                  {"opa", "OPAPolicy"},
                                  {"all", ""}};
  for (const auto& a : aliases) {
    if (k == a.name) return std::string(a.kind);
  }
  return fail(
      "ctl.bad_kind",
      "unknown kind " + kind +
          " (AuthorizationPolicy|PeerAuthentication|RequestAuthentication|Workload|Mesh|OPAPolicy|all)");
}

std::string age(int64_t since) {
  int64_t d = std::max<int64_t>(0, std::time(nullptr) - since);
  if (d < 120) return std::to_string(d) + "s";
  if (d < 7200) return std::to_string(d / 60) + "m";
  if (d < 172800) return std::to_string(d / 3600) + "h";
  return std::to_string(d / 86400) + "d";
}

std::string utc(int64_t t) { return t <= 0 ? "-" : timefmt::utc_rfc3339(static_cast<std::time_t>(t)); }

}  // namespace

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
    }
    std::cout << line << "\n";
  }
}

namespace {

// The `get` table, shared by a listing and the listing a watch starts with.
void print_resource_table(const pb::GetResponse& resp) {
  std::vector<std::vector<std::string>> rows{{"KIND", "NAMESPACE", "NAME", "REVISION", "AGE"}};
  for (const auto& r : resp.resources())
    rows.push_back({r.key().kind(), r.key().namespace_().empty() ? "-" : r.key().namespace_(), r.key().name(),
                    std::to_string(r.revision()), age(r.updated_unix())});
  print_table(rows);
}

std::string key_str(const pb::ResourceKey& k) {
  std::string kind;
  for (char ch : k.kind()) kind += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return kind + "/" + (k.namespace_().empty() ? "" : k.namespace_() + "/") + k.name();
}

// FILE, DIR (its *.yaml / *.yml, sorted) or "-" (stdin) → (source, text) pairs.
Result<std::vector<std::pair<std::string, std::string>>> read_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& in : inputs) {
    if (in == "-") {
      std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
      out.emplace_back("<stdin>", std::move(text));
      continue;
    }
    std::error_code ec;
    if (std::filesystem::is_directory(in, ec)) {
      std::vector<std::string> names;
      for (const auto& e : std::filesystem::directory_iterator(in, ec)) {
        auto ext = e.path().extension().string();
        if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) names.push_back(e.path().string());
      }
      std::sort(names.begin(), names.end());
      for (const auto& n : names) {
        auto text = files::read_file(n);
        if (!text) return fail(text.error());
        out.emplace_back(n, std::move(*text));
      }
      continue;
    }
    auto text = files::read_file(in);
    if (!text) return fail(text.error());
    out.emplace_back(in, std::move(*text));
  }
  return out;
}

int run_apply(const Conn& c, const std::vector<std::string>& inputs, const std::string& ns,
              const std::string& wait) {
  std::chrono::milliseconds wait_timeout{0};
  if (!wait.empty()) {
    auto parsed = ca::parse_duration(wait);
    if (!parsed) return fail_line("--wait: " + parsed.error().to_string());
    wait_timeout = *parsed;
  }
  auto texts = read_inputs(inputs);
  if (!texts) return fail_line(texts.error().to_string());
  pb::ApplyRequest req;
  policy::ResourceSet all;
  for (auto& [source, text] : *texts) {
    // Same parser as the server: errors show before anything is sent, with file and line.
    auto parsed = policy::parse_resources(text, source, ns);
    if (!parsed)
      return fail_line(parsed.error().message.empty() ? parsed.error().to_string() : parsed.error().message);
    all.append(std::move(*parsed));
    auto* f = req.add_files();
    f->set_yaml(std::move(text));
    f->set_source(source);
  }
  warn_line(policy::skipped_warning(all));
  req.set_namespace_(ns);
  auto stub = admin_stub(c);
  if (!stub) return fail_line(stub.error().to_string());
  pb::ApplyResponse resp;
  auto ctx = call_context();
  auto st = (*stub)->Apply(ctx.get(), req, &resp);
  if (!st.ok()) return rpc_failed(st);
  for (const auto& k : resp.created()) std::cout << key_str(k) << " created\n";
  for (const auto& k : resp.configured()) std::cout << key_str(k) << " configured\n";
  for (const auto& k : resp.unchanged()) std::cout << key_str(k) << " unchanged\n";
  std::cout << "revision " << resp.revision() << "\n";
  if (!wait.empty()) return wait_for_revision(c, resp.revision(), wait_timeout);
  return 0;
}

int run_get(const Conn& c, const std::string& kind_arg, const std::string& name, const std::string& ns,
            const std::string& output) {
  auto kind = canonical_kind(kind_arg);
  if (!kind) return fail_line(kind.error().to_string());
  if (!name.empty() && kind->empty()) return fail_line("a NAME needs a KIND");
  auto stub = admin_stub(c);
  if (!stub) return fail_line(stub.error().to_string());
  pb::GetRequest req;
  req.set_kind(*kind);
  req.set_namespace_(*kind == "Mesh" ? "" : ns);
  req.set_name(name);
  pb::GetResponse resp;
  auto ctx = call_context();
  auto st = (*stub)->Get(ctx.get(), req, &resp);
  if (!st.ok()) return rpc_failed(st);
  if (output == "yaml") {
    for (const auto& r : resp.resources()) {
      std::cout << "---\n" << r.yaml();
      if (!r.yaml().empty() && r.yaml().back() != '\n') std::cout << "\n";
    }
    return 0;
  }
  if (output == "json") {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& r : resp.resources()) {
      items.push_back({{"kind", r.key().kind()}, {"namespace", r.key().namespace_()}, {"name", r.key().name()},
                       {"revision", r.revision()}, {"updated", utc(r.updated_unix())}, {"yaml", r.yaml()}});
    }
    std::cout << nlohmann::json{{"revision", resp.revision()}, {"items", items}}.dump(2) << "\n";
    return 0;
  }
  if (resp.resources_size() == 0) {
    std::cout << "No resources found.\n";
    return 0;
  }
  print_resource_table(resp);
  return 0;
}

// Streams changes until the server ends the stream (or the user interrupts); `max_events` > 0
// stops after that many (scripts).
int run_watch(const Conn& c, const std::string& kind_arg, const std::string& ns, int max_events) {
  auto kind = canonical_kind(kind_arg);
  if (!kind) return fail_line(kind.error().to_string());
  auto stub = admin_stub(c);
  if (!stub) return fail_line(stub.error().to_string());
  pb::WatchResourcesRequest req;
  req.set_kind(*kind);
  req.set_namespace_(*kind == "Mesh" ? "" : ns);
  grpc::ClientContext ctx;
  auto reader = (*stub)->WatchResources(&ctx, req);
  // The server answers with its metadata once the watch is registered; list after that, and skip
  // the events the listing already shows.
  reader->WaitForInitialMetadata();
  pb::GetRequest get;
  get.set_kind(req.kind());
  get.set_namespace_(req.namespace_());
  pb::GetResponse listing;
  auto list_ctx = call_context();
  auto listed = (*stub)->Get(list_ctx.get(), get, &listing);
  if (!listed.ok()) return rpc_failed(listed);
  print_resource_table(listing);
  std::cout << "-- revision " << listing.revision() << ", watching" << std::endl;
  pb::ResourceEvent e;
  int seen = 0;
  while (reader->Read(&e)) {
    if (e.revision() <= listing.revision()) continue;
    std::cout << "revision " << e.revision() << "  " << key_str(e.key()) << " " << e.change() << std::endl;
    if (max_events > 0 && ++seen >= max_events) {
      ctx.TryCancel();
      reader->Finish();
      return 0;
    }
  }
  auto st = reader->Finish();
  if (!st.ok()) return rpc_failed(st);
  return 0;
}

int run_delete(const Conn& c, const std::string& kind_arg, const std::string& name, const std::string& ns) {
  auto kind = canonical_kind(kind_arg);
  if (!kind) return fail_line(kind.error().to_string());
  if (kind->empty()) return fail_line("delete needs one KIND");
  auto stub = admin_stub(c);
  if (!stub) return fail_line(stub.error().to_string());
  pb::DeleteRequest req;
  req.mutable_key()->set_kind(*kind);
  req.mutable_key()->set_namespace_(*kind == "Mesh" ? "" : ns);
  req.mutable_key()->set_name(name);
  pb::DeleteResponse resp;
  auto ctx = call_context();
  auto st = (*stub)->Delete(ctx.get(), req, &resp);
  if (!st.ok()) return rpc_failed(st);
  std::cout << key_str(req.key()) << " deleted\nrevision " << resp.revision() << "\n";
  return 0;
}

// SYNCED: enforces the store's current revision; STALE: not yet; NACK: refused the newest
// snapshot (keeps its last good one); "-": not connected.
std::string sync_state(const pb::WorkloadStatus& w, int64_t store_revision) {
  if (!w.connected()) return "-";
  if (enforces_revision(w, store_revision)) return "SYNCED";
  return w.nack_error().empty() ? "STALE" : "NACK";
}

int run_workload_list(const Conn& c, const std::string& output) {
  auto stub = admin_stub(c);
  if (!stub) return fail_line(stub.error().to_string());
  pb::ListWorkloadsResponse resp;
  auto ctx = call_context();
  auto st = (*stub)->ListWorkloads(ctx.get(), pb::ListWorkloadsRequest{}, &resp);
  if (!st.ok()) return rpc_failed(st);
  if (output == "json") {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& w : resp.workloads()) {
      items.push_back({{"name", w.name()}, {"namespace", w.namespace_()}, {"serviceAccount", w.service_account()},
                       {"spiffeId", w.spiffe_id()}, {"connected", w.connected()}, {"certState", w.cert_state()},
                       {"certSerial", w.cert_serial()}, {"certNotAfter", w.cert_not_after_unix()},
                       {"configVersion", w.config_version()}, {"ackedVersion", w.acked_version()},
                       {"nackError", w.nack_error()}, {"lastSeen", w.last_seen_unix()},
                       {"registered", w.registered()}, {"peer", w.peer_address()},
                       {"configRevision", w.config_revision()}, {"ackedRevision", w.acked_revision()},
                       {"syncedRevision", w.synced_revision()}, {"sync", sync_state(w, resp.revision())},
                       {"adminAddress", w.admin_address()}});
    }
    std::cout << items.dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows{
      {"NAMESPACE", "NAME", "IDENTITY", "CONNECTED", "CERT", "SERIAL", "EXPIRES", "REVISION", "SYNC", "LAST SEEN"}};
  for (const auto& w : resp.workloads()) {
    std::string serial = w.cert_serial().size() > 12 ? w.cert_serial().substr(0, 12) + "…" : w.cert_serial();
    rows.push_back({w.namespace_(), w.name(), w.spiffe_id().empty() ? "-" : w.spiffe_id(),
                    w.connected() ? "yes" : "no", w.cert_state().empty() ? "-" : w.cert_state(),
                    serial.empty() ? "-" : serial, utc(w.cert_not_after_unix()),
                    w.acked_version().empty() ? "-" : std::to_string(w.acked_revision()),
                    sync_state(w, resp.revision()),
                    w.last_seen_unix() ? age(w.last_seen_unix()) + " ago" : "never"});
  }
  print_table(rows);
  return 0;
}

int run_token_create(const Conn& c, const std::string& ns, const std::string& sa, const std::string& ttl) {
  // The same duration syntax as `cert issue --ttl`; the control plane bounds it (at most 7 days).
  auto parsed = ca::parse_duration(ttl);
  if (!parsed) return fail_line("--ttl: " + parsed.error().to_string());
  const int64_t seconds = parsed->count();
  auto stub = admin_stub(c);
  if (!stub) return fail_line(stub.error().to_string());
  pb::CreateTokenRequest req;
  req.set_namespace_(ns);
  req.set_service_account(sa);
  req.set_ttl_seconds(seconds);
  pb::CreateTokenResponse resp;
  auto ctx = call_context();
  auto st = (*stub)->CreateToken(ctx.get(), req, &resp);
  if (!st.ok()) return rpc_failed(st);
  std::cout << resp.token() << "\n";
  return 0;
}

}  // namespace

int rotate_ca_online(const std::string& server, const std::string& admin_dir, int wait_seconds) {
  auto stub = admin_stub(Conn{server, admin_dir});
  if (!stub) return fail_line(stub.error().to_string());
  pb::RotateCaRequest req;
  req.set_wait_seconds(wait_seconds);
  pb::RotateCaResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(wait_seconds + 15));
  auto st = (*stub)->RotateCa(&ctx, req, &resp);
  if (!st.ok()) return rpc_failed(st);
  std::cout << "rotated: new root " << resp.new_root_fingerprint() << "\n"
            << resp.proxies_acknowledged() << " connected proxies hold the new trust bundle; new certificates are "
            << "signed by the new root, old ones stay trusted until they expire\n";
  for (const auto& w : resp.not_connected()) std::cout << "not connected (gets the bundle on reconnect): " << w << "\n";
  return 0;
}

void register_control_commands(CLI::App& app, Action& action) {
  static Conn conn_apply, conn_get, conn_delete, conn_wl, conn_token;
  static std::vector<std::string> apply_inputs;
  static std::string apply_ns;
  auto* apply = app.add_subcommand("apply", "Apply resources to the control plane (all or nothing)");
  apply->add_option("-f,--filename", apply_inputs, "FILE, DIR or - (stdin); repeatable")->required();
  apply->add_option("-n,--namespace", apply_ns,
                    "namespace of documents without metadata.namespace (default: default); a document naming "
                    "another one is refused");
  static std::string apply_wait;
  apply->add_flag("--wait{30s}", apply_wait,
                  "--wait[=TIMEOUT] (default 30s): return once every connected proxy the change selects has "
                  "ACKed it; names those that have not (exit 1 on timeout or NACK)");
  add_conn_options(apply, conn_apply);
  apply->callback([&action] { action = [] { return run_apply(conn_apply, apply_inputs, apply_ns, apply_wait); }; });

  static std::string get_kind, get_name, get_ns = "default", get_out = "table";
  static bool all_ns = false;
  auto* get = app.add_subcommand("get", "List or show stored resources");
  get->add_option("kind", get_kind, "KIND (ap, pa, ra, workload, mesh, all)")->required();
  get->add_option("name", get_name, "NAME");
  get->add_option("-n,--namespace", get_ns, "namespace (default: default)");
  get->add_flag("-A,--all-namespaces", all_ns, "every namespace");
  get->add_option("-o,--output", get_out, "table|json|yaml")->check(CLI::IsMember({"table", "json", "yaml"}));
  add_conn_options(get, conn_get);
  static bool watch = false;
  static int watch_count = 0;
  get->add_flag("-w,--watch", watch, "after listing, print every change as it is applied");
  get->add_option("--watch-count", watch_count, "with --watch: stop after this many changes")->check(CLI::Range(0, 1000000));
  get->callback([&action] {
    action = [] {
      const std::string ns = all_ns ? "" : get_ns;
      if (!watch) return run_get(conn_get, get_kind, get_name, ns, get_out);
      if (!get_name.empty()) return fail_line("--watch takes a KIND, not a NAME");
      return run_watch(conn_get, get_kind, ns, watch_count);
    };
  });

  static std::string del_kind, del_name, del_ns = "default";
  auto* del = app.add_subcommand("delete", "Delete one stored resource");
  del->add_option("kind", del_kind, "KIND")->required();
  del->add_option("name", del_name, "NAME")->required();
  del->add_option("-n,--namespace", del_ns, "namespace (default: default)");
  add_conn_options(del, conn_delete);
  del->callback([&action] { action = [] { return run_delete(conn_delete, del_kind, del_name, del_ns); }; });

  static std::string wl_out = "table";
  auto* wl = app.add_subcommand("workload", "Workloads known to the control plane");
  wl->require_subcommand(1);
  auto* wl_list = wl->add_subcommand("list", "Identity, certificate and config state of every workload");
  wl_list->add_option("-o,--output", wl_out, "table|json")->check(CLI::IsMember({"table", "json"}));
  add_conn_options(wl_list, conn_wl);
  wl_list->callback([&action] { action = [] { return run_workload_list(conn_wl, wl_out); }; });

  static std::string tok_ns, tok_sa, tok_ttl = "1h";
  auto* token = app.add_subcommand("token", "Bootstrap tokens for proxies");
  token->require_subcommand(1);
  auto* create = token->add_subcommand("create", "A token bound to one namespace + service account");
  create->add_option("--namespace", tok_ns, "namespace")->required();
  create->add_option("--service-account", tok_sa, "service account")->required();
  create->add_option("--ttl", tok_ttl, "lifetime (default 1h, at most 7d)");
  add_conn_options(create, conn_token);
  create->callback([&action] { action = [] { return run_token_create(conn_token, tok_ns, tok_sa, tok_ttl); }; });
}

}  // namespace mg::ctl
