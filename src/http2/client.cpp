#include "http2/client.h"

#include <nghttp2/nghttp2.h>

#include <charconv>

namespace mg::http2 {

Result<std::unique_ptr<ClientSession>> ClientSession::create(const Limits& limits) {
  std::unique_ptr<ClientSession> s(new ClientSession(limits));
  if (!s->start()) return mg::fail("http2.init", s->close_reason());
  return s;
}

Result<int32_t> ClientSession::submit(const http::Request& req, std::string_view scheme, bool end_stream) {
  std::string_view authority = req.host;
  if (authority.empty()) {
    if (auto host = req.headers.get("host")) authority = *host;
  }
  if (authority.empty()) return mg::fail("http2.request", "the request has no host");
  std::string built;
  std::string_view path = req.target;
  if (path.empty()) {
    built = req.query.empty() ? req.path : req.path + "?" + req.query;
    path = built;
  }
  if (path.empty()) return mg::fail("http2.request", "the request has no path");
  Fields& fields = head_fields(req.headers.size() + 5);
  fields.add(":method", req.method);
  fields.add(":scheme", scheme);
  fields.add(":authority", authority);
  fields.add(":path", path);
  wire_fields(req.headers, true, true, fields);  // RFC 9113 §8.3.1: :authority stands for Host
  return submit_head(0, fields, end_stream);
}

void ClientSession::on_block_complete(int32_t stream_id, Stream& st, bool end_stream) {
  if (st.refused) {
    // A response head or trailers over our limits: nothing of it is relayed.
    reset(stream_id, NGHTTP2_ENHANCE_YOUR_CALM);
    return;
  }
  if (!st.head_done) {
    http::Response resp;
    resp.status = 0;
    // Room for the two fields a proxy adds to a response it relays (its peer metadata): no regrowth.
    resp.headers.reserve(st.fields.size() + 2);
    for (auto& f : st.fields) {
      if (f.name == ":status") {
        int status = 0;
        auto [end, ec] = std::from_chars(f.value.data(), f.value.data() + f.value.size(), status);
        if (ec == std::errc() && end == f.value.data() + f.value.size()) resp.status = status;
      } else if (!f.name.empty() && f.name.front() != ':') {
        resp.headers.add(std::move(f.name), std::move(f.value));
      }
    }
    st.fields.clear();
    if (resp.status >= 100 && resp.status < 200) return;  // informational: the final head follows
    if (resp.status < 200 || resp.status > 999) {
      reset(stream_id, NGHTTP2_PROTOCOL_ERROR);
      return;
    }
    st.head_done = true;
    resp.reason = std::string(http::reason_phrase(resp.status));
    if (auto cl = resp.headers.get("content-length")) {
      uint64_t n = 0;
      auto [end, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), n);
      if (ec == std::errc() && end == cl->data() + cl->size()) {
        resp.content_length = n;
        resp.framing = n > 0 ? http::BodyFraming::ContentLength : http::BodyFraming::None;
      }
    } else {
      resp.framing = end_stream ? http::BodyFraming::None : http::BodyFraming::Chunked;
    }
    Event& ev = emplace(Event::Kind::Head, stream_id);  // filled where it waits in the queue
    ev.end_stream = end_stream;
    ev.response = std::move(resp);
    if (end_stream) emplace(Event::Kind::End, stream_id);  // `ev` is not used past this point
    return;
  }
  push_end(stream_id, st);
}

}  // namespace mg::http2
