// extauthz/grpc_mapping.h: CheckAttributes → CheckRequest, CheckResponse → CheckResult, and the
// wire: answers encoded byte by byte from the published field numbers (as Envoy's own
// definitions put them on the wire, e.g. from the OPA-Envoy plugin) read by our .proto subset.
#include "extauthz/grpc_mapping.h"

#include <gtest/gtest.h>

namespace mg::extauthz {
namespace {

namespace pb = envoy::service::auth::v3;

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}
// A length-delimited field (wire type 2) with a one-byte tag and length.
std::string field(int number, const std::string& payload) {
  return bytes({(number << 3) | 2, static_cast<int>(payload.size())}) + payload;
}

TEST(GrpcMapping, CheckRequestAsEnvoyFillsIt) {
  CheckAttributes a;
  a.source_address = "10.0.0.1";
  a.source_port = 41000;
  a.source_principal = "spiffe://cluster.local/ns/default/sa/sleep";
  a.destination_address = "10.0.0.2";
  a.destination_port = 8000;
  a.destination_principal = "spiffe://cluster.local/ns/default/sa/httpbin";
  a.time_seconds = 1700000000;
  a.id = "req-1";
  a.method = "GET";
  a.path = "/items?id=1";
  a.host = "httpbin:8000";
  a.scheme = "https";
  a.protocol = "HTTP/1.1";
  a.query = "id=1";
  a.size = 0;
  a.headers = {{":authority", "httpbin:8000"}, {"x-user", "alice"}};
  pb::CheckRequest req;
  to_check_request(a, req);
  const auto& at = req.attributes();
  EXPECT_EQ(at.source().address().socket_address().address(), "10.0.0.1");
  EXPECT_EQ(at.source().address().socket_address().port_value(), 41000u);
  EXPECT_EQ(at.source().principal(), "spiffe://cluster.local/ns/default/sa/sleep");
  EXPECT_EQ(at.destination().principal(), "spiffe://cluster.local/ns/default/sa/httpbin");
  EXPECT_EQ(at.destination().address().socket_address().port_value(), 8000u);
  EXPECT_EQ(at.request().time().seconds(), 1700000000);
  const auto& h = at.request().http();
  EXPECT_EQ(h.id(), "req-1");
  EXPECT_EQ(h.method(), "GET");
  EXPECT_EQ(h.path(), "/items?id=1");
  EXPECT_EQ(h.host(), "httpbin:8000");
  EXPECT_EQ(h.scheme(), "https");
  EXPECT_EQ(h.protocol(), "HTTP/1.1");
  EXPECT_EQ(h.query(), "id=1");
  EXPECT_EQ(h.headers().at("x-user"), "alice");
  EXPECT_EQ(h.headers().at(":authority"), "httpbin:8000");

  // On the wire: attributes (1) → request (4) → http (2) → path (4), Envoy's numbers.
  std::string wire;
  ASSERT_TRUE(req.SerializeToString(&wire));
  pb::CheckRequest only_path;
  only_path.mutable_attributes()->mutable_request()->mutable_http()->set_path("/p");
  ASSERT_TRUE(only_path.SerializeToString(&wire));
  EXPECT_EQ(wire, field(1, field(4, field(2, field(4, "/p")))));
}

TEST(GrpcMapping, BufferedBodyAsStringOrBytes) {
  CheckAttributes a;
  a.body = "payload";
  pb::CheckRequest req;
  to_check_request(a, req);
  EXPECT_EQ(req.attributes().request().http().body(), "payload");
  EXPECT_TRUE(req.attributes().request().http().raw_body().empty());
  a.pack_as_bytes = true;
  req.Clear();
  to_check_request(a, req);
  EXPECT_EQ(req.attributes().request().http().raw_body(), "payload");
  EXPECT_TRUE(req.attributes().request().http().body().empty());
}

TEST(GrpcMapping, OkResponseHeaderMutations) {
  pb::CheckResponse resp;
  auto* ok = resp.mutable_ok_response();
  auto add = [&](google::protobuf::RepeatedPtrField<pb::HeaderValueOption>* list, const std::string& k,
                 const std::string& v) {
    auto* o = list->Add();
    o->mutable_header()->set_key(k);
    o->mutable_header()->set_value(v);
    return o;
  };
  add(ok->mutable_headers(), "x-set", "1")->mutable_append()->set_value(false);
  add(ok->mutable_headers(), "x-append", "2")->mutable_append()->set_value(true);
  add(ok->mutable_headers(), "x-default", "3");  // no append: APPEND_IF_EXISTS_OR_ADD
  add(ok->mutable_headers(), "x-if-absent", "4")->set_append_action(pb::HeaderValueOption::ADD_IF_ABSENT);
  add(ok->mutable_headers(), "x-overwrite", "5")
      ->set_append_action(pb::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
  add(ok->mutable_headers(), "x-if-present", "6")
      ->set_append_action(pb::HeaderValueOption::OVERWRITE_IF_EXISTS);
  add(ok->mutable_headers(), "content-length", "99");  // the proxy's framing: ignored
  ok->add_headers_to_remove("x-remove");
  add(ok->mutable_response_headers_to_add(), "x-to-client", "7");
  CheckResult r = from_check_response(resp);
  ASSERT_EQ(r.kind, CheckResult::Kind::Allow);
  ASSERT_EQ(r.upstream_set.size(), 2u);
  EXPECT_EQ(r.upstream_set[0].name, "x-set");
  EXPECT_EQ(r.upstream_set[1].name, "x-overwrite");
  ASSERT_EQ(r.upstream_append.size(), 2u);
  EXPECT_EQ(r.upstream_append[0].name, "x-append");
  EXPECT_EQ(r.upstream_append[1].name, "x-default");
  ASSERT_EQ(r.upstream_add_if_absent.size(), 1u);
  ASSERT_EQ(r.upstream_set_if_present.size(), 1u);
  EXPECT_EQ(r.upstream_remove, std::vector<std::string>{"x-remove"});
  ASSERT_EQ(r.downstream_headers.size(), 1u);
  EXPECT_EQ(r.downstream_headers[0].value, "7");
}

TEST(GrpcMapping, DeniedResponse) {
  pb::CheckResponse resp;
  resp.mutable_status()->set_code(7);
  EXPECT_EQ(from_check_response(resp).kind, CheckResult::Kind::Deny);
  EXPECT_EQ(from_check_response(resp).status, 403);  // no denied_response: Forbidden
  auto* denied = resp.mutable_denied_response();
  denied->mutable_status()->set_code(401);
  denied->set_body("who are you");
  auto* h = denied->add_headers();
  h->mutable_header()->set_key("www-authenticate");
  h->mutable_header()->set_value("Bearer");
  CheckResult r = from_check_response(resp);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, "who are you");
  ASSERT_EQ(r.downstream_headers.size(), 1u);
  denied->mutable_status()->set_code(0);  // Empty: 403
  EXPECT_EQ(from_check_response(resp).status, 403);
}

TEST(GrpcMapping, HeadersHttpCannotCarryMakeAnError) {
  for (const std::string& bad :
       {std::string("x-bad\r\nx-injected: 1"), std::string("bad name"), std::string()}) {
    pb::CheckResponse resp;
    auto* o = resp.mutable_ok_response()->add_headers();
    o->mutable_header()->set_key(bad);
    o->mutable_header()->set_value("v");
    EXPECT_EQ(from_check_response(resp).kind, CheckResult::Kind::Error) << bad;
  }
  pb::CheckResponse resp;
  auto* o = resp.mutable_ok_response()->add_headers();
  o->mutable_header()->set_key("x-ok");
  o->mutable_header()->set_value(std::string("a\0b", 3));
  EXPECT_EQ(from_check_response(resp).kind, CheckResult::Kind::Error);
  resp.Clear();
  auto* d = resp.mutable_denied_response()->add_headers();
  resp.mutable_status()->set_code(7);
  d->mutable_header()->set_key("x-d");
  d->mutable_header()->set_value("line\nbreak");
  EXPECT_EQ(from_check_response(resp).kind, CheckResult::Kind::Error);
}

// Answers as bytes, field numbers from Envoy's published API (external_auth.proto, base.proto,
// http_status.proto, google/rpc/status.proto).
TEST(GrpcWire, EnvoyEncodedAnswersParse) {
  // CheckResponse{ok_response(3){headers(2){header(1){key(1) "x-a", value(2) "1"}, append(2){value(1) true}},
  //                              headers_to_remove(5) "x-r"}}
  const std::string header_value = field(1, "x-a") + field(2, "1");
  const std::string option = field(1, header_value) + field(2, bytes({0x08, 0x01}));
  const std::string ok = field(2, option) + field(5, "x-r");
  pb::CheckResponse allow;
  ASSERT_TRUE(allow.ParseFromString(field(3, ok)));
  CheckResult r = from_check_response(allow);
  ASSERT_EQ(r.kind, CheckResult::Kind::Allow);
  ASSERT_EQ(r.upstream_append.size(), 1u);  // append: true
  EXPECT_EQ(r.upstream_append[0].name, "x-a");
  EXPECT_EQ(r.upstream_remove, std::vector<std::string>{"x-r"});

  // CheckResponse{status(1){code(1) 7}, denied_response(2){status(1){code(1) 418}, body(3) "teapot"},
  //               dynamic_metadata(4){} (not in our subset: skipped)}
  const std::string denied = field(1, bytes({0x08, 0xa2, 0x03})) + field(3, "teapot");
  pb::CheckResponse deny;
  ASSERT_TRUE(deny.ParseFromString(field(1, bytes({0x08, 0x07})) + field(2, denied) + field(4, "")));
  r = from_check_response(deny);
  ASSERT_EQ(r.kind, CheckResult::Kind::Deny);
  EXPECT_EQ(r.status, 418);
  EXPECT_EQ(r.body, "teapot");
}

}  // namespace
}  // namespace mg::extauthz
