// meshguardctl: see admin_client.h.
#include "admin_client.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>

#include <grpc/support/log.h>

#include "api/grpc_tls.h"
#include "commands.h"
#include "common/files.h"
#include "common/time.h"

namespace mg::ctl {

void add_conn_options(CLI::App* cmd, Conn& c) {
  const char* server = std::getenv("MESHGUARD_SERVER");
  const char* admin = std::getenv("MESHGUARD_ADMIN_DIR");
  c.server = server ? server : "127.0.0.1:15012";
  c.admin_dir = admin ? admin : "";
  cmd->add_option("--server", c.server, "control plane address (env MESHGUARD_SERVER)")
      ->capture_default_str();
  cmd->add_option("--admin-dir", c.admin_dir,
                  std::string("admin identity directory, <data-dir>/admin (env MESHGUARD_ADMIN_DIR; default ") +
                      kDefaultAdminDir + " when it exists)");
}

Result<std::unique_ptr<pb::AdminService::Stub>> admin_stub(const Conn& c) {
  auto channel = admin_channel(c);
  if (!channel) return fail(channel.error());
  return pb::AdminService::NewStub(*channel);
}

Result<std::shared_ptr<grpc::Channel>> admin_channel(const Conn& c) {
  std::string dir = c.admin_dir;
  // On the control plane's host, the documented data directory (docs/OPERATIONS.md systemd unit).
  std::error_code ec;
  if (dir.empty() && std::filesystem::is_directory(kDefaultAdminDir, ec)) dir = kDefaultAdminDir;
  if (dir.empty())
    return fail("ctl.no_admin", std::string("--admin-dir (or MESHGUARD_ADMIN_DIR) is required: the admin identity "
                                            "meshguard-control wrote to <data-dir>/admin (default ") +
                                    kDefaultAdminDir + ", not present here)");
  // Failures reach the user as one line from the call's status; gRPC's own log lines would repeat them.
  gpr_set_log_function([](gpr_log_func_args*) {});
  auto files = api::load_svid_dir(dir);
  if (!files) return fail(files.error());
  return api::make_channel(c.server, files->bundle_pem, *files);
}

std::unique_ptr<grpc::ClientContext> call_context() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
  return ctx;
}

std::string& selected_mesh() {
  static std::string mesh;
  return mesh;
}

void add_mesh_option(CLI::App& app) {
  app.add_option(
         "--mesh", selected_mesh(),
         "the mesh to work in (docs/MESHES.md; default: the default mesh, or every mesh for get and lists)")
      ->envname("MESHGUARD_MESH");
}

pb::ListWorkloadsRequest workloads_request() {
  pb::ListWorkloadsRequest req;
  req.set_mesh(selected_mesh());
  return req;
}

Result<std::vector<pb::WorkloadStatus>> list_workloads(const Conn& c) {
  auto stub = admin_stub(c);
  if (!stub) return fail(stub.error());
  pb::ListWorkloadsResponse resp;
  auto ctx = call_context();
  auto st = (*stub)->ListWorkloads(ctx.get(), workloads_request(), &resp);
  if (!st.ok()) {
    rpc_failed(c, st);
    return fail("ctl.rpc", "");
  }
  return std::vector<pb::WorkloadStatus>(resp.workloads().begin(), resp.workloads().end());
}

int rpc_failed(const Conn& c, const grpc::Status& st) {
  const std::string& m = st.error_message();
  const bool tls = m.find("andshake") != std::string::npos || m.find("SSL") != std::string::npos ||
                   m.find("ssl") != std::string::npos || m.find("ertificate") != std::string::npos;
  if (st.error_code() == grpc::StatusCode::UNAVAILABLE && tls)
    return fail_line("the TLS handshake with the control plane at " + c.server + " failed: " + c.admin_dir +
                     " is not an admin identity of that control plane (" + m + ")");
  if (st.error_code() == grpc::StatusCode::UNAVAILABLE && m != "shutting down")
    return fail_line("cannot reach the control plane at " + c.server +
                     " (is meshguard-control running there? set --server or MESHGUARD_SERVER)");
  if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
    return fail_line("the control plane at " + c.server + " did not answer in time");
  if (st.error_code() == grpc::StatusCode::NOT_FOUND) return fail_line(st.error_message());
  return fail_line(api::describe(st));
}

Result<pb::GetResponse> get_resources(const Conn& c, const std::string& kind, const std::string& ns,
                                      const std::string& name) {
  auto stub = admin_stub(c);
  if (!stub) return fail(stub.error());
  pb::GetRequest req;
  req.set_kind(kind);
  req.set_namespace_(ns);
  req.set_name(name);
  req.set_mesh(selected_mesh());
  pb::GetResponse resp;
  auto ctx = call_context();
  auto st = (*stub)->Get(ctx.get(), req, &resp);
  if (!st.ok()) {
    rpc_failed(c, st);
    return fail("ctl.rpc", "");  // printed already
  }
  return resp;
}

Result<std::vector<std::pair<std::string, std::string>>> read_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::pair<std::string, std::string>> out;
  bool stdin_read = false;
  for (const auto& in : inputs) {
    if (in == "-") {
      if (stdin_read) return fail("ctl.stdin_twice", "-f - is given twice: standard input can be read once");
      stdin_read = true;
      auto text = files::read_file_or_stdin(in);
      if (!text) return fail(text.error());
      out.emplace_back("<stdin>", std::move(*text));
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

namespace {
// Characters, not bytes: UTF-8 continuation bytes do not take a column.
size_t display_width(const std::string& s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char ch) { return (static_cast<unsigned char>(ch) & 0xC0) != 0x80; }));
}
}  // namespace

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], display_width(r[i]));
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - display_width(r[i]) + 3, ' ');
    }
    std::cout << line << "\n";
  }
}

std::string age(int64_t since) {
  int64_t d = std::max<int64_t>(0, std::time(nullptr) - since);
  if (d < 120) return std::to_string(d) + "s";
  if (d < 7200) return std::to_string(d / 60) + "m";
  if (d < 172800) return std::to_string(d / 3600) + "h";
  return std::to_string(d / 86400) + "d";
}

std::string utc(int64_t t) { return t <= 0 ? "-" : timefmt::utc_rfc3339(static_cast<std::time_t>(t)); }

std::string key_str(const pb::ResourceKey& k) {
  std::string kind;
  for (char ch : k.kind()) kind += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return kind + "/" + (k.namespace_().empty() ? "" : k.namespace_() + "/") + k.name();
}

}  // namespace mg::ctl
