// meshguardctl's shared pieces for the commands that talk to the control plane's admin API
// (gRPC over mTLS with the admin identity meshguard-control writes to <data-dir>/admin): the
// connection flags, the stub, error lines, input files and the table printer.
//   --server HOST:PORT   (env MESHGUARD_SERVER, default 127.0.0.1:15012)
//   --admin-dir DIR      (env MESHGUARD_ADMIN_DIR, else kDefaultAdminDir when it exists)
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "meshguard/v1/meshguard.grpc.pb.h"

namespace mg::ctl {
namespace pb = ::meshguard::v1;

// The admin identity of a control plane run as docs/OPERATIONS.md's systemd unit runs it.
inline constexpr const char* kDefaultAdminDir = "/var/lib/meshguard-control/admin";

struct Conn {
  std::string server;
  std::string admin_dir;
};

void add_conn_options(CLI::App* cmd, Conn& c);

// The global --mesh NAME (env MESHGUARD_MESH; docs/MESHES.md): the mesh every command works in.
// Empty: not given — the default mesh for apply and token create, every mesh for get and lists.
std::string& selected_mesh();
// Adds --mesh to the root command (it may be given before or after the sub-command).
void add_mesh_option(CLI::App& app);
// ListWorkloads of the selected mesh.
pb::ListWorkloadsRequest workloads_request();

// The admin stub, or a one-line error.
Result<std::unique_ptr<pb::AdminService::Stub>> admin_stub(const Conn& c);
// The channel to the control plane authenticated with the admin identity (admin_stub's; the
// console's relay opens its ConsoleService stub on it).
Result<std::shared_ptr<grpc::Channel>> admin_channel(const Conn& c);
// A context with the CLI's deadline (15 s).
std::unique_ptr<grpc::ClientContext> call_context();
// One line on stderr for a failed call, exit code 1. An unreachable control plane is one sentence
// naming the address and how to point meshguardctl elsewhere, not gRPC's connection text.
int rpc_failed(const Conn& c, const grpc::Status& st);

// Get(kind, namespace, name) (empty: any), or the one line rpc_failed() prints.
Result<pb::GetResponse> get_resources(const Conn& c, const std::string& kind, const std::string& ns,
                                      const std::string& name = "");

// ListWorkloads: every registered workload's status, or the one line rpc_failed() prints.
Result<std::vector<pb::WorkloadStatus>> list_workloads(const Conn& c);

// FILE, DIR (its *.yaml / *.yml, sorted) or "-" (stdin, once) → (source, text) pairs.
Result<std::vector<std::pair<std::string, std::string>>> read_inputs(const std::vector<std::string>& inputs);

// Columns padded to the widest cell (by characters, so "…" counts as one), three spaces apart.
void print_table(const std::vector<std::vector<std::string>>& rows);

std::string age(int64_t since_unix);    // kubectl's AGE: 42s, 5m, 3h, 2d
std::string utc(int64_t unix_seconds);  // RFC 3339, "-" for 0
// "authorizationpolicy/ns/name" as apply and delete report it.
std::string key_str(const pb::ResourceKey& k);

// Whether `w` is connected and enforces store revision `revision` (or a later one): the snapshot
// computed for it at that revision was ACKed (or was already in force). cmd_proxy.cpp.
bool enforces_revision(const pb::WorkloadStatus& w, int64_t revision);

// `apply --wait`: polls the workload list until every connected proxy enforces store revision
// `revision` (or later), naming those that do not when `timeout` passes or a proxy NACKs.
// Exit code 0 when all did, 1 otherwise. cmd_proxy.cpp.
int wait_for_revision(const Conn& c, int64_t revision, std::chrono::milliseconds timeout);

}  // namespace mg::ctl
