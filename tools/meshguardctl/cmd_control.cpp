// meshguardctl workload list | token create | version, and the online `ca rotate` — the control
// plane's admin API beside the resource commands (cmd_get.cpp, cmd_apply.cpp; connection flags
// in admin_client.h).
#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "admin_client.h"
#include "ca/authority.h"
#include "commands.h"
#include "common/version.h"
#include "policy/parse.h"

namespace mg::ctl {
namespace {

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
  auto st = (*stub)->ListWorkloads(ctx.get(), workloads_request(), &resp);
  if (!st.ok()) return rpc_failed(c, st);
  if (output == "json") {
    // Times in RFC 3339 (null: never), as everywhere a person reads them.
    auto when = [](int64_t t) { return t > 0 ? nlohmann::json(utc(t)) : nlohmann::json(nullptr); };
    nlohmann::json items = nlohmann::json::array();
    for (const auto& w : resp.workloads()) {
      items.push_back({{"name", w.name()}, {"namespace", w.namespace_()}, {"serviceAccount", w.service_account()},
                       {"spiffeId", w.spiffe_id()}, {"connected", w.connected()}, {"certState", w.cert_state()},
                       {"certSerial", w.cert_serial()}, {"certNotAfter", when(w.cert_not_after_unix())},
                       {"configVersion", w.config_version()}, {"ackedVersion", w.acked_version()},
                       {"nackError", w.nack_error()}, {"lastSeen", when(w.last_seen_unix())},
                       {"registered", w.registered()}, {"peer", w.peer_address()},
                       {"labels", std::map<std::string, std::string>(w.labels().begin(), w.labels().end())},
                       {"proxyVersion", w.proxy_version()},
                       {"configRevision", w.config_revision()}, {"ackedRevision", w.acked_revision()},
                       {"syncedRevision", w.synced_revision()}, {"sync", sync_state(w, resp.revision())},
                       {"adminAddress", w.admin_address()}});
    }
    std::cout << items.dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows{
      {"NAMESPACE", "NAME", "IDENTITY", "CONNECTED", "CERT", "SERIAL", "EXPIRES", "REVISION", "SYNC", "LAST SEEN",
       "VERSION"}};
  for (const auto& w : resp.workloads()) {
    std::string serial = w.cert_serial().size() > 12 ? w.cert_serial().substr(0, 12) + "…" : w.cert_serial();
    rows.push_back({w.namespace_(), w.name(), w.spiffe_id().empty() ? "-" : w.spiffe_id(),
                    w.connected() ? "yes" : "no", w.cert_state().empty() ? "-" : w.cert_state(),
                    serial.empty() ? "-" : serial, utc(w.cert_not_after_unix()),
                    w.acked_version().empty() ? "-" : std::to_string(w.acked_revision()),
                    sync_state(w, resp.revision()),
                    w.last_seen_unix() ? age(w.last_seen_unix()) + " ago" : "never",
                    w.proxy_version().empty() ? "-" : w.proxy_version()});
  }
  print_table(rows);
  return 0;
}

int run_token_create(const Conn& c, const std::string& ns, const std::string& sa, const std::string& ttl) {
  // The same duration syntax as `cert issue --ttl`; the control plane bounds it (at most 7 days).
  auto parsed = ca::parse_duration(ttl);
  if (!parsed) return fail_line("--ttl: " + parsed.error().to_string());
  const int64_t seconds = parsed->count();
  // Checked here too, so that a typo is one clear line before anything is asked of the server.
  for (const auto& [flag, name] : {std::pair{"--namespace", &ns}, std::pair{"--service-account", &sa}}) {
    if (!policy::is_dns_label(*name))
      return fail_line(std::string(flag) + " \"" + *name +
                       "\" is not a DNS label (lower-case letters, digits and '-', at most 63)");
  }
  auto stub = admin_stub(c);
  if (!stub) return fail_line(stub.error().to_string());
  pb::CreateTokenRequest req;
  req.set_namespace_(ns);
  req.set_service_account(sa);
  req.set_ttl_seconds(seconds);
  req.set_mesh(selected_mesh());
  pb::CreateTokenResponse resp;
  auto ctx = call_context();
  auto st = (*stub)->CreateToken(ctx.get(), req, &resp);
  if (!st.ok()) return rpc_failed(c, st);
  std::cout << resp.token() << "\n";
  return 0;
}

int run_version(const Conn& c, bool client_only, const std::string& output) {
  nlohmann::ordered_json j{{"clientVersion", mg::version()}};
  std::string server_error;
  if (!client_only) {
    auto stub = admin_stub(c);
    pb::VersionResponse resp;
    grpc::Status st;
    if (stub) {
      auto ctx = call_context();
      st = (*stub)->Version(ctx.get(), pb::VersionRequest{}, &resp);
    }
    if (stub && st.ok()) j["serverVersion"] = resp.version();
    else if (!stub) server_error = stub.error().message;
    else server_error = "-";  // rpc_failed prints it below
    if (!server_error.empty()) {
      if (output == "json") std::cout << j.dump(2) << "\n";
      else std::cout << "Client Version: " << mg::version() << "\n";
      return server_error == "-" ? rpc_failed(c, st) : fail_line(server_error);
    }
  }
  if (output == "json") {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "Client Version: " << mg::version() << "\n";
  if (!client_only) std::cout << "Server Version: " << j["serverVersion"].get<std::string>() << "\n";
  return 0;
}

}  // namespace

int rotate_ca_online(const std::string& server, const std::string& admin_dir, int wait_seconds) {
  const Conn c{server, admin_dir};
  auto stub = admin_stub(c);
  if (!stub) return fail_line(stub.error().to_string());
  pb::RotateCaRequest req;
  req.set_wait_seconds(wait_seconds);
  req.set_mesh(selected_mesh());
  pb::RotateCaResponse resp;
  grpc::Status st;
  // A Mesh applied a moment ago is in force within the push debounce: asked that early, the
  // control plane says so and nothing was rotated, so asking again (bounded) is safe.
  for (int attempt = 0; attempt < 20; ++attempt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(wait_seconds + 15));
    st = (*stub)->RotateCa(&ctx, req, &resp);
    if (st.error_code() != grpc::StatusCode::UNAVAILABLE ||
        st.error_message().find("not in force yet") == std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  // A rotation called off is DEADLINE_EXCEEDED from the server, naming the proxies that did not
  // ACK: say that, not that the control plane did not answer (which is gRPC's own message).
  if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && st.error_message() != "Deadline Exceeded")
    return fail_line(st.error_message());
  if (!st.ok()) return rpc_failed(c, st);
  std::cout << "rotated: new root " << resp.new_root_fingerprint() << "\n"
            << resp.proxies_acknowledged() << " connected proxies hold the new trust bundle; new certificates are "
            << "signed by the new root, old ones stay trusted until they expire\n";
  for (const auto& w : resp.not_connected()) std::cout << "not connected (gets the bundle on reconnect): " << w << "\n";
  return 0;
}

void register_control_commands(CLI::App& app, Action& action) {
  static Conn conn_wl, conn_token, conn_version;
  static std::string wl_out = "table";
  auto* wl = app.add_subcommand("workload", "Workloads known to the control plane");
  wl->require_subcommand(1);
  auto* wl_list = wl->add_subcommand("list", "Identity, certificate and config state of every workload");
  wl_list->add_option("-o,--output", wl_out, "table | json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  add_conn_options(wl_list, conn_wl);
  wl_list->callback([&action] { action = [] { return run_workload_list(conn_wl, wl_out); }; });

  static std::string tok_ns, tok_sa, tok_ttl = "1h";
  auto* token = app.add_subcommand("token", "Bootstrap tokens for proxies");
  token->require_subcommand(1);
  auto* create = token->add_subcommand("create", "A token bound to one namespace + service account");
  create->add_option("--namespace", tok_ns, "namespace (a DNS label)")->required();
  create->add_option("--service-account", tok_sa, "service account (a DNS label)")->required();
  create->add_option("--ttl", tok_ttl, "lifetime, at most 7d")->capture_default_str();
  add_conn_options(create, conn_token);
  create->callback([&action] { action = [] { return run_token_create(conn_token, tok_ns, tok_sa, tok_ttl); }; });

  static bool client_only = false;
  static std::string version_out = "text";
  auto* version = app.add_subcommand("version", "Print meshguardctl's version and the control plane's");
  version->add_flag("--client", client_only, "meshguardctl's only (no control plane needed)");
  version->add_option("-o,--output", version_out, "text | json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  add_conn_options(version, conn_version);
  version->callback([&action] { action = [] { return run_version(conn_version, client_only, version_out); }; });
}

}  // namespace mg::ctl
