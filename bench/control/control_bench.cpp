// control_bench — the control plane under N connected proxies: a real ControlPlane on
// 127.0.0.1:0 (temp data dir, SQLite, built-in CA) and N real Watch streams over mTLS, each with
// its own SVID issued by that CA, ACKing every snapshot like a proxy does (gRPC callback API).
//
//   propagation  apply of a policy that applies to every proxy → each proxy's ACK written
//                (per-proxy p50/p99, and apply → last ACK per change); the control plane's own
//                push→ACK histogram (meshguard_push_ack_latency_milliseconds, bucket bounds);
//                then ListWorkloads polled until every proxy's acked_version is the version
//                sent to it (an upper bound: it includes the polling)
//   memory, CPU  "in-process": the control plane and the clients share this process, so VmRSS
//                after N streams minus before them, per proxy, is control plane + client.
//                "own process": the control plane runs in a child process (this binary with
//                --child-server) and its VmRSS and CPU are read from /proc/<pid> apart from
//                the clients'
//   etcd         mode `etcd-replicas` (`--modes own-process,etcd-replicas`): the same propagation
//                row with three control-plane replicas, each in its own process, sharing one etcd
//                (a one-member cluster the bench starts on 127.0.0.1, `etcd` from Debian's
//                etcd-server) and one plugged-in CA; the proxies spread over the replicas
//                round-robin, the changes applied through the first. CPU per change: every
//                replica's, and the sum; RSS per proxy: each replica's growth over its own proxies
//   clients      `--clients h2` (the propagation rows): the simulated proxies hold the same Watch
//                streams through h2_clients.h — OpenSSL and libnghttp2 driven by `--client-threads`
//                epoll loops — rather than a gRPC channel each: the control plane's work is the
//                same, the clients' a fraction of it (on a shared machine they take its cores).
//                Default grpc (SimProxy), what every earlier row measured
//   replica join `--replica-join`: a Service's replica joins (a new stream whose Hello carries an
//                address and an inbound port serving the targetPort) → each proxy's ACK of the first
//                snapshot holding the new endpoint (p50/p99, join → last ACK), control-plane CPU per
//                join; then RSS per endpoint (a Service selecting 100 already registered proxies)
//   telemetry    `--telemetry` (issue 17, telemetry.h): the same N proxies not reporting, then each
//                sending the console's Telemetry every 3 s on its stream: control-plane CPU per batch
//                and per second, RSS per proxy for the window, apply→ACK p50/p99 off vs on; then the
//                window alone filled to its bound (memory per proxy, CPU per batch)
//   CSRs         Sign over the API (renewal with a client certificate; sequential, and 2 threads)
//                beside raw ca::Authority::sign_csr on the same CSRs, in the same run
//
// Each row runs in its own child process (this binary re-executed), so one run's freed memory
// does not flatter the next one's RSS. Everything is bounded: a deadline per RPC and stream, a
// bounded wait per change, a bounded count of CSRs. Output: markdown tables on stdout.
//
//   control_bench [--proxies 100,1000,2000] [--modes in-process,own-process,etcd-replicas] [--changes 7]
//                 [--csrs 400] [--debounce-ms 100] [--clients grpc|h2] [--client-threads 1]
//   control_bench --replica-join [--proxies 100,1000,2000] [--changes 7] [--pool 100] [--debounce-ms 100]
//   control_bench --telemetry [--proxies 2000] [--changes 7] [--flows N] [--interval-ms 3000]
//                 [--measure-s 10] [--bound-proxies 50] [--debounce-ms 100]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <openssl/x509.h>

#include "api/grpc_tls.h"
#include "ca/authority.h"
#include "control/server.h"
#include "crypto/openssl.h"
#include "h2_clients.h"
#include "harness.h"
#include "meshguard/v1/meshguard.grpc.pb.h"
#include "policy/parse.h"
#include "telemetry.h"

extern char** environ;

namespace {

using namespace control_bench;

std::string csr_der(EVP_PKEY* key) {
  auto csr = mg::crypto::make_csr(key);
  if (!csr) die("make_csr: " + csr.error().to_string());
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(csr->get(), &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

// ------------------------------------------------------------------------------ propagation + RSS

// Which simulated proxies hold the streams (`--clients`): SimProxy's gRPC callback clients, one channel
// each, or h2_clients.h's epoll loops (`threads` of them) speaking the same protocol more cheaply.
struct ClientKind {
  bool h2 = false;
  // One loop by default: on a machine the control plane shares, the fewer threads the clients run,
  // the less of its cores they take (at 10,000 proxies, p99 716–809 ms with one, 1.2–1.5 s with two).
  int threads = 1;
  const char* label() const { return h2 ? ", h2 clients" : ""; }
};

// The simulated proxies of one propagation row, of either kind, connected.
class Fleet {
 public:
  Fleet(const Harness& h, Round& round, std::vector<mg::api::SvidFiles>& ids, const ClientKind& kind) {
    if (kind.h2) {
      h2_ = std::make_unique<H2Proxies>(round, h.bundle, kind.threads);
      h2_->connect(h, ids);
    } else {
      grpc_.reserve(ids.size());
      connect_proxies(h, round, ids, grpc_, 0, "proxy-", 0, nullptr);
    }
  }
  LatencyViews latencies() const { return h2_ ? h2_->latencies() : latencies_of(grpc_); }
  void stop() {
    if (h2_) h2_->stop();
    for (auto& p : grpc_) p->cancel();
    for (auto& p : grpc_) p->wait_done();
  }

 private:
  std::unique_ptr<H2Proxies> h2_;
  std::vector<std::unique_ptr<SimProxy>> grpc_;
};

int run_propagation(int n, int changes, std::chrono::milliseconds debounce, bool own_process,
                    const ClientKind& kind) {
  Harness h(debounce, own_process);
  int64_t revision = h.apply(policy(0));

  std::vector<mg::api::SvidFiles> ids;
  ids.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ids.push_back(issue(*h.ca, "bench", "sa-" + std::to_string(i)));

  const long rss_before = rss_kb();
  const long server_rss_before = own_process ? proc_rss_kb(h.server_pid()) : 0;
  Round round;
  const auto connect_start = Clock::now();
  Fleet proxies(h, round, ids, kind);
  const double connect_s = ms(Clock::now() - connect_start) / 1000.0;
  std::this_thread::sleep_for(500ms);  // let the streams settle before sampling memory
  const long rss_after = rss_kb();
  const long server_rss_after = own_process ? proc_rss_kb(h.server_pid()) : 0;

  const auto server_before = h.ack_latency_buckets();
  const Changes run = run_changes(h, round, proxies.latencies(), 1, changes, revision, debounce, true);
  const auto server_after = h.ack_latency_buckets();
  proxies.stop();

  const double server_p50 = bucket_percentile(server_before, server_after, 0.5);
  const double server_p99 = bucket_percentile(server_before, server_after, 0.99);
  // In one process the clients' CPU and memory cannot be told apart from the control plane's.
  char cpu[64], mem[64];
  const double per_proxy_kib = static_cast<double>(rss_after - rss_before) / n;
  if (own_process) {
    std::snprintf(cpu, sizeof cpu, "%.0f / %.0f", run.server_cpu_ms / changes,
                  (run.cpu_ms + run.server_cpu_ms) / changes);
    std::snprintf(mem, sizeof mem, "%.0f / %.0f",
                  static_cast<double>(server_rss_after - server_rss_before) / n,
                  per_proxy_kib);  // this process holds only the clients here
  } else {
    std::snprintf(cpu, sizeof cpu, "– / %.0f", run.cpu_ms / changes);
    std::snprintf(mem, sizeof mem, "%.0f together", per_proxy_kib);
  }
  std::printf("| %d | %s%s | %.1f | %.0f | %.0f | %.0f | %.0f | ≤ %.0f / ≤ %.0f | %.0f | %s | %s |\n", n,
              own_process ? "own process" : "in-process", kind.label(), connect_s,
              percentile(run.per_proxy_ms, 0.5), percentile(run.per_proxy_ms, 0.99),
              percentile(run.last_ack_ms, 0.5),
              *std::max_element(run.last_ack_ms.begin(), run.last_ack_ms.end()), server_p50, server_p99,
              percentile(run.confirmed_ms, 0.5), cpu, mem);
  std::fflush(stdout);
  return 0;
}

// ------------------------------------------------------------------------------ replicas on etcd

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    die("free_port");
  ::close(fd);
  return ntohs(a.sin_port);
}

// The etcd started below, stopped at exit too: die() exits without unwinding, and an etcd left
// running would outlive the bench.
pid_t g_etcd_pid = 0;
std::vector<std::string> g_temp_dirs;  // the etcd data dir, the CA directory: removed at exit
void stop_etcd_at_exit() {
  if (g_etcd_pid > 0) {
    ::kill(g_etcd_pid, SIGTERM);
    int status = 0;
    waitpid(g_etcd_pid, &status, 0);
  }
  std::error_code ec;
  for (const auto& d : g_temp_dirs) std::filesystem::remove_all(d, ec);
}

// A one-member etcd on 127.0.0.1 in a temp dir, stopped (SIGTERM, then waited for) and removed
// with the object. Every replica's store and watch go to it.
class EtcdProcess {
 public:
  static std::optional<std::string> binary() {
    for (const char* p : {"/usr/bin/etcd", "/usr/local/bin/etcd"})
      if (::access(p, X_OK) == 0) return p;
    return std::nullopt;
  }
  explicit EtcdProcess(const std::string& bin) {
    dir_ = (std::filesystem::temp_directory_path() / "mg-control-bench-etcd-XXXXXX").string();
    if (!::mkdtemp(dir_.data())) die("mkdtemp");
    g_temp_dirs.push_back(dir_);
    const std::string client = "http://127.0.0.1:" + std::to_string(free_port());
    const std::string peer = "http://127.0.0.1:" + std::to_string(free_port());
    std::vector<std::string> args = {bin,
                                     "--name",
                                     "bench",
                                     "--data-dir",
                                     dir_ + "/data",
                                     "--listen-client-urls",
                                     client,
                                     "--advertise-client-urls",
                                     client,
                                     "--listen-peer-urls",
                                     peer,
                                     "--initial-advertise-peer-urls",
                                     peer,
                                     "--initial-cluster",
                                     "bench=" + peer,
                                     "--initial-cluster-state",
                                     "new",
                                     "--log-level",
                                     "error"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, (dir_ + "/etcd.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (posix_spawn(&pid_, bin.c_str(), &fa, nullptr, argv.data(), environ) != 0) die("posix_spawn etcd");
    posix_spawn_file_actions_destroy(&fa);
    g_etcd_pid = pid_;
    std::atexit(stop_etcd_at_exit);
    endpoint_ = client.substr(std::string("http://").size());
    for (int i = 0; i < 200; ++i) {  // bounded: 20 s
      if (http_get(endpoint_, "/health").find("\"true\"") != std::string::npos) return;
      std::this_thread::sleep_for(100ms);
    }
    die("etcd did not become healthy (log: " + dir_ + "/etcd.log)");
  }
  ~EtcdProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
      g_etcd_pid = 0;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string store() const { return "etcd://" + endpoint_; }

 private:
  std::string dir_, endpoint_;
  pid_t pid_ = 0;
};

// The propagation row on `replicas` control planes sharing one etcd: proxies spread round-robin,
// changes applied through the first replica.
int run_propagation_etcd(int n, int changes, std::chrono::milliseconds debounce, int replica_count,
                         const ClientKind& kind) {
  const auto bin = EtcdProcess::binary();
  if (!bin) die("etcd not found (Debian etcd-server)");
  EtcdProcess etcd(*bin);
  std::string cacerts = (std::filesystem::temp_directory_path() / "mg-control-bench-ca-XXXXXX").string();
  if (!::mkdtemp(cacerts.data())) die("mkdtemp");
  g_temp_dirs.push_back(cacerts);
  {
    auto ca = mg::ca::Authority::create_self_signed("cluster.local", mg::crypto::KeyType::EcP256,
                                                    std::time(nullptr));
    if (!ca) die("ca: " + ca.error().to_string());
    if (auto st = ca->save_dir(cacerts); !st) die("ca: " + st.error().to_string());
  }
  Topology topology{replica_count, etcd.store(), cacerts};
  {
    Harness h(debounce, topology);
    int64_t revision = h.apply(policy(0));
    std::vector<mg::api::SvidFiles> ids;
    ids.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) ids.push_back(issue(*h.ca, "bench", "sa-" + std::to_string(i)));
    std::vector<long> rss_before;
    for (const auto& r : h.replicas) rss_before.push_back(proc_rss_kb(r.pid));
    Round round;
    const auto connect_start = Clock::now();
    Fleet proxies(h, round, ids, kind);
    const double connect_s = ms(Clock::now() - connect_start) / 1000.0;
    std::this_thread::sleep_for(500ms);
    std::string mem;
    for (size_t i = 0; i < h.replicas.size(); ++i) {
      // Proxy k went to replica k % R.
      const long on_it = (n - static_cast<long>(i) + static_cast<long>(h.replicas.size()) - 1) /
                         static_cast<long>(h.replicas.size());
      char one[32];
      std::snprintf(
          one, sizeof one, "%s%.0f", i == 0 ? "" : " / ",
          on_it > 0 ? static_cast<double>(proc_rss_kb(h.replicas[i].pid) - rss_before[i]) / on_it : 0.0);
      mem += one;
    }
    std::vector<double> cpu_before;
    for (const auto& r : h.replicas) cpu_before.push_back(proc_cpu_ms(r.pid));
    const auto server_before = h.ack_latency_buckets();
    // ListWorkloads covers the proxies of the replica asked only: not confirmed here.
    const Changes run = run_changes(h, round, proxies.latencies(), 1, changes, revision, debounce, false);
    const auto server_after = h.ack_latency_buckets();
    std::string cpu;
    for (size_t i = 0; i < h.replicas.size(); ++i) {
      char one[32];
      std::snprintf(one, sizeof one, "%s%.0f", i == 0 ? "" : " + ",
                    (proc_cpu_ms(h.replicas[i].pid) - cpu_before[i]) / changes);
      cpu += one;
    }
    char total[64];
    std::snprintf(total, sizeof total, " = %.0f / %.0f", run.server_cpu_ms / changes,
                  (run.cpu_ms + run.server_cpu_ms) / changes);
    cpu += total;
    proxies.stop();
    std::printf(
        "| %d | %d replicas on etcd (1 member)%s | %.1f | %.0f | %.0f | %.0f | %.0f | ≤ %.0f / ≤ %.0f | – | "
        "%s "
        "| %s |\n",
        n, replica_count, kind.label(), connect_s, percentile(run.per_proxy_ms, 0.5),
        percentile(run.per_proxy_ms, 0.99), percentile(run.last_ack_ms, 0.5),
        *std::max_element(run.last_ack_ms.begin(), run.last_ack_ms.end()),
        bucket_percentile(server_before, server_after, 0.5),
        bucket_percentile(server_before, server_after, 0.99), cpu.c_str(), mem.c_str());
    std::fflush(stdout);
  }
  std::error_code ec;
  std::filesystem::remove_all(cacerts, ec);
  return 0;
}

// ------------------------------------------------------------------------------ replica joining

std::string service(const std::string& name, const std::string& app, int target_port) {
  return "apiVersion: meshguard.io/v1alpha1\nkind: Service\nmetadata: {name: " + name +
         ", namespace: bench}\nspec:\n  selector: {app: " + app +
         "}\n  ports:\n  - {name: http, port: " + std::to_string(target_port) +
         ", targetPort: " + std::to_string(target_port) + ", protocol: http}\n";
}

// A replica's Hello: labels the Service selects, an address, one inbound listener serving
// `app_port` (the Service's targetPort).
void as_replica(SimProxy& p, const std::string& app, uint32_t listener, uint32_t app_port) {
  p.unmeasured();
  auto* hello = p.hello();
  hello->mutable_labels()->clear();
  (*hello->mutable_labels())["app"] = app;
  hello->set_address("127.0.0.1");
  auto* in = hello->add_inbound_ports();
  in->set_port(listener);
  in->set_app_port(app_port);
  in->set_protocol("http");
}

constexpr uint32_t kDetailsPort = 9080, kPoolPort = 9090, kJoinListener = 20000, kPoolListener = 30000;

// The endpoints of bench/details in one pushed snapshot, parsed as the proxy does: the check that
// the substring test saw what a real parse sees (every joiner, its listener behind port 9080).
void check_parsed(const std::string& snapshot, int joins) {
  auto set = mg::policy::parse_resources(snapshot, "<snapshot>");
  if (!set) die("a pushed snapshot does not parse: " + set.error().to_string());
  const mg::policy::ServiceEndpoints* details = nullptr;
  for (const auto& e : set->service_endpoints)
    if (e.meta.ns == "bench" && e.meta.name == "details") details = &e;
  if (!details || static_cast<int>(details->endpoints.size()) != joins)
    die("the last snapshot's bench/details ServiceEndpoints does not hold the " + std::to_string(joins) +
        " joiners");
  for (const auto& ep : details->endpoints) {
    const int k = ep.workload.rfind("joiner-", 0) == 0 ? std::atoi(ep.workload.c_str() + 7) : -1;
    auto port = ep.ports.find(kDetailsPort);
    if (k < 0 || k >= joins || ep.address != "127.0.0.1" || port == ep.ports.end() ||
        port->second != kJoinListener + static_cast<uint32_t>(k) || !ep.healthy)
      die("unexpected endpoint " + ep.workload + " in the last snapshot");
  }
}

// `n` proxies calling every service (no Workload egress lists), the control plane in its own
// process; `joins` replicas of bench/details join one at a time, then `pool` registered proxies
// become endpoints of a new Service at once (memory per endpoint).
int run_replica_join(int n, int joins, int pool, std::chrono::milliseconds debounce) {
  Harness h(debounce, true);
  h.apply(policy(0));
  h.apply(service("details", "details", kDetailsPort));

  Round round;
  for (int k = 0; k < joins; ++k) round.needles.push_back("  - workload: joiner-" + std::to_string(k) + "\n");
  std::vector<mg::api::SvidFiles> ids;
  for (int i = 0; i < n; ++i) ids.push_back(issue(*h.ca, "bench", "sa-" + std::to_string(i)));
  std::vector<std::unique_ptr<SimProxy>> proxies, replicas;
  const long server_rss_empty = proc_rss_kb(h.server_pid());
  connect_proxies(h, round, ids, proxies, 0, "proxy-", 0, [](SimProxy& p, int i) {
    if (i == 0) p.keep_snapshot();
  });
  std::this_thread::sleep_for(500ms);
  const long server_rss_connected = proc_rss_kb(h.server_pid());

  std::vector<double> last_ack_ms, cpu_per_join, handshake_ms;
  for (int k = 0; k < joins; ++k) {
    std::vector<mg::api::SvidFiles> one{issue(*h.ca, "bench", "details")};
    round.join_acked.store(0);
    const double cpu0 = proc_cpu_ms(h.server_pid());
    round.joined_at = Clock::now();  // before `join`: a proxy that loads `join` then sees this time
    round.join.store(k);
    connect_proxies(h, round, one, replicas, n + k, "joiner-", k, [&](SimProxy& p, int) {
      as_replica(p, "details", kJoinListener + static_cast<uint32_t>(k), kDetailsPort);
    });
    if (!wait_count(round, round.join_acked, n, kChangeTimeout))
      die("join " + std::to_string(k) + ": " + std::to_string(round.join_acked.load()) + " of " +
          std::to_string(n) + " proxies ACKed the new endpoint within the timeout");
    cpu_per_join.push_back(proc_cpu_ms(h.server_pid()) - cpu0);
    handshake_ms.push_back(ms(replicas.back()->hello_written_at() - round.joined_at));
    double last = 0;
    for (const auto& p : proxies) last = std::max(last, p->join_latencies_ms.back());
    last_ack_ms.push_back(last);
    std::this_thread::sleep_for(debounce + 50ms);  // keep joins apart: one join, one push
  }
  round.join.store(-1);
  check_parsed(proxies.front()->last_snapshot(), joins);

  // Memory per endpoint: `pool` proxies registered first under labels no Service selects, then a
  // Service selecting them all — the same connections, `pool` more endpoints in every snapshot.
  for (int i = 0; i < pool; ++i) ids.push_back(issue(*h.ca, "bench", "pool"));
  connect_proxies(h, round, ids, replicas, n + joins, "pool-", 0, [](SimProxy& p, int i) {
    as_replica(p, "pool", kPoolListener + static_cast<uint32_t>(i), kPoolPort);
  });
  std::this_thread::sleep_for(500ms);
  const long rss_before_pool = proc_rss_kb(h.server_pid());
  const double cpu0 = proc_cpu_ms(h.server_pid());
  round.acked.store(0);
  round.applied_at = Clock::now();
  round.target_revision.store(INT64_MAX);
  const int64_t revision = h.apply(service("pool", "pool", kPoolPort));
  round.target_revision.store(revision);
  if (!wait_count(round, round.acked, n, kChangeTimeout))
    die("the pool Service: " + std::to_string(round.acked.load()) + " of " + std::to_string(n) + " ACKs");
  const double pool_cpu = proc_cpu_ms(h.server_pid()) - cpu0;
  const std::string last = proxies.front()->last_snapshot();
  if (last.find("  - workload: pool-" + std::to_string(pool - 1) + "\n") == std::string::npos)
    die("the pool's endpoints are not in the pushed snapshot");
  std::this_thread::sleep_for(500ms);
  const long rss_after_pool = proc_rss_kb(h.server_pid());

  std::vector<double> all;
  for (const auto& p : proxies)
    all.insert(all.end(), p->join_latencies_ms.begin(), p->join_latencies_ms.end());
  for (auto& p : proxies) p->cancel();
  for (auto& p : replicas) p->cancel();
  for (auto& p : proxies) p->wait_done();
  for (auto& p : replicas) p->wait_done();
  // Every connected stream (the measured proxies, the joiners, the pool) receives the pool's endpoints.
  const double pool_kib = static_cast<double>(rss_after_pool - rss_before_pool), streams = n + joins + pool;
  std::printf("| %d | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %d | %.0f | %.1f | %.0f |\n", n,
              joins, percentile(all, 0.5), percentile(all, 0.99), percentile(last_ack_ms, 0.5),
              *std::max_element(last_ack_ms.begin(), last_ack_ms.end()), percentile(handshake_ms, 0.5),
              percentile(cpu_per_join, 0.5), static_cast<double>(server_rss_connected - server_rss_empty) / n,
              pool, pool_cpu, pool_kib / pool, pool_kib * 1024 / pool / streams);
  std::fflush(stdout);
  return 0;
}

// ------------------------------------------------------------------------------ CSRs per second

int run_csr(int count, std::chrono::milliseconds debounce) {
  Harness h(debounce, false);
  const auto own = issue(*h.ca, "bench", "signer");
  std::vector<std::string> ders;
  std::vector<mg::crypto::X509ReqPtr> reqs;
  for (int i = 0; i < count; ++i) {
    auto key = mg::crypto::generate_key(mg::crypto::KeyType::EcP256);
    ders.push_back(csr_der(key->get()));
    const auto* p = reinterpret_cast<const unsigned char*>(ders.back().data());
    reqs.emplace_back(d2i_X509_REQ(nullptr, &p, static_cast<long>(ders.back().size())));
  }
  auto channel = mg::api::make_channel(h.address, h.bundle, own);

  // Sign over the API, `threads` callers sharing one channel; returns signed/s.
  auto over_api = [&](int threads) {
    std::atomic<int> next{0}, failed{0}, signed_ok{0};
    const auto deadline = Clock::now() + kCsrTimeBudget;
    const auto start = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        auto stub = pb::CertificateService::NewStub(channel);
        for (int i; (i = next.fetch_add(1)) < count && Clock::now() < deadline;) {
          grpc::ClientContext ctx;
          set_deadline(ctx);
          pb::SignRequest req;
          req.set_csr_der(ders[static_cast<size_t>(i)]);
          pb::SignResponse resp;
          if (!stub->Sign(&ctx, req, &resp).ok() || resp.cert_chain_pem().empty())
            failed.fetch_add(1);
          else
            signed_ok.fetch_add(1);
        }
      });
    }
    for (auto& t : pool) t.join();
    const double elapsed_s = ms(Clock::now() - start) / 1000.0;
    if (failed.load() > 0) die(std::to_string(failed.load()) + " Sign calls failed");
    return signed_ok.load() / elapsed_s;
  };
  // Warm-up: the connection and the server's threads.
  {
    auto stub = pb::CertificateService::NewStub(channel);
    grpc::ClientContext ctx;
    set_deadline(ctx);
    pb::SignRequest req;
    req.set_csr_der(ders.front());
    pb::SignResponse resp;
    if (auto st = stub->Sign(&ctx, req, &resp); !st.ok()) die("Sign: " + mg::api::describe(st));
  }
  double cpu0 = cpu_ms();
  const double seq = over_api(1);
  const double seq_cpu_us = (cpu_ms() - cpu0) * 1000.0 / count;
  const double two = over_api(2);

  const auto id = mg::identity::SpiffeId::istio(h.ca->trust_domain(), "bench", "signer");
  cpu0 = cpu_ms();
  const auto start = Clock::now();
  int raw_done = 0;
  for (const auto& r : reqs) {
    if (Clock::now() - start > kCsrTimeBudget) break;
    if (!h.ca->sign_csr(r.get(), *id, std::chrono::hours(1), std::time(nullptr))) die("raw sign_csr failed");
    ++raw_done;
  }
  const double raw = raw_done / (ms(Clock::now() - start) / 1000.0);
  const double raw_cpu_us = (cpu_ms() - cpu0) * 1000.0 / raw_done;
  std::printf("| raw `ca::Authority::sign_csr` (in-process, 1 thread) | %.0f | 1.00 | %.0f |\n", raw,
              raw_cpu_us);
  std::printf("| `CertificateService.Sign` over mTLS, sequential | %.0f | %.2f | %.0f |\n", seq, seq / raw,
              seq_cpu_us);
  std::printf("| `CertificateService.Sign` over mTLS, 2 client threads | %.0f | %.2f | |\n", two, two / raw);
  std::fflush(stdout);
  return 0;
}

// ------------------------------------------------------------------------------ driver

int run_child(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::string self = "/proc/self/exe";
  argv.push_back(self.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0)
    die("posix_spawn failed");
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) die("waitpid failed");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    int v = std::atoi(s.substr(pos, comma - pos).c_str());
    if (v <= 0 || v > 10000) die("proxy counts must be 1..10000: " + s);
    out.push_back(v);
    pos = comma + 1;
  }
  return out;
}

int replica_join_table(const std::vector<int>& counts, int joins, int pool, int debounce_ms) {
  std::printf(
      "Replica joining → every proxy's ACK of a snapshot holding the new endpoint (control plane in its own "
      "process, %d joins per row, push debounce %d ms, times in ms)\n\n"
      "| proxies | joins | per-proxy ACK p50 | per-proxy ACK p99 | join→last ACK p50 | join→last ACK max | "
      "joiner "
      "handshake p50 | control-plane CPU ms per join (p50) | control-plane RSS KiB per connected proxy | "
      "endpoints added at once | control-plane CPU ms for that change | control-plane RSS KiB per endpoint | "
      "… bytes per endpoint per connected stream |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
      joins, debounce_ms);
  std::fflush(stdout);
  int rc = 0;
  for (int n : counts) {
    if (int r = run_child({"--child-replica-join", std::to_string(n), "--changes", std::to_string(joins),
                           "--pool", std::to_string(pool), "--debounce-ms", std::to_string(debounce_ms)});
        r != 0) {
      std::printf("| %d | failed (exit %d) | | | | | | | | | | | |\n", n, r);
      std::fflush(stdout);
      rc = 1;
    }
  }
  return rc;
}

int telemetry_table(const std::vector<int>& counts, const TelemetryOptions& o, int bound_proxies) {
  std::printf(
      "Telemetry off vs on (control plane in its own process; each proxy sends one Telemetry every %lld ms, "
      "staggered, flows per batch %s; CPU over %d s each; %d policy changes each, push debounce %lld ms; "
      "times "
      "in ms)\n\n"
      "| proxies | flows per batch (mean) | batches/s | control-plane CPU ms/s: off / on | telemetry CPU "
      "ms/s | "
      "telemetry CPU µs per batch | per-proxy apply→ACK p50: off / on | per-proxy apply→ACK p99: off / on | "
      "apply→last ACK median: off / on | control-plane CPU ms per change: off / on | control-plane RSS KiB "
      "per "
      "connected proxy | control-plane RSS KiB per proxy for the window |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n",
      static_cast<long long>(o.interval.count()),
      o.flows > 0 ? std::to_string(o.flows).c_str() : "4, 8, 16, …, 256 by proxy", o.measure_s, o.changes,
      static_cast<long long>(o.debounce.count()));
  std::fflush(stdout);
  int rc = 0;
  for (int n : counts) {
    if (int r = run_child({"--child-telemetry", std::to_string(n), "--changes", std::to_string(o.changes),
                           "--flows", std::to_string(o.flows), "--interval-ms",
                           std::to_string(o.interval.count()), "--measure-s", std::to_string(o.measure_s),
                           "--debounce-ms", std::to_string(o.debounce.count())});
        r != 0) {
      std::printf("| %d | failed (exit %d) | | | | | | | | | | |\n", n, r);
      std::fflush(stdout);
      rc = 1;
    }
  }
  std::printf(
      "\nThe console's window at its bound (in-process, simulated time: %d proxies, each 10 buckets × 256 "
      "distinct "
      "flows and the newest 100 samples, through `insight_batch` and `InsightWindow::report`)\n\n"
      "| texts | proxies | buckets × flows | samples | heap KiB per proxy | RSS KiB per proxy | CPU µs per "
      "256-flow "
      "batch |\n|---|---|---|---|---|---|---|\n",
      bound_proxies);
  std::fflush(stdout);
  for (const char* cut : {"plain", "cut"}) {
    if (int r = run_child({"--child-window-bound", std::to_string(bound_proxies), "--texts", cut}); r != 0) {
      std::printf("| %s | failed (exit %d) | | | | | |\n", cut, r);
      rc = 1;
    }
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  raise_nofile();
  std::string proxies, modes = "in-process,own-process", mode;
  int changes = 7, csrs = 400, debounce_ms = 100, single = 0, pool = 100;
  bool own_process = false, replica_join = false, telemetry = false, cut_texts = false;
  TelemetryOptions to;
  ClientKind clients;
  Topology server_topology;  // --child-server: where its configuration is kept
  int interval_ms = 3000, bound_proxies = 50;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--proxies") {
      proxies = value();
    } else if (a == "--modes") {
      modes = value();
    } else if (a == "--clients") {
      const std::string kind = value();
      if (kind != "grpc" && kind != "h2") die("--clients: grpc or h2");
      clients.h2 = kind == "h2";
    } else if (a == "--client-threads") {
      clients.threads = std::atoi(value().c_str());
    } else if (a == "--changes") {
      changes = std::atoi(value().c_str());
    } else if (a == "--csrs") {
      csrs = std::atoi(value().c_str());
    } else if (a == "--debounce-ms") {
      debounce_ms = std::atoi(value().c_str());
    } else if (a == "--child-propagation") {
      mode = "propagation";
      single = std::atoi(value().c_str());
    } else if (a == "--replica-join") {
      replica_join = true;
    } else if (a == "--pool") {
      pool = std::atoi(value().c_str());
    } else if (a == "--child-replica-join") {
      mode = "replica-join";
      single = std::atoi(value().c_str());
    } else if (a == "--telemetry") {
      telemetry = true;
    } else if (a == "--child-telemetry") {
      mode = "telemetry";
      single = std::atoi(value().c_str());
    } else if (a == "--flows") {
      to.flows = std::atoi(value().c_str());
    } else if (a == "--interval-ms") {
      interval_ms = std::atoi(value().c_str());
    } else if (a == "--measure-s") {
      to.measure_s = std::atoi(value().c_str());
    } else if (a == "--bound-proxies") {
      bound_proxies = std::atoi(value().c_str());
    } else if (a == "--child-window-bound") {
      mode = "window-bound";
      single = std::atoi(value().c_str());
    } else if (a == "--texts") {
      cut_texts = value() == "cut";
    } else if (a == "--own-process") {
      own_process = true;
    } else if (a == "--child-propagation-etcd") {
      mode = "propagation-etcd";
      single = std::atoi(value().c_str());
    } else if (a == "--child-csr") {
      mode = "csr";
    } else if (a == "--child-server") {
      mode = "server";
    } else if (a == "--store") {
      server_topology.store = value();
    } else if (a == "--plug-in-ca") {
      server_topology.plug_in_ca = value();
    } else {
      die("usage: control_bench [--proxies 100,1000,2000] [--modes in-process,own-process,etcd-replicas] "
          "[--changes 7] "
          "[--csrs 400] [--debounce-ms 100] [--clients grpc|h2] [--client-threads 1]\n       control_bench "
          "--replica-join [--proxies 100,1000,2000] "
          "[--changes 7] [--pool 100] "
          "[--debounce-ms 100]\n       control_bench --telemetry [--proxies 2000] [--changes 7] [--flows N] "
          "[--interval-ms 3000] [--measure-s 10] [--bound-proxies 50] [--debounce-ms 100]");
    }
  }
  if (changes < 5 || changes > 100) die("--changes must be 5..100");
  if (csrs < 10 || csrs > 20000) die("--csrs must be 10..20000");
  if (debounce_ms < 0 || debounce_ms > 5000) die("--debounce-ms must be 0..5000");
  if (pool < 1 || pool > 2000) die("--pool must be 1..2000");
  if (to.flows < 0 || to.flows > 256) die("--flows must be 0 (a spread) or 1..256");
  if (interval_ms < 100 || interval_ms > 60'000) die("--interval-ms must be 100..60000");
  if (to.measure_s < 1 || to.measure_s > 300) die("--measure-s must be 1..300");
  if (bound_proxies < 1 || bound_proxies > 500) die("--bound-proxies must be 1..500");
  if (clients.threads < 1 || clients.threads > 8) die("--client-threads must be 1..8");
  // The replica-join and telemetry rows use what only SimProxy does (joiners' Hellos, Telemetry).
  if (clients.h2 && (replica_join || telemetry)) die("--clients h2: the propagation rows only");
  const std::chrono::milliseconds debounce(debounce_ms);
  to.changes = changes;
  to.interval = std::chrono::milliseconds(interval_ms);
  to.debounce = debounce;
  if (mode == "server") return run_server(debounce, server_topology);
  if (mode == "propagation") return run_propagation(single, changes, debounce, own_process, clients);
  if (mode == "propagation-etcd") return run_propagation_etcd(single, changes, debounce, 3, clients);
  if (mode == "csr") return run_csr(csrs, debounce);
  if (mode == "replica-join") return run_replica_join(single, changes, pool, debounce);
  if (mode == "telemetry") return run_telemetry(single, to);
  if (mode == "window-bound") return run_window_bound(single, cut_texts);
  if (telemetry) return telemetry_table(parse_list(proxies.empty() ? "2000" : proxies), to, bound_proxies);
  if (proxies.empty()) proxies = "100,1000,2000";
  if (replica_join) return replica_join_table(parse_list(proxies), changes, pool, debounce_ms);
  const bool run_in = modes.find("in-process") != std::string::npos;
  const bool run_own = modes.find("own-process") != std::string::npos;
  const bool run_etcd = modes.find("etcd-replicas") != std::string::npos;
  if (!run_in && !run_own && !run_etcd) die("--modes: in-process, own-process and/or etcd-replicas");
  if (run_etcd && !EtcdProcess::binary()) {
    std::printf("etcd-replicas: skipped, no etcd binary (Debian etcd-server)\n");
    if (!run_in && !run_own) return 77;  // CTest's skip code
  }

  std::printf(
      "Policy change → every proxy's ACK (%d changes per row, push debounce %d ms, times in ms%s)\n\n",
      changes, debounce_ms,
      clients.h2
          ? ("; simulated proxies: h2 clients, " + std::to_string(clients.threads) + " epoll threads").c_str()
          : "");
  std::printf(
      "| proxies | control plane | connect all (s) | per-proxy ACK p50 | per-proxy ACK p99 | apply→last ACK "
      "p50 | "
      "apply→last ACK max | server-side ACK p50 / p99 (bucket) | all ACKs seen by ListWorkloads p50 | "
      "CPU ms per change: control plane / all | RSS KiB per proxy: control plane / clients |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  int rc = 0;
  for (int n : parse_list(proxies)) {
    for (bool own : {false, true}) {
      if ((own && !run_own) || (!own && !run_in)) continue;
      std::vector<std::string> args = {"--child-propagation", std::to_string(n),
                                       "--changes",           std::to_string(changes),
                                       "--debounce-ms",       std::to_string(debounce_ms)};
      if (own) args.push_back("--own-process");
      if (clients.h2)
        args.insert(args.end(), {"--clients", "h2", "--client-threads", std::to_string(clients.threads)});
      if (int r = run_child(args); r != 0) {
        std::printf("| %d | failed (exit %d) | | | | | | | | | |\n", n, r);
        std::fflush(stdout);
        rc = 1;
      }
    }
    if (run_etcd && EtcdProcess::binary()) {
      std::vector<std::string> args = {
          "--child-propagation-etcd", std::to_string(n), "--changes",
          std::to_string(changes),    "--debounce-ms",   std::to_string(debounce_ms)};
      if (clients.h2)
        args.insert(args.end(), {"--clients", "h2", "--client-threads", std::to_string(clients.threads)});
      if (int r = run_child(args); r != 0) {
        std::printf("| %d | etcd replicas failed (exit %d) | | | | | | | | | |\n", n, r);
        std::fflush(stdout);
        rc = 1;
      }
    }
  }
  std::printf(
      "\nCSRs signed per second (%d CSRs per row, P-256; CPU = this process, client + server)\n\n"
      "| path | CSRs/s | ratio to raw | CPU µs per CSR |\n|---|---|---|---|\n",
      csrs);
  std::fflush(stdout);
  if (run_child(
          {"--child-csr", "--csrs", std::to_string(csrs), "--debounce-ms", std::to_string(debounce_ms)}) != 0)
    rc = 1;
  return rc;
}
