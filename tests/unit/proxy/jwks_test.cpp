// The proxy's request chain over load_policy_chains: the app is sent exactly the path that was
// authorized (one normalization, done by policy::decide), jwksUri tokens verify with the keys of
// the JwksProvider the proxy feeds, and JwksKeys re-targets its fetches on each policy publish;
// trust domains in principals decide as in the shared engine.
#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "http/parser.h"
#include "jwt_test_util.h"
#include "policy/decide.h"
#include "policy/load.h"
#include "proxy/jwks_keys.h"
#include "proxy/policy_chain.h"

namespace mg::proxy {
namespace {

namespace fs = std::filesystem;
using jwt::testing::jwks_of;
using jwt::testing::make_key;
using jwt::testing::sign_token;

struct PolicyDir {
  PolicyDir() {
    char tmpl[] = "/tmp/mg-proxy-jwks.XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~PolicyDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path + "/" + name) << text;
  }
  std::string path;
};

const WorkloadInfo kWorkload{"details", "default", "details", {{"app", "details"}}};

// Runs the published request chain on a parsed request head; returns the verdict. `judged_at`:
// as a policy reload re-judges a spliced connection (its JWT checked as of that time).
Verdict run_chain(const PolicyChains& chains, http::Request& request, std::optional<int64_t> judged_at = {}) {
  RequestContext ctx{request, kWorkload, MtlsMode::Disable, 15006, "127.0.0.1:40000", std::nullopt, {},
                     {},      9080};
  ctx.judged_at = judged_at;
  Verdict v = chains.request->run(ctx);
  return v.allow ? ctx.decision : v;
}

http::Request parse(const std::string& head) {
  auto r = http::parse_request_head(head, http::Limits{});
  EXPECT_TRUE(r);
  return r ? std::move(*r) : http::Request{};
}

constexpr const char* kAllowDetails = R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-details, namespace: default}
spec:
  rules:
  - to:
    - operation:
        paths: ["/details/*"]
)";

TEST(ForwardedPath, IsTheOneAuthorized) {
  PolicyDir dir;
  dir.write("p.yaml", kAllowDetails);
  auto chains = load_policy_chains(dir.path, kWorkload);
  ASSERT_TRUE(chains) << chains.error().to_string();

  auto req = parse("GET /admin/../details/%37?q=1 HTTP/1.1\r\nHost: d\r\n\r\n");
  EXPECT_TRUE(run_chain(*chains, req).allow);
  EXPECT_EQ(req.path, "/details/7");
  EXPECT_EQ(req.target, "/details/7?q=1");

  auto plain = parse("GET /details/1 HTTP/1.1\r\nHost: d\r\n\r\n");
  EXPECT_TRUE(run_chain(*chains, plain).allow);
  EXPECT_EQ(plain.target, "/details/1");

  auto denied = parse("GET /details/../admin HTTP/1.1\r\nHost: d\r\n\r\n");
  EXPECT_FALSE(run_chain(*chains, denied).allow);

  // With a Mesh document asking for MERGE_SLASHES, the forwarded form merges slashes too.
  dir.write("mesh.yaml",
            "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata: {name: default}\n"
            "spec: {pathNormalization: MERGE_SLASHES}\n");
  auto merged = load_policy_chains(dir.path, kWorkload);
  ASSERT_TRUE(merged) << merged.error().to_string();
  auto slashes = parse("GET //details///8 HTTP/1.1\r\nHost: d\r\n\r\n");
  EXPECT_TRUE(run_chain(*merged, slashes).allow);
  EXPECT_EQ(slashes.target, "/details/8");
}

TEST(ForwardedPath, HelperLeavesUnjudgedRequestsAlone) {
  auto req = parse("GET /a/../b?x HTTP/1.1\r\nHost: d\r\n\r\n");
  forward_normalized_path(req, "");
  EXPECT_EQ(req.target, "/a/../b?x");
  forward_normalized_path(req, "/b");
  EXPECT_EQ(req.path, "/b");
  EXPECT_EQ(req.target, "/b?x");
}

constexpr const char* kUri = "http://127.0.0.1:9/jwks.json";

std::string jwt_policies() {
  return std::string(kAllowDetails) + "---\n" +
         "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: jwt, namespace: "
         "default}\n"
         "spec:\n  jwtRules:\n  - issuer: issuer-1\n    jwksUri: \"" +
         kUri + "\"\n";
}

TEST(ProxyJwks, ChainUsesTheProvidersKeysAndStripsTheToken) {
  PolicyDir dir;
  dir.write("p.yaml", jwt_policies());
  auto provider = std::make_shared<jwt::JwksProvider>();
  auto chains = load_policy_chains(dir.path, kWorkload, provider);
  ASSERT_TRUE(chains) << chains.error().to_string();
  auto key = make_key(jwt::Alg::RS256, "k1");
  const std::string token =
      sign_token(key, nlohmann::json::object(), {{"iss", "issuer-1"}, {"sub", "bob"}, {"exp", 4102444800}});
  const std::string head =
      "GET /details/1 HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer " + token + "\r\n\r\n";

  auto before = parse(head);
  Verdict v = run_chain(*chains, before);
  EXPECT_FALSE(v.allow);
  EXPECT_EQ(v.status, 401) << "no keys fetched yet: fail closed";

  ASSERT_TRUE(provider->set_jwks_json(kUri, jwks_of({&key})));
  auto after = parse(head);
  v = run_chain(*chains, after);
  EXPECT_TRUE(v.allow) << v.reason;
  EXPECT_FALSE(after.headers.get("authorization").has_value()) << "verified token removed before forwarding";

  // Without a provider (e.g. `authz check`), the same token fails closed.
  auto offline = load_policy_chains(dir.path, kWorkload);
  ASSERT_TRUE(offline);
  auto req = parse(head);
  EXPECT_EQ(run_chain(*offline, req).status, 401);
}

// A spliced WebSocket judged again at a policy reload has its token checked as of the upgrade
// (judged_at): one that expired since does not end it; keys that are not there (yet) do.
TEST(ProxyJwks, ReJudgingChecksTheTokenAsOfItsFirstJudgement) {
  PolicyDir dir;
  dir.write("p.yaml", jwt_policies());
  auto provider = std::make_shared<jwt::JwksProvider>();
  auto chains = load_policy_chains(dir.path, kWorkload, provider);
  ASSERT_TRUE(chains) << chains.error().to_string();
  auto key = make_key(jwt::Alg::RS256, "k1");
  const int64_t now = std::time(nullptr);
  const std::string token =
      sign_token(key, nlohmann::json::object(), {{"iss", "issuer-1"}, {"sub", "bob"}, {"exp", now - 600}});
  const std::string head =
      "GET /details/1 HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer " + token + "\r\n\r\n";
  auto judge = [&](std::optional<int64_t> judged_at) {
    auto request = parse(head);
    return run_chain(*chains, request, judged_at);
  };
  EXPECT_EQ(judge(now - 1200).status, 401) << "no keys fetched yet: fail closed";
  ASSERT_TRUE(provider->set_jwks_json(kUri, jwks_of({&key})));
  EXPECT_EQ(judge(std::nullopt).status, 401) << "expired now";
  Verdict v = judge(now - 1200);
  EXPECT_TRUE(v.allow) << "valid when it was first judged: " << v.reason;
}

jwt::JwtRule uri_rule(const std::string& uri) {
  jwt::JwtRule r;
  r.issuer = "issuer-1";
  r.jwks_uri = uri;
  return r;
}

// Waits (bounded: 10 s) until `done` holds.
template <class F>
bool eventually(F done) {
  for (int i = 0; i < 1000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

TEST(JwksKeys, FetchesOffThreadAndRetargetsOnEachPublish) {
  auto k1 = make_key(jwt::Alg::ES256, "k1");
  auto k2 = make_key(jwt::Alg::ES256, "k2");
  std::atomic<int> served_a{0}, served_b{0};
  std::atomic<bool> rotated{false};
  JwksKeys::Options options;
  options.fetch = [&](const std::string& uri, int) -> Result<std::string> {
    if (uri == "http://a.test/jwks") {
      ++served_a;
      return rotated ? jwks_of({&k2}) : jwks_of({&k1});
    }
    if (uri == "http://b.test/jwks") {
      ++served_b;
      return fail("jwks.http_status", "JWKS server answered 503");
    }
    return fail("jwks.resolve_failed", "unexpected uri " + uri);
  };
  JwksKeys keys(options);
  auto& provider = keys.provider();

  jwt::JwtRule inline_rule = uri_rule("http://inline.test/jwks");
  inline_rule.jwks = jwks_of({&k1});
  keys.retarget({uri_rule("http://a.test/jwks"), inline_rule});
  ASSERT_TRUE(eventually([&] { return provider->get("http://a.test/jwks") != nullptr; }));
  EXPECT_EQ(provider->get("http://a.test/jwks")->keys.front().kid, "k1");
  auto st = keys.status();
  ASSERT_EQ(st.size(), 1u) << "a rule with an inline jwks needs no fetching";
  EXPECT_TRUE(st[0].has_keys);

  // A publish with the same URI fetches again: a rotated key set is picked up.
  rotated = true;
  keys.retarget({uri_rule("http://a.test/jwks")});
  ASSERT_TRUE(eventually([&] { return provider->get("http://a.test/jwks")->keys.front().kid == "k2"; }));

  // A publish naming another URI drops the old keys; a failing URI has none (fail closed) and
  // reports its error.
  keys.retarget({uri_rule("http://b.test/jwks")});
  ASSERT_TRUE(eventually([&] { return provider->get("http://a.test/jwks") == nullptr; }));
  ASSERT_TRUE(eventually([&] {
    auto s = keys.status();
    return s.size() == 1 && s[0].fetches >= 1 && !s[0].last_error.empty();
  }));
  EXPECT_EQ(provider->get("http://b.test/jwks"), nullptr);
  EXPECT_NE(keys.status()[0].last_error.find("503"), std::string::npos);
  const int a_fetches = served_a;
  EXPECT_GE(a_fetches, 2);
}

// An issuer-only rule (Istio's OpenID discovery): the proxy's JwksKeys reads the issuer's
// discovery document, fetches the jwks_uri it names, and the chain accepts the issuer's token.
TEST(ProxyJwks, IssuerOnlyRuleVerifiesWithDiscoveredKeys) {
  constexpr const char* kIssuer = "https://idp.test/realm";
  auto key = make_key(jwt::Alg::ES256, "k1");
  JwksKeys::Options options;
  options.fetch = [&](const std::string& uri, int) -> Result<std::string> {
    if (uri == "https://idp.test/realm/.well-known/openid-configuration")
      return std::string(
          R"({"issuer": "https://idp.test/realm", "jwks_uri": "https://keys.idp.test/certs"})");
    if (uri == "https://keys.idp.test/certs") return jwks_of({&key});
    return fail("jwks.resolve_failed", "unexpected uri " + uri);
  };
  JwksKeys keys(options);
  PolicyDir dir;
  dir.write("p.yaml",
            std::string(kAllowDetails) + "---\n" +
                "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: jwt, "
                "namespace: default}\nspec:\n  jwtRules:\n  - issuer: \"" +
                kIssuer + "\"\n");
  auto chains = load_policy_chains(dir.path, kWorkload, keys.provider());
  ASSERT_TRUE(chains) << chains.error().to_string();
  const std::string token =
      sign_token(key, nlohmann::json::object(), {{"iss", kIssuer}, {"sub", "bob"}, {"exp", 4102444800}});
  const std::string head =
      "GET /details/1 HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer " + token + "\r\n\r\n";
  auto before = parse(head);
  EXPECT_EQ(run_chain(*chains, before).status, 401) << "nothing discovered yet: fail closed";

  keys.retarget(chains->snapshot->jwt_rules());
  ASSERT_TRUE(eventually([&] { return keys.provider()->get(kIssuer) != nullptr; }));
  auto after = parse(head);
  Verdict v = run_chain(*chains, after);
  EXPECT_TRUE(v.allow) << v.reason;
  auto st = keys.status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].uri, kIssuer);
  EXPECT_EQ(st[0].last_error, "");
}

// One rule for trust domains (issue 12 item 9): the proxy's request chain, the agent's validation
// and `authz check` all take the mesh settings from the same Mesh document with
// policy::mesh_config_of, so "cluster.local/..." principals and trustDomainAliases decide alike.
const WorkloadInfo kHttpbin{"httpbin", "default", "httpbin", {{"app", "httpbin"}}};

constexpr const char* kAllowSleep = R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-sleep, namespace: default}
spec:
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/sleep/sa/sleep", "old-td/ns/legacy/sa/sleep"]
)";

// The proxy's verdict for a plain GET from `peer` (a principal without "spiffe://").
bool proxy_allows(const PolicyChains& chains, const std::string& peer) {
  auto request = http::parse_request_head("GET /ip HTTP/1.1\r\nHost: httpbin\r\n\r\n", http::Limits{});
  EXPECT_TRUE(request);
  auto id = identity::SpiffeId::parse("spiffe://" + peer);
  EXPECT_TRUE(id) << peer;
  RequestContext ctx{
      *request, kHttpbin, MtlsMode::Permissive, 15006, "127.0.0.1:40000", tls::PeerIdentity{*id, "00"}, {},
      {},       8000};
  Verdict v = chains.request->run(ctx);
  return v.allow && ctx.decision.allow;
}

// `authz check`'s and the agent's reading of the same files: mesh_config_of over the flags'
// defaults (cluster.local) / over nothing, then the shared engine.
bool engine_allows(const std::string& dir, const std::string& peer) {
  auto set = policy::load_resource_files({dir});
  EXPECT_TRUE(set) << set.error().message;
  const policy::MeshConfig mesh = policy::mesh_config_of(*set, policy::MeshConfig{});
  policy::WorkloadRef ref{kHttpbin.ns, kHttpbin.labels, kHttpbin.service_account};
  auto snapshot = policy::compile_snapshot(*set, ref, mesh);
  EXPECT_TRUE(snapshot);
  policy::Request r;
  r.destination_namespace = kHttpbin.ns;
  r.destination_labels = kHttpbin.labels;
  r.destination_service_account = kHttpbin.service_account;
  r.destination_port = 8000;
  r.source_principal = peer;
  r.http.emplace();
  r.http->method = "GET";
  r.http->path = "/ip";
  r.http->host = "httpbin";
  return policy::decide(**snapshot, r, 1700000000).allow;
}

TEST(TrustDomains, ProxyAndEngineAgreeOnThePushedMeshDocument) {
  PolicyDir dir;
  dir.write("policy.yaml", kAllowSleep);
  // What the control plane pushes when no Mesh is stored and its CA's trust domain is new-td
  // (control::snapshot_for writes it with policy::mesh_document), plus an alias.
  policy::MeshConfig pushed;
  pushed.trust_domain = "new-td";
  pushed.trust_domain_aliases = {"old-td"};
  dir.write("mesh.yaml", policy::mesh_document(pushed));
  auto chains = load_policy_chains(dir.path, kHttpbin);
  ASSERT_TRUE(chains) << chains.error().to_string();
  const struct {
    const char* peer;
    bool allow;
  } cases[] = {
      {"new-td/ns/sleep/sa/sleep", true},          // cluster.local names the CA's trust domain
      {"old-td/ns/sleep/sa/sleep", true},          // ... and its aliases
      {"cluster.local/ns/sleep/sa/sleep", false},  // not a trust domain of this mesh
      {"new-td/ns/legacy/sa/sleep", true},         // written with the alias, current identity
      {"other-td/ns/sleep/sa/sleep", false},      {"new-td/ns/other/sa/sleep", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.peer);
    EXPECT_EQ(proxy_allows(*chains, c.peer), c.allow);
    EXPECT_EQ(engine_allows(dir.path, c.peer), c.allow);
  }
}

}  // namespace
}  // namespace mg::proxy
