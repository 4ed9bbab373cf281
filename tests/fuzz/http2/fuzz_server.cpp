// Fuzzes the HTTP/2 server session (the inbound side of an h2c/h2 connection): the input, after
// a first byte choosing the read size, is fed as a client's byte stream; every request is
// answered (a body and trailers, or a local response when refused), every body consumed, and
// the output taken after each read, as the proxy's connection loop will. Invariants: no crash or
// leak; per stream the events come in order (Head or Refused first, Data only after a Head and
// before End, nothing after Closed); a request's path is never empty and starts with '/' or is
// "*"; a refusal carries a 4xx status; the queue of unconsumed bytes stays within the windows.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http2/server.h"

using namespace mg::http2;

namespace {

struct StreamState {
  bool head = false;
  bool refused = false;
  bool ended = false;
  bool closed = false;
  size_t held = 0;  // body bytes handed out and not consumed yet
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t step = size_t{data[0]} + 1;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  Limits limits;
  limits.max_concurrent_streams = 16;
  limits.stream_window = 4096;
  limits.connection_window = 16384;
  auto created = ServerSession::create(limits);
  if (!created) std::abort();
  ServerSession& server = **created;
  std::map<int32_t, StreamState> streams;
  std::string out;
  // Bodies are consumed every other read only, so windows fill and the bound is exercised.
  std::vector<std::pair<int32_t, size_t>> unconsumed;
  size_t held = 0;
  size_t reads = 0;
  for (size_t at = 0; at < input.size() && server.alive(); at += step, ++reads) {
    if (!server.receive(input.substr(at, step))) {
      out.clear();
      server.take_output(out);
      break;
    }
    while (auto ev = server.next_event()) {
      StreamState& st = streams[ev->stream];
      if (st.closed || ev->stream <= 0) std::abort();
      switch (ev->kind) {
        case Event::Kind::Head: {
          if (st.head || st.refused) std::abort();
          st.head = true;
          const auto& path = ev->request.path;
          if (path.empty() || (path.front() != '/' && path != "*")) std::abort();
          mg::http::Response resp;
          resp.headers.add("content-type", "text/plain");
          if (server.respond(ev->stream, resp, false)) {
            (void)server.append_body(ev->stream, ev->request.target);
            mg::http::Headers trailers;
            trailers.add("grpc-status", "0");
            (void)server.end_body(ev->stream, trailers);
          }
          break;
        }
        case Event::Kind::Refused:
          if (st.head || st.refused) std::abort();
          if (ev->refusal.status < 400 || ev->refusal.status > 499) std::abort();
          st.refused = true;
          (void)server.local_response(ev->stream, ev->refusal.status, ev->refusal.reason);
          break;
        case Event::Kind::Data:
          if (!st.head || st.ended) std::abort();
          held += ev->data.size();
          st.held += ev->data.size();
          if (held > 65535) std::abort();  // max(connection window, the protocol's initial one)
          unconsumed.emplace_back(ev->stream, ev->data.size());
          break;
        case Event::Kind::End:
          if (!st.head || st.ended) std::abort();
          st.ended = true;
          break;
        case Event::Kind::Closed:
          st.closed = true;
          held -= st.held;  // the session gave a closed stream's bytes back to the connection
          st.held = 0;
          break;
      }
    }
    if (reads % 2 == 1) {
      for (auto [id, n] : unconsumed) {
        server.consume(id, n);
        StreamState& st = streams[id];
        if (!st.closed) {
          st.held -= n;
          held -= n;
        }
      }
      unconsumed.clear();
    }
    out.clear();
    server.take_output(out);
  }
  return 0;
}
