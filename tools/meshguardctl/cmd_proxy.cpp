// meshguardctl's view of what the proxies enforce: `apply --wait`'s rollout check (over the
// control plane's workload list) and `proxy-config secret|policies WORKLOAD` (the proxy's own
// /config_dump, read from the admin endpoint it reported to the control plane, or --admin).
#include <algorithm>
#include <iostream>
#include <thread>

#include "admin_client.h"
#include "commands.h"

namespace mg::ctl {
namespace pb = ::meshguard::v1;

bool enforces_revision(const pb::WorkloadStatus& w, int64_t revision) {
  return w.connected() && !w.config_version().empty() && w.acked_version() == w.config_version() &&
         w.synced_revision() >= revision;
}

int wait_for_revision(const Conn& c, int64_t revision, std::chrono::milliseconds timeout) {
  auto stub = admin_stub(c);
  if (!stub) return fail_line(stub.error().to_string());
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    pb::ListWorkloadsResponse resp;
    auto ctx = call_context();
    auto st = (*stub)->ListWorkloads(ctx.get(), pb::ListWorkloadsRequest{}, &resp);
    if (!st.ok()) return rpc_failed(st);
    int connected = 0, selected = 0;
    std::vector<std::string> waiting, nacked;
    for (const auto& w : resp.workloads()) {
      if (!w.connected()) continue;
      ++connected;
      const std::string name = w.namespace_() + "/" + w.name();
      if (enforces_revision(w, revision)) {
        if (w.config_revision() >= revision) ++selected;
      } else if (!w.nack_error().empty()) {
        nacked.push_back(name + ": NACK: " + w.nack_error());
      } else {
        waiting.push_back(name +
                          (w.config_revision() >= revision ? " (pushed, not ACKed)" : " (not pushed yet)"));
      }
    }
    if (waiting.empty() && nacked.empty()) {
      std::cout << "revision " << revision << ": " << selected << " of " << connected
                << " connected proxies received it and ACKed; the others were not selected by the change\n";
      return 0;
    }
    // A NACK is final for this snapshot: the proxy keeps its last good one until the next change.
    if (!nacked.empty() || std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "meshguardctl: revision " << revision << " is not in force on "
                << (waiting.size() + nacked.size()) << " of " << connected << " connected proxies"
                << (nacked.empty() ? " (timed out)" : "") << ":\n";
      for (const auto& n : nacked) std::cerr << "  " << n << "\n";
      for (const auto& n : waiting) std::cerr << "  " << n << "\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace mg::ctl
