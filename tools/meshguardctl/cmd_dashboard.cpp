// meshguardctl dashboard [--port N]: the zero-trust console (docs/CONSOLE.md). Opens a listener on
// 127.0.0.1 only, prints "console: http://127.0.0.1:PORT/" and serves until interrupted: every
// HTTP request is relayed as one ConsoleService.Http call, authenticated with the admin identity
// as the other admin commands are (admin_client.h), and its answer returned. The control plane
// serves the console itself; this process holds no data and no page. A request whose Host is not
// this listener's is refused (421), so a web page elsewhere cannot reach it by DNS rebinding.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "admin_client.h"
#include "api/grpc_tls.h"
#include "commands.h"
#include "http/message.h"
#include "http/parser.h"

namespace mg::ctl {

namespace {

constexpr size_t kMaxHead = 16 * 1024;
constexpr uint64_t kMaxBody = 1 << 20;
constexpr int kMaxConnections = 32;
constexpr auto kIdle = std::chrono::seconds(30);

struct DashboardOptions {
  Conn conn;
  uint16_t port = 0;
};

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Reads into `buf` until it holds `want` bytes; false on close, error or the idle deadline.
bool read_until(int fd, std::string& buf, size_t want) {
  const auto deadline = std::chrono::steady_clock::now() + kIdle;
  char chunk[8192];
  while (buf.size() < want) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<size_t>(n));
  }
  return true;
}

class Relay {
 public:
  Relay(std::unique_ptr<pb::ConsoleService::Stub> stub, std::string authority)
      : stub_(std::move(stub)), authority_(std::move(authority)) {}

  // One call to the control plane: its answer, or a 502 saying why there was none.
  pb::ConsoleResponse call(const pb::ConsoleRequest& req, grpc::Status* status = nullptr) {
    pb::ConsoleResponse resp;
    auto ctx = call_context();
    auto st = stub_->Http(ctx.get(), req, &resp);
    if (status) *status = st;
    if (!st.ok()) {
      resp.set_status(502);
      resp.set_content_type("application/json");
      resp.set_body(
          nlohmann::json{{"error", "the control plane did not answer: " + api::describe(st)}}.dump() + "\n");
    }
    return resp;
  }

  // Serves one connection (keep-alive) until it closes, errs or idles.
  void serve(int fd) {
    std::string buf;
    http::HeadScanner scanner;
    while (true) {
      http::HeadScan scan;
      while ((scan = scanner.scan(buf, kMaxHead)).state == http::HeadScan::State::Incomplete) {
        if (!read_until(fd, buf, buf.size() + 1)) return;
      }
      if (scan.state != http::HeadScan::State::Complete) {
        send_all(fd, http::make_response(400, "text/plain", "bad request\n", false));
        return;
      }
      auto head = http::parse_request_head(std::string_view(buf).substr(0, scan.length), http::Limits{});
      if (!head) {
        send_all(fd,
                 http::make_response(head.error().status, "text/plain", head.error().reason + "\n", false));
        return;
      }
      if (head->framing == http::BodyFraming::Chunked || head->content_length > kMaxBody) {
        send_all(fd, http::make_response(413, "text/plain", "body too large or chunked\n", false));
        return;
      }
      const size_t total = scan.length + static_cast<size_t>(head->content_length);
      if (!read_until(fd, buf, total)) return;
      std::string response;
      if (head->host != authority_ &&
          head->host != "localhost:" + authority_.substr(authority_.rfind(':') + 1)) {
        response = http::make_response(421, "text/plain", "this console answers only to " + authority_ + "\n",
                                       false);
        send_all(fd, response);
        return;
      }
      pb::ConsoleRequest req;
      req.set_method(head->method);
      req.set_path(head->path);
      req.set_query(head->query);
      req.set_body(buf.substr(scan.length, static_cast<size_t>(head->content_length)));
      const auto resp = call(req);
      const bool keep = head->keep_alive;
      send_all(fd, http::make_response(resp.status(), resp.content_type(),
                                       head->method == "HEAD" ? "" : resp.body(), keep,
                                       {{"Cache-Control", "no-store"}}));
      if (!keep) return;
      buf.erase(0, total);
      scanner.reset();
    }
  }

 private:
  std::unique_ptr<pb::ConsoleService::Stub> stub_;
  const std::string authority_;
};

int run_dashboard(const DashboardOptions& o) {
  auto channel = admin_channel(o.conn);
  if (!channel) return fail_line(channel.error().message);
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(o.port);
  int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 64) != 0)
    return fail_line("cannot listen on 127.0.0.1:" + std::to_string(o.port));
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string authority = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  Relay relay(pb::ConsoleService::NewStub(*channel), authority);
  // Before the URL is printed: the control plane answers this identity's console calls.
  grpc::Status st;
  pb::ConsoleRequest probe;
  probe.set_method("GET");
  probe.set_path("/api/mesh");
  relay.call(probe, &st);
  if (!st.ok()) return rpc_failed(o.conn, st);
  std::cout << "console: http://" << authority << "/" << std::endl;
  std::atomic<int> open{0};
  while (true) {
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (open.load() >= kMaxConnections) {
      send_all(fd, http::make_response(503, "text/plain", "too many connections\n", false));
      ::close(fd);
      continue;
    }
    ++open;
    std::thread([&relay, &open, fd] {
      relay.serve(fd);
      ::close(fd);
      --open;
    }).detach();
  }
}

}  // namespace

void register_dashboard_command(CLI::App& app, Action& action) {
  auto opt = std::make_shared<DashboardOptions>();
  auto* cmd = app.add_subcommand(
      "dashboard",
      "Open the zero-trust console: a listener on 127.0.0.1 relaying to the control plane as the admin");
  cmd->add_option("--port", opt->port, "Local port (default 0: any free port; the URL is printed)");
  add_conn_options(cmd, opt->conn);
  cmd->callback([&action, opt] { action = [opt] { return run_dashboard(*opt); }; });
}

}  // namespace mg::ctl
