// The request chain with a CUSTOM AuthorizationPolicy whose provider is defined: the authz step
// stops with a PendingCustom (a denial for a caller that cannot ask a provider: fail closed),
// naming the provider; resuming after the provider's allow runs DENY / ALLOW on the request as
// the provider left it and makes the allowed request's edits (normalized path); a spliced
// connection judged again (custom_allowed) is not stopped; a CUSTOM that matches nothing leaves
// nothing pending.
#include <gtest/gtest.h>

#include "http/parser.h"
#include "policy/parse.h"
#include "policy/resources.h"
#include "proxy/policy_chain.h"

namespace mg::proxy {
namespace {

const WorkloadInfo kWorkload{"details", "default", "details", {{"app", "details"}}};

constexpr const char* kPolicies = R"(apiVersion: meshguard.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec:
  extensionProviders:
  - name: authz
    envoyExtAuthzHttp: {service: 127.0.0.1, port: 9000}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: default}
spec:
  action: CUSTOM
  provider: {name: authz}
  rules:
  - to:
    - operation: {paths: ["/ext/*"]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-flagged, namespace: default}
spec:
  action: DENY
  rules:
  - when:
    - key: request.headers[x-flag]
      values: ["bad"]
)";

http::Request parse(const std::string& head) {
  auto r = http::parse_request_head(head, http::Limits{});
  EXPECT_TRUE(r);
  return r ? std::move(*r) : http::Request{};
}

PolicyChains chains() {
  auto set = policy::parse_resources(kPolicies, "p.yaml");
  EXPECT_TRUE(set) << (set ? "" : set.error().message);
  auto c = compile_policy_chains(*set, kWorkload);
  EXPECT_TRUE(c) << (c ? "" : c.error().to_string());
  return *c;
}

TEST(CustomChain, StopsWithThePendingProviderAndResumesOnTheMutatedRequest) {
  const PolicyChains c = chains();
  auto req = parse("GET /ext/./a HTTP/1.1\r\nHost: d\r\n\r\n");
  RequestContext ctx{req, kWorkload, MtlsMode::Disable, 15006, "127.0.0.1:40000", std::nullopt, {}, {}, 9080};
  Verdict v = c.request->run(ctx);
  EXPECT_FALSE(v.allow);  // nobody asked the provider yet: a denial
  ASSERT_TRUE(ctx.pending_custom);
  ASSERT_NE(ctx.pending_custom->provider, nullptr);
  EXPECT_EQ(ctx.pending_custom->provider->name, "authz");
  EXPECT_EQ(ctx.pending_custom->pending.action, "CUSTOM");
  EXPECT_EQ(ctx.pending_custom->pending.policy, "default/ext");
  EXPECT_EQ(req.path, "/ext/./a");  // not edited before the provider allows

  http::Request allowed = req;
  Verdict after = ctx.pending_custom->resume(allowed);
  EXPECT_TRUE(after.allow) << after.reason;
  EXPECT_EQ(allowed.path, "/ext/a");  // the authorized (normalized) path is forwarded

  http::Request flagged = req;
  flagged.headers.add("x-flag", "bad");  // as if the provider had set it
  after = ctx.pending_custom->resume(flagged);
  EXPECT_FALSE(after.allow);
  EXPECT_EQ(after.policy, "default/deny-flagged");
}

TEST(CustomChain, NothingPendingWhenNoCustomMatchesOrItAlreadyAllowed) {
  const PolicyChains c = chains();
  auto other = parse("GET /details/1 HTTP/1.1\r\nHost: d\r\n\r\n");
  RequestContext a{other, kWorkload, MtlsMode::Disable, 15006, "127.0.0.1:40000", std::nullopt, {}, {}, 9080};
  EXPECT_TRUE(c.request->run(a).allow);
  EXPECT_FALSE(a.pending_custom);

  auto ext = parse("GET /ext/a HTTP/1.1\r\nHost: d\r\n\r\n");
  RequestContext b{ext, kWorkload, MtlsMode::Disable, 15006, "127.0.0.1:40000", std::nullopt, {}, {}, 9080};
  b.custom_allowed = true;  // a spliced connection judged again after a reload
  EXPECT_TRUE(c.request->run(b).allow);
  EXPECT_FALSE(b.pending_custom);
}

}  // namespace
}  // namespace mg::proxy
