// bench/control telemetry — `control_bench --telemetry` (issue 17): what the console's telemetry
// costs the control plane. N simulated proxies hold real Watch streams (harness.h); in the same run
// they are measured first not reporting, then each sending the Telemetry message on its stream at
// the agent's cadence (every 3 s, staggered) with realistic flow counts up to the window's 256-flow
// bound: control-plane CPU per batch and per second, RSS per proxy for the window, and apply→ACK
// latency of policy changes with telemetry off vs on. Then the window alone, in this process with
// simulated time, filled to its bound: memory per proxy (docs/CONSOLE.md's bound) and CPU per batch.
#pragma once

#include <chrono>

namespace control_bench {

struct TelemetryOptions {
  int changes = 7;
  int flows = 0;  // flows per batch, every proxy; 0: the spread (telemetry_flows())
  std::chrono::milliseconds interval{3000};
  int measure_s = 10;  // each CPU measurement (idle, then with telemetry)
  std::chrono::milliseconds debounce{100};
};

// Flows per batch of proxy `index` under the spread: 4, 8, 16, 32, 64, 128, 256 in turn (mean 73).
int telemetry_flows(int index, int flows);

// One table row: `n` proxies, the control plane in its own process. Dies on a failure (a change
// not ACKed by every proxy, telemetry not reaching the console's window).
int run_telemetry(int n, const TelemetryOptions& o);
// The window at its bound, in this process with simulated time: `proxies` windows each filled with
// 10 buckets × 256 flows and 100 samples, texts as a proxy sends them (`cut_length` false) or all
// at the 256-byte cut; prints one row.
int run_window_bound(int proxies, bool cut_length);

}  // namespace control_bench
