// proxy/h2_connection.h — the I/O of one HTTP/2 connection over an http2::Session (src/http2: the
// codec does no I/O), either side: the downstream one (proxy/http2_session.h) and an upstream
// one (proxy/h2_upstream.h). One write at a time takes the session's output and writes it, at
// the end of the loop turn (proxy/turn_end.h) so that what the turn's streams queued goes out
// together; each stream's events (body bytes, end and trailers, reset) wait in an H2Stream until the
// coroutine handling that stream takes them. Body bytes sent on a stream wait in the session
// until the peer's window lets them out; a writer of a stream waits while more than
// kStreamHighWater bytes are pending, and a stream whose window stays closed for the stall
// timeout is reset (a zero-window stall is the peer's to end, not ours to buffer around).
// Everything runs on the connection's worker thread.
// Owns: the session, the per-stream event state, the bytes being written.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/message.h"
#include "http2/session.h"
#include "proxy/net.h"
#include "proxy/turn_end.h"
#include "proxy/wake.h"

namespace mg::proxy {

// One stream's state as the connection's reader leaves it for the coroutine handling the stream.
struct H2Stream {
  explicit H2Stream(const asio::any_io_executor& ex, DeadlineWatch* watch = nullptr)
      : data_wake(ex, watch), room_wake(ex, watch) {}
  int32_t id = 0;
  http::Request request;                   // server side: the request
  std::optional<http::Response> response;  // client side: the response head, once it came
  std::vector<std::string> data;           // body bytes not yet taken (always all at once)
  uint64_t data_bytes = 0;                 // every body byte that arrived
  bool ended = false;                      // the peer ended its side
  http::Headers trailers;                  // with it
  bool closed = false;                     // reset, or the connection is gone
  uint32_t error = 0;                      // the reset's code
  Wake data_wake;                          // a head, body bytes, the end or the close arrived
  Wake room_wake;                          // pending output shrank, or the close
};

class H2Connection : public std::enable_shared_from_this<H2Connection> {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kStreamHighWater = 64 * 1024;

  H2Connection(net::Stream& stream, std::unique_ptr<http2::Session> session,
               std::chrono::milliseconds stall_timeout);
  virtual ~H2Connection() = default;
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  http2::Session& session() { return *session_; }
  net::Stream& stream() { return stream_; }
  bool dead() const { return dead_; }

  std::shared_ptr<H2Stream> add_stream(int32_t id);
  // Feeds bytes read; false when the session ended (its GOAWAY, if any, is queued).
  bool receive(std::string_view bytes);
  // Takes every event the session has: a server's Head and Refused go to on_request, the rest
  // to their stream (deliver). Run after each receive and each write (a stream closes when its
  // last frame goes out).
  void dispatch();
  std::function<void(http2::Event&)> on_request;  // unset: such a stream is refused
  // Called when a dispatch that handed requests to on_request has dispatched its whole batch: a
  // new stream's coroutine started here finds what came with its head (its body, its end).
  std::function<void()> on_dispatched;
  // Hands a Head (client side), Data, End or Closed event to its stream.
  void deliver(http2::Event& ev);
  // Has whatever the session has to send written at the end of this loop turn (proxy/turn_end.h),
  // unless a write is already due or in progress (it takes everything queued until it ends). The
  // write is made there and then; only what the socket does not take waits in a coroutine.
  void kick();
  // Writes what the session has now, when nothing is being written: for a caller outside
  // dispatch() that knows nothing else could join the write later in the turn.
  void write_now();
  // kick() when the session has frames to send. After a read: most reads queue nothing to send
  // (a writer started for nothing costs a post and a coroutine frame); those that do (a SETTINGS
  // or PING ACK, a WINDOW_UPDATE, a RST_STREAM, a refused stream's answer, a GOAWAY) get one.
  void kick_if_due();
  // Waits until nothing is due to be written or being written (bounded by the stream's own
  // timeouts).
  net::awaitable<void> writer_idle();
  // The connection is gone: closes the stream and wakes every stream's coroutine.
  void fail();

  // The peer may send `n` more bytes on `st` (the caller forwarded them).
  void consume(H2Stream& st, size_t n);
  std::chrono::milliseconds stall_timeout() const { return stall_timeout_; }
  // Aborts `st` if it is still open (RST_STREAM with `code`).
  void reset(H2Stream& st, uint32_t code);
  // The coroutine handling `st` is done and the last body bytes it sent wait in the session. When
  // they fit the peer's windows the next write takes them all, so nobody needs to wait for them
  // (a wait costs a coroutine frame and a timer per stream): true, and the writer looks at the
  // stream again after its next take. False: the caller waits for them itself (drain_stream).
  bool release(const std::shared_ptr<H2Stream>& st);
  // A released stream whose bytes did not all go out with that take (the peer shrank its windows
  // meanwhile): its owner waits for them with drain_stream, the stall timer running, as if the
  // stream had not been released. Unset: such a stream is reset.
  std::function<void(std::shared_ptr<H2Stream>)> on_release_stalled;

 protected:
  // Called after each write: streams waiting for room get woken.
  void wake_writers();
  // Called after each take of the session's output: released streams with bytes still waiting go
  // to on_release_stalled.
  void check_released();

  net::Stream& stream_;
  std::unique_ptr<http2::Session> session_;
  std::chrono::milliseconds stall_timeout_;
  std::unordered_map<int32_t, std::shared_ptr<H2Stream>> streams_;
  bool dead_ = false;
  bool writing_ = false;  // a write is due at the turn's end (kick) or waits for the socket
  Wake writer_done_;
  DeadlineWatch deadlines_;  // of the streams' waits
  // dispatch()'s batch between calls: its capacity is kept for the next one.
  std::vector<http2::Event> spare_events_;
  std::vector<std::shared_ptr<H2Stream>> released_;  // see release()

 private:
  // The turn's write (kick): takes the session's output and writes it until the session has none,
  // or hands what the socket did not take to write_loop.
  void flush();
  // Takes what the session has to send into out_, then hands on what taking it changed: false
  // when there is nothing to send.
  bool take_output();
  // Writes out_ from `written` on, waiting for the socket, then goes on as flush does.
  net::awaitable<void> write_loop(std::shared_ptr<H2Connection> self, size_t written);
  // Taken from the session, being written: stays put until written whole (a TLS write that could
  // not finish is retried from the same memory).
  std::string out_;
};

// The two waits of a stream's coroutine. Free functions rather than members: gcc 12 lays out the
// frame of these member coroutines differently in the ramp and the body (the body read `this`
// from the slot of the first parameter; clang is right), and free coroutines are not affected.

// Body bytes of `st` into `out` (appended; at most what is queued): 1 when some came, 0 at the
// end (trailers in st.trailers), -1 when the stream was reset or the connection lost, -2 when
// `deadline` passed. The peer's window reopens as the caller calls consume().
net::awaitable<int> take_data(H2Connection& conn, H2Stream& st, std::string& out,
                              H2Connection::Clock::time_point deadline);
// take_data when it need not wait (not a coroutine: no frame for what is already there): 1, 0 or
// -1 as take_data says; nullopt when nothing has come yet (then wait with take_data).
std::optional<int> take_ready(const H2Connection& conn, H2Stream& st, std::string& out);
// Sends body bytes on `st`, waiting while too much is pending (backpressure). An error when the
// stream or connection is gone, or the peer's window stayed closed past the stall timeout (the
// stream is then reset).
net::awaitable<std::error_code> send_data(H2Connection& conn, H2Stream& st, std::string_view payload);
// A stream's body as net::Stream reads and writes it (proxy/http2_session.h H2StreamIo): up to
// `buf` bytes (what does not fit waits in `taken`), the window reopened as they are handed on;
// eof at the stream's end. And body bytes sent with send_data, its error in `ec`.
net::awaitable<size_t> read_body(H2Connection& conn, H2Stream& st, std::string& taken,
                                 asio::mutable_buffer buf, std::error_code& ec);
net::awaitable<void> write_body(H2Connection& conn, H2Stream& st, std::string_view payload,
                                std::error_code& ec);
// After the last body bytes of `st` were handed to the session: waits until they are out, the
// stall timer still running (a peer that keeps its window shut gets the stream reset).
net::awaitable<void> drain_stream(H2Connection& conn, H2Stream& st);

}  // namespace mg::proxy
