// mg-ext-authz-test-server: an ext_authz provider for the end-to-end tests, speaking both of
// Envoy's protocols as a real one does — HTTP (any request; the answer chosen by the check's
// x-ext-authz header) and gRPC (envoy.service.auth.v3.Authorization/Check, the same choice from
// attributes.request.http.headers["x-ext-authz"]). It counts the checks it answers (GET
// /__count on the HTTP port: "http N grpc M") and appends every check it receives to
// <log-dir>/http.log (the request head) and <log-dir>/grpc.log (the CheckRequest, text format),
// so the tests can see exactly what the proxy sent.
//   allow → 200 (HTTP: x-ext-authz-check-result and x-ext-authz-user set, x-not-listed too;
//           gRPC: OK with header mutations and a response header)
//   deny  → HTTP 401 with a body, WWW-Authenticate and headers; gRPC PERMISSION_DENIED with
//           denied_response 403, a body and a header
//   slow  → waits 3 s, then allows
//   error → HTTP 500 / gRPC UNAVAILABLE
//   other → 403 (HTTP) / PERMISSION_DENIED without a denied_response (gRPC)
// A check's body (includeRequestBodyInCheck) is logged after its head.
// Usage: mg-ext-authz-test-server LOG_DIR   (prints "http PORT" and "grpc PORT")
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "http/message.h"
#include "http/parser.h"

namespace pb = envoy::service::auth::v3;

namespace {

std::atomic<int> http_checks{0};
std::atomic<int> grpc_checks{0};
std::string log_dir;
std::mutex log_mu;

void append_log(const std::string& file, const std::string& text) {
  std::lock_guard lock(log_mu);
  std::ofstream(log_dir + "/" + file, std::ios::app) << text << "\n====\n";
}

bool send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string http_answer(const mg::http::Request& req) {
  if (req.path == "/__count") {
    return mg::http::make_response(
        200, "text/plain",
        "http " + std::to_string(http_checks.load()) + " grpc " + std::to_string(grpc_checks.load()), true);
  }
  ++http_checks;
  const std::string what(req.headers.get("x-ext-authz").value_or(""));
  if (what == "slow") std::this_thread::sleep_for(std::chrono::seconds(3));
  if (what == "allow" || what == "slow") {
    return mg::http::make_response(200, "text/plain", "ok", true,
                                   {{"x-ext-authz-check-result", "allowed"},
                                    {"x-ext-authz-user", "alice"},
                                    {"x-not-listed", "must-not-reach-the-app"}});
  }
  if (what == "deny") {
    return mg::http::make_response(401, "text/plain", "denied by the http provider", true,
                                   {{"x-ext-authz-check-result", "denied"},
                                    {"www-authenticate", "Bearer realm=\"test\""},
                                    {"x-not-listed", "must-not-reach-the-client"}});
  }
  if (what == "error") return mg::http::make_response(500, "text/plain", "provider broke", true);
  return mg::http::make_response(403, "text/plain", "no x-ext-authz header", true);
}

void serve_http_connection(int fd) {
  std::string in;
  char buf[8192];
  mg::http::HeadScanner scanner;
  while (true) {
    auto scan = scanner.scan(in, 64 * 1024);
    if (scan.state == mg::http::HeadScan::State::Incomplete) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (scan.state != mg::http::HeadScan::State::Complete) break;
    const std::string head = in.substr(0, scan.length);
    auto req = mg::http::parse_request_head(head, mg::http::Limits{});
    in.erase(0, scan.length);
    scanner.reset();
    if (!req || req->framing == mg::http::BodyFraming::Chunked) break;  // the proxy sends Content-Length
    std::string body;
    if (req->framing == mg::http::BodyFraming::ContentLength) {
      while (in.size() < req->content_length) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
      }
      if (in.size() < req->content_length) break;
      body = in.substr(0, req->content_length);
      in.erase(0, req->content_length);
    }
    if (req->path != "/__count") append_log("http.log", head + body);
    if (!send_all(fd, http_answer(*req))) break;
  }
  ::close(fd);
}

class Authorization final : public pb::Authorization::Service {
  grpc::Status Check(grpc::ServerContext*, const pb::CheckRequest* request,
                     pb::CheckResponse* response) override {
    ++grpc_checks;
    append_log("grpc.log", request->DebugString());
    const auto& headers = request->attributes().request().http().headers();
    auto it = headers.find("x-ext-authz");
    const std::string what = it == headers.end() ? "" : it->second;
    if (what == "slow") std::this_thread::sleep_for(std::chrono::seconds(3));
    if (what == "error") return grpc::Status(grpc::StatusCode::UNAVAILABLE, "provider broke");
    if (what == "allow" || what == "slow") {
      response->mutable_status()->set_code(0);
      auto* ok = response->mutable_ok_response();
      auto* set = ok->add_headers();
      set->mutable_header()->set_key("x-ext-authz-check-result");
      set->mutable_header()->set_value("allowed-by-grpc");
      set->mutable_append()->set_value(false);
      auto* add = ok->add_headers();
      add->mutable_header()->set_key("x-ext-authz-user");
      add->mutable_header()->set_value("bob");
      ok->add_headers_to_remove("x-remove-me");
      auto* down = ok->add_response_headers_to_add();
      down->mutable_header()->set_key("x-ext-authz-response");
      down->mutable_header()->set_value("yes");
      return grpc::Status::OK;
    }
    response->mutable_status()->set_code(7);  // PERMISSION_DENIED
    if (what == "deny") {
      auto* denied = response->mutable_denied_response();
      denied->mutable_status()->set_code(403);
      denied->set_body("denied by the grpc provider");
      auto* h = denied->add_headers();
      h->mutable_header()->set_key("x-ext-authz-check-result");
      h->mutable_header()->set_value("denied-by-grpc");
    }
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: mg-ext-authz-test-server LOG_DIR\n";
    return 2;
  }
  log_dir = argv[1];
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd, 64) != 0) {
    std::perror("bind");
    return 1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);

  Authorization service;
  int grpc_port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &grpc_port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || grpc_port == 0) {
    std::cerr << "cannot start the gRPC server\n";
    return 1;
  }
  std::cout << "http " << ntohs(addr.sin_port) << "\ngrpc " << grpc_port << std::endl;
  while (true) {
    int fd = ::accept(lfd, nullptr, nullptr);
    if (fd < 0) continue;
    std::thread(serve_http_connection, fd).detach();
  }
}
