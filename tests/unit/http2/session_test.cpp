// The server session driven by the client session, in memory: requests and responses with
// bodies and trailers, many streams on one connection, flow control as the memory bound.
#include <functional>
#include <map>
#include <memory>

#include "h2_test_util.h"
#include "http2/grpc.h"

namespace mg::http2 {
namespace {

using test::get_request;
using test::make_client;
using test::make_server;
using test::pump;

// What one side saw of one stream.
struct Seen {
  bool head = false;
  http::Request request;
  http::Response response;
  std::string scheme;
  std::string body;
  bool ended = false;
  http::Headers trailers;
  bool closed = false;
  uint32_t close_code = 0;
  bool refused = false;
  int refusal_status = 0;
};

void record(std::map<int32_t, Seen>& seen, Session& session, const Event& ev, bool consume = true) {
  Seen& s = seen[ev.stream];
  switch (ev.kind) {
    case Event::Kind::Head:
      EXPECT_FALSE(s.head) << "two heads on stream " << ev.stream;
      s.head = true;
      s.request = ev.request;
      s.response = ev.response;
      s.scheme = ev.scheme;
      break;
    case Event::Kind::Refused:
      s.refused = true;
      s.refusal_status = ev.refusal.status;
      break;
    case Event::Kind::Data:
      EXPECT_TRUE(s.head) << "data before head";
      EXPECT_FALSE(s.ended) << "data after end";
      s.body += ev.data;
      if (consume) session.consume(ev.stream, ev.data.size());
      break;
    case Event::Kind::End:
      EXPECT_FALSE(s.ended);
      s.ended = true;
      s.trailers = ev.trailers;
      break;
    case Event::Kind::Closed:
      EXPECT_FALSE(s.closed);
      s.closed = true;
      s.close_code = ev.error_code;
      break;
  }
}

// Lets the SETTINGS cross before any request, as a connection pool's fresh connection would.
void handshake(ClientSession& client, ServerSession& server) {
  pump(
      client, server, [](const Event&) { ADD_FAILURE() << "server event"; },
      [](const Event&) { ADD_FAILURE() << "client event"; });
}

TEST(Http2Session, GetWithResponseBody) {
  auto server = make_server();
  auto client = make_client();
  auto id = client->submit(get_request("/items/7?color=red"), "http", true);
  ASSERT_TRUE(id);
  std::map<int32_t, Seen> at_server, at_client;
  pump(
      *client, *server,
      [&](const Event& ev) {
        record(at_server, *server, ev);
        if (ev.kind == Event::Kind::End) {
          http::Response resp;
          resp.headers.add("Content-Type", "text/plain");
          resp.headers.add("Connection", "keep-alive");  // hop-by-hop: must not reach HTTP/2
          ASSERT_TRUE(server->respond(ev.stream, resp, false));
          ASSERT_TRUE(server->append_body(ev.stream, "hello "));
          ASSERT_TRUE(server->append_body(ev.stream, "world"));
          ASSERT_TRUE(server->end_body(ev.stream));
        }
      },
      [&](const Event& ev) { record(at_client, *client, ev); });

  const Seen& req = at_server[*id];
  ASSERT_TRUE(req.head);
  EXPECT_EQ(req.request.method, "GET");
  EXPECT_EQ(req.request.target, "/items/7?color=red");
  EXPECT_EQ(req.request.path, "/items/7");
  EXPECT_EQ(req.request.query, "color=red");
  EXPECT_EQ(req.request.host, "app.test");
  EXPECT_EQ(req.request.headers.get("host"), "app.test");
  EXPECT_EQ(req.scheme, "http");
  EXPECT_EQ(req.request.framing, http::BodyFraming::None);
  EXPECT_TRUE(req.ended);
  EXPECT_TRUE(req.closed);
  EXPECT_EQ(req.close_code, 0u);

  const Seen& resp = at_client[*id];
  ASSERT_TRUE(resp.head);
  EXPECT_EQ(resp.response.status, 200);
  EXPECT_EQ(resp.response.headers.get("content-type"), "text/plain");  // lower-cased on the wire
  EXPECT_FALSE(resp.response.headers.contains("connection"));
  EXPECT_EQ(resp.body, "hello world");
  EXPECT_TRUE(resp.ended);
  EXPECT_TRUE(resp.closed);
  EXPECT_EQ(resp.close_code, 0u);
  EXPECT_EQ(server->open_streams(), 0u);
  EXPECT_EQ(client->open_streams(), 0u);
}

// take_events hands over the same events, in the same order, as next_event one by one would;
// after some were taken one by one, only the rest; nothing twice.
TEST(Http2Session, TakeEventsGivesTheQueueInOrder) {
  auto run = [](int taken_one_by_one) {
    auto server = make_server();
    auto client = make_client();
    std::vector<int32_t> ids;
    for (int i = 0; i < 3; ++i) ids.push_back(*client->submit(get_request("/" + std::to_string(i)), "http", true));
    std::string c2s;
    client->take_output(c2s);
    EXPECT_TRUE(server->receive(c2s));
    std::vector<std::pair<Event::Kind, int32_t>> order;
    std::vector<std::string> paths;
    auto note = [&](const Event& ev) {
      order.emplace_back(ev.kind, ev.stream);
      if (ev.kind == Event::Kind::Head) paths.push_back(ev.request.path);
    };
    for (int i = 0; i < taken_one_by_one; ++i) note(*server->next_event());
    std::vector<Event> batch(2);  // not empty: emptied first
    EXPECT_TRUE(server->take_events(batch));
    for (const Event& ev : batch) note(ev);
    EXPECT_FALSE(server->take_events(batch));
    EXPECT_TRUE(batch.empty());
    EXPECT_FALSE(server->next_event());
    EXPECT_EQ(paths, (std::vector<std::string>{"/0", "/1", "/2"}));
    return order;
  };
  const auto whole = run(0);
  ASSERT_EQ(whole.size(), 6u);  // Head and End of each of the three streams
  EXPECT_EQ(run(1), whole);
  EXPECT_EQ(run(3), whole);
}

TEST(Http2Session, PostBodyLargerThanTheWindowsArrivesWhole) {
  Limits limits;
  limits.stream_window = 16 * 1024;
  limits.connection_window = 32 * 1024;
  auto server = make_server(limits);
  auto client = make_client();
  std::string body;
  for (int i = 0; body.size() < 300 * 1024; ++i) body += "chunk-" + std::to_string(i) + ";";
  http::Request req = get_request("/upload");
  req.method = "POST";
  req.headers.add("content-length", std::to_string(body.size()));
  auto id = client->submit(req, "http", false);
  ASSERT_TRUE(id);
  ASSERT_TRUE(client->append_body(*id, body));
  ASSERT_TRUE(client->end_body(*id));
  std::map<int32_t, Seen> at_server, at_client;
  pump(
      *client, *server,
      [&](const Event& ev) {
        record(at_server, *server, ev);
        if (ev.kind == Event::Kind::End) {
          http::Response resp;
          resp.status = 201;
          ASSERT_TRUE(server->respond(ev.stream, resp, true));
        }
      },
      [&](const Event& ev) { record(at_client, *client, ev); });
  const Seen& got = at_server[*id];
  EXPECT_EQ(got.request.method, "POST");
  EXPECT_EQ(got.request.framing, http::BodyFraming::ContentLength);
  EXPECT_EQ(got.request.content_length, body.size());
  EXPECT_EQ(got.body, body);
  EXPECT_TRUE(got.ended);
  EXPECT_EQ(at_client[*id].response.status, 201);
  EXPECT_TRUE(at_client[*id].ended);
}

TEST(Http2Session, TrailersBothWaysAsGrpcUses) {
  auto server = make_server();
  auto client = make_client();
  http::Request req = get_request("/pkg.Greeter/SayHello");
  req.method = "POST";
  req.headers.add("content-type", "application/grpc");
  req.headers.add("te", "trailers");
  auto id = client->submit(req, "http", false);
  ASSERT_TRUE(id);
  ASSERT_TRUE(client->append_body(*id, std::string("\0\0\0\0\x03"
                                                   "abc",
                                                   8)));
  http::Headers req_trailers;
  req_trailers.add("x-client-trailer", "done");
  ASSERT_TRUE(client->end_body(*id, req_trailers));
  std::map<int32_t, Seen> at_server, at_client;
  pump(
      *client, *server,
      [&](const Event& ev) {
        record(at_server, *server, ev);
        if (ev.kind == Event::Kind::End) {
          http::Response resp;
          resp.headers.add("content-type", "application/grpc");
          ASSERT_TRUE(server->respond(ev.stream, resp, false));
          ASSERT_TRUE(server->append_body(ev.stream, std::string("\0\0\0\0\x02"
                                                                 "ok",
                                                                 7)));
          http::Headers trailers;
          trailers.add("grpc-status", "0");
          trailers.add("grpc-message", "fine");
          ASSERT_TRUE(server->end_body(ev.stream, trailers));
        }
      },
      [&](const Event& ev) { record(at_client, *client, ev); });
  const Seen& got = at_server[*id];
  EXPECT_EQ(got.request.headers.get("te"), "trailers");  // kept: gRPC servers look for it
  EXPECT_EQ(got.request.framing, http::BodyFraming::Chunked);
  EXPECT_EQ(got.body.size(), 8u);
  EXPECT_EQ(got.trailers.get("x-client-trailer"), "done");
  const Seen& resp = at_client[*id];
  EXPECT_EQ(resp.body, std::string("\0\0\0\0\x02"
                                   "ok",
                                   7));
  ASSERT_TRUE(resp.ended);
  EXPECT_EQ(resp.trailers.get("grpc-status"), "0");
  EXPECT_EQ(resp.trailers.get("grpc-message"), "fine");
}

TEST(Http2Session, ManyConcurrentStreamsOnOneConnection) {
  Limits server_limits;
  server_limits.max_concurrent_streams = 8;  // fewer than the requests: the client queues the rest
  auto server = make_server(server_limits);
  auto client = make_client();
  handshake(*client, *server);  // the client learns the limit before it opens streams
  std::map<int32_t, std::string> sent;
  for (int i = 0; i < 40; ++i) {
    auto id = client->submit(get_request("/n/" + std::to_string(i)), "http", true);
    ASSERT_TRUE(id);
    sent[*id] = "/n/" + std::to_string(i);
  }
  std::map<int32_t, Seen> at_server, at_client;
  size_t max_open = 0;
  std::vector<int32_t> waiting;  // answered in reverse order of arrival, a few at a time
  auto answer_some = [&] {
    while (!waiting.empty()) {
      int32_t s = waiting.back();
      waiting.pop_back();
      http::Response resp;
      ASSERT_TRUE(server->respond(s, resp, false));
      ASSERT_TRUE(server->append_body(s, at_server[s].request.path));
      ASSERT_TRUE(server->end_body(s));
    }
  };
  for (int round = 0; round < 100 && at_client.size() < sent.size(); ++round) {
    pump(
        *client, *server,
        [&](const Event& ev) {
          record(at_server, *server, ev);
          if (ev.kind == Event::Kind::End) waiting.push_back(ev.stream);
          max_open = std::max(max_open, server->open_streams());
        },
        [&](const Event& ev) { record(at_client, *client, ev); });
    answer_some();
  }
  pump(
      *client, *server, [&](const Event& ev) { record(at_server, *server, ev); },
      [&](const Event& ev) { record(at_client, *client, ev); });
  ASSERT_EQ(at_client.size(), sent.size());
  for (const auto& [id, path] : sent) {
    EXPECT_TRUE(at_client[id].head) << "stream " << id;
    EXPECT_EQ(at_client[id].response.status, 200);
    EXPECT_EQ(at_client[id].body, path) << "stream " << id;
    EXPECT_TRUE(at_client[id].closed);
  }
  EXPECT_GT(max_open, 1u);
  EXPECT_LE(max_open, 8u);
}

// The memory bound: a request body the caller does not forward stops at the stream window,
// because only consume() lets the client send more.
TEST(Http2Session, UnconsumedBodyStopsAtTheStreamWindow) {
  Limits limits;
  limits.stream_window = 16 * 1024;
  auto server = make_server(limits);
  auto client = make_client();
  handshake(*client, *server);
  http::Request req = get_request("/big");
  req.method = "PUT";
  auto id = client->submit(req, "http", false);
  ASSERT_TRUE(id);
  ASSERT_TRUE(client->append_body(*id, std::string(1024 * 1024, 'x')));
  ASSERT_TRUE(client->end_body(*id));
  std::map<int32_t, Seen> at_server, at_client;
  std::vector<std::pair<int32_t, size_t>> unconsumed;
  auto on_server = [&](const Event& ev) {
    record(at_server, *server, ev, false);
    if (ev.kind == Event::Kind::Data) unconsumed.emplace_back(ev.stream, ev.data.size());
  };
  auto on_client = [&](const Event& ev) { record(at_client, *client, ev); };
  pump(*client, *server, on_server, on_client);
  EXPECT_EQ(at_server[*id].body.size(), limits.stream_window);
  EXPECT_GT(client->pending(*id), 0u);
  for (int i = 0; i < 200 && !at_server[*id].ended; ++i) {
    for (auto [s, n] : unconsumed) server->consume(s, n);
    unconsumed.clear();
    pump(*client, *server, on_server, on_client);
    EXPECT_LE(at_server[*id].body.size(), limits.stream_window * (i + 2));
  }
  EXPECT_TRUE(at_server[*id].ended);
  EXPECT_EQ(at_server[*id].body.size(), 1024u * 1024u);
}

TEST(Http2Session, RefusedRequestIsAnsweredLocallyAndTheConnectionGoesOn) {
  Limits limits;
  limits.max_headers = 10;
  auto server = make_server(limits);
  auto client = make_client();
  http::Request big = get_request("/too-many");
  for (int i = 0; i < 20; ++i) big.headers.add("x-h" + std::to_string(i), "v");
  auto refused = client->submit(big, "http", true);
  auto fine = client->submit(get_request("/fine"), "http", true);
  ASSERT_TRUE(refused);
  ASSERT_TRUE(fine);
  std::map<int32_t, Seen> at_server, at_client;
  pump(
      *client, *server,
      [&](const Event& ev) {
        record(at_server, *server, ev);
        if (ev.kind == Event::Kind::Refused) {
          ASSERT_TRUE(server->local_response(ev.stream, ev.refusal.status, ev.refusal.reason));
        }
        if (ev.kind == Event::Kind::End) {
          ASSERT_TRUE(server->local_response(ev.stream, 204, ""));
        }
      },
      [&](const Event& ev) { record(at_client, *client, ev); });
  EXPECT_TRUE(at_server[*refused].refused);
  EXPECT_FALSE(at_server[*refused].head);
  EXPECT_EQ(at_client[*refused].response.status, 431);
  EXPECT_EQ(at_client[*refused].body, "too many header fields");
  EXPECT_EQ(at_client[*fine].response.status, 204);
  EXPECT_TRUE(server->alive());
}

TEST(Http2Session, ResponseHeadOverTheClientsLimitResetsTheStream) {
  auto server = make_server();
  Limits small;
  small.max_header_list_size = 1024;
  auto client = make_client(small);
  auto id = client->submit(get_request("/"), "http", true);
  ASSERT_TRUE(id);
  std::map<int32_t, Seen> at_client;
  pump(
      *client, *server,
      [&](const Event& ev) {
        if (ev.kind == Event::Kind::End) {
          http::Response resp;
          resp.headers.add("x-big", std::string(4000, 'b'));
          ASSERT_TRUE(server->respond(ev.stream, resp, true));
        }
      },
      [&](const Event& ev) { record(at_client, *client, ev); });
  EXPECT_FALSE(at_client[*id].head);
  EXPECT_TRUE(at_client[*id].closed);
  EXPECT_EQ(at_client[*id].close_code, static_cast<uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
}

TEST(Http2Session, ClientResetReachesTheServerAsClosed) {
  auto server = make_server();
  auto client = make_client();
  http::Request req = get_request("/slow");
  auto id = client->submit(req, "http", true);
  ASSERT_TRUE(id);
  std::map<int32_t, Seen> at_server, at_client;
  auto on_server = [&](const Event& ev) { record(at_server, *server, ev); };
  auto on_client = [&](const Event& ev) { record(at_client, *client, ev); };
  pump(*client, *server, on_server, on_client);
  ASSERT_TRUE(at_server[*id].head);
  client->reset(*id, NGHTTP2_CANCEL);
  pump(*client, *server, on_server, on_client);
  EXPECT_TRUE(at_server[*id].closed);
  EXPECT_EQ(at_server[*id].close_code, static_cast<uint32_t>(NGHTTP2_CANCEL));
  EXPECT_FALSE(server->respond(*id, http::Response{}, true));  // the stream is gone
  EXPECT_EQ(server->premature_resets(), 1u);
}

TEST(Http2Session, GracefulShutdownLetsTheStreamInFlightFinish) {
  auto server = make_server();
  auto client = make_client();
  auto id = client->submit(get_request("/"), "http", true);
  ASSERT_TRUE(id);
  std::map<int32_t, Seen> at_server, at_client;
  auto on_client = [&](const Event& ev) { record(at_client, *client, ev); };
  pump(
      *client, *server, [&](const Event& ev) { record(at_server, *server, ev); }, on_client);
  server->shutdown();
  ASSERT_TRUE(server->local_response(*id, 200, "bye"));
  pump(
      *client, *server, [&](const Event& ev) { record(at_server, *server, ev); }, on_client);
  EXPECT_EQ(at_client[*id].body, "bye");
  EXPECT_FALSE(server->alive());
  EXPECT_TRUE(server->close_reason().empty());
}

}  // namespace
}  // namespace mg::http2

namespace mg::http2 {
namespace {

TEST(Http2Session, DeniedGrpcCallIsATrailersOnlyOkWithPermissionDenied) {
  auto server = make_server();
  auto client = make_client();
  http::Request req = get_request("/pkg.Admin/DropTables");
  req.method = "POST";
  req.headers.add("content-type", "application/grpc");
  auto id = client->submit(req, "http", false);
  ASSERT_TRUE(id);
  ASSERT_TRUE(client->append_body(*id, std::string(5, '\0')));
  ASSERT_TRUE(client->end_body(*id));
  std::map<int32_t, Seen> at_server, at_client;
  bool head_ended_stream = false;
  pump(
      *client, *server,
      [&](const Event& ev) {
        record(at_server, *server, ev);
        if (ev.kind == Event::Kind::Head) {
          ASSERT_TRUE(is_grpc_request(ev.request));
          ASSERT_TRUE(server->respond(ev.stream, grpc_deny_response(403, "RBAC: access denied"), true));
        }
      },
      [&](const Event& ev) {
        record(at_client, *client, ev);
        if (ev.kind == Event::Kind::Head) head_ended_stream = ev.end_stream;
      });
  const Seen& resp = at_client[*id];
  EXPECT_EQ(resp.response.status, 200);
  EXPECT_TRUE(head_ended_stream);  // one HEADERS frame: trailers-only
  EXPECT_EQ(resp.response.headers.get("grpc-status"), "7");
  EXPECT_EQ(resp.response.headers.get("grpc-message"), "RBAC: access denied");
  EXPECT_TRUE(resp.body.empty());
  EXPECT_TRUE(resp.closed);
}

TEST(Http2Session, RequestsAfterTheServersGoawayAreClosedUnsent) {
  auto server = make_server();
  auto client = make_client();
  std::map<int32_t, Seen> at_server, at_client;
  auto on_server = [&](const Event& ev) { record(at_server, *server, ev); };
  auto on_client = [&](const Event& ev) { record(at_client, *client, ev); };
  pump(*client, *server, on_server, on_client);
  server->shutdown();
  pump(*client, *server, on_server, on_client);
  auto id = client->submit(get_request("/late"), "http", true);
  ASSERT_TRUE(id);  // taken, then refused unsent: the caller hears Closed, safe to retry elsewhere
  pump(*client, *server, on_server, on_client);
  EXPECT_TRUE(at_client[*id].closed);
  EXPECT_FALSE(at_client[*id].head);
  EXPECT_NE(at_client[*id].close_code, 0u);
  EXPECT_TRUE(at_server.empty());  // nothing reached the server
}

// A client whose stream windows are 4096 bytes, past the SETTINGS exchange with a server, with a
// GET /stream submitted (`id`). The client records what it receives and never consumes it, so
// its windows stay as the server's bytes left them.
class Http2SessionSmallWindow : public ::testing::Test {
 protected:
  void SetUp() override {
    Limits small;
    small.stream_window = 4096;
    client = make_client(small);
    handshake(*client, *server);
    auto submitted = client->submit(get_request("/stream"), "http", true);
    ASSERT_TRUE(submitted);
    id = *submitted;
  }
  std::unique_ptr<ServerSession> server = make_server();
  std::unique_ptr<ClientSession> client;
  int32_t id = 0;
  std::map<int32_t, Seen> at_server, at_client;
  std::function<void(const Event&)> on_client = [this](const Event& ev) {
    record(at_client, *client, ev, false);
  };
};

TEST_F(Http2SessionSmallWindow, ResponseBodyAgainstAClosedWindowIsReportedBlocked) {
  auto on_server = [&](const Event& ev) {
    record(at_server, *server, ev);
    if (ev.kind == Event::Kind::End) {
      ASSERT_TRUE(server->respond(ev.stream, http::Response{}, false));
      ASSERT_TRUE(server->append_body(ev.stream, std::string(10000, 'z')));
    }
  };
  pump(*client, *server, on_server, on_client);
  EXPECT_EQ(at_client[id].body.size(), 4096u);
  EXPECT_EQ(server->pending(id), 10000u - 4096u);
  EXPECT_TRUE(server->send_blocked(id));
  client->consume(id, 4096);
  pump(*client, *server, on_server, on_client);
  EXPECT_EQ(at_client[id].body.size(), 8192u);
}

// A submitted head goes out as it was when submitted: nghttp2 packs it later (at the next
// take_output), from the session's own copy of its names and values, never from the caller's
// message, which may be changed or gone by then (both overwritten in place here).
TEST(Http2Session, SubmittedHeadsGoOutAsTheyWereWhenSubmitted) {
  auto server = make_server();
  auto client = make_client();
  handshake(*client, *server);
  http::Request req = get_request("/original/path?q=1", "app.test");
  req.headers.add("x-request-field", "request-value-long-enough-to-be-on-the-heap");
  auto id = client->submit(req, "http", true);
  ASSERT_TRUE(id);
  req.method.assign("PUT");
  req.target.assign(req.target.size(), 'Z');
  req.host.assign(req.host.size(), 'Z');
  for (const auto& h : req.headers) const_cast<std::string&>(h.value).assign(h.value.size(), 'Z');
  http::Response resp;
  resp.headers.add("x-response-field", "response-value-long-enough-to-be-on-the-heap");
  std::map<int32_t, Seen> at_server, at_client;
  auto on_server = [&](const Event& ev) {
    record(at_server, *server, ev);
    if (ev.kind == Event::Kind::End) {
      ASSERT_TRUE(server->respond(ev.stream, resp, true));
      for (const auto& h : resp.headers) const_cast<std::string&>(h.value).assign(h.value.size(), 'Z');
    }
  };
  auto on_client = [&](const Event& ev) { record(at_client, *client, ev); };
  pump(*client, *server, on_server, on_client);
  const Seen& at_s = at_server[*id];
  EXPECT_EQ(at_s.request.method, "GET");
  EXPECT_EQ(at_s.request.target, "/original/path?q=1");
  EXPECT_EQ(at_s.request.host, "app.test");
  EXPECT_EQ(at_s.request.headers.get("x-request-field"), "request-value-long-enough-to-be-on-the-heap");
  const Seen& at_c = at_client[*id];
  ASSERT_TRUE(at_c.head);
  EXPECT_EQ(at_c.response.status, 200);
  EXPECT_EQ(at_c.response.headers.get("x-response-field"), "response-value-long-enough-to-be-on-the-heap");
  EXPECT_TRUE(at_c.closed);
  EXPECT_EQ(at_c.close_code, 0u);
}

// What H2Connection::release relies on: bytes that fit both of the peer's windows all go out with
// the next take, and a peer that shrinks its stream windows first (SETTINGS_INITIAL_WINDOW_SIZE)
// turns the answer to "no" — the bytes then wait for a window again.
TEST_F(Http2SessionSmallWindow, PendingBodyFitsTheWindowsUntilThePeerShrinksThem) {
  auto on_server = [&](const Event& ev) { record(at_server, *server, ev); };
  pump(*client, *server, on_server, on_client);
  ASSERT_TRUE(at_server[id].ended);
  ASSERT_TRUE(server->respond(id, http::Response{}, false));
  EXPECT_TRUE(server->fits_window(id));  // nothing waits
  ASSERT_TRUE(server->append_body(id, std::string(4096, 'a')));
  EXPECT_TRUE(server->fits_window(id));  // exactly the stream window
  ASSERT_TRUE(server->append_body(id, "b"));
  EXPECT_FALSE(server->fits_window(id));  // one byte over it
  std::string out;
  server->take_output(out);
  EXPECT_EQ(server->pending(id), 1u);
  EXPECT_TRUE(server->send_blocked(id));

  // A second stream whose bytes fit, until the peer shrinks every stream's window before they go.
  auto id2 = client->submit(get_request("/stream"), "http", true);
  ASSERT_TRUE(id2);
  pump(*client, *server, on_server, on_client);
  ASSERT_TRUE(at_server[*id2].ended);
  ASSERT_TRUE(server->respond(*id2, http::Response{}, false));
  ASSERT_TRUE(server->append_body(*id2, std::string(3000, 'c')));
  EXPECT_TRUE(server->fits_window(*id2));
  ASSERT_TRUE(server->receive(
      test::frame(NGHTTP2_SETTINGS, 0, 0, test::settings_entry(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1000))));
  EXPECT_FALSE(server->fits_window(*id2));
  out.clear();
  server->take_output(out);
  EXPECT_EQ(server->pending(*id2), 2000u);
}

}  // namespace
}  // namespace mg::http2
