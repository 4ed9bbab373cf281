// meshguardctl's connection to the control plane's AdminService, shared by the command groups
// that talk to it (cmd_control.cpp defines these; cmd_proxy.cpp uses them too).
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "meshguard/v1/meshguard.grpc.pb.h"

namespace mg::ctl {

struct Conn {
  std::string server;
  std::string admin_dir;
};

// --server / --admin-dir (and their environment defaults) on `cmd`.
void add_conn_options(CLI::App* cmd, Conn& c);
// The admin stub, or a one-line error.
Result<std::unique_ptr<::meshguard::v1::AdminService::Stub>> admin_stub(const Conn& c);
// A call context with the CLI's deadline (15 s).
std::unique_ptr<grpc::ClientContext> call_context();
// Prints the call's status as one line; returns exit code 1.
int rpc_failed(const grpc::Status& st);

// Columns padded to their widest cell, three spaces apart (the first row is the header).
void print_table(const std::vector<std::vector<std::string>>& rows);

// Whether `w` is connected and enforces store revision `revision` (or a later one): the snapshot
// computed for it at that revision was ACKed (or was already in force).
bool enforces_revision(const ::meshguard::v1::WorkloadStatus& w, int64_t revision);

// `apply --wait`: polls the workload list until every connected proxy enforces store revision
// `revision` (or later), naming those that do not when `timeout` passes or a proxy NACKs.
// Exit code 0 when all did, 1 otherwise.
int wait_for_revision(const Conn& c, int64_t revision, std::chrono::milliseconds timeout);

}  // namespace mg::ctl
