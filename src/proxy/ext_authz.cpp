#include "proxy/ext_authz.h"

#include <chrono>
#include <ctime>

#include <openssl/ssl.h>

#include "crypto/openssl.h"
#include "http/body.h"
#include "http/parser.h"
#include "policy/resources.h"
#include "proxy/balancer.h"
#include "proxy/net.h"

namespace mg::proxy {
namespace {

using extauthz::CheckResult;

// A provider's answer is small (a decision, maybe a short body): a bigger one is an error.
constexpr size_t kMaxProviderBody = 64 * 1024;
const http::Limits kProviderLimits{};

// "ip:port" / "[v6]:port" → address and port.
void split_address(std::string_view address, std::string& host, uint32_t& port) {
  host.clear();
  port = 0;
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) {
    host = address;
    return;
  }
  std::string_view h = address.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  host = h;
  for (char c : address.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) return;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
}

// Connects to the provider: an address literal directly, a host name through the resolver.
net::awaitable<std::unique_ptr<net::Stream>> connect_provider(const policy::ExtensionProvider& p,
                                                              asio::ip::tcp::resolver& resolver,
                                                              std::error_code& ec) {
  auto ex = co_await asio::this_coro::executor;
  net::tcp::socket socket(ex);
  std::error_code parse_ec;
  const auto literal = asio::ip::make_address(p.service, parse_ec);
  if (!parse_ec) {
    co_await socket.async_connect(net::tcp::endpoint(literal, static_cast<uint16_t>(p.port)),
                                  net::nothrow(ec));
  } else {
    auto endpoints = co_await resolver.async_resolve(p.service, std::to_string(p.port), net::nothrow(ec));
    if (ec) co_return nullptr;
    co_await asio::async_connect(socket, endpoints, net::nothrow(ec));
  }
  if (ec) co_return nullptr;
  std::error_code ignored;
  socket.set_option(net::tcp::no_delay(true), ignored);
  co_return std::make_unique<net::PlainStream>(std::move(socket));
}

// Why an exchange failed: the connection (a pooled one the provider closed may be retried on a
// new one) or what the provider sent.
struct ExchangeError {
  enum class Kind { Io, Response } kind;
  std::string message;
};
Unexpected<ExchangeError> io_error(std::string message) {
  return fail(ExchangeError{ExchangeError::Kind::Io, std::move(message)});
}
Unexpected<ExchangeError> response_error(std::string message) {
  return fail(ExchangeError{ExchangeError::Kind::Response, std::move(message)});
}

// One exchange on `conn`: the check request out, the whole response in. `reusable` says whether
// the connection may serve the next check; `answered` whether any response byte came back.
net::awaitable<Result<std::pair<http::Response, std::string>, ExchangeError>> exchange(
    net::Stream& stream, const std::string& head, std::string_view method, bool& reusable, bool& answered) {
  reusable = false;
  answered = false;
  std::error_code ec;
  co_await stream.write_all(asio::buffer(head), ec);
  if (ec) co_return io_error("write: " + ec.message());
  std::string in;
  char buf[8192];
  http::HeadScanner scanner;
  http::HeadScan scan;
  while ((scan = scanner.scan(in, kProviderLimits.max_head_bytes)).state ==
         http::HeadScan::State::Incomplete) {
    size_t n = co_await stream.read_some(asio::buffer(buf), ec);
    if (ec || n == 0)
      co_return io_error(in.empty() ? "connection closed before a response"
                                    : "read: " + (ec ? ec.message() : std::string("connection closed")));
    answered = true;
    in.append(buf, n);
  }
  if (scan.state != http::HeadScan::State::Complete) co_return response_error("malformed response head");
  auto response =
      http::parse_response_head(std::string_view(in).substr(0, scan.length), kProviderLimits, method);
  if (!response) co_return response_error("malformed response: " + response.error().reason);
  in.erase(0, scan.length);
  std::string body;
  if (response->framing != http::BodyFraming::None) {
    http::BodyDecoder decoder(response->framing, response->content_length);
    while (true) {
      auto used = decoder.feed(in, body);
      if (!used) co_return response_error("malformed response body: " + used.error().reason);
      in.erase(0, *used);
      if (body.size() > kMaxProviderBody) co_return response_error("response body over 64 KiB");
      if (decoder.done()) break;
      size_t n = co_await stream.read_some(asio::buffer(buf), ec);
      if (ec || n == 0) {
        if (decoder.accept_eof()) break;
        co_return io_error("connection closed inside the response body");
      }
      in.append(buf, n);
    }
  }
  // Bytes after the response would be a stray answer to the next check: not reused then.
  reusable = response->keep_alive && in.empty() && response->framing != http::BodyFraming::UntilClose;
  co_return std::make_pair(std::move(*response), std::move(body));
}

// One gRPC check as an awaitable. Not a coroutine itself: the completion handler is made here,
// outside any co_await expression (gcc 12 destroys lambda temporaries inside those twice). The
// completion runs on a gRPC thread and only posts the result to the awaiting executor.
net::awaitable<CheckResult> grpc_call(std::shared_ptr<extauthz::GrpcChecker> checker,
                                      extauthz::CheckAttributes attributes, int64_t timeout_ms) {
  auto initiation = [checker = std::move(checker), attributes = std::move(attributes),
                     timeout_ms](auto handler) {
    auto executor = asio::get_associated_executor(handler);
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    checker->check(attributes, timeout_ms, [shared, executor](CheckResult result) {
      asio::post(executor, [shared, result = std::move(result)]() mutable { (*shared)(std::move(result)); });
    });
  };
  return asio::async_initiate<decltype(asio::use_awaitable), void(CheckResult)>(std::move(initiation),
                                                                                asio::use_awaitable);
}

}  // namespace

std::unique_ptr<ExtAuthzPool::Conn> ExtAuthzPool::take(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  while (!it->second.empty()) {
    auto conn = std::move(it->second.back());
    it->second.pop_back();
    // Anything to read on an idle connection is a close or a stray answer: never a check's.
    if (net::nothing_to_read(*conn->io())) return conn;
  }
  return nullptr;
}

void ExtAuthzPool::put(const std::string& key, std::unique_ptr<Conn> conn) {
  auto& list = idle_[key];
  if (list.size() < 64) list.push_back(std::move(conn));  // bounded: extra ones are closed
}

extauthz::CheckAttributes check_attributes(const ExtAuthzQuery& q) {
  extauthz::CheckAttributes a;
  const http::Request& r = q.request;
  split_address(q.side.source, a.source_address, a.source_port);
  if (q.side.peer) a.source_principal = q.side.peer->id.str();
  a.destination_address = q.side.inbound ? q.side.inbound->address : std::string();
  a.destination_port = q.side.listen_port;
  a.destination_principal = std::string(q.own_principal);
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  a.time_seconds = std::chrono::duration_cast<std::chrono::seconds>(now).count();
  a.time_nanos =
      static_cast<int32_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count() % 1000000000);
  if (auto id = r.headers.get("x-request-id")) a.id = std::string(*id);
  a.method = r.method;
  a.path = r.query.empty() ? r.path : r.path + "?" + r.query;
  a.host = r.host;
  a.scheme = q.side.peer ? "https" : "http";
  a.protocol = r.version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
  a.query = r.query;
  a.size = r.framing == http::BodyFraming::ContentLength ? static_cast<int64_t>(r.content_length)
           : r.framing == http::BodyFraming::None        ? 0
                                                         : -1;
  // Envoy's header map as the plugin sees it: pseudo-headers, then the fields, names in lower
  // case, repeated fields joined with ','.
  a.headers = {{":authority", r.host}, {":method", r.method}, {":path", a.path}, {":scheme", a.scheme}};
  for (const auto& h : r.headers) {
    std::string name = http::to_lower(h.name);
    if (name == "host") continue;
    auto same =
        std::find_if(a.headers.begin(), a.headers.end(), [&](const auto& e) { return e.first == name; });
    if (same != a.headers.end()) {
      (same->second += ',') += h.value;
    } else {
      a.headers.emplace_back(std::move(name), h.value);
    }
  }
  return a;
}

std::optional<Registry::Match> provider_in_mesh(const Registry& registry, const policy::ExtensionProvider& p) {
  if (p.port == 0 || p.port > 65535) return std::nullopt;
  return registry.resolve(p.service + ":" + std::to_string(p.port));
}

net::awaitable<CheckResult> ExtAuthz::check(const policy::ExtensionProvider& p, const ExtAuthzQuery& query,
                                            ExtAuthzPool& pool, const ProviderInMesh* in_mesh) {
  if (p.kind == policy::ExtensionProvider::Kind::EnvoyExtAuthzGrpc) co_return co_await check_grpc(p, query, in_mesh);
  co_return co_await check_http(p, query, pool, in_mesh);
}

namespace {

// An mTLS connection to an endpoint of the provider's service port: the balancer's pick, this
// proxy's SVID, the server's identity checked against the service's (secure naming). Null + why.
net::awaitable<std::unique_ptr<UpstreamConn>> connect_in_mesh(const ProviderInMesh& in_mesh, std::string& why) {
  UpstreamTarget target;
  target.service = in_mesh.match.service;
  target.port = in_mesh.match.port;
  if (!choose_endpoint(target, BalancerClock::now())) {
    why = "no healthy endpoint of " + target.service->fqdn();
    co_return nullptr;
  }
  std::string reason, detail;
  auto up = co_await in_mesh.upstreams.connect_target(target, reason, detail);
  finish_endpoint(target, !up, in_mesh.outlier, BalancerClock::now());
  if (!up) why = "mTLS to " + target.service->fqdn() + ": " + reason + (detail.empty() ? "" : " (" + detail + ")");
  co_return up;
}

}  // namespace

net::awaitable<CheckResult> ExtAuthz::check_http(const policy::ExtensionProvider& p, const ExtAuthzQuery& query,
                                                 ExtAuthzPool& pool, const ProviderInMesh* in_mesh) {
  auto ex = co_await asio::this_coro::executor;
  // Plaintext and mTLS connections to one name are never pooled together.
  const std::string key = (in_mesh ? "mesh|" : "") + p.service + ":" + std::to_string(p.port);
  const http::Request check = extauthz::build_http_check(p, query.request, query.body);
  std::string head = http::serialize_request_head(check);
  if (query.body && query.body->present) head += query.body->data;  // one write: head and body

  asio::ip::tcp::resolver resolver(ex);
  std::unique_ptr<ExtAuthzPool::Conn> conn;
  net::Watchdog deadline(ex, [&] {
    resolver.cancel();
    if (conn && conn->io()) conn->io()->close();
  });
  deadline.arm(std::chrono::milliseconds(p.timeout_ms));

  // A pooled connection the provider closed meanwhile fails before any answer: the check is
  // sent again once, on a new connection (it has no body and no effect to repeat).
  for (int attempt = 0; attempt < 2; ++attempt) {
    conn = attempt == 0 ? pool.take(key) : nullptr;
    const bool reused = conn != nullptr;
    if (!conn && in_mesh) {
      std::string why;
      auto up = co_await connect_in_mesh(*in_mesh, why);
      if (deadline.fired()) co_return CheckResult::failure("timeout", true);
      if (!up) co_return CheckResult::failure("unreachable: " + why);
      conn = std::make_unique<ExtAuthzPool::Conn>();
      conn->mesh = std::move(up);
    } else if (!conn) {
      std::error_code ec;
      auto stream = co_await connect_provider(p, resolver, ec);
      if (deadline.fired()) co_return CheckResult::failure("timeout", true);
      if (!stream) co_return CheckResult::failure("unreachable: " + ec.message());
      conn = std::make_unique<ExtAuthzPool::Conn>();
      conn->stream = std::move(stream);
    }
    bool reusable = false, answered = false;
    auto got = co_await exchange(*conn->io(), head, check.method, reusable, answered);
    if (deadline.fired()) co_return CheckResult::failure("timeout", true);
    if (!got) {
      if (reused && !answered && got.error().kind == ExchangeError::Kind::Io) continue;
      co_return CheckResult::failure(got.error().message);
    }
    deadline.disarm();
    if (reusable) pool.put(key, std::move(conn));
    co_return extauthz::interpret_http_check(p, got->first, std::move(got->second));
  }
  co_return CheckResult::failure("connection closed before a response");
}

Result<extauthz::GrpcCheckers*> ExtAuthz::grpc_checkers() {
  std::lock_guard lock(mu_);
  if (grpc_) return grpc_.get();
  if (!grpc_error_.empty()) return fail("extauthz.load", grpc_error_);
  auto loaded = extauthz::load_grpc_checkers();
  if (!loaded) {
    grpc_error_ = loaded.error().message;
    return fail(loaded.error());
  }
  grpc_ = std::move(*loaded);
  return grpc_.get();
}

std::shared_ptr<const extauthz::MeshTls> ExtAuthz::mesh_tls(const TlsState& state) {
  const tls::Credentials& creds = *state.creds;
  std::lock_guard lock(mu_);
  if (mesh_tls_ && mesh_tls_->generation == creds.fingerprint) return mesh_tls_;
  auto made = std::make_shared<extauthz::MeshTls>();
  for (const auto& cert : creds.chain) made->cert_chain_pem += crypto::cert_to_pem(cert.get());
  made->key_pem = crypto::private_key_to_pem(SSL_CTX_get0_privatekey(creds.client_ctx.get()));
  made->bundle_pem = creds.bundle.to_pem();
  made->generation = creds.fingerprint;
  mesh_tls_ = std::move(made);
  return mesh_tls_;
}

net::awaitable<CheckResult> ExtAuthz::check_grpc(const policy::ExtensionProvider& p, const ExtAuthzQuery& query,
                                                 const ProviderInMesh* in_mesh) {
  auto checkers = grpc_checkers();
  if (!checkers) co_return CheckResult::failure(checkers.error().message);
  std::shared_ptr<extauthz::GrpcChecker> checker;
  UpstreamTarget target;
  if (in_mesh) {
    auto state = in_mesh->upstreams.credentials().usable();
    if (!state) co_return CheckResult::failure("no valid certificate: cannot call a provider in the mesh over mTLS");
    target.service = in_mesh->match.service;
    target.port = in_mesh->match.port;
    if (!choose_endpoint(target, BalancerClock::now()))
      co_return CheckResult::failure("unreachable: no healthy endpoint of " + target.service->fqdn());
    checker = (*checkers)->channel_mtls(target.endpoint->address, target.endpoint->port, *mesh_tls(*state),
                                        target.service->identities);
  } else {
    checker = (*checkers)->channel(p.service, p.port);
  }
  extauthz::CheckAttributes attributes = check_attributes(query);
  if (query.body && query.body->present) {
    attributes.body = query.body->data;
    attributes.pack_as_bytes = p.include_request_body_in_check.pack_as_bytes;
    attributes.headers.emplace_back("x-envoy-auth-partial-body", query.body->partial ? "true" : "false");
  }
  auto call = grpc_call(std::move(checker), std::move(attributes), p.timeout_ms);
  CheckResult result = co_await std::move(call);
  // An endpoint that could not be reached counts against it, as a failed connection does.
  if (target.endpoint)
    finish_endpoint(target, result.kind == CheckResult::Kind::Error && !result.timed_out, in_mesh->outlier,
                    BalancerClock::now());
  co_return result;
}

net::awaitable<BodyBuffering> buffer_request_body(net::Stream& down, std::string& in,
                                                  const http::Request& request,
                                                  const policy::ExtensionProvider& provider,
                                                  net::Watchdog& watchdog,
                                                  std::chrono::milliseconds idle_timeout,
                                                  extauthz::CheckBody& out) {
  const auto& settings = provider.include_request_body_in_check;
  out = {};
  if (!settings.present || request.framing == http::BodyFraming::None) co_return BodyBuffering::Skipped;
  if (request.expect_continue) co_return BodyBuffering::Skipped;
  out.present = true;
  const size_t max = settings.max_request_bytes;
  if (request.framing == http::BodyFraming::ContentLength && request.content_length > max &&
      !settings.allow_partial_message) {
    co_return BodyBuffering::TooLarge;  // known from the head: nothing read
  }
  // Decoded from a copy of the position: `in` keeps every byte for the forwarder.
  // An HTTP/2 stream's body arrives as payload (DATA), ended by the stream's end.
  const bool h2 = down.is_h2_stream();
  http::BodyDecoder decoder(h2 ? http::BodyFraming::UntilClose : request.framing, request.content_length);
  size_t decoded = 0;  // bytes of `in` the decoder has consumed
  // Raw bytes are bounded too (chunk framing around a small payload).
  const size_t max_raw = 2 * max + 64 * 1024;
  char buf[16 * 1024];
  while (true) {
    auto used = decoder.feed(std::string_view(in).substr(decoded), out.data);
    if (!used) co_return BodyBuffering::Failed;
    decoded += *used;
    if (decoder.done()) break;
    if (out.data.size() >= max || decoded >= max_raw) {
      if (!settings.allow_partial_message) co_return BodyBuffering::TooLarge;
      out.partial = true;
      break;
    }
    std::error_code ec;
    watchdog.arm(idle_timeout);
    size_t n = co_await down.read_some(asio::buffer(buf), ec);
    watchdog.disarm();
    if (h2 && ec == asio::error::eof) break;  // the stream ended: the whole body is known
    if (ec || n == 0) co_return BodyBuffering::Failed;
    in.append(buf, n);
  }
  if (out.data.size() > max) {
    if (!settings.allow_partial_message) co_return BodyBuffering::TooLarge;
    out.data.resize(max);
    out.partial = true;
  }
  co_return BodyBuffering::Buffered;
}

void ExtAuthz::shutdown() {
  std::lock_guard lock(mu_);
  if (grpc_) grpc_->shutdown();
}

}  // namespace mg::proxy
