// OPAPolicy: parsing and validation (Rego errors mapped to file:line:col), the OPA-Envoy input
// document, composition in the decision pipeline, undefined / error / budget handling, dry-run,
// and boolean vs object results.
#include <gtest/gtest.h>

#include "jwt_test_util.h"
#include "policy/analyze.h"
#include "policy/opa.h"
#include "rego/engine.h"
#include "test_util.h"

namespace mg::policy {
namespace {

using test::must_parse;
using test::Req;

// An OPAPolicy document; `spec` is indented by two spaces already.
std::string opa(const std::string& name, const std::string& spec, const std::string& ns = "default",
                const std::string& annotations = "") {
  return "apiVersion: meshguard.io/v1alpha1\nkind: OPAPolicy\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\n" + annotations + "spec:\n" + spec + "\n---\n";
}

// A spec with one module under `policy: |`; `rego` lines are indented by four spaces here.
std::string module_spec(const std::string& rego, const std::string& extra = "") {
  std::string out = extra + "  policy: |\n";
  size_t pos = 0;
  while (pos < rego.size()) {
    auto eol = rego.find('\n', pos);
    if (eol == std::string::npos) eol = rego.size();
    out += "    " + rego.substr(pos, eol - pos) + "\n";
    pos = eol + 1;
  }
  return out;
}

const char* kGetOnly = R"(package envoy.authz
default allow := false
allow if input.attributes.request.http.method == "GET")";

struct Run {
  Decision d;
  std::shared_ptr<const AuthzSnapshot> snap;  // keeps the decision's views valid
};

Run decide_on(const std::string& yaml, const Req& req, int64_t now = 1700000000) {
  auto set = must_parse(yaml);
  const auto request = req.build();
  auto snap = compile_snapshot(set, destination_workload(request), MeshConfig{});
  EXPECT_TRUE(snap);
  Run r;
  r.snap = *snap;
  r.d = decide(**snap, request, now);
  return r;
}

std::string parse_error(const std::string& yaml) {
  auto set = parse_resources(yaml, "p.yaml");
  EXPECT_FALSE(set) << "accepted";
  return set ? std::string() : set.error().message;
}

// ------------------------------------------------------------------ parse and validation

TEST(OpaParse, FieldsAndDefaults) {
  auto set = must_parse(opa("a", module_spec(kGetOnly)) +
                        opa("b",
                            "  selector:\n    matchLabels:\n      app: details\n"
                            "  modules:\n  - |\n    package x.y\n    z { true }\n"
                            "  regoVersion: v0\n  decision: x/y/z\n  onError: Allow\n"
                            "  includeRequestBody:\n    maxBytes: 4096\n    allowPartial: true\n"
                            "  data:\n    roles:\n      admin: [\"GET\"]\n",
                            "default", "  annotations:\n    istio.io/dry-run: \"true\"\n"));
  ASSERT_EQ(set.opa_policies.size(), 2u);
  const auto& a = set.opa_policies[0];
  EXPECT_EQ(a.decision_path, (std::vector<std::string>{"envoy", "authz", "allow"}));
  EXPECT_FALSE(a.allow_on_error);
  EXPECT_FALSE(a.rego_v0);
  EXPECT_FALSE(a.selector.present);
  EXPECT_FALSE(a.meta.dry_run);
  ASSERT_TRUE(a.plan);
  const auto& b = set.opa_policies[1];
  EXPECT_EQ(b.decision_path, (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_TRUE(b.allow_on_error);
  EXPECT_TRUE(b.rego_v0);
  EXPECT_TRUE(b.meta.dry_run);
  EXPECT_TRUE(b.include_request_body.present);
  EXPECT_EQ(b.include_request_body.max_bytes, 4096u);
  EXPECT_TRUE(b.include_request_body.allow_partial);
  EXPECT_EQ(b.selector.match_labels.at("app"), "details");
  rego::EvalOptions opts;
  auto roles = rego::evaluate_path(*b.plan, {"roles", "admin"}, opts);
  ASSERT_TRUE(roles && *roles);
  EXPECT_EQ((*roles)->to_json_text(), "[\"GET\"]");
}

TEST(OpaParse, RejectsBadFields) {
  EXPECT_NE(parse_error(opa("a", module_spec(kGetOnly, "  color: red\n")))
                .find("p.yaml:7: unknown field \"color\""),
            std::string::npos);
  EXPECT_NE(parse_error(opa("a", "  decision: data.x\n")).find("exactly one of spec.policy and spec.modules"),
            std::string::npos);
  EXPECT_NE(parse_error(opa("a", module_spec(kGetOnly, "  onError: Maybe\n")))
                .find("onError must be Deny or Allow"),
            std::string::npos);
  EXPECT_NE(parse_error(opa("a", module_spec(kGetOnly, "  regoVersion: v2\n")))
                .find("regoVersion must be v1 or v0"),
            std::string::npos);
  EXPECT_NE(
      parse_error(opa("a", module_spec(kGetOnly, "  decision: data.a-b\n"))).find("spec.decision must name"),
      std::string::npos);
  EXPECT_NE(parse_error(opa("a", module_spec(kGetOnly, "  includeRequestBody:\n    maxBytes: 0\n")))
                .find("maxBytes must be a whole number"),
            std::string::npos);
  EXPECT_NE(parse_error(opa("a", module_spec(kGetOnly, "  includeRequestBody:\n    allowPartial: true\n")))
                .find("maxBytes is required"),
            std::string::npos);
  EXPECT_NE(parse_error(opa("a", module_spec(kGetOnly, "  data: [1]\n"))).find("spec.data must be a mapping"),
            std::string::npos);
  EXPECT_NE(parse_error("apiVersion: security.istio.io/v1\nkind: OPAPolicy\nmetadata:\n  name: a\nspec: {}\n")
                .find("apiVersion must be meshguard.io/v1alpha1"),
            std::string::npos);
}

TEST(OpaParse, RegoErrorsPointIntoTheYamlFile) {
  // File line 9 is "  policy: |": module row 3 is line 12, its columns shifted by the indentation (4).
  const std::string yaml =
      "# leading comment\n---\n" +
      opa("a", module_spec("package envoy.authz\ndefault allow := false\nallow if { 1 == }\n"));
  const auto e = parse_error(yaml);
  EXPECT_NE(e.find("p.yaml:12:"), std::string::npos) << e;
  EXPECT_NE(e.find("OPAPolicy default/a: spec.policy: rego_parse_error"), std::string::npos) << e;

  const auto unsafe = parse_error(opa("b", module_spec("package p\nallow if {\n  x == 1\n}\n")));
  EXPECT_NE(unsafe.find("p.yaml:10:7:"), std::string::npos) << unsafe;  // "x": row 3 col 3, indented by 4
  EXPECT_NE(unsafe.find("rego_unsafe_var_error"), std::string::npos) << unsafe;

  // One of several modules: its own position.
  const auto second =
      parse_error(opa("c", "  modules:\n  - |\n    package a\n  - |\n    package b\n    q := y\n"));
  EXPECT_NE(second.find("p.yaml:12:10:"), std::string::npos) << second;
  EXPECT_NE(second.find("spec.modules[1]"), std::string::npos) << second;

  // v1 syntax is the default: a v0 rule body is refused unless regoVersion is v0.
  EXPECT_NE(parse_error(opa("d", module_spec("package p\nallow { true }\n"))).find("rego_parse_error"),
            std::string::npos);
  must_parse(opa("d", module_spec("package p\nallow { true }\n", "  regoVersion: v0\n")));
}

TEST(OpaParse, IoBuiltinsAreRefusedAtParse) {
  const auto e = parse_error(opa(
      "a",
      module_spec(
          "package envoy.authz\nallow if {\n  r := http.send({\"method\": \"GET\", \"url\": \"http://x\"})\n"
          "  r.status_code == 200\n}\n")));
  EXPECT_NE(e.find("http.send"), std::string::npos) << e;
  EXPECT_NE(e.find("p.yaml:10:12:"), std::string::npos) << e;
}

TEST(OpaParse, AnalyzeFlagsASelectorThatMatchesNoWorkload) {
  const std::string workload =
      "apiVersion: meshguard.io/v1alpha1\nkind: Workload\nmetadata:\n  name: d\n  namespace: default\n"
      "spec:\n  labels: {app: details}\n---\n";
  auto set = must_parse(workload + opa("r", module_spec(kGetOnly, "  selector:\n    matchLabels: {app: reviews}\n")));
  const auto findings = analyze(set, MeshConfig{});
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].code, "MG0002");
  EXPECT_NE(findings[0].message.find("OPAPolicy"), std::string::npos);
  EXPECT_TRUE(analyze(must_parse(workload + opa("d", module_spec(kGetOnly, "  selector:\n    matchLabels: {app: details}\n"))),
                      MeshConfig{})
                  .empty());
}

// ------------------------------------------------------------------ input document

TEST(OpaInput, EnvoyPluginShape) {
  Req req;
  req.method = "POST";
  req.path = "/api/v1/a%20b/c?x=1&x=2&y=hello+world&bad=%zz";
  req.host = "details:9080";
  req.headers = {
      {"X-Request-Id", "req-1"}, {"Accept", "a"}, {"accept", "b"}, {"Content-Type", "application/json"}};
  const auto request = req.build();
  jwt::RequestAuth auth = test::authenticated("issuer", "alice", {{"role", "admin"}});
  OpaInputContext c{"example.org", true, &auth, 1700000000};
  auto input = opa_input(request, c);
  ASSERT_TRUE(input) << input.error().message;
  const auto j = input->to_json();
  const auto& attrs = j["attributes"];
  EXPECT_EQ(attrs["source"]["address"]["socketAddress"]["address"], "10.0.0.1");
  EXPECT_EQ(attrs["source"]["principal"], "spiffe://cluster.local/ns/default/sa/sleep");
  EXPECT_EQ(j["source_principal"], "spiffe://cluster.local/ns/default/sa/sleep");
  EXPECT_EQ(attrs["destination"]["address"]["socketAddress"]["address"], "10.0.0.2");
  EXPECT_EQ(attrs["destination"]["address"]["socketAddress"]["portValue"], 9080);
  EXPECT_EQ(attrs["destination"]["principal"], "spiffe://example.org/ns/default/sa/bookinfo-details");
  EXPECT_EQ(attrs["request"]["time"], "2023-11-14T22:13:20Z");
  const auto& http = attrs["request"]["http"];
  EXPECT_EQ(http["id"], "req-1");
  EXPECT_EQ(http["method"], "POST");
  EXPECT_EQ(http["path"], "/api/v1/a%20b/c?x=1&x=2&y=hello+world&bad=%zz");
  EXPECT_EQ(http["host"], "details:9080");
  EXPECT_EQ(http["scheme"], "https");
  EXPECT_EQ(http["protocol"], "HTTP/1.1");
  EXPECT_EQ(http["headers"]["accept"], "a,b");
  EXPECT_EQ(http["headers"]["x-request-id"], "req-1");
  EXPECT_EQ(http["headers"]["content-type"], "application/json");
  EXPECT_EQ(http["headers"][":method"], "POST");
  EXPECT_EQ(http["headers"][":authority"], "details:9080");
  EXPECT_FALSE(http["headers"].contains("X-Request-Id"));
  EXPECT_EQ(j["parsed_path"], nlohmann::json::parse(R"(["api","v1","a b","c"])"));
  EXPECT_EQ(j["parsed_query"], nlohmann::json::parse(R"({"x":["1","2"],"y":["hello world"]})"));
  EXPECT_TRUE(j["parsed_body"].is_null());
  EXPECT_EQ(j["truncated_body"], false);
  EXPECT_EQ(j["version"], nlohmann::json::parse(R"({"encoding":"protojson","ext_authz":"v3"})"));
  const auto& payload = attrs["metadataContext"]["filterMetadata"]["envoy.filters.http.jwt_authn"]["payload"];
  EXPECT_EQ(payload["role"], "admin");
  EXPECT_EQ(payload["sub"], "alice");
  EXPECT_EQ(attrs["metadata_context"]["filter_metadata"]["envoy.filters.http.jwt_authn"]["payload"], payload);

  // Plaintext: no principals, scheme http, no JWT metadata without a verified token.
  Req plain;
  plain.principal.clear();
  plain.path = "/";
  auto in2 = opa_input(plain.build(), OpaInputContext{"cluster.local", true, nullptr, 0});
  ASSERT_TRUE(in2);
  const auto j2 = in2->to_json();
  EXPECT_FALSE(j2["attributes"]["source"].contains("principal"));
  EXPECT_FALSE(j2.contains("source_principal"));
  EXPECT_FALSE(j2["attributes"]["destination"].contains("principal"));
  EXPECT_FALSE(j2["attributes"].contains("metadataContext"));
  EXPECT_EQ(j2["attributes"]["request"]["http"]["scheme"], "http");
  EXPECT_EQ(j2["parsed_path"], nlohmann::json::parse(R"([""])"));
  EXPECT_EQ(j2["parsed_query"], nlohmann::json::object());
}

TEST(OpaInput, BadPathEscapeIsAnError) {
  Req req;
  req.path = "/a%zzb";
  EXPECT_FALSE(opa_input(req.build(), OpaInputContext{"cluster.local", true, nullptr, 0}));
}

// run_opa_policies builds only what the plans read (rego::Plan::input_use): every subtree a plan
// reads must be exactly the whole document's, so every reference evaluates the same.
const rego::Value* value_at(const rego::Value& v, const std::vector<std::string>& path) {
  const rego::Value* at = &v;
  for (const auto& key : path)
    if (!(at = at->get(std::string_view(key)))) return nullptr;
  return at;
}

TEST(OpaInput, OnlyWhatThePlansReadHoldsTheSameValues) {
  Req req;
  req.method = "GET";
  req.path = "/api/v1/x%20y?x=1&x=2";
  req.host = "details:9080";
  req.headers = {{"X-Request-Id", "req-1"}, {"Authorization", "Bearer t"}, {"Accept", "a"},
                 {"accept", "b"},           {":authority", "spoofed"},     {"x-empty", ""}};
  const auto request = req.build();
  jwt::RequestAuth auth = test::authenticated("issuer", "alice", {{"role", "admin"}});
  // Each module collects what it reads into data.p.out (a read that is undefined adds nothing).
  const std::vector<std::vector<std::string>> reads = {
      {"input.attributes.request.http.headers.authorization", "input.attributes.request.http.method",
       "input.attributes.request.http.path"},
      {"input.attributes.request.http.headers[\"x-request-id\"]",
       "input.attributes.request.http.headers.accept",
       "input.attributes.request.http.headers[\":authority\"]",
       "input.attributes.request.http.headers.Accept", "input.attributes.request.http.headers[\"x-empty\"]",
       "input.attributes.request.http.headers.absent", "input.attributes.request.http.id",
       "input.attributes.request.http.scheme", "input.attributes.request.http.protocol",
       "input.attributes.request.http.host"},
      {"input.attributes.metadataContext.filterMetadata[\"envoy.filters.http.jwt_authn\"].payload.role",
       "input.attributes.metadata_context", "input.attributes.source.principal", "input.source_principal",
       "input.version.encoding", "input.parsed_query.x", "input.parsed_body", "input.truncated_body",
       "input.attributes.request.time"},
      {"input.attributes.destination", "input.parsed_path[2]", "input.attributes.request.http.headers"},
      {"input.attributes.request.http.headers[k]"},
      {"data.p.nothing"},
  };
  for (const auto& module_reads : reads) {
    std::string text = "package p\nnothing := 1\n";
    for (size_t i = 0; i < module_reads.size(); ++i)
      text += "out contains [" + std::to_string(i) + ", v] if { some k; v := " + module_reads[i] + " }\n";
    auto plan = rego::compile({{"p.rego", text}}, rego::Value::empty_object());
    ASSERT_TRUE(plan) << plan.error()[0].to_string();
    const rego::InputUse& use = (*plan)->input_use;
    for (const bool with_auth : {true, false}) {
      OpaInputContext c{"cluster.local", true, with_auth ? &auth : nullptr, 1700000000};
      auto full = opa_input(request, c);
      auto part = opa_input(request, c, &use);
      ASSERT_TRUE(full && part);
      if (use.whole) {
        EXPECT_EQ(part->to_json_text(), full->to_json_text()) << text;
      } else {
        EXPECT_LT(part->to_json_text().size(), full->to_json_text().size()) << text;
        for (const auto& path : use.paths) {
          const auto* want = value_at(*full, path);
          const auto* got = value_at(*part, path);
          ASSERT_EQ(want == nullptr, got == nullptr) << text;
          if (want) {
            EXPECT_EQ(got->to_json_text(), want->to_json_text()) << text;
          }
        }
      }
      rego::EvalOptions o;
      o.now_ns = 1;
      o.input = &*full;
      auto on_full = rego::evaluate_path(**plan, {"p", "out"}, o);
      o.input = &*part;
      auto on_part = rego::evaluate_path(**plan, {"p", "out"}, o);
      ASSERT_TRUE(on_full && on_part && *on_full && *on_part) << text;
      EXPECT_EQ((*on_part)->to_json_text(), (*on_full)->to_json_text()) << text;
      EXPECT_GT((*on_full)->size(), module_reads[0] == "data.p.nothing" ? 0u : 1u) << text;
    }
  }
}

TEST(OpaInput, BadPathEscapeIsAnErrorEvenWhenParsedPathIsNotRead) {
  Req req;
  req.path = "/a%zzb";
  const rego::InputUse use{false, {{"attributes", "request", "http", "method"}}};
  EXPECT_FALSE(opa_input(req.build(), OpaInputContext{"cluster.local", true, nullptr, 0}, &use));
  req.path = "/a%20b";
  EXPECT_TRUE(opa_input(req.build(), OpaInputContext{"cluster.local", true, nullptr, 0}, &use));
}

// ------------------------------------------------------------------ results

TEST(OpaResult, BooleanAndObject) {
  EXPECT_EQ(interpret_opa_result(rego::Value::boolean(true)).outcome, OpaOutcome::Allowed);
  auto denied = interpret_opa_result(rego::Value::boolean(false));
  EXPECT_EQ(denied.outcome, OpaOutcome::Denied);
  EXPECT_EQ(denied.status, 403);
  auto obj = [](const char* json) { return interpret_opa_result(*rego::Value::parse_json(json)); };
  auto d = obj(R"({"allowed": false, "http_status": 451, "body": "no", "headers": {"x-why": "policy"}})");
  EXPECT_EQ(d.outcome, OpaOutcome::Denied);
  EXPECT_EQ(d.status, 451);
  EXPECT_EQ(d.body, "no");
  ASSERT_EQ(d.headers.size(), 1u);
  EXPECT_EQ(d.headers[0], (std::pair<std::string, std::string>{"x-why", "policy"}));
  auto a = obj(R"({"allowed": true, "headers": [{"x-a": ["1", "2"]}], "response_headers_to_add": {"x-r": "r"},
                  "request_headers_to_remove": ["Authorization"]})");
  EXPECT_EQ(a.outcome, OpaOutcome::Allowed);
  EXPECT_EQ(a.headers.size(), 2u);
  EXPECT_EQ(a.response_headers_to_add.size(), 1u);
  EXPECT_EQ(a.request_headers_to_remove, std::vector<std::string>{"authorization"});
  // A set is a list too (OPA hands the plugin its result as JSON, where sets are arrays).
  auto set_result = rego::Value::object(
      {{rego::Value::string("allowed"), rego::Value::boolean(true)},
       {rego::Value::string("request_headers_to_remove"),
        rego::Value::set({rego::Value::string("x-b"), rego::Value::string("x-a")})}});
  auto s = interpret_opa_result(set_result);
  ASSERT_EQ(s.outcome, OpaOutcome::Allowed) << s.error;
  EXPECT_EQ(s.request_headers_to_remove, (std::vector<std::string>{"x-a", "x-b"}));
  EXPECT_EQ(obj(R"({"http_status": 403})").outcome, OpaOutcome::Error);  // no "allowed"
  EXPECT_EQ(obj(R"({"allowed": "yes"})").outcome, OpaOutcome::Error);
  EXPECT_EQ(obj(R"({"allowed": false, "http_status": 1000})").outcome, OpaOutcome::Error);
  EXPECT_EQ(obj(R"({"allowed": false, "body": 1})").outcome, OpaOutcome::Error);
  EXPECT_EQ(obj(R"("allow")").outcome, OpaOutcome::Error);
}

// A policy can never desynchronize a connection or split a response through its headers.
TEST(OpaResult, HeadersThatWouldBreakFramingAreErrors) {
  auto obj = [](const char* json) {
    auto value = rego::Value::parse_json(json);
    EXPECT_TRUE(value) << json;
    return value ? interpret_opa_result(*value) : OpaEvaluation{};
  };
  auto ok = obj(R"({"allowed": true, "headers": {"X-Mixed-Case": "v"}})");
  ASSERT_EQ(ok.outcome, OpaOutcome::Allowed);
  EXPECT_EQ(ok.headers[0].first, "x-mixed-case");
  for (const char* bad : {
           R"({"allowed": true, "headers": {"content-length": "0"}})",
           R"({"allowed": true, "headers": {"Transfer-Encoding": "chunked"}})",
           R"({"allowed": true, "headers": {"host": "evil"}})",
           R"({"allowed": true, "headers": {"x-a": "1\r\nx-b: 2"}})",
           R"({"allowed": true, "headers": {"x a": "1"}})",
           R"({"allowed": true, "headers": {"": "1"}})",
           R"({"allowed": true, "response_headers_to_add": {"connection": "close"}})",
           R"({"allowed": true, "response_headers_to_add": {"x-a": "1\n"}})",
           R"({"allowed": true, "request_headers_to_remove": ["content-length"]})",
           R"({"allowed": true, "request_headers_to_remove": [":path"]})",
           R"({"allowed": false, "headers": {"content-length": "5"}})",
           R"({"allowed": false, "headers": {"x-a": "nul\u0000"}})",
       }) {
    auto e = obj(bad);
    EXPECT_EQ(e.outcome, OpaOutcome::Error) << bad;
    EXPECT_FALSE(e.error.empty()) << bad;
  }
}

// ------------------------------------------------------------------ the pipeline

TEST(OpaDecide, BooleanAllowsAndDenies) {
  const auto yaml = opa("get-only", module_spec(kGetOnly));
  Req get;
  auto r = decide_on(yaml, get);
  EXPECT_TRUE(r.d.allow);
  EXPECT_EQ(r.d.reason, ReasonCode::AllowedByOpaPolicy);
  EXPECT_EQ(r.d.policy, "default/get-only");
  ASSERT_EQ(r.d.opa.size(), 1u);
  EXPECT_EQ(r.d.opa[0].outcome, OpaOutcome::Allowed);

  Req post;
  post.method = "POST";
  r = decide_on(yaml, post);
  EXPECT_FALSE(r.d.allow);
  EXPECT_EQ(r.d.status, 403);
  EXPECT_EQ(r.d.reason, ReasonCode::DeniedByOpaPolicy);
  EXPECT_EQ(r.d.policy, "default/get-only");
  EXPECT_NE(describe(r.d).find("denied by OPAPolicy default/get-only"), std::string::npos) << describe(r.d);

  // Another namespace's workload is not selected.
  Req other;
  other.ns = "prod";
  other.method = "POST";
  EXPECT_TRUE(decide_on(yaml, other).d.allow);
}

TEST(OpaDecide, ObjectResultCarriesTheResponse) {
  const auto yaml = opa("obj", module_spec(R"(package envoy.authz
default allow := {"allowed": false, "http_status": 401, "body": "login first", "headers": {"www-authenticate": "Bearer"}}
allow := {"allowed": true, "headers": {"x-user": "alice"}, "request_headers_to_remove": ["x-debug"], "response_headers_to_add": {"x-opa": "yes"}} if {
  input.attributes.request.http.headers["x-user"] == "alice"
})"));
  Req anonymous;
  auto r = decide_on(yaml, anonymous);
  EXPECT_FALSE(r.d.allow);
  EXPECT_EQ(r.d.status, 401);
  EXPECT_EQ(r.d.body, "login first");
  ASSERT_EQ(r.d.response_headers.size(), 1u);
  EXPECT_EQ(r.d.response_headers[0].first, "www-authenticate");

  Req alice;
  alice.headers = {{"X-User", "alice"}};
  r = decide_on(yaml, alice);
  EXPECT_TRUE(r.d.allow);
  ASSERT_EQ(r.d.upstream_headers.size(), 1u);
  EXPECT_EQ(r.d.upstream_headers[0], (std::pair<std::string, std::string>{"x-user", "alice"}));
  EXPECT_EQ(r.d.upstream_headers_to_remove, std::vector<std::string>{"x-debug"});
  ASSERT_EQ(r.d.response_headers.size(), 1u);
  EXPECT_EQ(r.d.response_headers[0].first, "x-opa");
}

TEST(OpaDecide, EveryPolicyMustAllow) {
  const auto yaml = opa("get-only", module_spec(kGetOnly)) +
                    opa("no-admin", module_spec(R"(package mesh.paths
default ok := true
ok := false if startswith(input.attributes.request.http.path, "/admin"))",
                                                "  decision: data.mesh.paths.ok\n"));
  Req get;
  auto r = decide_on(yaml, get);
  EXPECT_TRUE(r.d.allow);
  EXPECT_EQ(r.d.opa.size(), 2u);

  Req admin;
  admin.path = "/admin/users";
  r = decide_on(yaml, admin);
  EXPECT_FALSE(r.d.allow);
  EXPECT_EQ(r.d.policy, "default/no-admin");

  Req post;  // the first one denies: the second is not evaluated
  post.method = "POST";
  r = decide_on(yaml, post);
  EXPECT_FALSE(r.d.allow);
  EXPECT_EQ(r.d.policy, "default/get-only");
  EXPECT_EQ(r.d.opa.size(), 1u);
}

TEST(OpaDecide, RunsBeforeDenyAndAllowPolicies) {
  // An ALLOW policy that would allow the request does not override an OPA denial...
  const auto allow_all = test::ap("allow-all", "  action: ALLOW\n  rules:\n  - {}");
  Req post;
  post.method = "POST";
  auto r = decide_on(opa("get-only", module_spec(kGetOnly)) + allow_all, post);
  EXPECT_FALSE(r.d.allow);
  EXPECT_EQ(r.d.reason, ReasonCode::DeniedByOpaPolicy);
  // ...and an OPA allow does not override a DENY policy.
  const auto deny_all = test::ap("deny-all", "  action: DENY\n  rules:\n  - {}");
  Req get;
  r = decide_on(opa("get-only", module_spec(kGetOnly)) + deny_all, get);
  EXPECT_FALSE(r.d.allow);
  EXPECT_EQ(r.d.reason, ReasonCode::DeniedByPolicy);
  EXPECT_EQ(r.d.policy, "default/deny-all");
  EXPECT_EQ(r.d.opa.size(), 1u);
}

TEST(OpaDecide, UndefinedDecisionDenies) {
  const auto yaml = opa("undef", module_spec("package envoy.authz\nallow if input.nothing_here\n"));
  auto r = decide_on(yaml, Req{});
  EXPECT_FALSE(r.d.allow);
  EXPECT_EQ(r.d.status, 403);
  EXPECT_EQ(r.d.reason, ReasonCode::DeniedByOpaPolicy);
  ASSERT_EQ(r.d.opa.size(), 1u);
  EXPECT_EQ(r.d.opa[0].outcome, OpaOutcome::Undefined);
  EXPECT_NE(describe(r.d).find("undefined"), std::string::npos);
  // A decision path no rule defines is undefined too, even with onError: Allow.
  r = decide_on(opa("elsewhere", module_spec(kGetOnly, "  decision: data.other.allow\n  onError: Allow\n")),
                Req{});
  EXPECT_FALSE(r.d.allow);
}

// A policy that runs past the per-evaluation step budget: 200^3 candidate bindings, none
// satisfying the body, so nothing accumulates (the step budget, not the memory one, runs out).
std::string budget_buster() {
  std::string xs = "[";
  for (int i = 1; i <= 200; ++i) xs += (i > 1 ? "," : "") + std::to_string(i);
  xs += "]";
  return "package envoy.authz\nxs := " + xs +
         "\nallow if {\n  some a in xs\n  some b in xs\n  some c in xs\n  a + b + c < 0\n}\n";
}

TEST(OpaDecide, BudgetOverrunFollowsOnError) {
  auto r = decide_on(opa("slow", module_spec(budget_buster())), Req{});
  EXPECT_FALSE(r.d.allow);
  EXPECT_EQ(r.d.reason, ReasonCode::DeniedOpaPolicyError);
  EXPECT_EQ(r.d.opa_errors, 1);
  ASSERT_EQ(r.d.opa.size(), 1u);
  EXPECT_EQ(r.d.opa[0].outcome, OpaOutcome::Error);
  EXPECT_NE(r.d.opa[0].error.find("budget"), std::string::npos) << r.d.opa[0].error;

  r = decide_on(opa("slow", module_spec(budget_buster(), "  onError: Allow\n")), Req{});
  EXPECT_TRUE(r.d.allow);
  EXPECT_EQ(r.d.opa_errors, 1);
  EXPECT_EQ(r.d.opa[0].outcome, OpaOutcome::Error);
}

TEST(OpaDecide, RuntimeErrorFollowsOnError) {
  // A conflict between two complete-rule values is an evaluation error, not a denial.
  const auto rego = std::string(
      "package envoy.authz\nallow := true if input.attributes.request.http.method == \"GET\"\n"
      "allow := false if input.attributes.request.http.host != \"\"\n");
  auto r = decide_on(opa("conflict", module_spec(rego)), Req{});
  EXPECT_FALSE(r.d.allow);
  EXPECT_EQ(r.d.reason, ReasonCode::DeniedOpaPolicyError);
  EXPECT_NE(r.d.detail.find("eval_conflict_error"), std::string::npos) << r.d.detail;
  r = decide_on(opa("conflict", module_spec(rego, "  onError: Allow\n")), Req{});
  EXPECT_TRUE(r.d.allow);
  EXPECT_EQ(r.d.opa_errors, 1);
}

TEST(OpaDecide, DryRunIsReportedNeverEnforced) {
  const auto yaml =
      opa("shadow", module_spec(kGetOnly), "default", "  annotations:\n    istio.io/dry-run: \"true\"\n");
  Req post;
  post.method = "POST";
  auto r = decide_on(yaml, post);
  EXPECT_TRUE(r.d.allow);
  EXPECT_EQ(r.d.reason, ReasonCode::AllowedNoAuthorizationPolicy);
  ASSERT_EQ(r.d.opa.size(), 1u);
  EXPECT_TRUE(r.d.opa[0].dry_run);
  EXPECT_EQ(r.d.opa[0].outcome, OpaOutcome::Denied);
  ASSERT_EQ(r.d.dry_run.size(), 1u);
  EXPECT_TRUE(r.d.dry_run[0].opa);
  EXPECT_TRUE(r.d.dry_run[0].matched);  // would have denied
  EXPECT_EQ(r.d.dry_run[0].policy, "default/shadow");

  Req get;
  r = decide_on(yaml, get);
  EXPECT_TRUE(r.d.allow);
  ASSERT_EQ(r.d.dry_run.size(), 1u);
  EXPECT_FALSE(r.d.dry_run[0].matched);
}

TEST(OpaDecide, VerifiedJwtPayloadReachesThePolicy) {
  using namespace jwt::testing;
  const auto key = make_key(jwt::Alg::RS256, "k1");
  const std::string jwks = jwks_of({&key});
  std::string ra =
      "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  name: jwt\n"
      "spec:\n  jwtRules:\n  - issuer: test-issuer\n    jwks: '" +
      jwks + "'\n---\n";
  const auto yaml = ra + opa("role", module_spec(R"(package envoy.authz
default allow := false
allow if input.attributes.metadataContext.filterMetadata["envoy.filters.http.jwt_authn"].payload.role == "admin")"));
  auto token = [&](const char* role) {
    return sign_token(key, nlohmann::json::object(),
                      {{"iss", "test-issuer"}, {"sub", "u"}, {"role", role}, {"exp", 1900000000}});
  };
  Req admin;
  admin.headers = {{"Authorization", "Bearer " + token("admin")}};
  EXPECT_TRUE(decide_on(yaml, admin).d.allow);
  Req guest;
  guest.headers = {{"Authorization", "Bearer " + token("guest")}};
  EXPECT_FALSE(decide_on(yaml, guest).d.allow);
  EXPECT_FALSE(decide_on(yaml, Req{}).d.allow);  // no token: no payload
}

TEST(OpaDecide, TcpConnectionsAreEvaluatedWithoutHttp) {
  const auto yaml = opa("get-only", module_spec(kGetOnly));
  Req tcp;
  tcp.http = false;
  auto r = decide_on(yaml, tcp);
  EXPECT_FALSE(r.d.allow);
  EXPECT_EQ(r.d.status, 0);
}

TEST(OpaDecide, CompiledOncePerParse) {
  auto set = must_parse(opa("get-only", module_spec(kGetOnly)));
  Req a;
  Req b;
  b.labels = {{"app", "reviews"}};
  auto s1 = compile_snapshot(set, destination_workload(a.build()), MeshConfig{});
  auto s2 = compile_snapshot(set, destination_workload(b.build()), MeshConfig{});
  ASSERT_TRUE(s1 && s2);
  ASSERT_EQ((*s1)->opa_policies().size(), 1u);
  EXPECT_EQ((*s1)->opa_policies()[0].plan.get(), (*s2)->opa_policies()[0].plan.get());
}

}  // namespace
}  // namespace mg::policy
