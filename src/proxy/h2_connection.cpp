#include "proxy/h2_connection.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>

namespace mg::proxy {

H2Connection::H2Connection(net::Stream& stream, std::unique_ptr<http2::Session> session,
                           std::chrono::milliseconds stall_timeout)
    : stream_(stream),
      session_(std::move(session)),
      stall_timeout_(stall_timeout),
      writer_done_(stream.socket().get_executor()),
      deadlines_(stream.socket().get_executor()) {}

std::shared_ptr<H2Stream> H2Connection::add_stream(int32_t id) {
  auto st = std::make_shared<H2Stream>(stream_.socket().get_executor(), &deadlines_);
  st->id = id;
  streams_[id] = st;
  return st;
}

bool H2Connection::receive(std::string_view bytes) {
  if (dead_) return false;
  return static_cast<bool>(session_->receive(bytes));
}

void H2Connection::dispatch() {
  // The session's queue is taken whole and its events handled where they lie (an event holds a
  // request and a response: moving each one out cost more than handling most of them). The
  // batch is a local (a dispatch from inside a handler gets its own), its storage reused.
  std::vector<http2::Event> batch = std::move(spare_events_);
  bool requests = false;
  while (session_->take_events(batch)) {
    for (http2::Event& ev : batch) {
      const bool request = ev.kind == http2::Event::Kind::Refused ||
                           (ev.kind == http2::Event::Kind::Head && !ev.request.method.empty());
      if (!request) {
        deliver(ev);
      } else if (on_request) {
        on_request(ev);
        requests = true;
      } else {
        session_->reset(ev.stream, NGHTTP2_REFUSED_STREAM);
      }
    }
  }
  if (batch.capacity() > spare_events_.capacity()) spare_events_ = std::move(batch);
  if (requests && on_dispatched) on_dispatched();
}

void H2Connection::deliver(http2::Event& ev) {
  auto it = streams_.find(ev.stream);
  if (it == streams_.end()) {
    // Nobody takes these bytes: the window is given back at once.
    if (ev.kind == http2::Event::Kind::Data) session_->consume(ev.stream, ev.data.size());
    return;
  }
  H2Stream& st = *it->second;
  switch (ev.kind) {
    case http2::Event::Kind::Head:
      st.response = std::move(ev.response);
      st.data_wake.notify();
      break;
    case http2::Event::Kind::Data:
      st.data_bytes += ev.data.size();
      st.data.push_back(std::move(ev.data));
      st.data_wake.notify();
      break;
    case http2::Event::Kind::End:
      st.ended = true;
      st.trailers = std::move(ev.trailers);
      st.data_wake.notify();
      break;
    case http2::Event::Kind::Closed:
      st.closed = true;
      st.error = ev.error_code;
      st.data_wake.notify();
      st.room_wake.notify();
      streams_.erase(it);  // the stream's coroutine keeps its own reference
      break;
    case http2::Event::Kind::Refused:
      break;
  }
}

void H2Connection::kick() {
  if (writing_ || dead_) return;
  writing_ = true;
  // At the turn's end, never inline: the caller is often inside dispatch() (an event being
  // handled) or about to queue more (a head, then its body, then its end), and everything queued
  // before the turn ends goes out in the same write.
  TurnEnd::defer(stream_.socket().get_executor(), [self = shared_from_this()] { self->flush(); });
}

void H2Connection::write_now() {
  if (writing_ || dead_) return;
  writing_ = true;
  flush();
}

void H2Connection::kick_if_due() {
  if (session_->want_write()) kick();
}

bool H2Connection::take_output() {
  out_.clear();
  session_->take_output(out_);
  // Frames taken as sent close streams (their last frame) and make room for waiting writers.
  dispatch();
  wake_writers();
  check_released();
  return !out_.empty();
}

void H2Connection::flush() {
  while (!dead_ && take_output()) {
    std::error_code ec;
    const size_t written = stream_.try_write(asio::buffer(out_), ec);
    if (ec) {
      fail();
      break;
    }
    if (written < out_.size()) {
      // The socket is full: a coroutine waits for it (writing_ stays set until it ends).
      asio::co_spawn(stream_.socket().get_executor(), write_loop(shared_from_this(), written),
                     asio::detached);
      return;
    }
  }
  writing_ = false;
  writer_done_.notify();
}

net::awaitable<void> H2Connection::write_loop(std::shared_ptr<H2Connection> self, size_t written) {
  (void)self;  // holds the connection while the writer runs
  std::error_code ec;
  co_await stream_.write_all(asio::buffer(out_) + written, ec);
  while (!ec && !dead_ && take_output()) co_await stream_.write_all(asio::buffer(out_), ec);
  if (ec) fail();
  writing_ = false;
  writer_done_.notify();
}

net::awaitable<void> H2Connection::writer_idle() {
  while (writing_) co_await wait_for(writer_done_);
}

void H2Connection::wake_writers() {
  for (auto& [id, st] : streams_) {
    if (session_->pending(id) < kStreamHighWater) st->room_wake.notify();
  }
}

bool H2Connection::release(const std::shared_ptr<H2Stream>& st) {
  if (st->closed || dead_ || session_->pending(st->id) == 0) return true;
  if (!session_->fits_window(st->id)) return false;
  released_.push_back(st);
  kick();  // usually already due: the bytes were kicked when they were added
  return true;
}

void H2Connection::check_released() {
  if (released_.empty()) return;
  std::vector<std::shared_ptr<H2Stream>> released;
  released.swap(released_);
  for (auto& st : released) {
    if (st->closed || dead_ || session_->pending(st->id) == 0) continue;
    if (on_release_stalled) {
      on_release_stalled(std::move(st));
    } else {
      reset(*st, NGHTTP2_CANCEL);
    }
  }
}

void H2Connection::fail() {
  dead_ = true;
  stream_.close();
  for (auto& [id, st] : streams_) {
    st->closed = true;
    st->data_wake.notify();
    st->room_wake.notify();
  }
  streams_.clear();
  released_.clear();
}

std::optional<int> take_ready(const H2Connection& conn, H2Stream& st, std::string& out) {
  if (st.data.empty()) {
    if (st.ended) return 0;
    if (st.closed || conn.dead()) return -1;
    return std::nullopt;
  }
  for (const auto& piece : st.data) out += piece;
  st.data.clear();
  return 1;
}

net::awaitable<int> take_data(H2Connection& conn, H2Stream& st, std::string& out,
                              H2Connection::Clock::time_point deadline) {
  while (true) {
    if (auto got = take_ready(conn, st, out)) co_return *got;
    // (No co_await inside && or ||: gcc 12 miscompiles the coroutine frame around one.)
    const bool woken = co_await wait_for(st.data_wake, deadline);
    if (!woken && st.data.empty() && !st.ended && !st.closed) co_return -2;
  }
}

void H2Connection::consume(H2Stream& st, size_t n) {
  if (st.closed || dead_ || n == 0) return;
  session_->consume(st.id, n);
  kick_if_due();  // the WINDOW_UPDATE, when nghttp2 decides one is due
}

net::awaitable<std::error_code> send_data(H2Connection& conn, H2Stream& st, std::string_view payload) {
  if (st.closed || conn.dead()) co_return asio::error::connection_reset;
  if (!payload.empty() && !conn.session().append_body(st.id, payload))
    co_return asio::error::connection_reset;
  conn.kick();
  while (conn.session().pending(st.id) >= H2Connection::kStreamHighWater) {
    if (st.closed || conn.dead()) co_return asio::error::connection_reset;
    const bool woken = co_await wait_for(st.room_wake, H2Connection::Clock::now() + conn.stall_timeout());
    if (!woken && conn.session().send_blocked(st.id)) {
      // The peer kept its window shut for the whole stall timeout.
      conn.reset(st, NGHTTP2_CANCEL);
      co_return asio::error::timed_out;
    }
  }
  co_return std::error_code();
}

net::awaitable<void> drain_stream(H2Connection& conn, H2Stream& st) {
  while (!st.closed && !conn.dead() && conn.session().pending(st.id) > 0) {
    const bool woken = co_await wait_for(st.room_wake, H2Connection::Clock::now() + conn.stall_timeout());
    if (!woken && conn.session().send_blocked(st.id)) {
      conn.reset(st, NGHTTP2_CANCEL);
      co_return;
    }
  }
}

net::awaitable<size_t> read_body(H2Connection& conn, H2Stream& st, std::string& taken,
                                 asio::mutable_buffer buf, std::error_code& ec) {
  ec.clear();
  if (taken.empty()) {
    int got = 0;
    if (auto ready = take_ready(conn, st, taken)) {
      got = *ready;
    } else {
      got = co_await take_data(conn, st, taken, H2Connection::Clock::time_point::max());
    }
    if (got == 0) {
      ec = asio::error::eof;
      co_return 0;
    }
    if (got < 0) {
      ec = asio::error::connection_reset;
      co_return 0;
    }
  }
  size_t n = std::min(buf.size(), taken.size());
  std::memcpy(buf.data(), taken.data(), n);
  taken.erase(0, n);
  conn.consume(st, n);  // handed on: the peer may send that much more
  co_return n;
}

net::awaitable<void> write_body(H2Connection& conn, H2Stream& st, std::string_view payload,
                                std::error_code& ec) {
  ec = co_await send_data(conn, st, payload);
}

void H2Connection::reset(H2Stream& st, uint32_t code) {
  if (st.closed || dead_) return;
  session_->reset(st.id, code);
  kick();
}

}  // namespace mg::proxy
