#include "http2/session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>

namespace mg::http2 {

namespace {

struct OptionDeleter {
  void operator()(nghttp2_option* o) const { nghttp2_option_del(o); }
};
struct CallbacksDeleter {
  void operator()(nghttp2_session_callbacks* c) const { nghttp2_session_callbacks_del(c); }
};

std::string_view view(nghttp2_rcbuf* buf) {
  nghttp2_vec v = nghttp2_rcbuf_get_buf(buf);
  return {reinterpret_cast<const char*>(v.base), v.len};
}

// Fields HPACK must never put in its dynamic table: a compression oracle (CRIME/HPACK-style)
// could otherwise recover them from the size of later frames.
bool sensitive(std::string_view name) {
  return name == "authorization" || name == "proxy-authorization" || name == "cookie" || name == "set-cookie";
}

// The nghttp2_nv list of `fields`, valid until the next call on this thread: nghttp2 copies the
// list when a frame is submitted, so one list per thread serves every header block (its storage kept).
// Without `block` (trailers), it points into `fields`, and nghttp2 copies the names and values too.
// With `block` (heads), they are first copied into *block, made here to hold them all, for nghttp2
// to take as they are (NO_COPY_NAME / NO_COPY_VALUE): left to itself it copies every name and
// value and lower-cases every name again, ≈ 1,000 instructions a head; the names are lower-case
// already (wire_fields; pseudo-header names are literals). nghttp2 reads the block when it packs
// the frame: the stream keeps it until then (Stream::head_block).
template <class List>
std::vector<nghttp2_nv>& to_nv(const List& fields, std::unique_ptr<char[]>* block = nullptr) {
  uint8_t* at = nullptr;  // where the next name goes in *block
  uint8_t copy_flags = NGHTTP2_NV_FLAG_NONE;
  if (block != nullptr) {
    size_t size = 0;
    for (const auto& f : fields) size += f.name.size() + f.value.size();
    *block = std::make_unique_for_overwrite<char[]>(std::max<size_t>(size, 1));
    at = reinterpret_cast<uint8_t*>(block->get());
    copy_flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
  }
  thread_local std::vector<nghttp2_nv> nv;
  nv.clear();
  nv.reserve(fields.size());
  for (const auto& f : fields) {
    auto* name = reinterpret_cast<uint8_t*>(const_cast<char*>(f.name.data()));
    auto* value = reinterpret_cast<uint8_t*>(const_cast<char*>(f.value.data()));
    if (at != nullptr) {
      name = at;
      if (!f.name.empty()) std::memcpy(name, f.name.data(), f.name.size());
      value = name + f.name.size();
      if (!f.value.empty()) std::memcpy(value, f.value.data(), f.value.size());
      at = value + f.value.size();
    }
    const uint8_t flags = sensitive(f.name) ? copy_flags | NGHTTP2_NV_FLAG_NO_INDEX : copy_flags;
    nv.push_back({name, value, f.name.size(), f.value.size(), flags});
  }
  return nv;
}

}  // namespace

// The nghttp2 callbacks, each forwarding to the Session in user_data.
struct Callbacks {
  static Session& self(void* user_data) { return *static_cast<Session*>(user_data); }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Session& s = self(user_data);
    int32_t id = frame->hd.stream_id;
    if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) s.on_begin_stream(id);
    Session::Stream* st = s.stream(id);
    if (st != nullptr) {
      // A new block (trailers, or a final response after a 1xx) is counted on its own.
      st->fields.clear();
      st->fields.reserve(16);  // a typical block without growing
      st->header_bytes = 0;
      st->header_count = 0;
    }
    // Every field of the block is for this stream: looked up once, not once per field.
    s.block_stream_id_ = id;
    s.block_stream_ = st;
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, nghttp2_rcbuf* name,
                       nghttp2_rcbuf* value, uint8_t, void* user_data) {
    Session& s = self(user_data);
    Session::Stream* st =
        s.block_stream_id_ == frame->hd.stream_id ? s.block_stream_ : s.stream(frame->hd.stream_id);
    if (st == nullptr || st->refused) return 0;  // the rest of the block is decoded, not kept
    s.add_field(*st, view(name), view(value));
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    Session& s = self(user_data);
    int32_t id = frame->hd.stream_id;
    bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
        if (Session::Stream* st = s.stream(id)) {
          if (end_stream) st->remote_ended = true;
          s.on_block_complete(id, *st, end_stream);
        }
        break;
      case NGHTTP2_DATA:
        if (Session::Stream* st = s.stream(id); st != nullptr && end_stream) {
          st->remote_ended = true;
          if (st->yielded && !st->refused) s.push_end(id, *st);
        }
        break;
      case NGHTTP2_RST_STREAM:
        if (Session::Stream* st = s.stream(id)) s.on_peer_reset(id, *st);
        break;
      case NGHTTP2_GOAWAY:
        s.peer_goaway_ = true;
        break;
      default:
        break;
    }
    return 0;
  }

  static int on_data_chunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data, size_t len,
                           void* user_data) {
    Session& s = self(user_data);
    Session::Stream* st = s.stream(id);
    if (st == nullptr || !st->yielded || st->refused) {
      // Nobody will forward these bytes: give the window back at once.
      nghttp2_session_consume(session, id, len);
      return 0;
    }
    // Our own bound on what a stream and the connection may hold unconsumed: nghttp2 resets a
    // stream that overruns its window but still hands over the offending frame. Before our
    // SETTINGS reach it a peer may use the protocol's default window (65535).
    size_t stream_cap = std::max<size_t>(s.limits_.stream_window, NGHTTP2_INITIAL_WINDOW_SIZE);
    size_t conn_cap = std::max<size_t>(s.limits_.connection_window, NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE);
    if (st->unconsumed + len > stream_cap || s.unconsumed_ + len > conn_cap) {
      nghttp2_session_consume(session, id, len);
      if (s.unconsumed_ + len > conn_cap) {
        s.fail("http2: flow-control window overrun", NGHTTP2_FLOW_CONTROL_ERROR);
      } else {
        s.reset(id, NGHTTP2_FLOW_CONTROL_ERROR);
      }
      return 0;
    }
    st->unconsumed += len;
    s.unconsumed_ += len;
    s.emplace(Event::Kind::Data, id).data.assign(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  // The frame of a head submitted with its block (submit_head) was packed, or will never be:
  // nghttp2 reads the block no more. Told apart from the stream's other HEADERS (a 100 Continue,
  // trailers) by where its first name lies.
  static void release_head_block(Session& s, const nghttp2_frame* frame) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.nvlen == 0) return;
    Session::Stream* st = s.stream(frame->hd.stream_id);
    if (st != nullptr && st->head_block &&
        frame->headers.nva[0].name == reinterpret_cast<const uint8_t*>(st->head_block.get())) {
      st->head_block.reset();
    }
  }

  static int on_frame_not_send(nghttp2_session*, const nghttp2_frame* frame, int, void* user_data) {
    release_head_block(self(user_data), frame);
    return 0;
  }

  static int on_frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    Session& s = self(user_data);
    release_head_block(s, frame);
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR && !s.failed_) {
      // nghttp2 found a connection error itself (SETTINGS, HPACK, flow control…): its GOAWAY
      // says which, in its debug data.
      s.failed_ = true;
      std::string why(reinterpret_cast<const char*>(frame->goaway.opaque_data),
                      frame->goaway.opaque_data_len);
      if (why.empty()) why = s.last_error_;
      if (why.empty()) why = nghttp2_http2_strerror(frame->goaway.error_code);
      s.close_reason_ = "http2: " + why;
    }
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
      if (Session::Stream* st = s.stream(frame->hd.stream_id)) {
        st->answered = true;
        // RFC 9113 §8.1: a server whose response is complete may stop the rest of the request.
        if (s.role_ == Session::Role::Server && !st->remote_ended) {
          nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
        }
      }
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session* session, int32_t id, uint32_t error_code, void* user_data) {
    Session& s = self(user_data);
    if (s.block_stream_id_ == id) {
      s.block_stream_id_ = 0;
      s.block_stream_ = nullptr;
    }
    auto it = s.streams_.find(id);
    if (it == s.streams_.end()) return 0;
    // Bytes handed out and never consumed still count against the connection window.
    if (it->second.unconsumed > 0) {
      nghttp2_session_consume_connection(session, it->second.unconsumed);
      s.unconsumed_ -= it->second.unconsumed;
    }
    if (it->second.yielded) {
      // A stream we reset may still close as "no error" when both sides had ended it.
      s.emplace(Event::Kind::Closed, id).error_code =
          error_code != NGHTTP2_NO_ERROR ? error_code : it->second.reset_code;
    }
    s.streams_.erase(it);
    return 0;
  }

  static ssize_t read_body(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                           nghttp2_data_source*, void* user_data) {
    Session& s = self(user_data);
    Session::Stream* st = s.stream(id);
    if (st == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    size_t n = std::min(length, st->out.size());
    if (n > 0) {
      std::memcpy(buf, st->out.data(), n);
      st->out.erase(0, n);
    }
    if (st->out.empty() && st->out_end) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!st->out_trailers.empty()) {
        Session::Fields fields(st->out_trailers.size());
        Session::wire_fields(st->out_trailers, false, false, fields);
        auto& nv = to_nv(fields.list);
        if (nghttp2_submit_trailer(session, id, nv.data(), nv.size()) == 0)
          *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      }
      return static_cast<ssize_t>(n);
    }
    if (n == 0) {
      st->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }

  static int on_error(nghttp2_session*, int, const char* msg, size_t len, void* user_data) {
    self(user_data).last_error_.assign(msg, len);
    return 0;
  }
};

Session::Session(Role role, const Limits& limits) : limits_(limits), role_(role) {}

Session::~Session() {
  if (session_ != nullptr) nghttp2_session_del(session_);
}

bool Session::start() {
  nghttp2_session_callbacks* raw_cb = nullptr;
  nghttp2_option* raw_opt = nullptr;
  if (nghttp2_session_callbacks_new(&raw_cb) != 0 || nghttp2_option_new(&raw_opt) != 0) {
    if (raw_cb != nullptr) nghttp2_session_callbacks_del(raw_cb);
    close_reason_ = "out of memory";
    return false;
  }
  std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter> cb(raw_cb);
  std::unique_ptr<nghttp2_option, OptionDeleter> opt(raw_opt);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb.get(), &Callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback2(cb.get(), &Callbacks::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb.get(), &Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb.get(), &Callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb.get(), &Callbacks::on_frame_send);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cb.get(), &Callbacks::on_frame_not_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb.get(), &Callbacks::on_stream_close);
  nghttp2_session_callbacks_set_error_callback2(cb.get(), &Callbacks::on_error);

  // Flow control is the caller's pace: a window reopens only as it consumes (memory bound).
  nghttp2_option_set_no_auto_window_update(opt.get(), 1);
  nghttp2_option_set_no_closed_streams(opt.get(), 1);
  nghttp2_option_set_max_settings(opt.get(), limits_.max_settings_entries);
  nghttp2_option_set_max_outbound_ack(opt.get(), limits_.max_outbound_ack);
  nghttp2_option_set_max_continuations(opt.get(), limits_.max_continuations);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt.get(), limits_.deflate_table_size);
  if (role_ == Role::Server) {
    nghttp2_option_set_stream_reset_rate_limit(opt.get(), limits_.reset_burst, limits_.reset_rate);
  }

  int rv = role_ == Role::Server ? nghttp2_session_server_new2(&session_, cb.get(), this, opt.get())
                                 : nghttp2_session_client_new2(&session_, cb.get(), this, opt.get());
  if (rv != 0) {
    close_reason_ = nghttp2_strerror(rv);
    return false;
  }
  std::vector<nghttp2_settings_entry> settings = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits_.stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits_.max_header_list_size},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, limits_.header_table_size},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  // No server push toward us: nothing in the mesh wants it and pushed streams cost memory.
  if (role_ == Role::Client) settings.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
  rv = nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  if (rv == 0) {
    rv = nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                               static_cast<int32_t>(limits_.connection_window));
  }
  if (rv != 0) {
    close_reason_ = nghttp2_strerror(rv);
    return false;
  }
  return true;
}

Status Session::receive(std::string_view in) {
  if (failed_) return fail_status();
  ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(in.data()), in.size());
  if (rv < 0) {
    bool abuse = rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS;
    fail(std::string("http2: ") + nghttp2_strerror(static_cast<int>(rv)),
         abuse ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
  }
  if (failed_) return fail_status();
  return {};
}

Status Session::fail_status() const { return mg::fail("http2.connection", close_reason_); }

size_t Session::take_output(std::string& out) {
  size_t total = 0;
  while (true) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      if (!failed_) {
        failed_ = true;
        close_reason_ = std::string("http2: ") + nghttp2_strerror(static_cast<int>(n));
      }
      break;
    }
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    total += static_cast<size_t>(n);
  }
  return total;
}

std::optional<Event> Session::next_event() {
  if (events_head_ == events_.size()) return std::nullopt;
  return std::move(events_[events_head_++]);
}

bool Session::take_events(std::vector<Event>& batch) {
  batch.clear();
  if (events_head_ == events_.size()) return false;
  // Those next_event() already moved out are left behind (only when a caller mixes the two).
  if (events_head_ > 0) events_.erase(events_.begin(), events_.begin() + static_cast<std::ptrdiff_t>(events_head_));
  batch.swap(events_);
  events_head_ = 0;
  return true;
}

Event& Session::emplace(Event::Kind kind, int32_t stream) {
  if (events_head_ == events_.size() && events_head_ > 0) {
    events_.clear();
    events_head_ = 0;
  }
  Event& ev = events_.emplace_back();
  ev.kind = kind;
  ev.stream = stream;
  return ev;
}

Session::Stream* Session::stream(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

size_t Session::pending(int32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? 0 : it->second.out.size();
}

bool Session::send_blocked(int32_t id) const {
  if (pending(id) == 0) return false;
  return nghttp2_session_get_stream_remote_window_size(session_, id) <= 0 ||
         nghttp2_session_get_remote_window_size(session_) <= 0;
}

bool Session::fits_window(int32_t id) const {
  const size_t waiting = pending(id);
  if (waiting == 0) return true;
  const int32_t stream_window = nghttp2_session_get_stream_remote_window_size(session_, id);
  const int32_t connection_window = nghttp2_session_get_remote_window_size(session_);
  return stream_window > 0 && connection_window > 0 && waiting <= static_cast<size_t>(stream_window) &&
         waiting <= static_cast<size_t>(connection_window);
}

Status Session::append_body(int32_t id, std::string_view payload) {
  Stream* st = stream(id);
  if (st == nullptr) return mg::fail("http2.stream_closed", "stream " + std::to_string(id) + " is closed");
  if (!st->providing || st->out_end) return mg::fail("http2.body_ended", "no body may follow on this stream");
  st->out.append(payload);
  if (st->deferred && !payload.empty()) {
    st->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
  return {};
}

Status Session::end_body(int32_t id, const http::Headers& trailers) {
  Stream* st = stream(id);
  if (st == nullptr) return mg::fail("http2.stream_closed", "stream " + std::to_string(id) + " is closed");
  if (!st->providing || st->out_end) return mg::fail("http2.body_ended", "the body on this stream has ended");
  st->out_end = true;
  st->out_trailers = trailers;
  if (st->deferred) {
    st->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
  return {};
}

void Session::consume(int32_t id, size_t n) {
  Stream* st = stream(id);
  if (st == nullptr) return;  // released when the stream closed
  n = std::min(n, st->unconsumed);
  st->unconsumed -= n;
  unconsumed_ -= n;
  nghttp2_session_consume(session_, id, n);
}

void Session::reset(int32_t id, uint32_t error_code) {
  Stream* st = stream(id);
  if (st == nullptr) return;
  if (st->reset_code == 0) st->reset_code = error_code;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, error_code);
}

void Session::shutdown() {
  if (shutdown_ || failed_) return;
  shutdown_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
}

bool Session::want_write() const { return session_ != nullptr && nghttp2_session_want_write(session_); }

bool Session::alive() const {
  return session_ != nullptr && (nghttp2_session_want_read(session_) || nghttp2_session_want_write(session_));
}

void Session::fail(std::string reason, uint32_t goaway_code) {
  if (failed_) return;
  failed_ = true;
  close_reason_ = std::move(reason);
  nghttp2_session_terminate_session(session_, goaway_code);
}

void Session::push_end(int32_t stream_id, Stream& st) {
  Event& end = emplace(Event::Kind::End, stream_id);
  for (auto& f : st.fields) end.trailers.add(std::move(f.name), std::move(f.value));
  st.fields.clear();
}

bool Session::add_field(Stream& st, std::string_view name, std::string_view value) {
  st.header_bytes += name.size() + value.size() + 32;
  ++st.header_count;
  if (st.header_bytes > limits_.max_header_list_size || st.header_count > limits_.max_headers) {
    st.refused = true;
    st.refusal = {431,
                  st.header_count > limits_.max_headers ? "too many header fields" : "header list too large"};
    st.fields.clear();
    st.fields.shrink_to_fit();
    return false;
  }
  st.fields.push_back({std::string(name), std::string(value)});
  return true;
}

void Session::wire_fields(const http::Headers& headers, bool keep_te_trailers, bool skip_host, Fields& out) {
  const bool te_trailers = keep_te_trailers && http::wants_trailers(headers);
  const http::HopByHop hop_by_hop(headers);
  for (const auto& h : headers) {
    // Pseudo-header names cannot be smuggled in as regular fields.
    if (h.name.empty() || h.name.front() == ':' || hop_by_hop(h.name)) continue;
    if (skip_host && http::iequals(h.name, "host")) continue;
    const bool lower = std::none_of(h.name.begin(), h.name.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
    out.add(lower ? std::string_view(h.name) : out.keep(http::to_lower(h.name)), h.value);
  }
  if (te_trailers) out.add("te", "trailers");
}

Result<int32_t> Session::submit_head(int32_t stream_id, const Fields& fields, bool end_stream) {
  if (failed_) return mg::fail("http2.connection", close_reason_);
  std::unique_ptr<char[]> block;
  auto& nv = to_nv(fields.list, &block);
  nghttp2_data_provider provider{};
  provider.read_callback = &Callbacks::read_body;
  const nghttp2_data_provider* prd = end_stream ? nullptr : &provider;
  int32_t id = stream_id;
  if (role_ == Role::Server) {
    Stream* st = stream(stream_id);
    if (st == nullptr)
      return mg::fail("http2.stream_closed", "stream " + std::to_string(stream_id) + " is closed");
    int rv = nghttp2_submit_response(session_, stream_id, nv.data(), nv.size(), prd);
    if (rv != 0) return mg::fail("http2.submit", nghttp2_strerror(rv));
  } else {
    id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), prd, nullptr);
    if (id < 0) return mg::fail("http2.submit", nghttp2_strerror(id));
    Stream& st = streams_[id];
    st.yielded = true;  // the caller holds this stream from now on: it always hears how it ends
  }
  Stream& st = streams_[id];
  st.providing = !end_stream;
  st.out_end = end_stream;
  st.head_block = std::move(block);  // a heap block: the views nghttp2 holds stay where they are
  return id;
}

}  // namespace mg::http2
