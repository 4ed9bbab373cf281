#include "http2/server.h"

#include <nghttp2/nghttp2.h>

#include <charconv>

namespace mg::http2 {

namespace {

Unexpected<http::ParseError> bad(int status, std::string reason) {
  return mg::fail(http::ParseError{status, std::move(reason)});
}

bool valid_path(std::string_view path) {
  for (unsigned char c : path) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return path.find('#') == std::string_view::npos;
}

}  // namespace

Result<http::Request, http::ParseError> request_from_fields(std::vector<http::Header> fields, bool end_stream,
                                                            std::string& scheme) {
  http::Request req;
  req.headers.reserve(fields.size());
  std::optional<std::string_view> authority;
  std::string_view path;
  std::string cookie;
  for (auto& f : fields) {
    if (!f.name.empty() && f.name.front() == ':') {
      if (f.name == ":method") {
        req.method = f.value;
      } else if (f.name == ":path") {
        path = f.value;
      } else if (f.name == ":authority") {
        authority = f.value;
      } else if (f.name == ":scheme") {
        scheme = f.value;
      } else {
        return bad(400, "unknown pseudo-header " + f.name);
      }
    } else if (f.name == "cookie") {
      // RFC 9113 §8.2.3: split cookie fields are one Cookie field to an HTTP/1.1 reader.
      if (!cookie.empty()) cookie += "; ";
      cookie += f.value;
    } else {
      req.headers.add(std::move(f.name), std::move(f.value));  // views above are of pseudo-headers only
    }
  }
  if (!cookie.empty()) req.headers.add("cookie", std::move(cookie));
  if (req.method.empty()) return bad(400, "missing :method");
  if (req.method == "CONNECT") return bad(405, "CONNECT is not supported");
  if (path.empty()) return bad(400, "missing :path");
  if (!valid_path(path)) return bad(400, "invalid character in :path");
  if (path == "*") {
    if (req.method != "OPTIONS") return bad(400, "asterisk-form is only valid for OPTIONS");
  } else if (path.front() != '/') {
    return bad(400, "malformed :path");
  }
  req.target = std::string(path);
  size_t q = path.find('?');
  req.path = std::string(path.substr(0, q));
  if (q != std::string_view::npos) req.query = std::string(path.substr(q + 1));

  size_t hosts = req.headers.count("host");
  if (hosts > 1) return bad(400, "multiple Host fields");
  if (authority) {
    if (!http::valid_host(*authority)) return bad(400, "malformed :authority");
    // RFC 9113 §8.3.1: a Host naming another authority makes the request malformed; taking
    // either would let policy judge one host and the app serve the other.
    if (auto host = req.headers.get("host"); host && !http::iequals(*host, *authority)) {
      return bad(400, ":authority and Host differ");
    }
    req.host = std::string(*authority);
  } else if (hosts == 1) {
    auto host = *req.headers.get("host");
    if (!http::valid_host(host)) return bad(400, "malformed Host field");
    req.host = std::string(host);
  } else {
    return bad(400, "missing :authority");
  }
  // The model is HTTP/1's: the authority travels as Host (as it does when relayed to HTTP/1).
  req.headers.set("host", req.host);

  auto lengths = req.headers.get_all("content-length");
  if (lengths.size() > 1) return bad(400, "multiple Content-Length fields");
  if (lengths.size() == 1) {
    std::string_view v = lengths[0];
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size())
      return bad(400, "malformed Content-Length");
    req.content_length = n;
    req.framing = n > 0 ? http::BodyFraming::ContentLength : http::BodyFraming::None;
    if (end_stream && n > 0) return bad(400, "Content-Length without a body");
  } else {
    // Unknown length: streamed, which is what chunked framing means to an HTTP/1 upstream.
    req.framing = end_stream ? http::BodyFraming::None : http::BodyFraming::Chunked;
  }
  if (auto expect = req.headers.get("expect")) {
    if (!http::iequals(*expect, "100-continue")) return bad(417, "unsupported Expect");
    req.expect_continue = !end_stream;
  }
  req.version_minor = 1;
  req.keep_alive = true;
  return req;
}

Result<std::unique_ptr<ServerSession>> ServerSession::create(const Limits& limits) {
  std::unique_ptr<ServerSession> s(new ServerSession(limits));
  if (!s->start()) return mg::fail("http2.init", s->close_reason());
  return s;
}

void ServerSession::on_begin_stream(int32_t stream_id) {
  streams_[stream_id];
  if (++streams_in_window_ > limits_.reset_window) {
    streams_in_window_ = 1;
    resets_in_window_ = 0;
  }
}

void ServerSession::on_peer_reset(int32_t stream_id, Stream& st) {
  (void)stream_id;
  if (st.answered) return;
  // CVE-2023-44487: streams opened and cancelled at once cost the server (and the upstream the
  // request went to) work the client never waits for.
  if (++resets_in_window_ > limits_.max_resets_per_window) {
    fail("http2: rapid reset (" + std::to_string(resets_in_window_) + " streams reset of " +
             std::to_string(streams_in_window_) + ")",
         NGHTTP2_ENHANCE_YOUR_CALM);
  }
}

void ServerSession::on_block_complete(int32_t stream_id, Stream& st, bool end_stream) {
  if (!st.head_done) {
    st.head_done = true;
    st.yielded = true;
    // Filled where it waits in the queue (an Event moved is a request and a response moved).
    Event& ev = emplace(Event::Kind::Head, stream_id);
    ev.end_stream = end_stream;
    if (!st.refused) {
      auto req = request_from_fields(std::move(st.fields), end_stream, ev.scheme);
      if (req) {
        ev.request = std::move(*req);
      } else {
        st.refused = true;
        st.refusal = req.error();
      }
    }
    st.fields.clear();
    st.fields.shrink_to_fit();
    if (st.refused) {
      ev.kind = Event::Kind::Refused;
      ev.refusal = st.refusal;
      return;
    }
    if (end_stream) emplace(Event::Kind::End, stream_id);  // `ev` is not used past this point
    return;
  }
  if (st.refused) {
    // Trailers over the limits after the request was handed on: nothing to answer, end it.
    reset(stream_id, NGHTTP2_ENHANCE_YOUR_CALM);
    return;
  }
  push_end(stream_id, st);
}

Status ServerSession::respond(int32_t stream, const http::Response& resp, bool end_stream) {
  if (resp.status < 200 || resp.status > 999) {
    return mg::fail("http2.status",
                    "status " + std::to_string(resp.status) + " cannot be relayed over HTTP/2");
  }
  Stream* st = this->stream(stream);
  if (st == nullptr)
    return mg::fail("http2.stream_closed", "stream " + std::to_string(stream) + " is closed");
  if (st->providing || st->out_end) return mg::fail("http2.answered", "the stream already has a response");
  char status[4];  // 200..999: three digits
  status[0] = static_cast<char>('0' + resp.status / 100);
  status[1] = static_cast<char>('0' + resp.status / 10 % 10);
  status[2] = static_cast<char>('0' + resp.status % 10);
  Fields& fields = head_fields(resp.headers.size() + 1);
  fields.add(":status", std::string_view(status, 3));
  wire_fields(resp.headers, false, false, fields);
  auto id = submit_head(stream, fields, end_stream);
  if (!id) return mg::fail(id.error());
  return {};
}

Status ServerSession::local_response(int32_t stream, int status, std::string_view body) {
  http::Response resp;
  resp.status = status;
  resp.headers.add("content-type", "text/plain");
  resp.headers.add("content-length", std::to_string(body.size()));
  if (body.empty()) return respond(stream, resp, true);
  if (auto st = respond(stream, resp, false); !st) return st;
  if (auto st = append_body(stream, body); !st) return st;
  return end_body(stream);
}

Status ServerSession::send_continue(int32_t stream) {
  Stream* st = this->stream(stream);
  if (st == nullptr)
    return mg::fail("http2.stream_closed", "stream " + std::to_string(stream) + " is closed");
  nghttp2_nv nv{reinterpret_cast<uint8_t*>(const_cast<char*>(":status")),
                reinterpret_cast<uint8_t*>(const_cast<char*>("100")), 7, 3, NGHTTP2_NV_FLAG_NONE};
  int rv = nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, stream, nullptr, &nv, 1, nullptr);
  if (rv < 0) return mg::fail("http2.submit", nghttp2_strerror(rv));
  return {};
}

}  // namespace mg::http2
