// Unit tests of the policy-reload parts of the proxy: the effective inbound mTLS mode from
// PeerAuthentication, the dry-run (shadow) outcome, the policyDir change detection, and
// Proxy::reload_policies() keeping the last good policy, and the agent's push handed over in memory
// (Proxy::apply_policies): parsed once, by the agent, never read back from its file.
#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "jwt/forward.h"
#include "policy/outcome.h"
#include "policy/parse.h"
#include "proxy/peer_metadata.h"
#include "proxy/policy_chain.h"
#include "proxy/policy_state.h"
#include "proxy/policy_watch.h"
#include "proxy/proxy.h"
#include "proxy/report.h"
#include "test_net.h"

namespace mg::proxy {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/mg-proxy-test.XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  // Written under a temporary name and renamed, as a reloading writer must.
  void write(const std::string& name, const std::string& text) const {
    std::string tmp = path + "/." + name + ".tmp";
    std::ofstream(tmp) << text;
    fs::rename(tmp, path + "/" + name);
  }
  std::string path;
};

std::shared_ptr<const policy::AuthzSnapshot> compile(const std::string& yaml) {
  auto set = policy::parse_resources(yaml, "test.yaml");
  EXPECT_TRUE(set) << set.error().to_string();
  auto snap =
      policy::compile_snapshot(*set, {"default", {{"app", "details"}}, "details"}, policy::MeshConfig{});
  EXPECT_TRUE(snap) << snap.error().to_string();
  return *snap;
}

InboundPort port_with_app(uint16_t app_port) {
  InboundPort p;
  p.port = 15006;
  p.app_port = app_port;
  return p;
}

const char* kStrictWith9080Permissive = R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  mtls: {mode: STRICT}
  portLevelMtls:
    9080: {mode: PERMISSIVE}
)";

TEST(EffectiveMtls, DefaultsDependOnCertificates) {
  EXPECT_EQ(effective_mtls(port_with_app(9080), true, nullptr).mode, MtlsMode::Permissive);
  EXPECT_EQ(effective_mtls(port_with_app(9080), false, nullptr).mode, MtlsMode::Disable);
  auto empty = compile("");
  EXPECT_EQ(effective_mtls(port_with_app(9080), true, empty.get()).mode, MtlsMode::Permissive);
  EXPECT_EQ(effective_mtls(port_with_app(9080), false, empty.get()).mode, MtlsMode::Disable);
}

TEST(EffectiveMtls, PeerAuthenticationDecidesPerAppPort) {
  auto snap = compile(kStrictWith9080Permissive);
  auto on_9080 = effective_mtls(port_with_app(9080), true, snap.get());
  EXPECT_EQ(on_9080.mode, MtlsMode::Permissive);
  EXPECT_NE(on_9080.source.find("default/strict portLevelMtls"), std::string::npos) << on_9080.source;
  auto on_9090 = effective_mtls(port_with_app(9090), true, snap.get());
  EXPECT_EQ(on_9090.mode, MtlsMode::Strict);
  // The listener port is not the key: only appPort is.
  InboundPort listener_9080 = port_with_app(7000);
  listener_9080.port = 9080;
  EXPECT_EQ(effective_mtls(listener_9080, true, snap.get()).mode, MtlsMode::Strict);
}

TEST(EffectiveMtls, StrictWithoutCertificatesStaysStrict) {
  auto snap = compile(kStrictWith9080Permissive);
  EXPECT_EQ(effective_mtls(port_with_app(9090), false, snap.get()).mode, MtlsMode::Strict);
}

TEST(EffectiveMtls, ConfigOverrideWins) {
  auto snap = compile(kStrictWith9080Permissive);
  InboundPort p = port_with_app(9090);
  p.mtls = MtlsMode::Permissive;
  auto m = effective_mtls(p, true, snap.get());
  EXPECT_EQ(m.mode, MtlsMode::Permissive);
  EXPECT_NE(m.source.find("override"), std::string::npos);
}

policy::Decision with_dry_run(std::vector<policy::DryRunResult> results) {
  policy::Decision d;
  d.allow = true;
  d.dry_run = std::move(results);
  return d;
}

TEST(DryRunOutcome, ShadowEngineSemantics) {
  std::string who;
  EXPECT_FALSE(policy::dry_run_outcome(with_dry_run({})).has_value());
  // A matching dry-run DENY would have denied.
  auto deny = policy::dry_run_outcome(with_dry_run({{"default/d", policy::Action::Deny, true, 0}}), &who);
  ASSERT_TRUE(deny);
  EXPECT_FALSE(*deny);
  EXPECT_EQ(who, "default/d");
  // A dry-run DENY that does not match, alone: allowed.
  EXPECT_EQ(policy::dry_run_outcome(with_dry_run({{"default/d", policy::Action::Deny, false, -1}})), true);
  // Dry-run ALLOW policies, none matching: would have been denied (no ALLOW matched).
  who = "x";
  EXPECT_EQ(policy::dry_run_outcome(with_dry_run({{"default/a", policy::Action::Allow, false, -1}}), &who),
            false);
  EXPECT_EQ(who, "");
  EXPECT_EQ(policy::dry_run_outcome(with_dry_run({{"default/a", policy::Action::Allow, false, -1},
                                                  {"default/b", policy::Action::Allow, true, 1}}),
                                    &who),
            true);
  EXPECT_EQ(who, "default/b");
}

TEST(JwtMutations, OutputsSetTokensRemovedSpoofedOutputsDropped) {
  http::Request req;
  req.method = "GET";
  req.path = "/x";
  req.query = "a=1&access_token=T&b=2";
  req.target = "/x?a=1&access_token=T&b=2";
  req.headers.add("Authorization", "Bearer T");
  req.headers.add("X-Jwt-Sub", "spoofed");
  req.headers.add("x-jwt-payload", "spoofed");
  req.headers.add("x-jwt-other", "spoofed, no token output for it");
  req.headers.add("Cookie", "session=s1; jwt=T; theme=dark");
  req.headers.add("X-Keep", "yes");
  jwt::JwtRule rule;
  rule.output_payload_to_header = "x-jwt-payload";
  rule.output_claim_to_headers = {{"x-jwt-sub", "sub"}, {"x-jwt-other", "other"}};
  jwt::HeaderMutations m;
  m.remove_headers = {"authorization"};
  m.remove_params = {"access_token"};
  m.remove_cookies = {"jwt"};
  m.set_headers = {{"x-jwt-payload", "eyJwYXlsb2FkIjoxfQ"}, {"x-jwt-sub", "alice"}};
  jwt::apply_to_forwarded(req, m, {rule});
  EXPECT_FALSE(req.headers.contains("authorization"));
  EXPECT_EQ(req.headers.get_all("x-jwt-sub"), std::vector<std::string_view>{"alice"});
  EXPECT_EQ(req.headers.get_all("x-jwt-payload"), std::vector<std::string_view>{"eyJwYXlsb2FkIjoxfQ"});
  EXPECT_FALSE(req.headers.contains("x-jwt-other"));  // a claim the token lacks: never the client's value
  EXPECT_EQ(req.query, "a=1&b=2");
  EXPECT_EQ(req.target, "/x?a=1&b=2");
  EXPECT_EQ(req.headers.get("cookie").value_or(""), "session=s1; theme=dark");
  EXPECT_EQ(req.headers.get("x-keep").value_or(""), "yes");
}

TEST(JwtMutations, NoTokenStillDropsClientSuppliedOutputHeaders) {
  http::Request req;
  req.path = req.target = "/x";
  req.headers.add("x-jwt-payload", "forged");
  req.headers.add("cookie", "jwt=T");
  jwt::JwtRule rule;
  rule.output_payload_to_header = "X-Jwt-Payload";
  jwt::HeaderMutations m;
  m.remove_cookies = {"jwt"};
  jwt::apply_to_forwarded(req, m, {rule});
  EXPECT_FALSE(req.headers.contains("x-jwt-payload"));
  EXPECT_FALSE(req.headers.contains("cookie"));  // its only cookie was the token
  EXPECT_EQ(req.target, "/x");
}

TEST(PolicyWatch, HashFollowsNamesAndContentOnly) {
  std::vector<PolicyFileDigest> a = {{"a.yaml", "00"}, {"b.yaml", "11"}};
  auto h = combined_policy_hash(a);
  EXPECT_EQ(h.size(), 64u);
  EXPECT_EQ(combined_policy_hash(a), h);
  EXPECT_NE(combined_policy_hash({{"a.yaml", "00"}, {"b.yaml", "12"}}), h);
  EXPECT_NE(combined_policy_hash({{"a.yaml", "00"}, {"c.yaml", "11"}}), h);
  EXPECT_NE(combined_policy_hash({{"a.yaml", "00"}}), h);
  // The separator keeps ("ab", "c") and ("a", "bc") apart.
  EXPECT_NE(combined_policy_hash({{"ab", "c"}}), combined_policy_hash({{"a", "bc"}}));
}

TEST(PolicyWatch, SeesEditsAdditionsAndRemovalsOfPolicyFilesOnly) {
  TempDir dir;
  dir.write("a.yaml", "x: 1\n");
  dir.write("notes.txt", "ignored\n");
  auto s1 = stat_policy_dir(dir.path);
  auto d1 = digest_policy_dir(dir.path);
  ASSERT_TRUE(s1 && d1);
  ASSERT_EQ(s1->size(), 1u);
  EXPECT_EQ((*s1)[0].name, "a.yaml");
  dir.write("notes.txt", "still ignored\n");
  EXPECT_EQ(combined_policy_hash(*digest_policy_dir(dir.path)), combined_policy_hash(*d1));
  dir.write("a.yaml", "x: 2\n");  // same size, new content
  auto s2 = stat_policy_dir(dir.path);
  EXPECT_NE(*s2, *s1);
  EXPECT_NE(combined_policy_hash(*digest_policy_dir(dir.path)), combined_policy_hash(*d1));
  dir.write("b.yml", "y: 1\n");
  EXPECT_EQ(stat_policy_dir(dir.path)->size(), 2u);
  fs::remove(dir.path + "/b.yml");
  fs::remove(dir.path + "/a.yaml");
  EXPECT_TRUE(stat_policy_dir(dir.path)->empty());
  EXPECT_FALSE(stat_policy_dir(dir.path + "/missing"));
  EXPECT_FALSE(digest_policy_dir(dir.path + "/missing"));
}

const char* kDenyAdmin = R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: default}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin/*"]}}]}]
)";

TEST(ProxyReload, BadDirectoryKeepsTheLastGoodPolicyAndRecovers) {
  TempDir dir;
  dir.write("deny.yaml", kDenyAdmin);
  ProxyConfig cfg;
  cfg.workload = {"details", "default", "details", {{"app", "details"}}};
  cfg.policy_dir = dir.path;
  cfg.access_log = "/dev/null";
  InboundPort port = port_with_app(9080);
  port.address = "127.0.0.1";
  port.port = 0;
  cfg.inbound.push_back(port);
  auto proxy = Proxy::create(cfg);
  ASSERT_TRUE(proxy) << proxy.error().to_string();
  auto before = (*proxy)->chains().request();

  dir.write("broken.yaml",
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x\n");
  auto st = (*proxy)->reload_policies();
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().to_string().find("broken.yaml:"), std::string::npos) << st.error().to_string();
  EXPECT_EQ((*proxy)->chains().request(), before);  // the last good chains stay published
  auto& m = (*proxy)->metrics();
  EXPECT_EQ(m.counter_value("meshguard_config_reload_total", {{"resource", "policy"}, {"result", "error"}}),
            1u);

  fs::remove(dir.path + "/broken.yaml");
  ASSERT_TRUE((*proxy)->reload_policies());
  // The same documents as the last good load: published again, nothing compiled (the chains in
  // force would decide the same).
  EXPECT_EQ((*proxy)->chains().request(), before);
  EXPECT_EQ(m.counter_value("meshguard_config_reload_total", {{"resource", "policy"}, {"result", "success"}}),
            1u);

  // The reloaded chain enforces the directory's policy.
  http::Request req;
  req.method = "GET";
  req.path = req.target = "/admin/x";
  req.host = "details";
  RequestContext ctx{req, cfg.workload, MtlsMode::Disable, 15006, "127.0.0.1:1", std::nullopt, {}, {}, 9080};
  Verdict v = (*proxy)->chains().request()->run(ctx);
  EXPECT_FALSE(v.allow);
  EXPECT_EQ(v.status, 403);
  EXPECT_EQ(v.action, "DENY");
  EXPECT_EQ(v.policy.value_or(""), "default/deny-admin");
}

const char* kDenyEverything = R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-x, namespace: default}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/x"]}}]}]
)";

// reload_policies() from another thread while requests are served: every request gets a whole
// answer from one policy version or the other — 403 (denied) or 503 (allowed; no app listens) —
// never a dropped connection. Bounded: 100 requests, 40 reloads.
TEST(ProxyReload, ConcurrentReloadsWhileServing) {
  TempDir dir;
  dir.write("p.yaml", kDenyEverything);
  ProxyConfig cfg;
  cfg.workload = {"details", "default", "details", {{"app", "details"}}};
  cfg.policy_dir = dir.path;
  cfg.access_log = "/dev/null";
  cfg.workers = 2;
  InboundPort port = port_with_app(1);  // nothing listens on port 1: an allowed request is a 503
  port.address = "127.0.0.1";
  port.port = 0;
  cfg.inbound.push_back(port);
  auto proxy = Proxy::create(cfg);
  ASSERT_TRUE(proxy) << proxy.error().to_string();
  ASSERT_TRUE((*proxy)->start());
  const std::string address = (*proxy)->listeners().at(0).address;
  uint16_t bound = static_cast<uint16_t>(std::stoul(address.substr(address.rfind(':') + 1)));
  std::thread runner([&] { (*proxy)->run(); });

  std::thread reloader([&] {
    for (int i = 0; i < 40; ++i) {
      dir.write("p.yaml", i % 2 ? kDenyEverything : kDenyAdmin);
      EXPECT_TRUE((*proxy)->reload_policies());
    }
  });
  int denied = 0, allowed = 0, other = 0;
  for (int i = 0; i < 100; ++i) {
    std::string r = exchange(bound, "GET /x HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
    if (r.rfind("HTTP/1.1 403 ", 0) == 0) ++denied;
    else if (r.rfind("HTTP/1.1 503 ", 0) == 0) ++allowed;
    else ++other;
  }
  reloader.join();
  EXPECT_EQ(other, 0);
  EXPECT_EQ(denied + allowed, 100);
  auto& m = (*proxy)->metrics();
  // Every forced reload succeeded (the 250 ms poll may have added some of its own).
  EXPECT_GE(m.counter_value("meshguard_config_reload_total", {{"resource", "policy"}, {"result", "success"}}), 40u);
  EXPECT_EQ(m.counter_value("meshguard_config_reload_total", {{"resource", "policy"}, {"result", "error"}}), 0u);
  (*proxy)->request_drain();
  runner.join();
}

TEST(ProxyReload, ReloadCredentialsRereadsNow) {
  TempDir dir;
  ProxyConfig cfg;
  cfg.access_log = "/dev/null";
  cfg.tls = tls::TlsFiles{dir.path + "/cert-chain.pem", dir.path + "/key.pem", dir.path + "/root-cert.pem"};
  auto proxy = Proxy::create(cfg);  // no files: up, but mTLS unavailable (fail closed)
  ASSERT_TRUE(proxy) << proxy.error().to_string();
  auto& m = (*proxy)->metrics();
  EXPECT_EQ(m.counter_value("meshguard_certificate_load_failures_total"), 1u);
  (*proxy)->reload_credentials();  // unchanged files: forced anyway
  EXPECT_EQ(m.counter_value("meshguard_certificate_load_failures_total"), 2u);
}

TEST(ProxyReload, WithoutPolicyDirIsAnError) {
  ProxyConfig cfg;
  cfg.access_log = "/dev/null";
  auto proxy = Proxy::create(cfg);
  ASSERT_TRUE(proxy);
  EXPECT_FALSE((*proxy)->reload_policies());
}

nlohmann::json config_dump(uint16_t admin_port) {
  std::string r = exchange(admin_port, "GET /config_dump HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  auto body = r.find("\r\n\r\n");
  EXPECT_NE(body, std::string::npos) << r;
  return nlohmann::json::parse(r.substr(body + 4), nullptr, false);
}

uint16_t port_of(const Proxy& proxy, const std::string& name) {
  for (const auto& l : proxy.listeners())
    if (l.name == name) return static_cast<uint16_t>(std::stoul(l.address.substr(l.address.rfind(':') + 1)));
  ADD_FAILURE() << "no listener " << name;
  return 0;
}

std::shared_ptr<const policy::ResourceSet> parsed(const std::string& yaml, const std::string& source) {
  auto set = policy::parse_resources(yaml, source);
  EXPECT_TRUE(set) << set.error().to_string();
  return std::make_shared<const policy::ResourceSet>(std::move(*set));
}

// With a control plane (policy_pushed) the directory is the agent's fail-static copy: parsed at
// start-up, then never again. A push is compiled from the resources handed over; the file the
// agent wrote is not read back, not even by the 250 ms poll (none runs), so a broken file there
// changes nothing until a restart. A refused push keeps the last good policy.
TEST(ProxyPush, HandedOverInMemoryParsedOnceNotReadBack) {
  TempDir dir;
  dir.write("snapshot.yaml", kDenyAdmin);
  ProxyConfig cfg;
  cfg.workload = {"details", "default", "details", {{"app", "details"}}};
  cfg.policy_dir = dir.path;
  cfg.policy_pushed = true;
  cfg.access_log = "/dev/null";
  cfg.admin_port = 0;
  InboundPort port = port_with_app(1);
  port.address = "127.0.0.1";
  port.port = 0;
  cfg.inbound.push_back(port);
  auto proxy = Proxy::create(cfg);
  ASSERT_TRUE(proxy) << proxy.error().to_string();
  ASSERT_TRUE((*proxy)->start());
  std::thread runner([&] { (*proxy)->run(); });
  const uint16_t admin = port_of(**proxy, "admin");
  auto dump = config_dump(admin);
  EXPECT_EQ(dump["policy"]["loads"]["directory"], 1) << dump.dump();
  EXPECT_EQ(dump["policy"]["loads"]["pushed"], 0);

  // The agent writes the file, then hands over what it parsed.
  dir.write("snapshot.yaml", kDenyEverything);
  ASSERT_TRUE(
      (*proxy)->apply_policies(parsed(kDenyEverything, "snapshot v2"), "snapshot.yaml", kDenyEverything));
  dump = config_dump(admin);
  EXPECT_EQ(dump["policy"]["version"], 2);
  EXPECT_EQ(dump["policy"]["loads"]["directory"], 1) << "the push was parsed again from its file";
  EXPECT_EQ(dump["policy"]["loads"]["pushed"], 1);
  // The version hash is the file's, as a directory load of the same file would show.
  auto files = digest_policy_dir(dir.path);
  ASSERT_TRUE(files);
  EXPECT_EQ(dump["policy"]["hash"], combined_policy_hash(*files));
  EXPECT_EQ(dump["policy"]["resources"][0]["origin"], "snapshot v2:1");

  http::Request req;
  req.method = "GET";
  req.path = req.target = "/x";
  req.host = "details";
  RequestContext ctx{req, cfg.workload, MtlsMode::Disable, 15006, "127.0.0.1:1", std::nullopt, {}, {}, 1};
  EXPECT_EQ((*proxy)->chains().request()->run(ctx).policy.value_or(""), "default/deny-x");

  // A push the proxy refuses (a Workload for this proxy under another service account): the last
  // good policy stays, and the error is returned for the agent's NACK.
  const std::string other_sa =
      "apiVersion: meshguard.io/v1alpha1\nkind: Workload\nmetadata: {name: details, namespace: default}\n"
      "spec: {serviceAccount: other, labels: {app: details}}\n";
  auto before = (*proxy)->chains().request();
  auto st = (*proxy)->apply_policies(parsed(other_sa, "snapshot v3"), "snapshot.yaml", other_sa);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().to_string().find("snapshot v3:"), std::string::npos) << st.error().to_string();
  EXPECT_EQ((*proxy)->chains().request(), before);

  // A file that no longer parses is not noticed: no poll reads the agent's copy. Bounded: a
  // standalone proxy's poll would have seen it within 250 ms; this waits 1 s.
  dir.write("snapshot.yaml", "kind: AuthorizationPolicy\nmetadata: {name: x\n");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  dump = config_dump(admin);
  EXPECT_EQ(dump["policy"]["loads"]["directory"], 1);
  EXPECT_EQ(dump["policy"]["loads"]["pushed"], 2);
  EXPECT_EQ(dump["policy"]["version"], 2);
  EXPECT_EQ((*proxy)->chains().request(), before);
  (*proxy)->request_drain();
  runner.join();
}


const std::string kDetailsService = R"(apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: details, namespace: default}
spec:
  selector: {app: details}
  ports: [{name: http, port: 9080}]
---
)";

std::string endpoints_doc(const std::vector<std::string>& workloads) {
  std::string out =
      "apiVersion: meshguard.io/v1alpha1\nkind: ServiceEndpoints\nmetadata: {name: details, namespace: default}\n"
      "spec:\n  endpoints:";
  if (workloads.empty()) return out + " []\n";
  out += "\n";
  int n = 1;
  for (const auto& w : workloads) {
    out += "  - {workload: " + w + ", address: 127.0.0." + std::to_string(n++) +
           ", serviceAccount: details, ports: [{port: 9080, endpointPort: 15006}]}\n";
  }
  return out;
}

TEST(EndpointsOnlyChange, OnlyServiceEndpointsMayDiffer) {
  auto base = parsed(kDenyAdmin + std::string("---\n") + kDetailsService + endpoints_doc({"a"}), "v1");
  auto more = parsed(kDenyAdmin + std::string("---\n") + kDetailsService + endpoints_doc({"a", "b"}), "v2");
  auto none = parsed(kDenyAdmin + std::string("---\n") + kDetailsService + endpoints_doc({}), "v3");
  EXPECT_TRUE(endpoints_only_change(*base, *more));
  EXPECT_TRUE(endpoints_only_change(*more, *none));
  EXPECT_TRUE(endpoints_only_change(*base, *base));
  auto other_policy = parsed(kDenyEverything + std::string("---\n") + kDetailsService + endpoints_doc({"a"}), "v4");
  EXPECT_FALSE(endpoints_only_change(*base, *other_policy));
  auto no_service = parsed(kDenyAdmin + std::string("---\n") + endpoints_doc({"a"}), "v5");
  EXPECT_FALSE(endpoints_only_change(*base, *no_service));
  EXPECT_FALSE(endpoints_only_change(*no_service, *base));
  auto both = parsed(kDenyAdmin + std::string("---\n") + kDenyEverything + "---\n" + kDetailsService, "v6");
  auto swapped = parsed(kDenyEverything + std::string("---\n") + kDenyAdmin + "---\n" + kDetailsService, "v7");
  EXPECT_FALSE(endpoints_only_change(*both, *swapped)) << "order is part of what was compiled";
  policy::ResourceSet textless = *base;
  textless.authorization_policies[0].meta.document.clear();
  EXPECT_FALSE(endpoints_only_change(textless, textless)) << "without the text nothing is known to be the same";
}

// An endpoint joining or leaving (a push whose only change is a ServiceEndpoints) publishes a new
// registry with the chains in force: nothing is compiled (/config_dump policy.loads.compiles stays,
// endpointsOnly counts it) and the request chain is the very same object. A policy change compiles.
TEST(ProxyPush, EndpointsOnlyChangeDoesNotRecompile) {
  TempDir dir;
  const std::string v1 = kDenyAdmin + std::string("---\n") + kDetailsService + endpoints_doc({"a"});
  dir.write("snapshot.yaml", v1);
  ProxyConfig cfg;
  cfg.workload = {"details", "default", "details", {{"app", "details"}}};
  cfg.policy_dir = dir.path;
  cfg.policy_pushed = true;
  cfg.access_log = "/dev/null";
  cfg.admin_port = 0;
  InboundPort port = port_with_app(1);
  port.address = "127.0.0.1";
  port.port = 0;
  cfg.inbound.push_back(port);
  auto proxy = Proxy::create(cfg);
  ASSERT_TRUE(proxy) << proxy.error().to_string();
  ASSERT_TRUE((*proxy)->start());
  std::thread runner([&] { (*proxy)->run(); });
  const uint16_t admin = port_of(**proxy, "admin");
  auto loads = [&] { return config_dump(admin)["policy"]["loads"]; };
  auto endpoints = [&] {
    auto dump = config_dump(admin);
    std::vector<std::string> out;
    for (const auto& e : dump["registry"]["services"][0]["ports"][0]["endpoints"]) out.push_back(e["workload"]);
    return out;
  };
  EXPECT_EQ(loads()["compiles"], 1) << loads().dump();
  EXPECT_EQ(loads()["endpointsOnly"], 0);
  const auto chain = (*proxy)->chains().request();

  const std::string v2 = kDenyAdmin + std::string("---\n") + kDetailsService + endpoints_doc({"a", "b"});
  ASSERT_TRUE((*proxy)->apply_policies(parsed(v2, "snapshot v2"), "snapshot.yaml", v2));
  EXPECT_EQ(loads()["compiles"], 1) << "an endpoints-only push compiled the policies: " << loads().dump();
  EXPECT_EQ(loads()["endpointsOnly"], 1);
  EXPECT_EQ(loads()["pushed"], 1);
  EXPECT_EQ((*proxy)->chains().request(), chain);
  EXPECT_EQ(endpoints(), (std::vector<std::string>{"a", "b"}));
  auto dump = config_dump(admin);
  EXPECT_EQ(dump["policy"]["version"], 2);
  bool origin_from_v2 = false;
  for (const auto& r : dump["policy"]["resources"])
    origin_from_v2 = origin_from_v2 || r["origin"].get<std::string>().starts_with("snapshot v2:");
  EXPECT_TRUE(origin_from_v2) << dump["policy"]["resources"].dump();

  // The chains in force still decide: /admin denied.
  http::Request req;
  req.method = "GET";
  req.path = req.target = "/admin/x";
  req.host = "details";
  RequestContext ctx{req, cfg.workload, MtlsMode::Disable, 15006, "127.0.0.1:1", std::nullopt, {}, {}, 1};
  EXPECT_EQ((*proxy)->chains().request()->run(ctx).policy.value_or(""), "default/deny-admin");

  const std::string v3 = kDenyEverything + std::string("---\n") + kDetailsService + endpoints_doc({"b"});
  ASSERT_TRUE((*proxy)->apply_policies(parsed(v3, "snapshot v3"), "snapshot.yaml", v3));
  EXPECT_EQ(loads()["compiles"], 2) << loads().dump();
  EXPECT_EQ(loads()["endpointsOnly"], 1);
  EXPECT_NE((*proxy)->chains().request(), chain);
  EXPECT_EQ(endpoints(), (std::vector<std::string>{"b"}));
  (*proxy)->request_drain();
  runner.join();
}

}  // namespace
}  // namespace mg::proxy

namespace mg::proxy {
namespace {

// A relabel pushed by the control plane (this workload's Workload document changed) reaches the
// metric labels and the metadata exchange with the publish, no restart; an unchanged one does not
// start new series (same generation).
TEST(ProxyPush, RelabelReachesTheMetricLabels) {
  ProxyConfig cfg;
  cfg.workload = {"details", "default", "details", {{"app", "details"}, {"version", "v1"}}};
  cfg.policy_pushed = true;
  cfg.policy_dir = "/nonexistent";  // pushes only: never read (policy_pushed, no load_initial here)
  Report report(cfg);
  std::atomic<uint64_t> version{0};
  PolicyState state(cfg, report, version);
  EXPECT_EQ(report.own()->labels.version, "v1");
  const std::string v2 =
      "apiVersion: meshguard.io/v1alpha1\nkind: Workload\nmetadata: {name: details, namespace: default}\n"
      "spec: {serviceAccount: details, labels: {app: details, version: v2}}\n";
  ASSERT_TRUE(state.apply(parsed(v2, "push 1"), {}));
  auto own = report.own();
  EXPECT_EQ(own->labels.version, "v2");
  EXPECT_EQ(own->labels.canonical_revision, "v2");
  EXPECT_EQ(own->generation, 1u);
  EXPECT_EQ(decode_peer_metadata(own->header)->labels.at("version"), "v2");
  ASSERT_TRUE(state.apply(parsed(v2, "push 2"), {}));
  EXPECT_EQ(report.own(), own) << "unchanged labels: the same metadata, the same series";
  // Another workload's document does not relabel this one; without its own, the config's labels.
  const std::string other =
      "apiVersion: meshguard.io/v1alpha1\nkind: Workload\nmetadata: {name: reviews, namespace: default}\n"
      "spec: {serviceAccount: reviews, labels: {app: reviews, version: v9}}\n";
  ASSERT_TRUE(state.apply(parsed(other, "push 3"), {}));
  EXPECT_EQ(report.own()->labels.version, "v1");
  EXPECT_EQ(report.own()->generation, 2u);
}

}  // namespace
}  // namespace mg::proxy
