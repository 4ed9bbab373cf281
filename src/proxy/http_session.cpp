#include "proxy/http_session.h"

#include <ctime>

#include "http/parser.h"
#include "http2/grpc.h"
#include "http2/preface.h"
#include "proxy/connection_manager.h"
#include "proxy/credentials.h"
#include "proxy/enforcement.h"
#include "proxy/forwarder.h"
#include "proxy/http1_codec.h"
#include "proxy/peer_metadata.h"
#include "proxy/report.h"
#include "proxy/worker.h"

namespace mg::proxy {

HttpSession::HttpSession(const ProxyConfig& config, const http::Limits& limits,
                         const Credentials& credentials, Enforcement& enforcement, Forwarder& forwarder,
                         Report& report, const std::atomic<bool>& draining)
    : config_(config),
      limits_(limits),
      credentials_(credentials),
      enforcement_(enforcement),
      forwarder_(forwarder),
      report_(report),
      draining_(draining),
      http2_(config, *this, report, draining) {}

net::awaitable<void> HttpSession::serve(net::Stream& down, ConnEntry& entry, Worker& worker,
                                        const HttpSide& side) {
  std::string in;
  Http1Codec codec(limits_);  // the connection's codec (proxy/codec.h); HTTP/1 is the one spoken
  BufferPool::Lease chunk(worker.buffers);
  net::Watchdog watchdog(down.socket().get_executor(), [&down] { down.close(); });
  const std::string& source = side.source;
  bool first_request = true;

  while (!draining_ && !entry.listener_closed) {
    // 1. The head: idle timeout until its first byte, then the header timeout for all of it.
    codec.begin_head();
    watchdog.arm(std::chrono::milliseconds(in.empty() ? config_.limits.idle_timeout_ms
                                                      : config_.limits.header_timeout_ms));
    entry.idle = in.empty();
    bool got_head = false;
    bool header_deadline = !in.empty();
    while (true) {
      if (first_request && !in.empty()) {
        // The connection's first bytes say its version: the HTTP/2 preface (h2c with prior
        // knowledge, or h2 after ALPN) or an HTTP/1 request.
        const http2::Preface preface = http2::detect_preface(in);
        if (preface == http2::Preface::Http2) {
          chunk.release();
          watchdog.disarm();
          co_await http2_.serve(down, entry, worker, side, std::move(in));
          co_return;
        }
        if (preface == http2::Preface::Http1) first_request = false;
      }
      if (!first_request && codec.scan_head(in) != ServerCodec::HeadState::Incomplete) {
        got_head = true;
        break;
      }
      if (!header_deadline && !in.empty()) {
        // Part of a head arrived: the rest must follow within the header timeout. (A head that
        // arrives whole, the usual case, never moves the deadline.)
        watchdog.arm(std::chrono::milliseconds(config_.limits.header_timeout_ms));
        header_deadline = true;
      }
      std::error_code ec;
      size_t n = 0;
      const bool first = in.empty();
      if (first) {
        // Waiting for the next request: its first bytes go straight into `in` (usually the
        // whole head), so the connection holds no 16 KB buffer while idle.
        chunk.release();
        if (in.capacity() > 4 * kIdleRead) in = std::string();  // a big body grew it: give it back
        in.resize(kIdleRead);
        n = co_await down.read_some(asio::buffer(in), ec);
        in.resize(ec ? 0 : n);
      } else {
        n = co_await down.read_some(chunk.get(), ec);
        if (!ec) in.append(chunk.data(), n);
      }
      if (ec || n == 0) break;
      if (first) entry.idle = false;
    }
    entry.idle = false;
    if (!got_head) {
      if (watchdog.fired() && !in.empty()) {
        report_.registry().counter("meshguard_request_header_timeouts_total").inc();
        log_line("closing " + source + ": request head not received within " +
                 std::to_string(config_.limits.header_timeout_ms) + " ms");
      }
      co_return;
    }
    watchdog.disarm();

    if (!co_await handle_request(down, codec, worker, side, in, chunk, watchdog)) co_return;
  }
}

net::awaitable<bool> HttpSession::handle_request(net::Stream& down, ServerCodec& codec, Worker& worker,
                                                 const HttpSide& side, std::string& in,
                                                 BufferPool::Lease& chunk, net::Watchdog& watchdog) {
  Exchange ex;
  size_t head_bytes = 0;
  auto parsed = codec.take_head(in, head_bytes);
  ex.bytes_received += head_bytes;
  if (!parsed) {
    const int status = parsed.error().status;
    co_await local_reply(down, codec, ex, status, std::string(http::reason_phrase(status)), false);
    finish_request(worker, ex, side, nullptr);
    co_return false;
  }
  http::Request& req = *parsed;
  // The metadata exchange's headers never pass as they came: believed only from an mTLS peer
  // (inbound), stripped from a plaintext client's and from the local app's (outbound) request.
  if (auto metadata = take_peer_metadata(req.headers); metadata && side.inbound && side.peer)
    ex.peer = cached_peer_labels(worker.series, *metadata, side.peer->id.str());
  if (!ex.peer) ex.peer = side.peer_labels;  // the connection's TCP metadata exchange, if any
  ex.method = req.method;
  ex.host = req.host;
  ex.path = req.path;
  ex.grpc = http2::is_grpc_request(req);

  // A WebSocket upgrade keeps its request as received: once spliced, only a policy reload
  // judges the connection again (ConnectionManager::rejudge_all), with this request.
  std::optional<std::string> upgrade = codec.relayed_upgrade(req);
  std::optional<JudgedUpgrade> as_received;
  // So does an inbound HTTP/2 stream, whatever the app's protocol: a long-lived one (a gRPC
  // stream) is judged again at each policy reload while it lasts (the forwarder registers it:
  // LiveRequest). An HTTP/1.1 request is judged once, as Envoy's RBAC does (docs/ARCHITECTURE.md
  // "Policy reloads and live traffic").
  if ((upgrade || down.is_h2_stream()) && side.inbound) as_received.emplace(JudgedUpgrade{req, std::time(nullptr), 0});

  // 2. Enforcement (inbound): the STRICT rule, then the chain in force.
  Judgement judged;  // outbound: nothing to judge, passes
  const Verdict* decision = nullptr;
  if (side.inbound) {
    std::optional<int64_t> judged_at;
    if (as_received) judged_at = as_received->judged_at;  // the time a re-judge checks its JWT as of
    if (!enforcement_.judge_request(req, side, judged_at, worker.series, judged)) co_return false;
    if (judged.pending) {
      // A CUSTOM policy's provider decides next: awaited, the worker serves others meanwhile.
      // (Named, not a temporary in the co_await expression: gcc 12 mishandles those.)
      std::string own;
      if (auto tls = credentials_.current(); tls && tls->creds) own = tls->creds->own_id.str();
      extauthz::CheckBody body;  // includeRequestBodyInCheck: read ahead, left in `in` for the forwarder
      const auto buffering =
          co_await buffer_request_body(down, in, req, *judged.pending->provider, watchdog,
                                       std::chrono::milliseconds(config_.limits.idle_timeout_ms), body);
      if (buffering == BodyBuffering::Failed) co_return false;
      if (buffering == BodyBuffering::TooLarge) {
        judged.decision.reason = "request body over maxRequestBytes of ext_authz provider \"" +
                                 judged.pending->provider->name + "\" (allowPartialMessage: false); " +
                                 judged.decision.reason;
        ex.details = ResponseDetail::LocalDeny;
        co_await local_reply(down, codec, ex, 413, "Payload Too Large", false);
        if (side.gateway) ex.egress = forwarder_.egress_of(side, req);
        finish_request(worker, ex, side, &judged.decision);
        co_return false;
      }
      co_await enforcement_.ask_provider(req, side, own, body, worker, judged);
    }
    if (as_received) as_received->generation = judged.generation;
    decision = &judged.decision;
  }
  const Verdict& verdict = judged.verdict;
  if (!verdict.allow) {
    const auto& call = judged.decision.ext_authz;
    using CallOutcome = Verdict::ExtAuthzCall::Outcome;
    ex.details = call && call->outcome == CallOutcome::Denied    ? ResponseDetail::ExtAuthzDenied
                 : call && call->outcome != CallOutcome::Allowed ? ResponseDetail::ExtAuthzError
                 : verdict.status == 403                         ? ResponseDetail::RbacAccessDenied
                 : verdict.status == 401                         ? ResponseDetail::JwtAuthnAccessDenied
                                                                 : ResponseDetail::LocalDeny;
    // The request body (if any) was not read: close rather than guess where the next request starts.
    bool keep = req.keep_alive && req.framing == http::BodyFraming::None && !draining_;
    // To a peer proxy, the denial says who denied it (its destination labels), as a relayed answer does.
    std::vector<http::Header> extra = verdict.response_headers;
    if (side.peer) add_metadata(extra, *report_.own());
    co_await local_reply(down, codec, ex, verdict.status, verdict.body, keep, extra);
    if (side.gateway) ex.egress = forwarder_.egress_of(side, req);
    finish_request(worker, ex, side, decision);
    co_return keep;
  }

  // 3. Forward.
  if (decision) ex.add_response_headers = decision->response_headers;
  bool keep = co_await forwarder_.forward(down, codec, in, chunk, watchdog, worker, side, req, upgrade,
                                          as_received, ex);
  finish_request(worker, ex, side, decision);
  co_return keep;
}

void HttpSession::finish_request(Worker& worker, const Exchange& ex, const HttpSide& side,
                                 const Verdict* decision) {
  auto tls = credentials_.current();  // keeps the own SPIFFE ID's string alive for the view below
  report_.http_exchange(worker.series, ex, side, decision,
                        tls && tls->creds ? std::string_view(tls->creds->own_id.str()) : "unknown");
  if (ex.egress) {
    // An egress gateway's call out of the mesh: its audit line, allowed or denied.
    Report::EgressAudit a;
    a.source_principal = side.source_principal();
    a.source_address = side.source;
    a.host = ex.egress->host;
    a.port = ex.egress->port;
    a.sni = ex.egress->sni;
    a.method = ex.method;
    a.path = ex.path;
    a.status = ex.status;
    a.bytes_received = ex.bytes_received;
    a.bytes_sent = ex.bytes_sent;
    a.allowed = !decision || decision->allow;
    if (decision) {
      a.policy = decision->policy.value_or("");
      a.reason = decision->reason;
    }
    report_.egress_audit(a);
  }
}

}  // namespace mg::proxy
