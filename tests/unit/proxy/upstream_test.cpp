// Unit tests of the proxy's upstream side, in process against a scripted app on 127.0.0.1: a
// pooled app connection the app closed is retried, a response that arrives in pieces is relayed
// whole (content-length and chunked), a silent app gets a 504; and the Watchdog's deadlines.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "proxy/net.h"
#include "proxy/proxy.h"

namespace mg::proxy {
namespace {

using namespace std::chrono_literals;

// A listening socket on 127.0.0.1:0 served by one thread; `serve` handles each accepted
// connection in turn (the proxy's pool keeps at most a couple open in these tests).
class ScriptedApp {
 public:
  using Handler = std::function<void(int fd)>;
  explicit ScriptedApp(Handler serve) : serve_(std::move(serve)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listen_fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        int fd = ::accept(listen_fd_, nullptr, nullptr);
        if (fd < 0) return;
        accepted_++;
        timeval tv{10, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        serve_(fd);
        ::close(fd);
      }
    });
  }
  ~ScriptedApp() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  Handler serve_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// Reads a byte at a time until what was read ends with `marker` (or EOF / the 10 s bound), so
// nothing past it is consumed; returns what was read.
std::string read_until(int fd, std::string_view marker) {
  std::string in;
  char c;
  while (!in.ends_with(marker) && ::recv(fd, &c, 1, 0) == 1) in += c;
  return in;
}

// Reads one request head (requests in these tests have no body); false when the peer closed.
bool read_head(int fd) { return read_until(fd, "\r\n\r\n").ends_with("\r\n\r\n"); }

void send_all(int fd, const std::string& s) { ::send(fd, s.data(), s.size(), MSG_NOSIGNAL); }

// A keep-alive client of the proxy's inbound listener.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }
  int fd() const { return fd_; }

  // Sends a GET and returns the whole response (head + body, read by its framing), "" on EOF.
  std::string get(const std::string& path) {
    send_all(fd_, "GET " + path + " HTTP/1.1\r\nHost: app\r\n\r\n");
    while (true) {
      auto head_end = buf_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::string head = buf_.substr(0, head_end + 4);
        size_t total = 0;
        if (auto cl = head.find("content-length: "); cl != std::string::npos) {
          total = head_end + 4 + std::stoul(head.substr(cl + 16));
        } else if (head.find("transfer-encoding: chunked") != std::string::npos) {
          auto last = buf_.find("\r\n0\r\n\r\n", head_end);
          if (last != std::string::npos) total = last + 7;
        } else {
          total = head_end + 4;
        }
        if (total > 0 && buf_.size() >= total) {
          std::string response = buf_.substr(0, total);
          buf_.erase(0, total);
          return response;
        }
      }
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return "";
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

// A proxy with one plaintext inbound HTTP port in front of `app_port`, running on its own thread.
class RunningProxy {
 public:
  explicit RunningProxy(uint16_t app_port, ProxyLimits limits = {},
                        std::optional<std::string> policy_dir = {},
                        std::optional<uint32_t> num_trusted_proxies = {}) {
    ProxyConfig cfg;
    cfg.num_trusted_proxies = num_trusted_proxies;
    cfg.workload = {"app", "default", "app", {{"app", "app"}}};
    cfg.access_log = "/dev/null";
    cfg.workers = 1;
    cfg.limits = limits;
    cfg.policy_dir = policy_dir;
    InboundPort port;
    port.address = "127.0.0.1";
    port.port = 0;
    port.app_port = app_port;
    cfg.inbound.push_back(port);
    auto created = Proxy::create(cfg);
    EXPECT_TRUE(created) << created.error().to_string();
    proxy_ = std::move(*created);
    EXPECT_TRUE(proxy_->start());
    const std::string address = proxy_->listeners().at(0).address;
    port_ = static_cast<uint16_t>(std::stoul(address.substr(address.rfind(':') + 1)));
    runner_ = std::thread([this] { proxy_->run(); });
  }
  ~RunningProxy() {
    proxy_->request_drain();
    runner_.join();
  }
  uint16_t port() const { return port_; }
  Proxy& proxy() { return *proxy_; }

 private:
  std::unique_ptr<Proxy> proxy_;
  uint16_t port_ = 0;
  std::thread runner_;
};

// The data of a chunked body (no extensions or trailers: what the proxy itself writes).
std::string dechunk(std::string body) {
  std::string data;
  while (true) {
    auto eol = body.find("\r\n");
    if (eol == std::string::npos) return data + "(truncated)";
    size_t size = std::stoul(body.substr(0, eol), nullptr, 16);
    if (size == 0) return data;
    data += body.substr(eol + 2, size);
    body.erase(0, eol + 2 + size + 2);
  }
}

const std::string kOk = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

// An app answering every request on a connection with kOk.
void answer_ok(int fd) {
  while (read_head(fd)) send_all(fd, kOk);
}

TEST(ProxyUpstream, PooledConnectionTheAppClosedIsRetriedOnAFreshOne) {
  // Every app connection answers one request as keep-alive, then closes: the proxy's pooled
  // connection is dead by the next request, which must still succeed (and not be answered 503).
  ScriptedApp app([](int fd) {
    if (read_head(fd)) send_all(fd, kOk);
  });
  RunningProxy proxy(app.port());
  Client client(proxy.port());
  ASSERT_TRUE(client.connected());
  for (int i = 0; i < 5; ++i) {
    std::string r = client.get("/n/" + std::to_string(i));
    EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << "request " << i << ": " << r;
    EXPECT_EQ(r.substr(r.size() - 2), "ok");
  }
  EXPECT_GE(app.accepted(), 5);
}

TEST(ProxyUpstream, ResponseArrivingInPiecesIsRelayedWhole) {
  const std::string body(40'000, 'b');  // larger than one read chunk: relayed in several writes
  ScriptedApp app([&](int fd) {
    while (read_head(fd)) {
      // Content-length body: head alone first, then the body in two pieces.
      send_all(fd, "HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(body.size()) + "\r\n\r\n");
      std::this_thread::sleep_for(20ms);
      send_all(fd, body.substr(0, 1000));
      std::this_thread::sleep_for(20ms);
      send_all(fd, body.substr(1000));
      if (!read_head(fd)) return;
      // Chunked body, split mid-chunk.
      send_all(fd, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel");
      std::this_thread::sleep_for(20ms);
      send_all(fd, "lo\r\n6\r\n world\r\n0\r\n\r\n");
    }
  });
  RunningProxy proxy(app.port());
  Client client(proxy.port());
  ASSERT_TRUE(client.connected());
  std::string first = client.get("/big");
  ASSERT_EQ(first.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << first.substr(0, 200);
  EXPECT_EQ(first.substr(first.find("\r\n\r\n") + 4), body);
  std::string second = client.get("/chunked");
  ASSERT_EQ(second.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << second;
  EXPECT_NE(second.find("transfer-encoding: chunked\r\n"), std::string::npos) << second;
  // Re-chunked as the pieces were decoded; the data is the same.
  EXPECT_EQ(dechunk(second.substr(second.find("\r\n\r\n") + 4)), "hello world") << second;
  // The same downstream connection serves a third request after both.
  std::string third = client.get("/big");
  EXPECT_EQ(third.substr(third.find("\r\n\r\n") + 4), body);
}

TEST(ProxyUpstream, SilentAppIsAnsweredWithUpstreamTimeout) {
  ScriptedApp app([](int fd) {
    read_head(fd);
    char c;
    ::recv(fd, &c, 1, 0);  // until the proxy gives up and closes (or the 10 s bound)
  });
  ProxyLimits limits;
  limits.upstream_timeout_ms = 200;
  RunningProxy proxy(app.port(), limits);
  Client client(proxy.port());
  ASSERT_TRUE(client.connected());
  std::string r = client.get("/slow");
  EXPECT_EQ(r.rfind("HTTP/1.1 504 ", 0), 0u) << r;
  EXPECT_NE(r.find("upstream request timeout"), std::string::npos) << r;
}

// Whether the proxy closed the connection (EOF or reset) within the client's 10 s receive bound;
// what it sent before closing goes to `answer`.
bool closed_by_proxy(int fd, std::string* answer = nullptr) {
  char buf[512];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      if (answer) answer->append(buf, static_cast<size_t>(n));
      continue;
    }
    return n == 0 || errno == ECONNRESET;
  }
}

// An app that switches to "websocket" when asked and then echoes; otherwise it answers 200 "no".
void upgrade_echo_app(int fd) {
  std::string in = read_until(fd, "\r\n\r\n");
  if (!in.ends_with("\r\n\r\n")) return;
  if (in.find("upgrade: websocket") == std::string::npos &&
      in.find("Upgrade: websocket") == std::string::npos) {
    send_all(fd, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nno");
    return;
  }
  send_all(fd, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nhello ");
  char buf[1024];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) send_all(fd, std::string(buf, static_cast<size_t>(n)));
}

// Reads from fd until `want` bytes arrived (or EOF / the 10 s bound).
std::string read_n(int fd, size_t want) {
  std::string out;
  char buf[1024];
  while (out.size() < want) {
    ssize_t n = ::recv(fd, buf, std::min(sizeof buf, want - out.size()), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST(ProxyUpgrade, SwitchedConnectionIsSplicedBothWays) {
  ScriptedApp app(upgrade_echo_app);
  RunningProxy proxy(app.port());
  Client client(proxy.port());
  ASSERT_TRUE(client.connected());
  // The head and the first bytes of the new protocol in one write: those bytes must reach the app.
  send_all(client.fd(),
           "GET /echo HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nping");
  std::string got = read_until(client.fd(), "hello ping");  // the 101 head, the app's "hello ", the echo
  ASSERT_EQ(got.rfind("HTTP/1.1 101 ", 0), 0u) << got;
  EXPECT_NE(got.find("upgrade: websocket\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("connection: upgrade\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("\r\n\r\nhello ping"), std::string::npos) << got;
  send_all(client.fd(), "second");
  EXPECT_EQ(read_n(client.fd(), 6), "second");
}

TEST(ProxyUpgrade, WithoutUpgradeRequestA101IsABadGateway) {
  ScriptedApp app([](int fd) {
    if (read_head(fd))
      send_all(fd, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  });
  RunningProxy proxy(app.port());
  Client client(proxy.port());
  ASSERT_TRUE(client.connected());
  std::string r = client.get("/plain");
  EXPECT_EQ(r.rfind("HTTP/1.1 502 ", 0), 0u) << r;
}

TEST(ProxyUpgrade, OnlyWebSocketIsRelayed) {
  // h2c (or anything else) would give the client a connection to the app whose requests the
  // proxy never judges: the Upgrade is dropped and the app answers the request itself.
  std::mutex mutex;
  std::string seen;
  ScriptedApp app([&](int fd) {
    std::string in = read_until(fd, "\r\n\r\n");
    std::lock_guard lock(mutex);
    seen = in;
    send_all(fd, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
  });
  RunningProxy proxy(app.port());
  Client client(proxy.port());
  ASSERT_TRUE(client.connected());
  send_all(client.fd(),
           "GET / HTTP/1.1\r\nHost: app\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
           "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n");
  std::string r = read_n(client.fd(), 13);
  EXPECT_EQ(r, "HTTP/1.1 502 ") << r;  // and the app's unasked-for 101 is not relayed
  std::lock_guard lock(mutex);
  EXPECT_EQ(seen.rfind("GET / HTTP/1.1\r\n", 0), 0u) << seen;
  EXPECT_EQ(seen.find("pgrade: h2c"), std::string::npos) << seen;
}

// upgrade_echo_app behind a proxy whose policy directory each test writes and reloads.
class ProxyUpgradeReload : public ::testing::Test {
 protected:
  ProxyUpgradeReload() : app_(upgrade_echo_app), proxy_(app_.port(), {}, dir_.path) {}

  // Declared first, so removed last: after the proxy has stopped.
  struct TempDir {
    std::string path = make();
    ~TempDir() { std::filesystem::remove_all(path); }
    static std::string make() {
      char tmpl[] = "/tmp/mg-upgrade-test.XXXXXX";
      return ::mkdtemp(tmpl);
    }
  };
  static void send_upgrade(int fd, const std::string& target) {
    send_all(fd,
             "GET " + target + " HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  }
  // Sends a WebSocket upgrade of `target`; returns what came back, up to the app's "hello ".
  static std::string open_websocket(int fd, const std::string& target) {
    send_upgrade(fd, target);
    return read_until(fd, "hello ");
  }
  void write_policy(const std::string& name, const std::string& yaml) const {
    std::ofstream(dir_.path + "/" + name + ".yaml") << "apiVersion: security.istio.io/v1\n" << yaml;
  }
  static std::string deny_path(const std::string& name, const std::string& path) {
    return "kind: AuthorizationPolicy\nmetadata: {name: " + name +
           ", namespace: default}\nspec: {action: DENY, rules: [{to: [{operation: {paths: [\"" + path +
           "\"]}}]}]}\n";
  }

  TempDir dir_;
  ScriptedApp app_;
  RunningProxy proxy_;
};

TEST_F(ProxyUpgradeReload, PlaintextConnectionIsClosedWhenThePortBecomesStrict) {
  Client client(proxy_.port());
  ASSERT_TRUE(client.connected());
  std::string got = open_websocket(client.fd(), "/echo");
  ASSERT_EQ(got.rfind("HTTP/1.1 101 ", 0), 0u) << got;
  write_policy("strict",
               "kind: PeerAuthentication\nmetadata: {name: strict, namespace: default}\n"
               "spec: {selector: {matchLabels: {app: app}}, mtls: {mode: STRICT}}\n");
  ASSERT_TRUE(proxy_.proxy().reload_policies());
  EXPECT_TRUE(closed_by_proxy(client.fd()));
}

// A spliced WebSocket connection sends no further requests: each policy reload judges its
// upgrade request again, and closes the connection once the new policy denies it.
TEST_F(ProxyUpgradeReload, ConnectionIsJudgedAgainAtEachReload) {
  Client client(proxy_.port());
  ASSERT_TRUE(client.connected());
  std::string got = open_websocket(client.fd(), "/echo?room=1");
  ASSERT_EQ(got.rfind("HTTP/1.1 101 ", 0), 0u) << got;
  write_policy("deny-admin", deny_path("deny-admin", "/admin/*"));  // does not match it: it stays
  ASSERT_TRUE(proxy_.proxy().reload_policies());
  send_all(client.fd(), "still");
  EXPECT_EQ(read_n(client.fd(), 5), "still");
  write_policy("deny-echo",
               deny_path("deny-echo", "/echo"));  // matches it (the query is not part of the path)
  ASSERT_TRUE(proxy_.proxy().reload_policies());
  EXPECT_TRUE(closed_by_proxy(client.fd()));
  // And a new upgrade request is refused at once.
  Client again(proxy_.port());
  ASSERT_TRUE(again.connected());
  send_upgrade(again.fd(), "/echo");
  EXPECT_EQ(read_n(again.fd(), 13), "HTTP/1.1 403 ");
}

// A reload while the app is still answering an upgrade request runs its pass before the
// connection is spliced and registered: the connection is judged when it registers, and the 101
// never reaches a client the new policy denies.
TEST(ProxyUpgradeReloadRace, ReloadWhileTheAppAnswersIsNotMissed) {
  char tmpl[] = "/tmp/mg-upgrade-race.XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  std::atomic<bool> asked{false};
  std::promise<void> answer;
  std::shared_future<void> answer_now = answer.get_future().share();
  {
    ScriptedApp app([&](int fd) {
      if (!read_head(fd)) return;
      asked = true;
      answer_now.wait_for(10s);
      send_all(fd,
               "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nhello ");
      char buf[256];
      while (::recv(fd, buf, sizeof buf, 0) > 0) {
      }
    });
    RunningProxy proxy(app.port(), {}, dir);
    Client client(proxy.port());
    ASSERT_TRUE(client.connected());
    send_all(client.fd(),
             "GET /echo HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    for (int i = 0; i < 1000 && !asked; ++i) std::this_thread::sleep_for(10ms);  // ≤ 10 s
    ASSERT_TRUE(asked);
    std::ofstream(dir + "/deny-echo.yaml")
        << "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
           "metadata: {name: deny-echo, namespace: default}\n"
           "spec: {action: DENY, rules: [{to: [{operation: {paths: [\"/echo\"]}}]}]}\n";
    ASSERT_TRUE(proxy.proxy().reload_policies());
    // Its pass over the worker's connections runs now (the worker is idle, waiting on the app).
    std::this_thread::sleep_for(200ms);
    answer.set_value();
    std::string got;
    EXPECT_TRUE(closed_by_proxy(client.fd(), &got));
    EXPECT_EQ(got, "") << "the 101 reached a client the new policy denies";
  }
  std::filesystem::remove_all(dir);
}

TEST(ProxyUpstream, BytesAfterABodilessResponseNeverReachAnotherClient) {
  // A faulty app answers HEAD and then, a moment later, writes a whole extra response on the
  // same connection. The next client must get its own answer, not those bytes.
  ScriptedApp app([](int fd) {
    while (true) {
      std::string in = read_until(fd, "\r\n\r\n");
      if (!in.ends_with("\r\n\r\n")) return;
      if (in.rfind("HEAD ", 0) == 0) {
        send_all(fd, "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n");
        std::this_thread::sleep_for(20ms);
        send_all(fd, "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nforged");
      } else {
        send_all(fd, "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nreal");
      }
    }
  });
  RunningProxy proxy(app.port());
  {
    Client first(proxy.port());
    ASSERT_TRUE(first.connected());
    send_all(first.fd(), "HEAD /h HTTP/1.1\r\nHost: app\r\n\r\n");
    std::string head = read_until(first.fd(), "\r\n\r\n");
    ASSERT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  }
  std::this_thread::sleep_for(60ms);  // the stray response is now waiting on the pooled connection
  Client second(proxy.port());
  ASSERT_TRUE(second.connected());
  std::string r = second.get("/g");
  EXPECT_EQ(r.substr(r.size() - 4), "real") << r;
}

TEST(ProxyUpstream, StrayResponseAfterAFramedResponseNeverReachesTheNextClient) {
  // Issue 12: a faulty app answers /first and then, a moment later, writes a second response
  // nobody asked for (a framing bug). The pooled connection is taken again well within 250 ms,
  // by another client on another connection: it must get its own answer, and so must the next.
  std::atomic<int> served{0};
  ScriptedApp app([&](int fd) {
    while (true) {
      std::string in = read_until(fd, "\r\n\r\n");
      if (!in.ends_with("\r\n\r\n")) return;
      const int n = ++served;
      if (in.rfind("GET /first ", 0) == 0) {
        send_all(fd, "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst");
        std::this_thread::sleep_for(10ms);
        send_all(fd, "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nforged");
      } else {
        send_all(fd, "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nreal-" + std::to_string(n % 10));
      }
    }
  });
  RunningProxy proxy(app.port());
  {
    Client first(proxy.port());
    ASSERT_TRUE(first.connected());
    std::string r = first.get("/first");
    EXPECT_EQ(r.substr(r.size() - 5), "first") << r;
  }
  std::this_thread::sleep_for(50ms);  // the stray response now waits on the pooled connection
  for (int i = 0; i < 2; ++i) {
    Client next(proxy.port());
    ASSERT_TRUE(next.connected());
    std::string r = next.get("/mine");
    EXPECT_EQ(r.substr(r.size() - 6, 5), "real-") << "request " << i << " got: " << r;
  }
  // The connection that held the stray bytes was closed, not reused: a second app connection.
  EXPECT_GE(app.accepted(), 2);
}

// A proxy with a policy directory holding `yaml` (one file), removed with it.
class PolicyDir {
 public:
  explicit PolicyDir(const std::string& yaml) {
    char tmpl[] = "/tmp/mg-upstream-policy.XXXXXX";
    path_ = ::mkdtemp(tmpl);
    std::ofstream(path_ + "/policy.yaml") << yaml;
  }
  ~PolicyDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ProxyHosts, AbsoluteFormTargetCannotSplitTheJudgedHostFromTheServedOne) {
  // Issue 12: `GET http://public/x` with `Host: admin.internal` was judged as host "public" and
  // forwarded with Host admin.internal, past a `hosts` DENY, to a Host-routed app.
  PolicyDir dir(
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
      "metadata: {name: deny-admin, namespace: default}\n"
      "spec: {action: DENY, rules: [{to: [{operation: {hosts: [\"admin.internal\"]}}]}]}\n");
  std::mutex mutex;
  std::string seen;
  ScriptedApp app([&](int fd) {
    while (true) {
      std::string in = read_until(fd, "\r\n\r\n");
      if (!in.ends_with("\r\n\r\n")) return;
      {
        std::lock_guard lock(mutex);
        seen = in;
      }
      send_all(fd, kOk);
    }
  });
  RunningProxy proxy(app.port(), {}, dir.path());
  {
    Client client(proxy.port());
    ASSERT_TRUE(client.connected());
    send_all(client.fd(), "GET http://public/x?q=1 HTTP/1.1\r\nHost: admin.internal\r\n\r\n");
    std::string r = read_until(client.fd(), "ok");
    EXPECT_EQ(r.rfind("HTTP/1.1 200 ", 0), 0u) << r;
    std::lock_guard lock(mutex);
    EXPECT_EQ(seen.rfind("GET /x?q=1 HTTP/1.1\r\n", 0), 0u) << seen;  // origin-form
    EXPECT_NE(seen.find("\r\nhost: public\r\n"), std::string::npos) << seen;
    EXPECT_EQ(seen.find("admin.internal"), std::string::npos) << seen;
  }
  // The other way round it is the target's host that is judged: denied.
  Client client(proxy.port());
  ASSERT_TRUE(client.connected());
  send_all(client.fd(), "GET http://admin.internal/x HTTP/1.1\r\nHost: public\r\n\r\n");
  EXPECT_EQ(read_n(client.fd(), 13), "HTTP/1.1 403 ");
}

TEST(ProxyNormalization, MethodNotInUpperCaseNeverReachesTheApp) {
  // Issue 12: `get /admin` went past a DENY on GET to an app that reads methods case-blind.
  PolicyDir dir(
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
      "metadata: {name: deny-get-admin, namespace: default}\n"
      "spec: {action: DENY, rules: [{to: [{operation: {methods: [GET], paths: [\"/admin\"]}}]}]}\n");
  std::atomic<int> requests{0};
  ScriptedApp app([&](int fd) {
    while (read_head(fd)) {
      ++requests;
      send_all(fd, kOk);
    }
  });
  RunningProxy proxy(app.port(), {}, dir.path());
  for (const char* method : {"get", "Get"}) {
    Client client(proxy.port());
    ASSERT_TRUE(client.connected());
    send_all(client.fd(), std::string(method) + " /admin HTTP/1.1\r\nHost: app\r\n\r\n");
    EXPECT_EQ(read_n(client.fd(), 13), "HTTP/1.1 400 ") << method;
  }
  Client upper(proxy.port());
  ASSERT_TRUE(upper.connected());
  send_all(upper.fd(), "GET /admin HTTP/1.1\r\nHost: app\r\n\r\n");
  EXPECT_EQ(read_n(upper.fd(), 13), "HTTP/1.1 403 ");
  EXPECT_EQ(requests.load(), 0);
}

TEST(ProxyRemoteIp, ClientWrittenXForwardedForIsNotTrusted) {
  // Issue 12: the first X-Forwarded-For entry was taken as remote.ip, so any client could
  // satisfy a remoteIpBlocks ALLOW. Now XFF counts only behind numTrustedProxies, from the right.
  const std::string allow =
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
      "metadata: {name: allow-office, namespace: default}\n"
      "spec: {rules: [{from: [{source: {remoteIpBlocks: [\"10.9.9.9/32\"]}}]}]}\n";
  const std::string mesh_two =
      "---\napiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata: {name: default}\n"
      "spec: {gatewayTopology: {numTrustedProxies: 2}}\n";
  const std::string forged = "GET /x HTTP/1.1\r\nHost: app\r\nX-Forwarded-For: 10.9.9.9, 127.0.0.1\r\n\r\n";
  ScriptedApp app(answer_ok);
  auto status = [&](const PolicyDir& dir, std::optional<uint32_t> trusted) {
    RunningProxy proxy(app.port(), {}, dir.path(), trusted);
    Client client(proxy.port());
    if (!client.connected()) return std::string("(not connected)");
    send_all(client.fd(), forged);
    return read_n(client.fd(), 12);
  };
  PolicyDir plain(allow), with_mesh(allow + mesh_two);
  EXPECT_EQ(status(plain, std::nullopt), "HTTP/1.1 403");      // default 0: the peer, 127.0.0.1
  EXPECT_EQ(status(plain, 1), "HTTP/1.1 403");                 // what the one trusted proxy saw
  EXPECT_EQ(status(plain, 2), "HTTP/1.1 200");                 // the proxy config's override
  EXPECT_EQ(status(with_mesh, std::nullopt), "HTTP/1.1 200");  // the Mesh default
  EXPECT_EQ(status(with_mesh, 0), "HTTP/1.1 403");             // the override wins
}

TEST(ProxyUpgrade, DeclinedUpgradeIsAnOrdinaryResponse) {
  ScriptedApp app(upgrade_echo_app);  // answers 200 "no" when it does not see "Upgrade: websocket"
  RunningProxy proxy(app.port());
  Client client(proxy.port());
  ASSERT_TRUE(client.connected());
  // Upgrade without Connection: upgrade is not an upgrade request: the field is hop-by-hop and
  // dropped, the app answers normally.
  send_all(client.fd(), "GET /echo HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\ncontent-length: 0\r\n\r\n");
  std::string r = read_n(client.fd(), 17);
  EXPECT_EQ(r, "HTTP/1.1 200 OK\r\n") << r;
}

TEST(ProxyTimeouts, IdleKeepAliveConnectionIsClosed) {
  ScriptedApp app(answer_ok);
  ProxyLimits limits;
  limits.idle_timeout_ms = 200;
  RunningProxy proxy(app.port(), limits);
  Client client(proxy.port());
  ASSERT_TRUE(client.connected());
  ASSERT_EQ(client.get("/one").rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  // No further request: the idle deadline (moved forward by the request) closes it.
  EXPECT_TRUE(closed_by_proxy(client.fd()));
}

TEST(ProxyTimeouts, TricklingHeadIsCutOffAtTheHeaderDeadline) {
  ScriptedApp app(answer_ok);
  ProxyLimits limits;
  limits.header_timeout_ms = 300;
  RunningProxy proxy(app.port(), limits);
  Client client(proxy.port());
  ASSERT_TRUE(client.connected());
  // A byte every 50 ms: each read succeeds, but the deadline counts from the first byte and
  // never moves, so the head (which would take ≈ 2 s) is cut off and nothing is answered.
  const std::string head = "GET /slow HTTP/1.1\r\nHost: app\r\nX-Pad: " + std::string(20, 'p') + "\r\n\r\n";
  bool closed_early = false;
  for (char c : head) {
    if (::send(client.fd(), &c, 1, MSG_NOSIGNAL) != 1) {
      closed_early = true;
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  std::string answer;
  EXPECT_TRUE(closed_early || closed_by_proxy(client.fd(), &answer));
  EXPECT_EQ(answer, "") << "a trickled head must not be forwarded";
}

// --- Watchdog ---------------------------------------------------------------------------------

struct Loop {
  asio::io_context io;
  // Runs until `done` or a 5 s bound (a broken watchdog fails the test instead of hanging it).
  void run_until(const std::function<bool()>& done) {
    auto until = std::chrono::steady_clock::now() + 5s;
    while (!done() && std::chrono::steady_clock::now() < until) {
      io.run_for(5ms);
      if (io.stopped()) io.restart();
    }
  }
};

TEST(Watchdog, FiresOnceAfterItsDeadline) {
  Loop loop;
  int fired = 0;
  net::Watchdog dog(loop.io.get_executor(), [&] { ++fired; });
  dog.arm(20ms);
  loop.run_until([&] { return fired > 0; });
  EXPECT_EQ(fired, 1);
  EXPECT_TRUE(dog.fired());
  loop.io.run_for(50ms);
  EXPECT_EQ(fired, 1);
}

TEST(Watchdog, DisarmedNeverFires) {
  Loop loop;
  int fired = 0;
  net::Watchdog dog(loop.io.get_executor(), [&] { ++fired; });
  dog.arm(10ms);
  dog.disarm();
  loop.io.run_for(60ms);
  EXPECT_EQ(fired, 0);
  EXPECT_FALSE(dog.fired());
}

TEST(Watchdog, ReArmingLaterPostponesAndEarlierAdvances) {
  Loop loop;
  int fired = 0;
  net::Watchdog dog(loop.io.get_executor(), [&] { ++fired; });
  // Later: the pending 20 ms wait ends, sees the deadline moved, and waits again.
  dog.arm(20ms);
  auto start = std::chrono::steady_clock::now();
  dog.arm(80ms);
  loop.run_until([&] { return fired > 0; });
  EXPECT_EQ(fired, 1);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 80ms);
  // Earlier: a 10 s deadline replaced by 10 ms fires without waiting for the first.
  int second = 0;
  net::Watchdog dog2(loop.io.get_executor(), [&] { ++second; });
  dog2.arm(10s);
  dog2.arm(10ms);
  loop.run_until([&] { return second > 0; });
  EXPECT_EQ(second, 1);
}

TEST(Watchdog, DestroyedWhileWaitingNeverCallsBack) {
  Loop loop;
  int fired = 0;
  {
    net::Watchdog dog(loop.io.get_executor(), [&] { ++fired; });
    dog.arm(10ms);
  }
  loop.io.run_for(50ms);
  EXPECT_EQ(fired, 0);
}

// Listener lines, access-log addresses and X-Forwarded-For entries: an IPv6 address in brackets,
// so the port is what follows the last ':' and "[::1]:8080" is a valid authority.
TEST(Net, EndpointStringBracketsIpv6) {
  using asio::ip::make_address;
  EXPECT_EQ(net::endpoint_string({make_address("127.0.0.1"), 8080}), "127.0.0.1:8080");
  EXPECT_EQ(net::endpoint_string({make_address("::1"), 8080}), "[::1]:8080");
  EXPECT_EQ(net::endpoint_string({make_address("2001:db8::7"), 443}), "[2001:db8::7]:443");
  EXPECT_EQ(net::endpoint_string({make_address("0.0.0.0"), 0}), "0.0.0.0:0");
}

}  // namespace
}  // namespace mg::proxy
