// Mesh.spec.extensionProviders (Istio's meshConfig field names): parsing, validation with
// file:line, the pushed Mesh text carrying them, and CUSTOM policies against them (apply check,
// analyze, fail-closed decisions naming why).
#include <gtest/gtest.h>

#include "policy/analyze.h"
#include "policy/parse.h"
#include "policy/select.h"
#include "test_util.h"

namespace mg::policy::test {
namespace {

const std::string kHead = "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: default\nspec:\n";

const std::string kHttp =
    "  extensionProviders:\n"
    "  - name: ext-http\n"
    "    envoyExtAuthzHttp:\n"
    "      service: authz.example.svc\n"
    "      port: 8000\n"
    "      pathPrefix: /check\n"
    "      timeout: 0.5s\n"
    "      failOpen: true\n"
    "      statusOnError: \"503\"\n"
    "      includeRequestHeadersInCheck: [authorization, x-user]\n"
    "      includeAdditionalHeadersInCheck:\n"
    "        x-from-mesh: meshguard\n"
    "      headersToUpstreamOnAllow: [x-auth-user]\n"
    "      headersToDownstreamOnDeny: [www-authenticate, set-cookie]\n"
    "      includeRequestBodyInCheck:\n"
    "        maxRequestBytes: 4096\n"
    "        allowPartialMessage: true\n"
    "        packAsBytes: false\n"
    "  - name: opa-grpc\n"
    "    envoyExtAuthzGrpc:\n"
    "      service: 127.0.0.1\n"
    "      port: 9191\n"
    "      timeout: 200ms\n"
    "      includeRequestBodyInCheck: {maxRequestBytes: 100, packAsBytes: true}\n";

TEST(ExtensionProviders, EveryFieldIsParsed) {
  auto r = parse_resources(kHead + kHttp, "mesh.yaml");
  ASSERT_TRUE(r) << r.error().message;
  const auto& providers = r->meshes[0].extension_providers;
  ASSERT_EQ(providers.size(), 2u);
  const auto& h = providers[0];
  EXPECT_EQ(h.name, "ext-http");
  EXPECT_EQ(h.kind, ExtensionProvider::Kind::EnvoyExtAuthzHttp);
  EXPECT_EQ(h.service, "authz.example.svc");
  EXPECT_EQ(h.port, 8000u);
  EXPECT_EQ(h.path_prefix, "/check");
  EXPECT_EQ(h.timeout_ms, 500);
  EXPECT_TRUE(h.fail_open);
  EXPECT_EQ(h.status_on_error, 503);
  EXPECT_EQ(h.include_request_headers_in_check, (std::vector<std::string>{"authorization", "x-user"}));
  EXPECT_EQ(h.include_additional_headers_in_check, (std::map<std::string, std::string>{{"x-from-mesh", "meshguard"}}));
  EXPECT_EQ(h.headers_to_upstream_on_allow, std::vector<std::string>{"x-auth-user"});
  EXPECT_EQ(h.headers_to_downstream_on_deny, (std::vector<std::string>{"www-authenticate", "set-cookie"}));
  EXPECT_TRUE(h.include_request_body_in_check.present);
  EXPECT_EQ(h.include_request_body_in_check.max_request_bytes, 4096u);
  EXPECT_TRUE(h.include_request_body_in_check.allow_partial_message);
  EXPECT_FALSE(h.include_request_body_in_check.pack_as_bytes);
  const auto& g = providers[1];
  EXPECT_EQ(g.kind, ExtensionProvider::Kind::EnvoyExtAuthzGrpc);
  EXPECT_EQ(g.service, "127.0.0.1");
  EXPECT_EQ(g.port, 9191u);
  EXPECT_EQ(g.timeout_ms, 200);
  EXPECT_FALSE(g.fail_open);
  EXPECT_EQ(g.status_on_error, 403);  // Istio's default
  EXPECT_EQ(g.include_request_body_in_check.max_request_bytes, 100u);
  EXPECT_TRUE(g.include_request_body_in_check.pack_as_bytes);

  const MeshConfig mesh = mesh_config_of(*r);
  ASSERT_EQ(mesh.extension_providers.size(), 2u);
  EXPECT_EQ(find_extension_provider(mesh, "opa-grpc"), &mesh.extension_providers[1]);
  EXPECT_EQ(find_extension_provider(mesh, "nope"), nullptr);

  auto defaults = parse_resources(kHead + "  extensionProviders:\n  - name: d\n    envoyExtAuthzGrpc: {service: a, port: 1}\n");
  ASSERT_TRUE(defaults) << defaults.error().message;
  EXPECT_EQ(defaults->meshes[0].extension_providers[0].timeout_ms, 600000);  // Istio's default: 600s
}

TEST(ExtensionProviders, Rejections) {
  auto one = [](const std::string& body) {
    return kHead + "  extensionProviders:\n  - name: p\n    envoyExtAuthzHttp:\n      service: s\n      port: 80\n" + body;
  };
  auto grpc = [](const std::string& body) {
    return kHead + "  extensionProviders:\n  - name: g\n    envoyExtAuthzGrpc:\n      service: s\n      port: 80\n" + body;
  };
  struct Bad {
    const char* name;
    std::string yaml;
    std::string expect;
  };
  const std::vector<Bad> cases = {
      {"unknown provider field", kHead + "  extensionProviders:\n  - name: p\n    zipkin: {}\n",
       "mesh.yaml:8: unknown field \"zipkin\" in extensionProviders entry"},
      {"unknown http field", one("      pathPrefx: /a\n"), "mesh.yaml:11: unknown field \"pathPrefx\""},
      {"pathPrefix on gRPC", grpc("      pathPrefix: /a\n"), "mesh.yaml:11: unknown field \"pathPrefix\""},
      {"unknown body field", one("      includeRequestBodyInCheck: {maxBytes: 3}\n"), "mesh.yaml:11: unknown field \"maxBytes\""},
      {"no name", kHead + "  extensionProviders:\n  - envoyExtAuthzGrpc: {service: s, port: 1}\n",
       "mesh.yaml:7: extensionProviders entry: name is required"},
      {"no kind", kHead + "  extensionProviders:\n  - name: p\n", "mesh.yaml:7: extensionProviders \"p\" must set exactly one"},
      {"both kinds",
       kHead + "  extensionProviders:\n  - name: p\n    envoyExtAuthzGrpc: {service: s, port: 1}\n"
               "    envoyExtAuthzHttp: {service: s, port: 1}\n",
       "mesh.yaml:7: extensionProviders \"p\" must set exactly one"},
      {"duplicate name",
       kHead + "  extensionProviders:\n  - name: p\n    envoyExtAuthzGrpc: {service: s, port: 1}\n"
               "  - name: p\n    envoyExtAuthzHttp: {service: s, port: 1}\n",
       "mesh.yaml:9: extensionProviders: \"p\" is defined twice"},
      {"no service", kHead + "  extensionProviders:\n  - name: p\n    envoyExtAuthzGrpc: {port: 1}\n",
       "mesh.yaml:8: extensionProviders.envoyExtAuthzGrpc.service is required"},
      {"no port", kHead + "  extensionProviders:\n  - name: p\n    envoyExtAuthzGrpc: {service: s}\n",
       "mesh.yaml:8: extensionProviders.envoyExtAuthzGrpc.port is required"},
      {"port 0", kHead + "  extensionProviders:\n  - name: p\n    envoyExtAuthzGrpc: {service: s, port: 0}\n",
       "mesh.yaml:8: extensionProviders.envoyExtAuthzGrpc.port must be a whole number from 1 to 65535"},
      {"port 65536", grpc("").replace(grpc("").find("port: 80"), 8, "port: 65536"), "mesh.yaml:10: "},
      {"status 99", one("      statusOnError: \"99\"\n"), "mesh.yaml:11: extensionProviders.envoyExtAuthzHttp.statusOnError must be an HTTP status"},
      {"status 600", grpc("      statusOnError: 600\n"), "mesh.yaml:11: extensionProviders.envoyExtAuthzGrpc.statusOnError"},
      {"status text", one("      statusOnError: Forbidden\n"), "mesh.yaml:11: "},
      {"timeout without unit", one("      timeout: \"5\"\n"), "mesh.yaml:11: extensionProviders.envoyExtAuthzHttp.timeout must be a duration"},
      {"timeout zero", one("      timeout: 0s\n"), "mesh.yaml:11: "},
      {"timeout over 1h", grpc("      timeout: 2h\n"), "mesh.yaml:11: "},
      {"failOpen not a bool", one("      failOpen: yes\n"), "mesh.yaml:11: extensionProviders.envoyExtAuthzHttp.failOpen must be true or false"},
      {"pathPrefix without slash", one("      pathPrefix: check\n"), "mesh.yaml:11: extensionProviders.envoyExtAuthzHttp.pathPrefix must be a path"},
      {"service with space", one("      service: \"a b\"\n").replace(one("").find("      service: s\n"), 17, ""),
       "mesh.yaml:"},
      {"bad header name", one("      headersToUpstreamOnAllow: [\"x user\"]\n"), "mesh.yaml:11: "},
      {"header value with LF", one("      includeAdditionalHeadersInCheck: {x-a: \"a\\nb\"}\n"), "mesh.yaml:11: "},
      {"body bytes 0", grpc("      includeRequestBodyInCheck: {maxRequestBytes: 0}\n"), "mesh.yaml:11: "},
      {"body partial not bool", grpc("      includeRequestBodyInCheck: {allowPartialMessage: 1}\n"), "mesh.yaml:11: "},
      {"providers not a list", kHead + "  extensionProviders: {name: p}\n", "mesh.yaml:6: extensionProviders must be a list"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = parse_resources(c.yaml, "mesh.yaml");
    ASSERT_FALSE(r) << "accepted:\n" << c.yaml;
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
  }
}

// The Mesh text the control plane writes (mesh_document) carries the providers, and parses back
// to the same settings, so agents and proxies see what the control plane sees.
TEST(ExtensionProviders, MeshDocumentRoundTrip) {
  auto r = parse_resources(kHead + kHttp);
  ASSERT_TRUE(r) << r.error().message;
  const MeshConfig mesh = mesh_config_of(*r);
  const std::string text = mesh_document(mesh);
  auto again = parse_resources(text, "pushed");
  ASSERT_TRUE(again) << again.error().message << "\n" << text;
  const MeshConfig read = mesh_config_of(*again);
  ASSERT_EQ(read.extension_providers.size(), 2u);
  EXPECT_TRUE(read.extension_providers == mesh.extension_providers) << text;
  EXPECT_EQ(mesh_document(read), text);  // a fixed point

  MeshConfig odd;
  ExtensionProvider p;
  p.name = "quote\"and\\slash\nline\ttab";
  p.service = "10.0.0.1";
  p.port = 1;
  p.timeout_ms = 1;
  p.include_additional_headers_in_check = {{"x-q", "va\"l\\ue"}};
  odd.extension_providers = {p};
  auto odd_again = parse_resources(mesh_document(odd));
  ASSERT_TRUE(odd_again) << odd_again.error().message;
  EXPECT_TRUE(mesh_config_of(*odd_again).extension_providers == odd.extension_providers) << mesh_document(odd);
  EXPECT_EQ(mesh_document(MeshConfig{}).find("extensionProviders"), std::string::npos);
}

const std::string kCustom =
    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: ext\n  namespace: default\n"
    "spec:\n  action: CUSTOM\n  provider:\n    name: opa-grpc\n  rules:\n  - to:\n    - operation:\n"
    "        paths: [\"/ext/*\"]\n";

TEST(ExtensionProviders, CustomNamingAnUndefinedProvider) {
  auto set = parse_resources(kCustom, "ext.yaml");
  ASSERT_TRUE(set) << set.error().message;
  auto st = check_custom_providers(*set, MeshConfig{});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, "policy.undefined_provider");
  EXPECT_NE(st.error().message.find("ext.yaml:1: AuthorizationPolicy default/ext: CUSTOM provider \"opa-grpc\" is not "
                                    "defined in the Mesh's extensionProviders"),
            std::string::npos)
      << st.error().message;
  auto findings = analyze(*set, MeshConfig{});
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].code, "MG0008");
  EXPECT_EQ(findings[0].location, "ext.yaml:1");

  auto with_mesh = parse_resources(kHead + kHttp);
  ASSERT_TRUE(with_mesh);
  const MeshConfig defined = mesh_config_of(*with_mesh);
  EXPECT_TRUE(check_custom_providers(*set, defined));
  EXPECT_TRUE(analyze(*set, defined).empty());
}

// An undefined provider fails closed naming why; a defined one hands the decision to the
// provider (CustomProviderCheck: a denial until the caller asks it), naming it.
TEST(ExtensionProviders, MatchingCustomAsksItsProviderOrFailsClosed) {
  Req ext;
  ext.path = "/ext/x";
  auto undefined = run(kCustom, ext);
  EXPECT_FALSE(undefined.allow);
  EXPECT_EQ(undefined.status, 403);
  EXPECT_EQ(undefined.reason, ReasonCode::DeniedCustomUnavailable);
  EXPECT_NE(undefined.text.find("provider \"opa-grpc\" is not defined in the Mesh's extensionProviders (fail closed)"),
            std::string::npos)
      << undefined.text;

  auto with_mesh = parse_resources(kHead + kHttp);
  ASSERT_TRUE(with_mesh);
  auto defined = run(kCustom, ext, nullptr, mesh_config_of(*with_mesh));
  EXPECT_FALSE(defined.allow);
  EXPECT_EQ(defined.status, 403);
  EXPECT_EQ(defined.policy, "default/ext");
  EXPECT_EQ(defined.reason, ReasonCode::CustomProviderCheck);
  EXPECT_NE(defined.text.find("extension provider \"opa-grpc\" (envoyExtAuthzGrpc 127.0.0.1:9191) decides"),
            std::string::npos)
      << defined.text;

  Req tcp = ext;
  tcp.http = false;
  const std::string custom_all = ap("ext-all", "  action: CUSTOM\n  provider:\n    name: opa-grpc\n  rules:\n  - {}");
  auto on_tcp = run(custom_all, tcp, nullptr, mesh_config_of(*with_mesh));
  EXPECT_EQ(on_tcp.reason, ReasonCode::DeniedCustomUnavailable);
  EXPECT_NE(on_tcp.text.find("not supported for TCP"), std::string::npos) << on_tcp.text;

  auto elsewhere = run(kCustom, Req{}, nullptr, mesh_config_of(*with_mesh));
  EXPECT_TRUE(elsewhere.allow) << elsewhere.text;  // a CUSTOM that matches nothing decides nothing
}

// After the provider allows, DENY and ALLOW run on the request as the provider left it (Istio:
// the ext_authz filter runs before RBAC), and the provider named in the pending decision is the
// snapshot's.
TEST(ExtensionProviders, ResumeAfterCustomRunsDenyAndAllowOnTheMutatedRequest) {
  auto set = must_parse(kCustom + "---\n" +
                        ap("deny-flagged", "  action: DENY\n  rules:\n  - when:\n    - key: request.headers[x-flag]\n"
                                           "      values: [\"bad\"]"));
  auto mesh_set = parse_resources(kHead + kHttp);
  ASSERT_TRUE(mesh_set);
  const MeshConfig mesh = mesh_config_of(*mesh_set);
  Req ext;
  ext.path = "/ext/x";
  Request r = ext.build();
  auto snap = compile_snapshot(set, destination_workload(r), mesh);
  ASSERT_TRUE(snap);
  DecideIo io;
  Decision pending = decide(**snap, r, 1700000000, io);
  ASSERT_EQ(pending.reason, ReasonCode::CustomProviderCheck) << describe(pending);
  ASSERT_NE(pending.provider, nullptr);
  EXPECT_EQ(pending.provider->name, "opa-grpc");
  EXPECT_EQ(io.normalized_path, "/ext/x");

  Decision ok = resume_after_custom(**snap, r, io, Decision(pending));
  EXPECT_TRUE(ok.allow) << describe(ok);
  EXPECT_EQ(ok.reason, ReasonCode::AllowedNoAuthorizationPolicy);

  r.http->headers.push_back({"x-flag", "bad"});  // as if the provider had set it
  Decision denied = resume_after_custom(**snap, r, io, std::move(pending));
  EXPECT_FALSE(denied.allow);
  EXPECT_EQ(denied.reason, ReasonCode::DeniedByPolicy);
  EXPECT_EQ(denied.policy, "default/deny-flagged");
}

}  // namespace
}  // namespace mg::policy::test
