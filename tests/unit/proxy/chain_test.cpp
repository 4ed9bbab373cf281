#include "proxy/chain.h"

#include <gtest/gtest.h>

#include <thread>

#include "proxy/proxy.h"
#include "test_net.h"

namespace mg::proxy {
namespace {

http::Request make_request(std::string path) {
  http::Request r;
  r.method = "GET";
  r.target = path;
  r.path = std::move(path);
  r.host = "details";
  return r;
}

TEST(DefaultChain, AllowsWithoutPoliciesAndRecordsTheDecision) {
  WorkloadInfo w{"details", "default", "details", {}};
  auto req = make_request("/details/1");
  RequestContext ctx{req, w, MtlsMode::Permissive, 15006, "127.0.0.1:1", std::nullopt, {}, {}};
  Verdict v = default_request_chain().run(ctx);
  EXPECT_TRUE(v.allow);
  EXPECT_EQ(ctx.request_auth.outcome, jwt::RequestAuth::Outcome::NoToken);
  EXPECT_FALSE(ctx.decision.policy.has_value());
  EXPECT_EQ(ctx.decision.reason, "no authorization policy applies");
}

TEST(DefaultChain, StrictPortWithoutPeerIsDenied) {
  WorkloadInfo w{"details", "default", "details", {}};
  auto req = make_request("/");
  RequestContext ctx{req, w, MtlsMode::Strict, 15006, "127.0.0.1:1", std::nullopt, {}, {}};
  Verdict v = default_request_chain().run(ctx);
  EXPECT_FALSE(v.allow);
  EXPECT_EQ(v.status, 403);
  EXPECT_EQ(v.body, "RBAC: access denied");
  ConnectionContext cctx{w, MtlsMode::Strict, 15007, "127.0.0.1:1", std::nullopt, {}};
  EXPECT_FALSE(default_connection_chain().run(cctx).allow);
}

TEST(Chain, StepsRunInOrderAndTheFirstDenyWins) {
  std::vector<std::string> ran;
  RequestChain chain;
  chain.steps.push_back({"a", [&](RequestContext&) { ran.push_back("a"); return Verdict::pass(); }});
  chain.steps.push_back({"b", [&](RequestContext&) { ran.push_back("b"); return Verdict::deny(401, "Jwt is missing"); }});
  chain.steps.push_back({"c", [&](RequestContext&) { ran.push_back("c"); return Verdict::pass(); }});
  WorkloadInfo w;
  auto req = make_request("/");
  RequestContext ctx{req, w, MtlsMode::Disable, 1, "", std::nullopt, {}, {}};
  Verdict v = chain.run(ctx);
  EXPECT_FALSE(v.allow);
  EXPECT_EQ(v.status, 401);
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "b"}));
}

TEST(ChainSet, ReplacementIsSeenByTheNextReader) {
  ChainSet set;
  auto before = set.request();
  auto replacement = std::make_shared<RequestChain>();
  replacement->steps.push_back({"deny_all", [](RequestContext&) { return Verdict::deny(403, "RBAC: access denied"); }});
  set.replace(replacement, std::make_shared<ConnectionChain>(default_connection_chain()));
  EXPECT_EQ(before->steps.size(), 1u);  // a holder keeps its snapshot (the enforcement step)
  EXPECT_EQ(set.request()->steps.size(), 1u);
}

TEST(Proxy, RefusesPolicyDirThatDoesNotLoad) {
  ProxyConfig cfg;
  cfg.workload = {"w", "default", "sa", {}};
  cfg.policy_dir = "/nonexistent/meshguard/policies";
  auto p = Proxy::create(cfg);
  ASSERT_FALSE(p);  // fail closed: never runs with policies it could not read
}

// The seam, end to end in one process: a plugged-in authz step denies before the app is
// contacted (there is no app at all here), and the decision shows up in the metrics.
TEST(Proxy, PluggedAuthzStepDeniesWithEnvoyStyleAnswer) {
  ProxyConfig cfg;
  cfg.workload = {"details", "default", "details", {}};
  InboundPort port;
  port.address = "127.0.0.1";
  port.port = 0;
  port.app_port = 1;  // nothing listens there: a forwarded request would be a 503
  port.mtls = MtlsMode::Disable;
  cfg.inbound.push_back(port);
  cfg.workers = 1;
  cfg.access_log = "/dev/null";
  auto proxy = Proxy::create(cfg);
  ASSERT_TRUE(proxy) << proxy.error().to_string();
  auto chain = std::make_shared<RequestChain>(default_request_chain());
  chain->steps.back() = {"authz", [](RequestContext& ctx) {
                           Verdict v = ctx.request.path == "/admin" ? Verdict::deny(403, "RBAC: access denied")
                                                                    : Verdict::pass();
                           v.policy = "default/deny-admin";
                           v.rule = 0;
                           v.action = policy::DecidingAction::Deny;
                           ctx.decision = v;
                           return v;
                         }};
  (*proxy)->chains().replace(chain, std::make_shared<ConnectionChain>(default_connection_chain()));
  ASSERT_TRUE((*proxy)->start());
  auto listeners = (*proxy)->listeners();
  ASSERT_EQ(listeners.size(), 1u);
  EXPECT_EQ(listeners[0].name, "inbound[0]");
  uint16_t bound = static_cast<uint16_t>(std::stoul(listeners[0].address.substr(listeners[0].address.rfind(':') + 1)));
  std::thread runner([&] { (*proxy)->run(); });

  std::string denied = exchange(bound, "GET /admin HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(denied.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << denied;
  EXPECT_NE(denied.find("\r\n\r\nRBAC: access denied"), std::string::npos);
  std::string forwarded = exchange(bound, "GET /other HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(forwarded.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u) << forwarded;
  EXPECT_NE(forwarded.find("reset reason: connection failure"), std::string::npos);

  (*proxy)->request_drain();
  runner.join();
  auto& m = (*proxy)->metrics();
  EXPECT_EQ(m.counter_value("meshguard_authz_decisions_total",
                            {{"action", "DENY"}, {"policy", "default/deny-admin"}, {"result", "denied"}, {"dry_run", "false"}}),
            1u);
  std::string text = m.render_prometheus();
  EXPECT_NE(text.find("response_code=\"403\",response_flags=\"-\""), std::string::npos);
  EXPECT_NE(text.find("response_code=\"503\",response_flags=\"UF\""), std::string::npos);
}

}  // namespace
}  // namespace mg::proxy
