// bench/control harness — the measuring helpers and the control plane's start (see harness.h).
#include "harness.h"

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
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

extern char** environ;

namespace control_bench {

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

void set_deadline(grpc::ClientContext& ctx, std::chrono::seconds d) {
  ctx.set_deadline(std::chrono::system_clock::now() + d);
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

Server start_server(std::chrono::milliseconds debounce, const Topology& topology) {
  Server s;
  s.dir = (std::filesystem::temp_directory_path() / "mg-control-bench-XXXXXX").string();
  if (!::mkdtemp(s.dir.data())) die("mkdtemp");
  mg::control::ServerOptions o;
  o.data_dir = s.dir + "/data";
  o.listen = "127.0.0.1:0";
  o.metrics_listen = "127.0.0.1:0";
  o.push_debounce = debounce;
  o.store = topology.store;
  o.plug_in_ca_dir = topology.plug_in_ca;
  auto opened = mg::control::ControlPlane::open(o);
  if (!opened) die("open: " + opened.error().to_string());
  s.cp = std::move(*opened);
  if (auto st = s.cp->start(); !st) die("start: " + st.error().to_string());
  return s;
}

// `--child-server`: a control plane in its own process, so its memory and CPU can be read apart
// from the clients'. Prints "READY <address> <metrics address> <data dir>", serves until its
// stdin closes (the parent exited or is done), then shuts down and removes its data dir.
int run_server(std::chrono::milliseconds debounce, const Topology& topology) {
  Server s = start_server(debounce, topology);
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
bool wait_count(Round& round, std::atomic<int>& counter, int want, std::chrono::seconds timeout) {
  std::unique_lock lock(round.mutex);
  round.wake_at.store(want);
  return round.cv.wait_for(lock, timeout, [&] { return counter.load() >= want || round.ended.load() > 0; }) &&
         counter.load() >= want;
}

Harness::Harness(std::chrono::milliseconds debounce, bool own_process)
    : Harness(debounce, own_process ? Topology{} : Topology{0, "", ""}) {}

Harness::Harness(std::chrono::milliseconds debounce, const Topology& topology) {
  if (topology.replicas == 0) {  // in this process
    local = start_server(debounce);
    address = local.cp->address();
    metrics_address = local.cp->metrics_address();
    dir = local.dir;
  } else {
    for (int i = 0; i < topology.replicas; ++i) replicas.push_back(spawn_server(debounce, topology));
    address = replicas[0].address;
    metrics_address = replicas[0].metrics_address;
    dir = replicas[0].dir;
  }
  // Replicas on etcd sign with the plugged-in CA; any replica's admin identity works on all.
  auto a = topology.plug_in_ca.empty() ? mg::ca::Authority::load_dir(dir + "/data/ca", std::time(nullptr))
                                       : mg::ca::Authority::load_plug_in_dir(
                                             topology.plug_in_ca, "cluster.local", std::time(nullptr));
  if (!a) die("ca: " + a.error().to_string());
  ca = std::make_unique<mg::ca::Authority>(std::move(*a));
  bundle = ca->bundle().to_pem();
  auto ad = mg::api::load_svid_dir(dir + "/data/admin");
  if (!ad) die("admin: " + ad.error().to_string());
  admin = std::move(*ad);
  admin_stub = pb::AdminService::NewStub(mg::api::make_channel(address, bundle, admin));
}

Harness::~Harness() {
  admin_stub.reset();
  if (!replicas.empty()) {
    for (const auto& r : replicas) ::close(r.stdin_fd);
    for (const auto& r : replicas) {
      int status = 0;
      waitpid(r.pid, &status, 0);
    }
  } else {
    local.cp->shutdown();
    local.cp.reset();
    std::filesystem::remove_all(local.dir);
  }
}

double Harness::server_cpu_ms() const {
  double sum = 0;
  for (const auto& r : replicas) sum += proc_cpu_ms(r.pid);
  return sum;
}

Replica Harness::spawn_server(std::chrono::milliseconds debounce, const Topology& topology) {
  Replica r;
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) die("pipe2");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  std::vector<std::string> args = {"/proc/self/exe", "--child-server", "--debounce-ms",
                                   std::to_string(debounce.count())};
  if (!topology.store.empty()) {
    args.insert(args.end(), {"--store", topology.store, "--plug-in-ca", topology.plug_in_ca});
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (posix_spawn(&r.pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ) != 0) die("posix_spawn");
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  r.stdin_fd = in[1];
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
  r.address = a;
  r.metrics_address = m;
  r.dir = dd;
  return r;
}

std::string policy(int k) {
  return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: bench-allow\n"
         "  namespace: bench\nspec:\n  rules:\n  - to:\n    - operation:\n        paths: [\"/v" +
         std::to_string(k) + "/*\"]\n";
}

LatencyViews latencies_of(const std::vector<std::unique_ptr<SimProxy>>& proxies) {
  LatencyViews out;
  out.reserve(proxies.size());
  for (const auto& p : proxies) out.push_back(&p->latencies_ms);
  return out;
}

Changes run_changes(Harness& h, Round& round, const LatencyViews& proxies, int first_k, int changes,
                    int64_t& revision, std::chrono::milliseconds debounce, bool confirm) {
  Changes out;
  const int n = static_cast<int>(proxies.size());
  const bool own_process = !h.replicas.empty();
  std::vector<size_t> seen;  // each proxy's latencies before this run
  for (const auto* p : proxies) seen.push_back(p->size());
  for (int k = first_k; k < first_k + changes; ++k) {
    const double cpu_start = cpu_ms();
    const double server_cpu_start = own_process ? h.server_cpu_ms() : 0;
    round.acked.store(0);
    round.applied_at = Clock::now();
    round.target_revision.store(revision + 1);
    const int64_t got = h.apply(policy(k));
    // SQLite counts applies; etcd's revision counts every write (registrations, the CA's keys), so
    // a change may land further on. Nothing else changes resources here, so the first snapshot at
    // or after revision + 1 carries this change.
    if (got <= revision) die("unexpected revision " + std::to_string(got));
    revision = got;
    if (!wait_count(round, round.acked, n, kChangeTimeout))
      die("change " + std::to_string(k) + ": " + std::to_string(round.acked.load()) + " of " +
          std::to_string(n) + " proxies ACKed within the timeout");
    // The latest ACK written, from the per-proxy samples of this change.
    double last = 0;
    for (const auto* p : proxies) last = std::max(last, p->back());
    out.last_ack_ms.push_back(last);
    if (confirm) {
      // The control plane's own view: every proxy's acked version is what it was sent.
      bool confirmed = false;
      for (int attempt = 0; attempt < 2000 && !confirmed; ++attempt) {
        auto list = h.workloads();
        int acked = 0;
        for (const auto& w : list.workloads())
          if (w.connected() && !w.config_version().empty() && w.acked_version() == w.config_version())
            ++acked;
        confirmed = acked == n;
        if (!confirmed) std::this_thread::sleep_for(2ms);
      }
      if (!confirmed) die("change " + std::to_string(k) + ": ListWorkloads never showed every ACK");
      out.confirmed_ms.push_back(ms(Clock::now() - round.applied_at));
    }
    out.cpu_ms += cpu_ms() - cpu_start;
    if (own_process) out.server_cpu_ms += h.server_cpu_ms() - server_cpu_start;
    std::this_thread::sleep_for(debounce + 50ms);  // keep changes apart: one change, one push
  }
  for (size_t i = 0; i < proxies.size(); ++i) {
    const auto& l = *proxies[i];
    out.per_proxy_ms.insert(out.per_proxy_ms.end(), l.begin() + static_cast<ptrdiff_t>(seen[i]), l.end());
  }
  return out;
}

void connect_proxies(const Harness& h, Round& round, std::vector<mg::api::SvidFiles>& ids,
                     std::vector<std::unique_ptr<SimProxy>>& out, int already, const std::string& prefix,
                     int first_index, const std::function<void(SimProxy&, int)>& setup) {
  const int n = static_cast<int>(ids.size());
  for (int i = 0; i < n; ++i) {
    const int index = first_index + i;
    out.push_back(std::make_unique<SimProxy>(mg::api::make_channel(h.address_for(index), h.bundle, ids[i]),
                                             &round, index));
    out.back()->hello()->set_workload(prefix + std::to_string(index));
    if (setup) setup(*out.back(), index);
    out.back()->start();
    // Keep the handshake backlog small: the machine has two cores.
    if (i % 50 == 49) wait_count(round, round.ready, already + i + 1 - 50, kConnectTimeout);
  }
  ids.clear();
  if (!wait_count(round, round.ready, already + n, kConnectTimeout))
    die("only " + std::to_string(round.ready.load() - already) + " of " + std::to_string(n) +
        " proxies got a first snapshot (" + std::to_string(round.ended.load()) + " streams ended)");
}

}  // namespace control_bench
