// control/metrics_endpoint.cpp — see metrics_endpoint.h.
#include "control/metrics_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <chrono>

#include "http/local_endpoint.h"

namespace mg::control {
namespace {
constexpr size_t kMaxHead = 8192;
}  // namespace

Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::start(const std::string& listen,
                                                                telemetry::Registry& metrics) {
  std::unique_ptr<MetricsEndpoint> out(new MetricsEndpoint(listen, metrics));
  auto colon = listen.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (colon == std::string::npos || inet_pton(AF_INET, listen.substr(0, colon).c_str(), &addr.sin_addr) != 1)
    return fail("control.bad_metrics_address", "metrics address must be IPv4:PORT: " + listen);
  // The port is checked here, not by std::stoi, which throws (and ended the process) on "abc".
  const std::string port_text = listen.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535)
    return fail("control.bad_metrics_address", "metrics address must be IPv4:PORT (port 0-65535): " + listen);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  out->fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(out->fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (out->fd_ < 0 || ::bind(out->fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(out->fd_, 16) != 0)
    return fail("control.bind", "cannot listen on " + listen);
  socklen_t len = sizeof addr;
  ::getsockname(out->fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  out->port_ = ntohs(addr.sin_port);
  out->thread_ = std::thread([self = out.get()] { self->serve(); });
  return out;
}

MetricsEndpoint::~MetricsEndpoint() {
  stop();
  if (fd_ >= 0) ::close(fd_);
}

std::string MetricsEndpoint::address() const {
  return listen_.substr(0, listen_.rfind(':')) + ":" + std::to_string(port_);
}

void MetricsEndpoint::stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

void MetricsEndpoint::serve() {
  using Clock = std::chrono::steady_clock;
  while (true) {
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, 200);
    if (stopping_.load()) return;
    if (r <= 0) continue;
    int fd = ::accept(fd_, nullptr, nullptr);
    if (fd < 0) continue;
    // One small request, read with a deadline, then one response.
    std::string head;
    http::HeadScanner scanner;
    http::HeadScan scan;
    char buf[2048];
    auto deadline = Clock::now() + std::chrono::seconds(2);
    while ((scan = scanner.scan(head, kMaxHead)).state == http::HeadScan::State::Incomplete &&
           Clock::now() < deadline) {
      pollfd q{fd, POLLIN, 0};
      if (::poll(&q, 1, 100) <= 0) continue;
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      head.append(buf, static_cast<size_t>(n));
    }
    if (scan.state != http::HeadScan::State::Complete) {
      ::close(fd);  // closed, timed out, too large or malformed before a whole head: no answer
      continue;
    }
    const std::string response = http::answer_local_request(
        std::string_view(head).substr(0, scan.length), http::Limits{}, [this](std::string_view path) {
          http::LocalReply reply;
          if (path == "/metrics") {
            reply = {200, "text/plain; version=0.0.4", metrics_.render_prometheus()};
          } else if (path == "/healthz/ready") {
            reply = {200, "text/plain", "ready\n"};
          }
          return reply;
        });
    size_t off = 0;
    while (off < response.size()) {
      ssize_t n = ::send(fd, response.data() + off, response.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(fd);
  }
}

}  // namespace mg::control
