// The forwarder's HTTP/2 upstream path (proxy/forwarder.h): one request as a stream of a shared
// HTTP/2 connection to the app (inbound port http2 / grpc) or to the destination proxy (ALPN h2).
#include <nghttp2/nghttp2.h>

#include <algorithm>

#include "http/body.h"
#include "http2/grpc.h"
#include "proxy/codec.h"
#include "proxy/connection_manager.h"
#include "proxy/forwarder.h"
#include "proxy/h2_upstream.h"
#include "proxy/http2_session.h"
#include "proxy/worker.h"

namespace mg::proxy {

namespace {

// Request body bytes kept for a retry (RFC 9113 §8.7: a refused stream was not processed, so its
// request may go again, body included) — the stream's send high-water mark; a longer body
// already sent cannot be retried.
constexpr size_t kReplayLimit = H2Connection::kStreamHighWater;

// The upstream refused the stream (RST_STREAM REFUSED_STREAM, or its id was above a GOAWAY's
// last-stream-id, which nghttp2 reports the same way) before any response: never processed.
bool refused(const H2Stream& st) {
  return st.closed && st.error == NGHTTP2_REFUSED_STREAM && !st.response;
}

// The connection died under a bodiless GET / HEAD / OPTIONS before any answer (a peer killed while
// its connection sat in the pool): sent once more, as the HTTP/1.1 path resends a bodiless request
// whose reused connection turns out stale. Safe methods only: nothing else is resent blind.
bool lost_before_answer(const H2Stream& st, const http::Request& req, bool has_body) {
  return st.closed && st.error == 0 && !st.response && st.data_bytes == 0 && !has_body &&
         (req.method == "GET" || req.method == "HEAD" || req.method == "OPTIONS");
}

}  // namespace

// The request body's pump, running beside the response relay; forward_h2 waits for it to end.
// Its target (connection and stream) changes when forward_h2 retries a refused stream: the new
// stream is given `replay` (every byte sent so far) and, if the pump had ended, the end.
struct Forwarder::BodyPump {
  explicit BodyPump(const asio::any_io_executor& ex) : done_wake(ex), target_wake(ex) {}
  bool done = false;
  bool bad_body = false;         // the client's body was malformed: 400
  bool downstream_gone = false;  // the client went away (or its body timed out)
  Wake done_wake;
  std::shared_ptr<H2Upstream> h2;
  std::shared_ptr<H2Stream> up;
  std::string replay;
  bool replayable = true;  // `replay` holds the whole body sent so far
  bool ended = false;      // the body was ended, with `trailers`
  http::Headers trailers;
  bool give_up = false;  // forward_h2 will not retry: a pump waiting for a new target stops
  Wake target_wake;
};

net::awaitable<void> Forwarder::pump_body_h2(net::Stream& down, ServerCodec& codec, std::string& in,
                                             BufferPool::Lease& chunk, net::Watchdog& watchdog,
                                             const http::Request& req, Exchange& ex, BodyPump& pump) {
  codec.begin_request_body(req);
  std::string payload;
  std::error_code ec;
  bool sent_all = true;
  while (!codec.request_body_done()) {
    if (in.empty()) {
      // The per-stream idle timeout between pieces of the body.
      watchdog.arm(std::chrono::milliseconds(config_.limits.idle_timeout_ms));
      size_t n = co_await down.read_some(chunk.get(), ec);
      watchdog.disarm();
      if (ec || n == 0) {
        // An HTTP/2 stream's end can come after its last DATA: then the body is complete.
        if (!codec.request_body_done()) pump.downstream_gone = true;
        break;
      }
      in.append(chunk.data(), n);
    }
    auto used = codec.read_request_body(in, payload);
    if (!used) {
      pump.bad_body = true;
      break;
    }
    ex.bytes_received += *used;
    in.erase(0, *used);
    if (!payload.empty()) {
      if (pump.replayable && (pump.up->response || pump.replay.size() + payload.size() > kReplayLimit)) {
        pump.replayable = false;  // answered (no retry now) or too long to keep
        std::string().swap(pump.replay);
      }
      if (pump.replayable) pump.replay += payload;
      ec = co_await send_data(*pump.h2, *pump.up, payload);
      payload.clear();
      if (ec && pump.replayable && refused(*pump.up)) {
        // forward_h2 retries the request on another stream, these bytes included, or gives up.
        const auto* old = pump.up.get();
        while (pump.up.get() == old && !pump.give_up) co_await wait_for(pump.target_wake);
        if (pump.up.get() != old) continue;
      }
      if (ec) {
        sent_all = false;  // the upstream stream is gone: the response side says how
        break;
      }
    }
  }
  if (pump.bad_body || pump.downstream_gone || !sent_all) {
    pump.h2->reset(*pump.up, NGHTTP2_CANCEL);
  } else {
    // The client's trailers (an HTTP/1.1 chunked body's or an HTTP/2 stream's).
    for (const auto& t : codec.request_trailers()) {
      if (http::relayable_trailer(t.name)) pump.trailers.add(t.name, t.value);
    }
    pump.ended = true;
    pump.h2->end(*pump.up, pump.trailers);
  }
  pump.done = true;
  pump.done_wake.notify();
}

net::awaitable<bool> Forwarder::forward_h2(net::Stream& down, ServerCodec& codec, std::string& in,
                                           BufferPool::Lease& chunk, net::Watchdog& watchdog, Worker& worker,
                                           const HttpSide& side, std::shared_ptr<H2Upstream> h2,
                                           http::Request& forwarded, const http::Request& req,
                                           std::optional<JudgedUpgrade>& as_received, Exchange& ex) {
  using Clock = H2Connection::Clock;
  ex.upstream_principal = h2->peer_principal();
  const auto start = Clock::now();
  // A gRPC caller's deadline bounds the proxy's own timeouts (never extends them).
  Clock::time_point call_deadline = Clock::time_point::max();
  if (ex.grpc) {
    if (auto t = forwarded.headers.get("grpc-timeout")) {
      if (auto ms = http2::parse_grpc_timeout_ms(*t)) call_deadline = start + std::chrono::milliseconds(*ms);
    }
  }
  auto bounded = [&](uint32_t ms) {
    return std::min(Clock::now() + std::chrono::milliseconds(ms), call_deadline);
  };

  const bool has_body = req.framing != http::BodyFraming::None;
  auto submitted = h2->submit(forwarded, !has_body);
  if (!submitted) {
    ex.flags = ResponseFlag::UpstreamReset;
    co_await local_reply(down, codec, ex, 503, kResetBeforeHeaders, false);
    co_return false;
  }
  std::shared_ptr<H2Stream> up = std::move(*submitted);
  // An inbound HTTP/2 stream, registered for policy reloads while it is relayed (all on this
  // worker's thread): one the new policy denies is reset both ways. Its upstream side is re-made in place
  // (the registration points at it) when the request is retried on another stream.
  std::optional<H2StreamIo> up_io;
  up_io.emplace(*h2, *up);
  // The same rule as for an HTTP/1.1 app (forwarder.cpp): only a stream whose request carries a
  // body (an upload, a gRPC call) is judged again by each publish while it is relayed; a bodiless
  // one was judged when it arrived, as an HTTP/1.1 request is.
  std::optional<LiveRequest> live;
  if (side.inbound && as_received && has_body) {
    live.emplace(connections_, side, *as_received, down, ex);
    live->relay_to(&*up_io);
  }
  BodyPump pump(worker.io->get_executor());
  pump.h2 = h2;
  pump.up = up;
  if (has_body) {
    asio::co_spawn(worker.io->get_executor(), pump_body_h2(down, codec, in, chunk, watchdog, req, ex, pump),
                   asio::detached);
  } else {
    pump.done = true;
  }
  // Ends the pump (its client side closed, when it still reads) and waits for it: it uses this
  // frame's references.
  auto join_pump = [&](bool close_down) -> net::awaitable<void> {
    pump.give_up = true;
    pump.target_wake.notify();
    if (!pump.done && close_down) down.close();
    while (!pump.done) co_await wait_for(pump.done_wake);
  };

  // The response head, with the upstream timeout. A refused stream (a peer draining with GOAWAY,
  // or over its stream limit) was provably not processed: the request goes once more, on the
  // pool's best connection (a new one when the refusing one is going away), whatever its method;
  // so does a safe bodiless request whose connection died before any answer (lost_before_answer).
  const auto head_deadline = bounded(config_.limits.upstream_timeout_ms);
  bool timed_out = false;
  for (int attempt = 1;; ++attempt) {
    while (!up->response && !up->closed && !up->ended) {
      const bool woken = co_await wait_for(up->data_wake, head_deadline);  // not inside &&: gcc 12
      if (!woken && !up->response && !up->closed) {
        timed_out = true;
        break;
      }
    }
    const bool body_kept = !has_body || (pump.replayable && !pump.bad_body && !pump.downstream_gone);
    if (timed_out || attempt > 1 || !(refused(*up) || lost_before_answer(*up, forwarded, has_body)) || !body_kept)
      break;
    std::unique_ptr<UpstreamConn> http1;  // a destination now selecting http/1.1: not retried
    std::string reason, detail;
    auto next = co_await worker.upstreams.acquire_h2(side, http1, reason, detail);
    // A registry route's endpoint that cannot be reached now (a peer that drained): another one.
    while (!next && !http1 && !reason.empty() && retry_elsewhere(side, reason, detail)) {
      reason.clear();
      next = co_await worker.upstreams.acquire_h2(side, http1, reason, detail);
    }
    if (!next) break;
    if (side.target) ex.upstream_address = destination_name(side);
    if (live && live->closed_by_policy()) break;  // by a reload meanwhile: not sent again
    auto again = next->submit(forwarded, !has_body);
    if (!again) break;
    h2 = std::move(next);
    up = std::move(*again);
    ex.upstream_principal = h2->peer_principal();
    if (has_body) {
      if (!pump.replay.empty()) (void)h2->session().append_body(up->id, pump.replay);
      if (pump.ended) h2->end(*up, pump.trailers);
      h2->kick();
    }
    up_io.emplace(*h2, *up);
    pump.h2 = h2;
    pump.up = up;
    pump.target_wake.notify();
  }
  if (!up->response) {
    h2->reset(*up, NGHTTP2_CANCEL);
    if (pump.downstream_gone) {
      ex.flags = ResponseFlag::DownstreamReset;
    } else if (pump.bad_body) {
      co_await local_reply(down, codec, ex, 400, "Bad Request", false);
    } else if (timed_out) {
      ex.flags = ResponseFlag::UpstreamTimeout;
      co_await local_reply(down, codec, ex, 504, "upstream request timeout", false);
    } else {
      ex.flags = ResponseFlag::UpstreamReset;
      co_await local_reply(down, codec, ex, 503, kResetBeforeHeaders, false);
    }
    co_await join_pump(true);
    co_return false;
  }

  http::Response resp = std::move(*up->response);
  exchange_response_metadata(side, resp.headers, worker, ex);
  for (const auto& h : ex.add_response_headers) resp.headers.add(h.name, h.value);
  if (ex.grpc) {
    if (auto g = resp.headers.get("grpc-status")) ex.grpc_status = std::string(*g);  // trailers-only
  }
  bool client_keep = req.keep_alive && !draining_;
  std::string out = codec.begin_response(resp, req, client_keep);
  ex.status = resp.status;
  auto flush = [&] { return flush_response(down, out, ex); };

  // The body, each wait bounded by the per-stream idle timeout (a quiet long-lived stream is
  // fine until then) and the caller's deadline.
  bool complete = false;
  std::string payload;
  while (true) {
    if (up->data.empty() && !up->ended) {
      const bool flushed = co_await flush();
      if (!flushed) break;
    }
    payload.clear();
    // What already came is taken without a coroutine frame; only a wait needs one.
    int got = 0;
    if (auto ready = take_ready(*h2, *up, payload)) {
      got = *ready;
    } else {
      got = co_await take_data(*h2, *up, payload, bounded(config_.limits.idle_timeout_ms));
    }
    if (got == 1) {
      codec.append_body(out, payload);
      h2->consume(*up, payload.size());
      if (out.size() >= kReadChunk) {
        const bool flushed = co_await flush();
        if (!flushed) break;
      }
      continue;
    }
    if (got == 0) {
      complete = true;
      break;
    }
    ex.flags = got == -2 ? ResponseFlag::UpstreamTimeout : ResponseFlag::UpstreamReset;
    break;
  }
  if (complete) {
    if (ex.grpc) {
      if (auto g = up->trailers.get("grpc-status")) ex.grpc_status = std::string(*g);
    }
    end_response_body(codec, out, up->trailers, ex);
    complete = co_await flush();
  } else {
    co_await flush();  // what arrived; the client then sees the stream (or connection) end
    h2->reset(*up, NGHTTP2_CANCEL);
  }
  // A request body still coming after a complete response: on an HTTP/2 stream the response's
  // end stops it (the session resets the rest of the stream once its last frame is out: closing
  // now would cut that frame); an HTTP/1 connection cannot be reused.
  if (!pump.done && !down.is_h2_stream()) client_keep = false;
  const bool close_down = !complete || (!client_keep && !down.is_h2_stream());
  co_await join_pump(close_down);
  if (!complete) co_return false;
  if (!client_keep) down.shutdown_send();
  co_return client_keep;
}

}  // namespace mg::proxy
