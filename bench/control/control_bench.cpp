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
//   CSRs         Sign over the API (renewal with a client certificate; sequential, and 2 threads)
//                beside raw ca::Authority::sign_csr on the same CSRs, in the same run
//
// Each row runs in its own child process (this binary re-executed), so one run's freed memory
// does not flatter the next one's RSS. Everything is bounded: a deadline per RPC and stream, a
// bounded wait per change, a bounded count of CSRs. Output: markdown tables on stdout.
//
//   control_bench [--proxies 100,1000,2000] [--modes in-process,own-process] [--changes 7]
//                 [--csrs 400] [--debounce-ms 100]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
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
#include "meshguard/v1/meshguard.grpc.pb.h"

extern char** environ;

namespace {

namespace pb = ::meshguard::v1;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kRpcDeadline = 30s;
constexpr auto kStreamDeadline = 15min;
constexpr auto kChangeTimeout = 60s;
constexpr auto kConnectTimeout = 180s;
constexpr auto kCsrTimeBudget = 20s;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "control_bench: %s\n", what.c_str());
  std::exit(1);
}

long rss_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

void raise_nofile() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return;
  r.rlim_cur = r.rlim_max;
  setrlimit(RLIMIT_NOFILE, &r);
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Process CPU time (user + system), both sides of every connection.
double cpu_ms() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000.0 +
         (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1000.0;
}

// One GET to the control plane's metrics endpoint (plain HTTP on 127.0.0.1), bounded per read.
std::string http_get(const std::string& address, const std::string& path) {
  auto colon = address.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  std::string out;
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: bench\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[16384];
      for (int i = 0; i < 10000; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10000) <= 0) break;
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
      }
    }
  }
  if (fd >= 0) ::close(fd);
  return out;
}

// Cumulative bucket counts of one histogram from Prometheus text: upper bound (ms) → count.
std::map<double, uint64_t> histogram_buckets(const std::string& text, const std::string& name) {
  std::map<double, uint64_t> out;
  const std::string prefix = name + "_bucket{le=\"";
  size_t pos = 0;
  while ((pos = text.find(prefix, pos)) != std::string::npos) {
    size_t q = text.find('"', pos + prefix.size());
    size_t eol = text.find('\n', q);
    const std::string le = text.substr(pos + prefix.size(), q - pos - prefix.size());
    const double bound = le == "+Inf" ? 1e300 : std::atof(le.c_str());
    out[bound] =
        std::strtoull(text.substr(text.find(' ', q) + 1, eol - text.find(' ', q) - 1).c_str(), nullptr, 10);
    pos = eol;
  }
  return out;
}

// The smallest bucket bound holding fraction `p` of the observations made between two scrapes.
double bucket_percentile(const std::map<double, uint64_t>& before, const std::map<double, uint64_t>& after,
                         double p) {
  if (after.empty()) return -1;
  const auto total_of = [](const std::map<double, uint64_t>& m) {
    return m.empty() ? 0 : m.rbegin()->second;
  };
  const double total = static_cast<double>(total_of(after) - total_of(before));
  for (const auto& [bound, count] : after) {
    auto b = before.find(bound);
    const double delta = static_cast<double>(count - (b == before.end() ? 0 : b->second));
    if (total > 0 && delta >= p * total) return bound;
  }
  return -1;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void set_deadline(grpc::ClientContext& ctx, std::chrono::seconds d = kRpcDeadline) {
  ctx.set_deadline(std::chrono::system_clock::now() + d);
}

std::string policy(int k) {
  return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: bench-allow\n"
         "  namespace: bench\nspec:\n  rules:\n  - to:\n    - operation:\n        paths: [\"/v" +
         std::to_string(k) + "/*\"]\n";
}

std::string csr_der(EVP_PKEY* key) {
  auto csr = mg::crypto::make_csr(key);
  if (!csr) die("make_csr: " + csr.error().to_string());
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(csr->get(), &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

mg::api::SvidFiles issue(const mg::ca::Authority& ca, const std::string& ns, const std::string& sa) {
  auto key = mg::crypto::generate_key(mg::crypto::KeyType::EcP256);
  if (!key) die("generate_key");
  auto csr = mg::crypto::make_csr(key->get());
  auto id = mg::identity::SpiffeId::istio(ca.trust_domain(), ns, sa);
  auto issued = ca.sign_csr(csr->get(), *id, std::chrono::hours(2), std::time(nullptr));
  if (!issued) die("sign_csr: " + issued.error().to_string());
  return {mg::crypto::private_key_to_pem(key->get()), issued->chain_pem, ca.bundle().to_pem()};
}

// A started control plane in a fresh temp data dir.
struct Server {
  std::string dir;
  std::unique_ptr<mg::control::ControlPlane> cp;
};
Server start_server(std::chrono::milliseconds debounce) {
  Server s;
  s.dir = (std::filesystem::temp_directory_path() / "mg-control-bench-XXXXXX").string();
  if (!::mkdtemp(s.dir.data())) die("mkdtemp");
  mg::control::ServerOptions o;
  o.data_dir = s.dir + "/data";
  o.listen = "127.0.0.1:0";
  o.metrics_listen = "127.0.0.1:0";
  o.push_debounce = debounce;
  auto opened = mg::control::ControlPlane::open(o);
  if (!opened) die("open: " + opened.error().to_string());
  s.cp = std::move(*opened);
  if (auto st = s.cp->start(); !st) die("start: " + st.error().to_string());
  return s;
}

// `--child-server`: a control plane in its own process, so its memory and CPU can be read apart
// from the clients'. Prints "READY <address> <metrics address> <data dir>", serves until its
// stdin closes (the parent exited or is done), then shuts down and removes its data dir.
int run_server(std::chrono::milliseconds debounce) {
  Server s = start_server(debounce);
  std::printf("READY %s %s %s\n", s.cp->address().c_str(), s.cp->metrics_address().c_str(), s.dir.c_str());
  std::fflush(stdout);
  char buf[256];
  while (::read(0, buf, sizeof buf) > 0) {
  }
  s.cp->shutdown();
  s.cp.reset();
  std::filesystem::remove_all(s.dir);
  return 0;
}

long proc_rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

double proc_cpu_ms(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields;
  std::string field;
  for (char c : text.substr(close + 2)) {
    if (c == ' ') {
      fields.push_back(field);
      field.clear();
    } else {
      field += c;
    }
  }
  // After the command: state is field 3 of stat(5), utime 14, stime 15.
  if (fields.size() < 13) return 0;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::atof(fields[11].c_str()) + std::atof(fields[12].c_str())) * 1000.0 / ticks;
}

// The control plane under test (in this process, or a child process when `own_process`), its CA
// (read from the data dir) and the admin identity.
struct Harness {
  Server local;
  pid_t server_pid = 0;
  int server_stdin = -1;
  std::string address, metrics_address, dir;
  std::unique_ptr<mg::ca::Authority> ca;
  std::string bundle;
  mg::api::SvidFiles admin;
  std::unique_ptr<pb::AdminService::Stub> admin_stub;

  Harness(std::chrono::milliseconds debounce, bool own_process) {
    if (own_process) {
      spawn_server(debounce);
    } else {
      local = start_server(debounce);
      address = local.cp->address();
      metrics_address = local.cp->metrics_address();
      dir = local.dir;
    }
    auto a = mg::ca::Authority::load_dir(dir + "/data/ca", std::time(nullptr));
    if (!a) die("ca: " + a.error().to_string());
    ca = std::make_unique<mg::ca::Authority>(std::move(*a));
    bundle = ca->bundle().to_pem();
    auto ad = mg::api::load_svid_dir(dir + "/data/admin");
    if (!ad) die("admin: " + ad.error().to_string());
    admin = std::move(*ad);
    admin_stub = pb::AdminService::NewStub(mg::api::make_channel(address, bundle, admin));
  }
  ~Harness() {
    admin_stub.reset();
    if (server_pid > 0) {
      ::close(server_stdin);
      int status = 0;
      waitpid(server_pid, &status, 0);
    } else {
      local.cp->shutdown();
      local.cp.reset();
      std::filesystem::remove_all(local.dir);
    }
  }

  void spawn_server(std::chrono::milliseconds debounce) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) die("pipe2");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    std::string self = "/proc/self/exe", flag = "--child-server", d = "--debounce-ms",
                dv = std::to_string(debounce.count());
    char* argv[] = {self.data(), flag.data(), d.data(), dv.data(), nullptr};
    if (posix_spawn(&server_pid, "/proc/self/exe", &fa, nullptr, argv, environ) != 0) die("posix_spawn");
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    server_stdin = in[1];
    std::string line;
    char c;
    for (int i = 0; i < 4096; ++i) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 60'000) <= 0 || ::read(out[0], &c, 1) != 1)
        die("the control-plane process did not start");
      if (c == '\n') break;
      line += c;
    }
    ::close(out[0]);
    char a[128], m[128], dd[4096];
    if (std::sscanf(line.c_str(), "READY %127s %127s %4095s", a, m, dd) != 3) die("bad READY line: " + line);
    address = a;
    metrics_address = m;
    dir = dd;
  }

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

  std::map<double, uint64_t> ack_latency_buckets() {
    return histogram_buckets(http_get(metrics_address, "/metrics"),
                             "meshguard_push_ack_latency_milliseconds");
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
  std::mutex mutex;
  std::condition_variable cv;
  void bump(std::atomic<int>& counter) {
    counter.fetch_add(1);
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
  std::vector<double> latencies_ms;  // per measured change, written by gRPC threads before `acked`

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is ending; OnDone follows
    pb::WatchRequest ack;
    ack.mutable_ack()->set_version(in_.version());
    ack.mutable_ack()->set_accepted(true);
    const int64_t revision = in_.revision();
    {
      std::unique_lock lock(mutex_);
      if (writing_) {
        queue_.push_back({std::move(ack), revision});
      } else {
        writing_ = true;
        out_ = std::move(ack);
        out_revision_ = revision;
        lock.unlock();
        StartWrite(&out_);
      }
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return;
    const auto now = Clock::now();
    if (out_.has_ack()) on_acked(out_revision_, now);
    std::unique_lock lock(mutex_);
    if (queue_.empty()) {
      writing_ = false;
      return;
    }
    out_ = std::move(queue_.front().first);
    out_revision_ = queue_.front().second;
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
  void on_acked(int64_t revision, Clock::time_point now) {
    if (!first_acked_) {
      first_acked_ = true;
      round_->bump(round_->ready);
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
  std::deque<std::pair<pb::WatchRequest, int64_t>> queue_;
  bool first_acked_ = false;
  int64_t counted_target_ = -1;
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool writing_ = false, done_ = false;
  grpc::Status status_;
};

bool wait_count(Round& round, std::atomic<int>& counter, int want, std::chrono::seconds timeout) {
  std::unique_lock lock(round.mutex);
  return round.cv.wait_for(lock, timeout, [&] { return counter.load() >= want || round.ended.load() > 0; }) &&
         counter.load() >= want;
}

// ------------------------------------------------------------------------------ propagation + RSS

int run_propagation(int n, int changes, std::chrono::milliseconds debounce, bool own_process) {
  Harness h(debounce, own_process);
  int64_t revision = h.apply(policy(0));

  std::vector<mg::api::SvidFiles> ids;
  ids.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ids.push_back(issue(*h.ca, "bench", "sa-" + std::to_string(i)));

  const long rss_before = rss_kb();
  const long server_rss_before = own_process ? proc_rss_kb(h.server_pid) : 0;
  Round round;
  std::vector<std::unique_ptr<SimProxy>> proxies;
  proxies.reserve(static_cast<size_t>(n));
  const auto connect_start = Clock::now();
  for (int i = 0; i < n; ++i) {
    proxies.push_back(
        std::make_unique<SimProxy>(mg::api::make_channel(h.address, h.bundle, ids[i]), &round, i));
    proxies.back()->start();
    // Keep the handshake backlog small: the machine has two cores.
    if (i % 50 == 49) wait_count(round, round.ready, i + 1 - 50, kConnectTimeout);
  }
  ids.clear();
  if (!wait_count(round, round.ready, n, kConnectTimeout))
    die("only " + std::to_string(round.ready.load()) + " of " + std::to_string(n) +
        " proxies got a first snapshot (" + std::to_string(round.ended.load()) + " streams ended)");
  const double connect_s = ms(Clock::now() - connect_start) / 1000.0;
  std::this_thread::sleep_for(500ms);  // let the streams settle before sampling memory
  const long rss_after = rss_kb();
  const long server_rss_after = own_process ? proc_rss_kb(h.server_pid) : 0;

  std::vector<double> last_ack_ms, confirmed_ms;
  const auto server_before = h.ack_latency_buckets();
  double cpu_in_changes = 0, server_cpu_in_changes = 0;
  for (int k = 1; k <= changes; ++k) {
    const double cpu_start = cpu_ms();
    const double server_cpu_start = own_process ? proc_cpu_ms(h.server_pid) : 0;
    round.acked.store(0);
    round.applied_at = Clock::now();
    round.target_revision.store(revision + 1);
    const int64_t got = h.apply(policy(k));
    if (got != revision + 1) die("unexpected revision " + std::to_string(got));
    revision = got;
    if (!wait_count(round, round.acked, n, kChangeTimeout))
      die("change " + std::to_string(k) + ": " + std::to_string(round.acked.load()) + " of " +
          std::to_string(n) + " proxies ACKed within the timeout");
    // The latest ACK written, from the per-proxy samples of this change.
    double last = 0;
    for (const auto& p : proxies) last = std::max(last, p->latencies_ms.back());
    last_ack_ms.push_back(last);
    // The control plane's own view: every proxy's acked version is what it was sent.
    bool confirmed = false;
    for (int attempt = 0; attempt < 2000 && !confirmed; ++attempt) {
      auto list = h.workloads();
      int acked = 0;
      for (const auto& w : list.workloads())
        if (w.connected() && !w.config_version().empty() && w.acked_version() == w.config_version()) ++acked;
      confirmed = acked == n;
      if (!confirmed) std::this_thread::sleep_for(2ms);
    }
    if (!confirmed) die("change " + std::to_string(k) + ": ListWorkloads never showed every ACK");
    confirmed_ms.push_back(ms(Clock::now() - round.applied_at));
    cpu_in_changes += cpu_ms() - cpu_start;
    if (own_process) server_cpu_in_changes += proc_cpu_ms(h.server_pid) - server_cpu_start;
    std::this_thread::sleep_for(debounce + 50ms);  // keep changes apart: one change, one push
  }

  const auto server_after = h.ack_latency_buckets();
  std::vector<double> all;
  for (const auto& p : proxies) all.insert(all.end(), p->latencies_ms.begin(), p->latencies_ms.end());
  for (auto& p : proxies) p->cancel();
  for (auto& p : proxies) p->wait_done();

  const double server_p50 = bucket_percentile(server_before, server_after, 0.5);
  const double server_p99 = bucket_percentile(server_before, server_after, 0.99);
  // In one process the clients' CPU and memory cannot be told apart from the control plane's.
  char cpu[64], mem[64];
  const double per_proxy_kib = static_cast<double>(rss_after - rss_before) / n;
  if (own_process) {
    std::snprintf(cpu, sizeof cpu, "%.0f / %.0f", server_cpu_in_changes / changes,
                  (cpu_in_changes + server_cpu_in_changes) / changes);
    std::snprintf(mem, sizeof mem, "%.0f / %.0f",
                  static_cast<double>(server_rss_after - server_rss_before) / n,
                  per_proxy_kib);  // this process holds only the clients here
  } else {
    std::snprintf(cpu, sizeof cpu, "– / %.0f", cpu_in_changes / changes);
    std::snprintf(mem, sizeof mem, "%.0f together", per_proxy_kib);
  }
  std::printf("| %d | %s | %.1f | %.0f | %.0f | %.0f | %.0f | ≤ %.0f / ≤ %.0f | %.0f | %s | %s |\n", n,
              own_process ? "own process" : "in-process", connect_s, percentile(all, 0.5),
              percentile(all, 0.99), percentile(last_ack_ms, 0.5),
              *std::max_element(last_ack_ms.begin(), last_ack_ms.end()), server_p50, server_p99,
              percentile(confirmed_ms, 0.5), cpu, mem);
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

}  // namespace

int main(int argc, char** argv) {
  raise_nofile();
  std::string proxies = "100,1000,2000", modes = "in-process,own-process", mode;
  int changes = 7, csrs = 400, debounce_ms = 100, single = 0;
  bool own_process = false;
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
    } else if (a == "--changes") {
      changes = std::atoi(value().c_str());
    } else if (a == "--csrs") {
      csrs = std::atoi(value().c_str());
    } else if (a == "--debounce-ms") {
      debounce_ms = std::atoi(value().c_str());
    } else if (a == "--child-propagation") {
      mode = "propagation";
      single = std::atoi(value().c_str());
    } else if (a == "--own-process") {
      own_process = true;
    } else if (a == "--child-csr") {
      mode = "csr";
    } else if (a == "--child-server") {
      mode = "server";
    } else {
      die("usage: control_bench [--proxies 100,1000,2000] [--modes in-process,own-process] [--changes 7] "
          "[--csrs 400] [--debounce-ms 100]");
    }
  }
  if (changes < 5 || changes > 100) die("--changes must be 5..100");
  if (csrs < 10 || csrs > 20000) die("--csrs must be 10..20000");
  if (debounce_ms < 0 || debounce_ms > 5000) die("--debounce-ms must be 0..5000");
  const std::chrono::milliseconds debounce(debounce_ms);
  if (mode == "server") return run_server(debounce);
  if (mode == "propagation") return run_propagation(single, changes, debounce, own_process);
  if (mode == "csr") return run_csr(csrs, debounce);
  const bool run_in = modes.find("in-process") != std::string::npos;
  const bool run_own = modes.find("own-process") != std::string::npos;
  if (!run_in && !run_own) die("--modes: in-process and/or own-process");

  std::printf("Policy change → every proxy's ACK (%d changes per row, push debounce %d ms, times in ms)\n\n",
              changes, debounce_ms);
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
      if (int r = run_child(args); r != 0) {
        std::printf("| %d | failed (exit %d) | | | | | | | | | |\n", n, r);
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
