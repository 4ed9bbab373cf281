// http2/session.h — what the HTTP/2 server and client sessions (server.h, client.h) share: one
// libnghttp2 session fed the connection's bytes, its limits (the abuse protections the codec
// can enforce), the events it yields, outbound bodies buffered per stream until the peer's
// flow-control window lets them out, and the bytes to write. No I/O: the caller owns the socket,
// feeds receive() and writes take_output(); timeouts (idle, zero-window stalls) are its too.
// Memory is bounded by the flow-control windows: inbound DATA is acknowledged (WINDOW_UPDATE)
// only when the caller says it forwarded it (consume), never by the library on its own.
// Owns: the nghttp2 session object, the per-stream records, the event queue.
#pragma once

#include <cstdint>
#include <forward_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "http/message.h"
#include "http/parser.h"

struct nghttp2_session;
struct nghttp2_option;

namespace mg::http2 {

struct Limits {
  // SETTINGS_MAX_CONCURRENT_STREAMS we advertise; a server refuses streams beyond it.
  uint32_t max_concurrent_streams = 100;
  // Per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE) and the connection's: what a peer
  // may have in flight toward us, hence what we may hold unconsumed.
  uint32_t stream_window = 64 * 1024;
  uint32_t connection_window = 1024 * 1024;
  // Header list (name + value + 32 per field, RFC 9113 §6.5.2) and field count per block, as the
  // HTTP/1 head limits (http::Limits): over them a request is refused 431 without being kept.
  uint32_t max_header_list_size = 60 * 1024;
  size_t max_headers = 100;
  // HPACK dynamic tables: ours for decoding (SETTINGS_HEADER_TABLE_SIZE; an encoder update beyond
  // it is a COMPRESSION_ERROR) and our encoder's, whatever the peer allows.
  uint32_t header_table_size = 4096;
  size_t deflate_table_size = 4096;
  // CONTINUATION frames after one HEADERS (CVE-2024-27316): enough for a header list of
  // max_header_list_size in 16 KiB frames, and no more.
  size_t max_continuations = 4;
  // SETTINGS entries per frame, and SETTINGS/PING ACKs queued unsent (a peer that floods them
  // without reading): beyond either the connection is closed.
  size_t max_settings_entries = 16;
  size_t max_outbound_ack = 100;
  // Rapid reset (CVE-2023-44487), two bounds. Clock-free: of each window of `reset_window`
  // streams the peer opens, at most `max_resets_per_window` may be reset by the peer before we
  // finished answering them; one more and the connection ends with GOAWAY(ENHANCE_YOUR_CALM).
  // And nghttp2's token bucket on RST_STREAM frames (burst, then `reset_rate` per second).
  uint32_t reset_window = 100;
  uint32_t max_resets_per_window = 50;
  uint64_t reset_burst = 200;
  uint64_t reset_rate = 33;
};

// What the session yields, in order per stream: Head (or Refused), Data*, End, then Closed.
// A complete request (or response) is Head, Data*, End. Its body is buffered by nobody beyond
// the flow-control windows: unconsumed, at most max(stream_window, 65535) bytes of a stream and
// max(connection_window, 65535) of the connection are handed out, and a peer that sends more is
// reset (stream) or cut off (connection). A client stream Closed with REFUSED_STREAM and no Head
// was never processed by the server (RFC 9113 §8.7): safe to retry.
struct Event {
  enum class Kind {
    Head,     // server: `request` (+ `scheme`); client: `response`. `end_stream`: no body follows
    Refused,  // server only: a request not accepted (`refusal`: 400/405/431); answer it with
              // ServerSession::local_response. No Data/End follow.
    Data,     // `data`: body bytes; hand them back with consume() once forwarded
    End,      // the peer finished its side; `trailers` (possibly empty)
    Closed,   // the stream is gone; `error_code` 0 when it ended normally, else the reset's code
  };
  Kind kind = Kind::Head;
  int32_t stream = 0;
  bool end_stream = false;
  http::Request request;
  std::string scheme;
  http::Response response;
  http::ParseError refusal;
  std::string data;
  http::Headers trailers;
  uint32_t error_code = 0;
};

class Session {
 public:
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  virtual ~Session();

  // Feeds bytes read from the connection. An error is fatal: the connection is to be closed
  // once take_output() (a GOAWAY, when one can be sent) is written. A connection error that
  // nghttp2 finds itself (bad SETTINGS, HPACK, flow control) ends the session through the
  // GOAWAY it queues: once take_output() has it, alive() is false and close_reason() says why.
  Status receive(std::string_view in);
  // Appends the bytes to write now (frames allowed by flow control); returns how many.
  size_t take_output(std::string& out);
  std::optional<Event> next_event();
  // Every event waiting, in order, handed over as a whole: `batch` (emptied first; its capacity
  // becomes the queue's) and the queue are swapped, so no event is moved; false when none waits.
  // Events that arrive while the caller handles the batch wait for the next call.
  bool take_events(std::vector<Event>& batch);

  // Body bytes to send on `stream` (a response's or a request's), buffered until the peer's
  // window lets them out; pending(stream) says how many wait, for the caller's backpressure.
  Status append_body(int32_t stream, std::string_view payload);
  // Ends what we send on `stream`, with trailers when `trailers` is not empty.
  Status end_body(int32_t stream, const http::Headers& trailers = {});
  size_t pending(int32_t stream) const;
  // Bytes wait on `stream` but the peer's window (the stream's or the connection's) is closed:
  // the caller times such a stall out (a zero-window stall is the peer's to end, not ours to
  // buffer around).
  bool send_blocked(int32_t stream) const;
  // Every byte waiting on `stream` fits the peer's windows (the stream's and the connection's)
  // as they are now: the next take_output() takes them all, unless the peer shrinks its windows
  // first (SETTINGS_INITIAL_WINDOW_SIZE).
  bool fits_window(int32_t stream) const;
  // The caller forwarded `n` bytes of a Data event on `stream`: the peer may send that much more.
  void consume(int32_t stream, size_t n);
  // Aborts a stream (RST_STREAM); a Closed event follows.
  void reset(int32_t stream, uint32_t error_code);
  // Graceful close: GOAWAY(NO_ERROR) after the streams already begun; they run to the end.
  void shutdown();

  // Whether the connection still has anything to read or write; false: close it.
  bool alive() const;
  // Frames wait to be sent (take_output() would return some now).
  bool want_write() const;
  // Why the session ended itself (flood, rapid reset, protocol error); empty otherwise.
  const std::string& close_reason() const { return close_reason_; }
  size_t open_streams() const { return streams_.size(); }
  // A GOAWAY went either way (or the session failed): no new stream may start on it.
  bool going_away() const { return shutdown_ || peer_goaway_ || failed_; }

 protected:
  struct Stream {
    bool yielded = false;       // a Head or Refused event went out
    bool refused = false;       // server: refused while its headers arrived (431/400)
    bool head_done = false;     // the first header block is complete
    bool answered = false;      // we sent END_STREAM
    bool remote_ended = false;  // the peer sent END_STREAM
    size_t header_bytes = 0;
    size_t header_count = 0;
    http::ParseError refusal;
    std::vector<http::Header> fields;  // the block being received, pseudo-headers included
    std::string out;                   // body bytes waiting for the window
    bool out_end = false;              // end_body was called
    bool providing = false;            // a data provider is attached (DATA may flow)
    bool deferred = false;             // the provider said "nothing yet"
    http::Headers out_trailers;
    // The names and values of the head submitted on it (submit_head), which nghttp2 reads when it
    // packs the frame: kept until that frame is out or dropped (on_frame_send / on_frame_not_send),
    // else until the stream closes, after which nghttp2 packs nothing of it.
    std::unique_ptr<char[]> head_block;
    size_t unconsumed = 0;    // DATA bytes handed out and not yet consume()d
    uint32_t reset_code = 0;  // the code we reset it with, if we did
  };

  enum class Role { Server, Client };
  Session(Role role, const Limits& limits);
  // Creates the nghttp2 session and queues our SETTINGS; false (with close_reason) on failure.
  bool start();

  // Role hooks, called from the nghttp2 callbacks.
  virtual void on_begin_stream(int32_t stream_id) = 0;
  virtual void on_block_complete(int32_t stream_id, Stream& st, bool end_stream) = 0;
  virtual void on_peer_reset(int32_t stream_id, Stream& st) { (void)stream_id, (void)st; }

  // Adds a header field to the block being received, under the list-size and count limits;
  // false once over them (the stream is then refused, fields no longer kept).
  bool add_field(Stream& st, std::string_view name, std::string_view value);
  // Header fields to send, as views (nghttp2 copies them when the frame is submitted) of the
  // message's own strings, or of the few strings made here (a name to lower-case, :status).
  class Fields {
   public:
    struct Field {
      std::string_view name, value;
    };
    Fields() = default;
    explicit Fields(size_t n) { list.reserve(n); }
    void add(std::string_view name, std::string_view value) { list.push_back({name, value}); }
    // Empty again, room for `n` fields; what the list held before is kept allocated.
    void reset(size_t n) {
      list.clear();
      list.reserve(n);
      owned_.clear();
    }
    // `s` kept here for as long as the fields are; its view.
    std::string_view keep(std::string s) { return owned_.emplace_front(std::move(s)); }
    std::vector<Field> list;

   private:
    std::forward_list<std::string> owned_;  // never moves what it holds; allocates only when used
  };
  // The fields of `headers` to send: names lower-cased, hop-by-hop fields (RFC 9113 §8.2.2) left
  // out (with "te: trailers" kept when `keep_te_trailers`, as gRPC needs), Host too when `skip_host`
  // (a request's :authority stands for it). `headers` must outlive `out`.
  static void wire_fields(const http::Headers& headers, bool keep_te_trailers, bool skip_host, Fields& out);
  // Submits a head: a response (server) on `stream_id`, or a request (client, stream_id 0;
  // returns the new stream's id). Without `end_stream` the body follows via append_body/end_body.
  Result<int32_t> submit_head(int32_t stream_id, const Fields& fields, bool end_stream);
  // The fields of the next head to submit, emptied, with room for `n`: one list per session whose
  // storage every head reuses (respond / submit fill it, submit_head sends it, nothing between).
  Fields& head_fields(size_t n) {
    head_fields_.reset(n);
    return head_fields_;
  }
  Stream* stream(int32_t id);
  void fail(std::string reason, uint32_t goaway_code);
  Status fail_status() const;
  // A new event at the end of the queue, filled in place (a Head, then End when the head ended
  // the stream). The reference is good until the next emplace.
  Event& emplace(Event::Kind kind, int32_t stream);
  // End for `stream`, the block just received (if any) as its trailers.
  void push_end(int32_t stream_id, Stream& st);

  nghttp2_session* session_ = nullptr;
  Limits limits_;
  Role role_;
  std::unordered_map<int32_t, Stream> streams_;
  // The stream whose header block is being received (on_begin_headers; null when it has no record),
  // so each field need not look it up; forgotten when that stream closes.
  int32_t block_stream_id_ = 0;
  Stream* block_stream_ = nullptr;
  Fields head_fields_;  // see head_fields()
  // The queue: events_[events_head_..] wait. A vector emptied whenever it is drained, so its
  // records are reused (a deque of records this large allocates one per event).
  std::vector<Event> events_;
  size_t events_head_ = 0;
  size_t unconsumed_ = 0;  // over all streams
  std::string close_reason_;
  std::string last_error_;  // nghttp2's own words for the last connection error it found
  bool failed_ = false;
  bool shutdown_ = false;     // we sent a graceful GOAWAY
  bool peer_goaway_ = false;  // the peer sent a GOAWAY

  friend struct Callbacks;
};

}  // namespace mg::http2
