// mg-sample-app: a small httpbin-like HTTP/1.1 server for tests and the demo.
//   mg-sample-app --listen 127.0.0.1:PORT     (PORT 0: prints "listening on 127.0.0.1:<port>")
// Prints "request METHOD TARGET" on stdout for every request it serves.
// Endpoints: /  /ip  /headers  /status/N  /details/<id>  /anything (echoes method, headers, body)
//            /stream/N (N JSON lines, chunked), /echo with a protocol upgrade (101, then every
//            byte sent back). Keep-alive and pipelining via mg_http.
#include <algorithm>
#include <asio.hpp>
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "common/version.h"
#include "http/body.h"
#include "http/parser.h"

using asio::ip::tcp;

namespace {

auto nothrow(std::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

nlohmann::json headers_json(const mg::http::Headers& headers) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& h : headers) {
    if (j.contains(h.name)) {
      j[h.name] = j[h.name].get<std::string>() + "," + h.value;
    } else {
      j[h.name] = h.value;
    }
  }
  return j;
}

std::string dump(const nlohmann::json& j) { return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"; }

// Returns the whole response (head + body) for one request.
std::string respond(const mg::http::Request& req, const std::string& body, const std::string& peer_ip, bool keep) {
  using mg::http::make_response;
  const std::string& path = req.path;
  if (path == "/") {
    return make_response(200, "application/json", dump({{"service", "mg-sample-app"}}), keep);
  }
  if (path == "/ip") return make_response(200, "application/json", dump({{"origin", peer_ip}}), keep);
  if (path == "/headers") return make_response(200, "application/json", dump({{"headers", headers_json(req.headers)}}), keep);
  if (path == "/anything" || path.rfind("/anything/", 0) == 0) {
    return make_response(200, "application/json",
                         dump({{"method", req.method},
                               {"path", req.path},
                               {"query", req.query},
                               {"headers", headers_json(req.headers)},
                               {"data", body},
                               {"length", body.size()}}),
                         keep);
  }
  if (path.rfind("/status/", 0) == 0) {
    std::string code = path.substr(8);
    int status = 0;
    if (code.size() == 3 && std::all_of(code.begin(), code.end(), ::isdigit)) status = std::stoi(code);
    if (status < 200 || status > 599) return make_response(400, "text/plain", "bad status code\n", keep);
    return make_response(status, "", "", keep);
  }
  if (path.rfind("/details/", 0) == 0) {
    std::string id = path.substr(9);
    if (id.empty() || id.size() > 9 || !std::all_of(id.begin(), id.end(), ::isdigit)) {
      return make_response(400, "application/json", dump({{"error", "please provide numeric product id"}}), keep);
    }
    return make_response(200, "application/json",
                         dump({{"id", std::stoi(id)},
                               {"author", "William Shakespeare"},
                               {"year", 1595},
                               {"type", "paperback"},
                               {"pages", 200},
                               {"publisher", "PublisherA"},
                               {"language", "English"},
                               {"ISBN-10", "1234567890"},
                               {"ISBN-13", "123-1234567890"}}),
                         keep);
  }
  if (path.rfind("/stream/", 0) == 0) {
    std::string n_text = path.substr(8);
    if (n_text.empty() || n_text.size() > 3 || !std::all_of(n_text.begin(), n_text.end(), ::isdigit)) {
      return make_response(400, "text/plain", "bad line count\n", keep);
    }
    mg::http::Response resp;
    resp.headers.add("content-type", "application/json");
    resp.headers.add("transfer-encoding", "chunked");
    if (!keep) resp.headers.add("connection", "close");
    std::string out = mg::http::serialize_response_head(resp);
    for (int i = 0, n = std::stoi(n_text); i < n; ++i) {
      out += mg::http::encode_chunk(nlohmann::json({{"id", i}, {"url", req.path}}).dump() + "\n");
    }
    out += mg::http::kLastChunk;
    return out;
  }
  return make_response(404, "text/plain", "not found\n", keep);
}

asio::awaitable<void> serve(tcp::socket socket) {
  std::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  std::string peer_ip = ec ? "" : remote.address().to_string();
  std::string in;
  char chunk[16384];
  mg::http::Limits limits;
  while (true) {
    mg::http::HeadScanner scanner;
    mg::http::HeadScan scan;
    while ((scan = scanner.scan(in, limits.max_head_bytes)).state == mg::http::HeadScan::State::Incomplete) {
      size_t n = co_await socket.async_read_some(asio::buffer(chunk), nothrow(ec));
      if (ec) co_return;
      in.append(chunk, n);
    }
    if (scan.state != mg::http::HeadScan::State::Complete) {
      int status = scan.state == mg::http::HeadScan::State::TooLarge ? 431 : 400;
      std::string r = mg::http::make_response(status, "text/plain", "bad request\n", false);
      co_await asio::async_write(socket, asio::buffer(r), nothrow(ec));
      co_return;
    }
    auto req = mg::http::parse_request_head(std::string_view(in).substr(0, scan.length), limits);
    in.erase(0, scan.length);
    if (!req) {
      std::string r = mg::http::make_response(req.error().status, "text/plain", req.error().reason + "\n", false);
      co_await asio::async_write(socket, asio::buffer(r), nothrow(ec));
      co_return;
    }
    if (req->path == "/echo" && mg::http::upgrade_protocol(req->headers)) {
      // A protocol upgrade (any protocol name): 101, then every byte that arrives is sent back
      // until the client closes. Tests use it to prove an upgrade crosses the mesh.
      std::printf("request %s %s (upgrade %s)\n", req->method.c_str(), req->target.c_str(),
                  mg::http::upgrade_protocol(req->headers)->c_str());
      std::fflush(stdout);
      std::string head = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " +
                         *mg::http::upgrade_protocol(req->headers) + "\r\n\r\n" + in;
      co_await asio::async_write(socket, asio::buffer(head), nothrow(ec));
      while (!ec) {
        size_t n = co_await socket.async_read_some(asio::buffer(chunk), nothrow(ec));
        if (ec) break;
        co_await asio::async_write(socket, asio::buffer(chunk, n), nothrow(ec));
      }
      co_return;
    }
    if (req->expect_continue) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(socket, asio::buffer(kContinue), nothrow(ec));
    }
    mg::http::BodyDecoder decoder(req->framing, req->content_length);
    std::string body;
    while (!decoder.done()) {
      if (in.empty()) {
        size_t n = co_await socket.async_read_some(asio::buffer(chunk), nothrow(ec));
        if (ec) co_return;
        in.append(chunk, n);
      }
      auto used = decoder.feed(in, body);
      if (!used || body.size() > (16u << 20)) {
        std::string r = mg::http::make_response(400, "text/plain", "bad body\n", false);
        co_await asio::async_write(socket, asio::buffer(r), nothrow(ec));
        co_return;
      }
      in.erase(0, *used);
    }
    // One line per request on stdout: tests use it to prove what did (not) reach the app.
    std::printf("request %s %s\n", req->method.c_str(), req->target.c_str());
    std::fflush(stdout);
    std::string response = respond(*req, body, peer_ip, req->keep_alive);
    co_await asio::async_write(socket, asio::buffer(response), nothrow(ec));
    if (ec || !req->keep_alive) co_return;
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
  while (true) {
    std::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(nothrow(ec));
    if (ec) {
      if (!acceptor.is_open()) co_return;
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
  }
}

int usage(const char* why) {
  std::fprintf(stderr, "mg-sample-app: %s\nusage: mg-sample-app --listen 127.0.0.1:PORT\n", why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--listen" && i + 1 < argc) {
      listen = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      std::printf(
          "mg-sample-app %s — an httpbin-like app for meshguard demos and tests (docs/SAMPLE-APP.md)\n"
          "usage: mg-sample-app [--listen ADDRESS:PORT]\n\n"
          "Options:\n"
          "  --listen ADDRESS:PORT   where to serve HTTP/1.1 (default: 127.0.0.1:0, any free port;\n"
          "                          prints \"listening on ADDRESS:PORT\")\n"
          "  -h, --help              this help\n"
          "  --version               print the version\n",
          mg::version());
      return 0;
    } else if (arg == "--version") {
      std::printf("mg-sample-app %s\n", mg::version());
      return 0;
    } else {
      return usage(("unknown argument: " + arg).c_str());
    }
  }
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return usage("--listen must be ADDRESS:PORT");
  std::error_code ec;
  auto address = asio::ip::make_address(listen.substr(0, colon), ec);
  std::string port_text = listen.substr(colon + 1);
  if (ec || port_text.empty() || port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), ::isdigit) ||
      std::stoul(port_text) > 65535) {
    return usage("--listen must be ADDRESS:PORT");
  }
  asio::io_context io{1};
  tcp::acceptor acceptor(io);
  tcp::endpoint ep(address, static_cast<unsigned short>(std::stoul(port_text)));
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "mg-sample-app: cannot listen on %s: %s\n", listen.c_str(), ec.message().c_str());
    return 1;
  }
  auto local = acceptor.local_endpoint();
  std::printf("listening on %s:%u\n", local.address().to_string().c_str(), static_cast<unsigned>(local.port()));
  std::fflush(stdout);
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](std::error_code, int) { io.stop(); });
  asio::co_spawn(io, accept_loop(acceptor), asio::detached);
  io.run();
  return 0;
}
