// bench/control telemetry — see telemetry.h.
#include "telemetry.h"

#include <malloc.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "console/window.h"
#include "control/console_service.h"
#include "harness.h"

namespace control_bench {

int telemetry_flows(int index, int flows) {
  if (flows > 0) return flows;
  return 4 << (index % 7);
}

namespace {

constexpr int kSamplesPerBatch = 5;

// Caller c of a proxy: its principal as the proxy's peer-identity check reports it.
std::string caller(int c) { return "cluster.local/ns/bench/sa/caller-" + std::to_string(c); }

// Batch `batch` of proxy `index`: `flows` distinct flows (four per caller: GET/POST × two path
// prefixes; every eighth caller, and the last flow, denied by a DENY policy), request counts that
// vary per batch, and up to kSamplesPerBatch samples of the denials, as the agent sends them.
pb::WatchRequest telemetry_message(int index, int flows, int batch, int64_t now_ms) {
  pb::WatchRequest req;
  auto* t = req.mutable_telemetry();
  int samples = 0;
  for (int j = 0; j < flows; ++j) {
    const int c = j / 4;
    const bool denied = c % 8 == 7 || j == flows - 1;
    auto* f = t->add_flows();
    f->set_source_principal(caller(c));
    f->set_mtls(true);
    f->set_allowed(!denied);
    if (denied) f->set_policy("bench/deny-writes");
    f->set_requests(static_cast<uint64_t>(1 + (index + j + batch) % 40));
    f->set_method(j % 2 ? "POST" : "GET");
    f->set_path_prefix(j % 4 < 2 ? "/details/*" : "/reviews/*");
    if (denied && samples < kSamplesPerBatch) {
      ++samples;
      auto* d = t->add_decisions();
      d->set_time_unix_ms(now_ms - 1000 + j);
      d->set_source_principal(f->source_principal());
      d->set_source_address("127.0.0.1:" + std::to_string(40000 + j));
      d->set_method(f->method());
      d->set_path((j % 4 < 2 ? "/details/" : "/reviews/") + std::to_string(batch * 7 + j) + "?v=1");
      d->set_status(403);
      d->set_policy("bench/deny-writes");
      d->set_rule(0);
      d->set_reason("denied by DENY policy bench/deny-writes rule 0");
      d->set_mtls(true);
    }
  }
  return req;
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Every proxy sends its Telemetry once per interval, proxy i at offset i × interval / N, as N
// agents started at different times would: one thread, messages handed to each stream's queue.
class TelemetrySender {
 public:
  TelemetrySender(const std::vector<std::unique_ptr<SimProxy>>& proxies, const TelemetryOptions& o)
      : proxies_(proxies), o_(o), thread_([this] { run(); }) {}
  ~TelemetrySender() { stop(); }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  // Flows per batch, averaged over the proxies.
  static double mean_flows(int n, int flows) {
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += telemetry_flows(i, flows);
    return sum / n;
  }

 private:
  void run() {
    const auto start = Clock::now();
    const auto n = static_cast<int64_t>(proxies_.size());
    for (int batch = 0;; ++batch) {
      for (int64_t i = 0; i < n; ++i) {
        const auto due = start + o_.interval * batch + o_.interval * i / n;
        {
          std::unique_lock lock(mutex_);
          if (cv_.wait_until(lock, due, [&] { return stopped_; })) return;
        }
        const int index = static_cast<int>(i);
        proxies_[static_cast<size_t>(i)]->send(
            telemetry_message(index, telemetry_flows(index, o_.flows), batch, unix_ms()));
      }
    }
  }

  const std::vector<std::unique_ptr<SimProxy>>& proxies_;
  const TelemetryOptions o_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::thread thread_;
};

// One console API call as the dashboard relays it (admin identity), its JSON answer.
nlohmann::json console_get(const Harness& h, const std::string& path, const std::string& query = {}) {
  auto stub = pb::ConsoleService::NewStub(mg::api::make_channel(h.address, h.bundle, h.admin));
  grpc::ClientContext ctx;
  set_deadline(ctx);
  pb::ConsoleRequest req;
  req.set_method("GET");
  req.set_path(path);
  req.set_query(query);
  pb::ConsoleResponse resp;
  if (auto st = stub->Http(&ctx, req, &resp); !st.ok()) die("ConsoleService.Http: " + mg::api::describe(st));
  if (resp.status() != 200) die(path + " answered " + std::to_string(resp.status()) + ": " + resp.body());
  return nlohmann::json::parse(resp.body());
}

}  // namespace

int run_telemetry(int n, const TelemetryOptions& o) {
  Harness h(o.debounce, true);
  int64_t revision = h.apply(policy(0));
  std::vector<mg::api::SvidFiles> ids;
  ids.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ids.push_back(issue(*h.ca, "bench", "sa-" + std::to_string(i)));
  Round round;
  std::vector<std::unique_ptr<SimProxy>> proxies;
  proxies.reserve(static_cast<size_t>(n));
  const long rss_empty = proc_rss_kb(h.server_pid());
  connect_proxies(h, round, ids, proxies, 0, "proxy-", 0, nullptr);
  std::this_thread::sleep_for(500ms);
  const long rss_connected = proc_rss_kb(h.server_pid());
  const auto measure = std::chrono::seconds(o.measure_s);

  // Telemetry off: the control plane idle with N streams, then the policy changes.
  double cpu0 = proc_cpu_ms(h.server_pid());
  std::this_thread::sleep_for(measure);
  const double idle_cpu_per_s = (proc_cpu_ms(h.server_pid()) - cpu0) / o.measure_s;
  const Changes off = run_changes(h, round, proxies, 1, o.changes, revision, o.debounce, false);

  // Telemetry on: every proxy reports once before anything is measured.
  const long rss_before = proc_rss_kb(h.server_pid());
  TelemetrySender sender(proxies, o);
  const auto warm_until = Clock::now() + o.interval * 3 + 30s;
  while (round.telemetry_written.load() < n && Clock::now() < warm_until) std::this_thread::sleep_for(50ms);
  if (round.telemetry_written.load() < n)
    die("only " + std::to_string(round.telemetry_written.load()) + " Telemetry messages written for " +
        std::to_string(n) + " proxies");
  const int64_t batches0 = round.telemetry_written.load();
  cpu0 = proc_cpu_ms(h.server_pid());
  std::this_thread::sleep_for(measure);
  const double on_cpu_per_s = (proc_cpu_ms(h.server_pid()) - cpu0) / o.measure_s;
  const double batches_per_s = static_cast<double>(round.telemetry_written.load() - batches0) / o.measure_s;
  const Changes on = run_changes(h, round, proxies, 1 + o.changes, o.changes, revision, o.debounce, false);
  const long rss_after = proc_rss_kb(h.server_pid());

  // The batches reached the console's window: every proxy reporting, nothing dropped at the
  // 256-flow bound, denials sampled.
  const auto mesh = console_get(h, "/api/mesh");
  const int reporting = mesh["telemetry"]["proxiesReporting"].get<int>();
  const auto dropped = mesh["telemetry"]["flowsDropped"].get<uint64_t>();
  const auto decisions = console_get(h, "/api/decisions", "limit=5");
  sender.stop();
  for (auto& p : proxies) p->cancel();
  for (auto& p : proxies) p->wait_done();
  if (reporting != n)
    die("the console's window holds " + std::to_string(reporting) + " of " + std::to_string(n) + " proxies");
  if (dropped != 0) die("the window dropped " + std::to_string(dropped) + " requests' flows");
  if (decisions["decisions"].empty()) die("no denial sample reached the window");

  const double telemetry_cpu_per_s = on_cpu_per_s - idle_cpu_per_s;
  const auto ratio = [](double on_v, double off_v) { return off_v > 0 ? on_v / off_v : 0.0; };
  const double off_p50 = percentile(off.per_proxy_ms, 0.5), on_p50 = percentile(on.per_proxy_ms, 0.5);
  const double off_p99 = percentile(off.per_proxy_ms, 0.99), on_p99 = percentile(on.per_proxy_ms, 0.99);
  std::printf(
      "| %d | %.0f | %.0f | %.0f / %.0f | **%.0f** | **%.0f** | %.0f / %.0f (×%.2f) | %.0f / %.0f (×%.2f) | "
      "%.0f / "
      "%.0f | %.0f / %.0f | %.0f | **%.1f** |\n",
      n, TelemetrySender::mean_flows(n, o.flows), batches_per_s, idle_cpu_per_s, on_cpu_per_s,
      telemetry_cpu_per_s, batches_per_s > 0 ? telemetry_cpu_per_s * 1000.0 / batches_per_s : 0.0, off_p50,
      on_p50, ratio(on_p50, off_p50), off_p99, on_p99, ratio(on_p99, off_p99),
      percentile(off.last_ack_ms, 0.5), percentile(on.last_ack_ms, 0.5), off.server_cpu_ms / o.changes,
      on.server_cpu_ms / o.changes, static_cast<double>(rss_connected - rss_empty) / n,
      static_cast<double>(rss_after - rss_before) / n);
  std::fflush(stdout);
  return 0;
}

int run_window_bound(int proxies, bool cut_length) {
  mg::console::InsightWindow window;
  const auto& limits = window.limits();
  const int flows = static_cast<int>(limits.max_flows_per_bucket);
  const int samples = static_cast<int>(limits.max_decisions / limits.buckets);
  // A text as the proxy sends it, or padded to the window's cut (distinct per flow either way).
  const auto text = [&](std::string s) {
    if (cut_length) s.resize(limits.max_text, 'x');
    return s;
  };
  // One message per bucket, shared by every proxy: 256 flows whose keys differ between buckets
  // (each bucket its own flows, as thousands of distinct callers would make), 10 samples.
  constexpr int64_t kT0 = 1'700'000'000'000;
  std::vector<pb::Telemetry> messages;
  for (size_t b = 0; b < limits.buckets; ++b) {
    pb::Telemetry t;
    for (int j = 0; j < flows; ++j) {
      auto* f = t.add_flows();
      f->set_source_principal(text(caller(static_cast<int>(b) * flows + j)));
      f->set_mtls(true);
      f->set_allowed(j % 8 != 7);
      f->set_policy(text(j % 8 == 7 ? "bench/deny-writes" : "bench/allow-reads"));
      f->set_requests(1);
      f->set_method(text(j % 2 ? "POST" : "GET"));
      f->set_path_prefix(text("/details/*"));
    }
    for (int k = 0; k < samples; ++k) {
      auto* d = t.add_decisions();
      d->set_time_unix_ms(kT0);
      d->set_source_principal(text(caller(k)));
      d->set_source_address(text("127.0.0.1:4" + std::to_string(1000 + k)));
      d->set_method(text("POST"));
      d->set_path(text("/details/" + std::to_string(k) + "?v=1"));
      d->set_status(403);
      d->set_policy(text("bench/deny-writes"));
      d->set_rule(0);
      d->set_reason(text("denied by DENY policy bench/deny-writes rule 0"));
    }
    messages.push_back(std::move(t));
  }
  const auto heap = [] {
    const auto m = mallinfo2();
    return static_cast<double>(m.uordblks + m.hblkhd);
  };
  const double heap0 = heap();
  const long rss0 = rss_kb();
  const double cpu0 = cpu_ms();
  for (size_t b = 0; b < limits.buckets; ++b) {
    for (int p = 0; p < proxies; ++p) {
      const int64_t now = kT0 + static_cast<int64_t>(b) * limits.bucket_ms + p;
      window.report(
          "bench/proxy-" + std::to_string(p),
          mg::control::insight_batch(messages[b], limits.max_flows_per_bucket, limits.max_decisions), now);
    }
  }
  const double cpu_per_batch_us = (cpu_ms() - cpu0) * 1000.0 / static_cast<double>(limits.buckets * proxies);
  const double heap_kib = (heap() - heap0) / 1024.0 / proxies;
  const long rss_kib = (rss_kb() - rss0) / proxies;
  const int64_t end = kT0 + static_cast<int64_t>(limits.buckets) * limits.bucket_ms - 1;
  const auto stats = window.stats(end);
  const size_t held_flows = window.flows(end).size(), held_samples = window.decisions(end).size();
  if (static_cast<int>(stats.proxies) != proxies || stats.flows_dropped != 0 ||
      held_samples != static_cast<size_t>(proxies) * limits.max_decisions)
    die("the window is not at its bound: " + std::to_string(stats.proxies) + " proxies, " +
        std::to_string(held_samples) + " samples, " + std::to_string(stats.flows_dropped) + " dropped");
  // Each proxy's flows summed over the window: every bucket's keys are its own.
  if (held_flows != static_cast<size_t>(proxies) * limits.buckets * limits.max_flows_per_bucket)
    die("the window holds " + std::to_string(held_flows) + " flows");
  std::printf("| %s | %d | %zu × %d | %zu | %.0f (%.2f MiB) | %ld | %.0f |\n",
              cut_length ? "every text at the 256-byte cut" : "as the bench's proxies send them", proxies,
              limits.buckets, flows, limits.max_decisions, heap_kib, heap_kib / 1024.0, rss_kib,
              cpu_per_batch_us);
  std::fflush(stdout);
  return 0;
}

}  // namespace control_bench
