// bench/control harness — what control_bench's modes share: a real ControlPlane under test (in
// this process or a child process), its CA and admin identity (Harness), simulated proxies holding
// real Watch streams over mTLS and ACKing every snapshot (SimProxy), the change being measured
// (Round), a run of measured policy changes (run_changes), and the small measuring helpers (RSS,
// CPU, Prometheus histogram buckets, percentiles).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/grpc_tls.h"
#include "ca/authority.h"
#include "control/server.h"
#include "meshguard/v1/meshguard.grpc.pb.h"

namespace control_bench {

namespace pb = ::meshguard::v1;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kRpcDeadline = 30s;
constexpr auto kStreamDeadline = 15min;
constexpr auto kChangeTimeout = 60s;
constexpr auto kConnectTimeout = 180s;
constexpr auto kCsrTimeBudget = 20s;

[[noreturn]] void die(const std::string& what);
long rss_kb();
void raise_nofile();
double ms(Clock::duration d);
// Process CPU time (user + system), both sides of every connection.
double cpu_ms();
// One GET to the control plane's metrics endpoint (plain HTTP on 127.0.0.1), bounded per read.
std::string http_get(const std::string& address, const std::string& path);
// Cumulative bucket counts of one histogram from Prometheus text: upper bound (ms) → count.
std::map<double, uint64_t> histogram_buckets(const std::string& text, const std::string& name);
// The smallest bucket bound holding fraction `p` of the observations made between two scrapes.
double bucket_percentile(const std::map<double, uint64_t>& before, const std::map<double, uint64_t>& after,
                         double p);
double percentile(std::vector<double> v, double p);
void set_deadline(grpc::ClientContext& ctx, std::chrono::seconds d = kRpcDeadline);
// An SVID for spiffe://<trust domain>/ns/<ns>/sa/<sa>, signed by `ca`.
mg::api::SvidFiles issue(const mg::ca::Authority& ca, const std::string& ns, const std::string& sa);
long proc_rss_kb(pid_t pid);
double proc_cpu_ms(pid_t pid);

// Where the control planes under test keep their configuration: one replica on SQLite in its data
// dir (the default), or `replicas` replicas sharing one etcd (`store` etcd://...), each signing
// with the same plugged-in CA (`plug_in_ca`, a cacerts directory).
struct Topology {
  int replicas = 1;
  std::string store;
  std::string plug_in_ca;
};

// A started control plane in a fresh temp data dir.
struct Server {
  std::string dir;
  std::unique_ptr<mg::control::ControlPlane> cp;
};
Server start_server(std::chrono::milliseconds debounce, const Topology& topology = {});

// `--child-server`: a control plane in its own process, so its memory and CPU can be read apart
// from the clients'. Prints "READY <address> <metrics address> <data dir>", serves until its
// stdin closes (the parent exited or is done), then shuts down and removes its data dir.
int run_server(std::chrono::milliseconds debounce, const Topology& topology = {});

// A control plane in a child process (--child-server).
struct Replica {
  pid_t pid = 0;
  int stdin_fd = -1;
  std::string address, metrics_address, dir;
};

// The control plane under test (in this process, or a child process when `own_process`), its CA
// (read from the data dir) and the admin identity.
struct Harness {
  Server local;
  std::string address, metrics_address, dir;  // replicas[0]'s (the one applies go through)
  std::vector<Replica> replicas;              // own process: every replica, each in its process
  std::unique_ptr<mg::ca::Authority> ca;
  std::string bundle;
  mg::api::SvidFiles admin;
  std::unique_ptr<pb::AdminService::Stub> admin_stub;

  Harness(std::chrono::milliseconds debounce, bool own_process);
  // Every replica of `topology` in its own process (`replicas` 0: one control plane in this one).
  Harness(std::chrono::milliseconds debounce, const Topology& topology);
  ~Harness();
  Replica spawn_server(std::chrono::milliseconds debounce, const Topology& topology);
  // The control plane's process (replicas[0]'s), or 0 when it runs in this one.
  pid_t server_pid() const { return replicas.empty() ? 0 : replicas[0].pid; }
  // The replica the proxy numbered `index` connects to: spread round-robin.
  const std::string& address_for(int index) const {
    return replicas.empty() ? address : replicas[static_cast<size_t>(index) % replicas.size()].address;
  }
  // The control plane's CPU so far, every replica's process together.
  double server_cpu_ms() const;

  int64_t apply(const std::string& yaml) {
    grpc::ClientContext ctx;
    set_deadline(ctx);
    pb::ApplyRequest req;
    req.add_files()->set_yaml(yaml);
    pb::ApplyResponse resp;
    auto st = admin_stub->Apply(&ctx, req, &resp);
    if (!st.ok()) die("apply: " + mg::api::describe(st));
    return resp.revision();
  }

  // Every replica's push→ACK histogram, summed.
  std::map<double, uint64_t> ack_latency_buckets() {
    std::map<double, uint64_t> sum;
    std::vector<std::string> from{metrics_address};
    if (replicas.size() > 1) {
      from.clear();
      for (const auto& r : replicas) from.push_back(r.metrics_address);
    }
    for (const auto& m : from)
      for (const auto& [bound, count] :
           histogram_buckets(http_get(m, "/metrics"), "meshguard_push_ack_latency_milliseconds"))
        sum[bound] += count;
    return sum;
  }

  pb::ListWorkloadsResponse workloads() {
    grpc::ClientContext ctx;
    set_deadline(ctx);
    pb::ListWorkloadsResponse resp;
    auto st = admin_stub->ListWorkloads(&ctx, pb::ListWorkloadsRequest(), &resp);
    if (!st.ok()) die("ListWorkloads: " + mg::api::describe(st));
    return resp;
  }
};

// Shared by every simulated proxy: the change being measured and who has ACKed it.
struct Round {
  std::atomic<int64_t> target_revision{INT64_MAX};
  Clock::time_point applied_at{};
  std::atomic<int> acked{0};
  std::atomic<int> ready{0};  // proxies that ACKed their first snapshot
  std::atomic<int> ended{0};  // streams that ended (an error during the run)
  // Replica-join mode: registrations do not bump the store revision, so arrival is told by content.
  // `needles[k]` is the ServiceEndpoints line naming join k's workload (fixed before any stream
  // starts); `join` the join being measured (-1: none); `joined_at` when its stream was started.
  std::vector<std::string> needles;
  std::atomic<int> join{-1};
  Clock::time_point joined_at{};
  std::atomic<int> join_acked{0};
  std::atomic<int64_t> telemetry_written{0};  // Telemetry messages handed to gRPC (send())
  std::mutex mutex;
  std::condition_variable cv;
  // What the waiter (wait_count) waits for a counter to reach: a bump below it wakes nobody. One
  // wake-up per wait instead of one per ACK — at 10,000 proxies, 10,000 context switches of the
  // waiting thread per change in the clients' process. Seq-cst on both sides: a bump either sees
  // the newest `wake_at` or its count is seen by the waiter's check.
  std::atomic<int> wake_at{0};
  void bump(std::atomic<int>& counter) {
    const int now = counter.fetch_add(1) + 1;
    if (now < wake_at.load() && &counter != &ended) return;
    std::lock_guard lock(mutex);
    cv.notify_all();
  }
};

// One proxy's config stream (gRPC callback API): Hello, then an ACK for every snapshot. One read
// is always outstanding; ACK writes are queued behind a write in flight.
class SimProxy : public grpc::ClientBidiReactor<pb::WatchRequest, pb::ConfigSnapshot> {
 public:
  SimProxy(std::shared_ptr<grpc::Channel> channel, Round* round, int index)
      : channel_(std::move(channel)), stub_(pb::ConfigService::NewStub(channel_)), round_(round) {
    ctx_.set_deadline(std::chrono::system_clock::now() + kStreamDeadline);
    out_.mutable_hello()->set_workload("proxy-" + std::to_string(index));
    (*out_.mutable_hello()->mutable_labels())["app"] = "bench";
    out_.mutable_hello()->set_cert_state("Available");
    writing_ = true;
  }
  void start() {
    stub_->async()->Watch(&ctx_, this);
    StartWrite(&out_);
    StartRead(&in_);
    StartCall();
  }
  void cancel() { ctx_.TryCancel(); }
  void wait_done() {
    std::unique_lock lock(mutex_);
    done_cv_.wait_for(lock, 30s, [&] { return done_; });
  }
  std::vector<double> latencies_ms;       // per measured change, written by gRPC threads before `acked`
  std::vector<double> join_latencies_ms;  // per join, written before `join_acked`

  // Before start(): the Hello to send (a joining replica's address, inbound ports, labels).
  pb::Hello* hello() { return out_.mutable_hello(); }
  // Before start(): a stream that does not count towards `acked` / `join_acked` (the joiners).
  void unmeasured() { measured_ = false; }
  // Before start(): keep the last snapshot's documents (to check the content test against a parse).
  void keep_snapshot() { keep_snapshot_ = true; }
  std::string last_snapshot() {
    std::lock_guard lock(mutex_);
    return last_snapshot_;
  }
  // After the first snapshot, from any thread: one more message on the stream (a Telemetry),
  // queued behind a write in flight. False once the stream has ended.
  bool send(pb::WatchRequest message) {
    std::unique_lock lock(mutex_);
    if (done_) return false;
    if (writing_) {
      queue_.push_back({std::move(message), -1, -1});
      return true;
    }
    writing_ = true;
    out_ = std::move(message);
    out_revision_ = -1;
    out_join_ = -1;
    lock.unlock();
    StartWrite(&out_);
    return true;
  }
  // When the Hello was handed to the transport (the stream and its TLS handshake are up).
  Clock::time_point hello_written_at() {
    std::lock_guard lock(mutex_);
    return hello_written_at_;
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is ending; OnDone follows
    pb::WatchRequest ack;
    ack.mutable_ack()->set_version(in_.version());
    ack.mutable_ack()->set_accepted(true);
    const int64_t revision = in_.revision();
    // The snapshot carries join j's endpoint: a substring test for its ServiceEndpoints line, cheap
    // enough for thousands of streams on two cores (the parse is checked once, at the end).
    int join_tag = -1;
    if (const int j = round_->join.load();
        measured_ && j >= 0 && seen_join_ != j &&
        in_.policies_yaml().find(round_->needles[j]) != std::string::npos) {
      join_tag = j;
      seen_join_ = j;
    }
    {
      std::unique_lock lock(mutex_);
      if (keep_snapshot_) last_snapshot_ = in_.policies_yaml();
      if (writing_) {
        queue_.push_back({std::move(ack), revision, join_tag});
      } else {
        writing_ = true;
        out_ = std::move(ack);
        out_revision_ = revision;
        out_join_ = join_tag;
        lock.unlock();
        StartWrite(&out_);
      }
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return;
    const auto now = Clock::now();
    if (out_.has_ack()) {
      on_acked(out_revision_, out_join_, now);
    } else if (out_.has_telemetry()) {
      round_->telemetry_written.fetch_add(1);
    } else {
      std::lock_guard lock(mutex_);
      hello_written_at_ = now;
    }
    std::unique_lock lock(mutex_);
    if (queue_.empty()) {
      writing_ = false;
      return;
    }
    out_ = std::move(queue_.front().message);
    out_revision_ = queue_.front().revision;
    out_join_ = queue_.front().join;
    queue_.pop_front();
    lock.unlock();
    StartWrite(&out_);
  }

  void OnDone(const grpc::Status& status) override {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
      status_ = status;
    }
    done_cv_.notify_all();
    round_->bump(round_->ended);
  }
  grpc::Status status() {
    std::lock_guard lock(mutex_);
    return status_;
  }

 private:
  void on_acked(int64_t revision, int join, Clock::time_point now) {
    if (!first_acked_) {
      first_acked_ = true;
      round_->bump(round_->ready);
    }
    if (!measured_) return;
    if (join >= 0) {
      join_latencies_ms.push_back(ms(now - round_->joined_at));
      round_->bump(round_->join_acked);
    }
    const int64_t target = round_->target_revision.load();
    if (revision >= target && counted_target_ != target) {
      counted_target_ = target;
      latencies_ms.push_back(ms(now - round_->applied_at));
      round_->bump(round_->acked);
    }
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::ConfigService::Stub> stub_;
  grpc::ClientContext ctx_;
  Round* round_;
  pb::ConfigSnapshot in_;
  pb::WatchRequest out_;
  int64_t out_revision_ = 0;
  int out_join_ = -1;
  struct Pending {
    pb::WatchRequest message;
    int64_t revision;
    int join;
  };
  std::deque<Pending> queue_;
  bool measured_ = true, keep_snapshot_ = false;
  int seen_join_ = -1;
  std::string last_snapshot_;
  Clock::time_point hello_written_at_{};
  bool first_acked_ = false;
  int64_t counted_target_ = -1;
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool writing_ = false, done_ = false;
  grpc::Status status_;
};

bool wait_count(Round& round, std::atomic<int>& counter, int want, std::chrono::seconds timeout);

// The change measured: one AuthorizationPolicy in the proxies' namespace, its path the k-th.
std::string policy(int k);

// What a run of policy changes measured (run_changes).
struct Changes {
  std::vector<double> per_proxy_ms;  // apply → each proxy's ACK written, every change
  std::vector<double> last_ack_ms;   // apply → the slowest proxy's ACK, per change
  std::vector<double> confirmed_ms;  // apply → ListWorkloads shows every ACK, per change (if asked)
  double cpu_ms = 0;                 // this process, all changes
  double server_cpu_ms = 0;          // the control plane's process (own process only), all changes
};

// Each simulated proxy's latencies_ms (apply → its ACK written, one per measured change), whichever
// client kind holds its stream (SimProxy, or h2_clients.h's H2Proxies).
using LatencyViews = std::vector<const std::vector<double>*>;
LatencyViews latencies_of(const std::vector<std::unique_ptr<SimProxy>>& proxies);

// `changes` policy changes one after another (policy(first_k) on), each waited for until every
// proxy ACKed it (dies otherwise) and, with `confirm`, until ListWorkloads shows every ACK; changes
// kept apart by the debounce. `revision` is the store's, updated.
Changes run_changes(Harness& h, Round& round, const LatencyViews& proxies, int first_k, int changes,
                    int64_t& revision, std::chrono::milliseconds debounce, bool confirm);
inline Changes run_changes(Harness& h, Round& round, const std::vector<std::unique_ptr<SimProxy>>& proxies,
                           int first_k, int changes, int64_t& revision, std::chrono::milliseconds debounce,
                           bool confirm) {
  return run_changes(h, round, latencies_of(proxies), first_k, changes, revision, debounce, confirm);
}

// Starts one stream per SVID (`ids`, consumed) named "<prefix><index>", `first_index` on, with
// `setup` applied to each before its start, keeping the handshake backlog small; dies unless every
// one ACKs a first snapshot. `already` streams of `round` have ACKed theirs before.
void connect_proxies(const Harness& h, Round& round, std::vector<mg::api::SvidFiles>& ids,
                     std::vector<std::unique_ptr<SimProxy>>& out, int already, const std::string& prefix,
                     int first_index, const std::function<void(SimProxy&, int)>& setup);

}  // namespace control_bench
