#include "proxy/chain.h"

namespace mg::proxy {

RequestChain default_request_chain() {
  RequestChain chain;
  chain.steps.push_back({"peer_authn", [](RequestContext& ctx) {
                           if (ctx.port_mode == MtlsMode::Strict && !ctx.peer) {
                             return Verdict::deny(403, "RBAC: access denied", "STRICT port without mTLS peer");
                           }
                           return Verdict::pass();
                         }});
  chain.steps.push_back({"request_authn", [](RequestContext& ctx) {
                           ctx.request_auth = jwt::RequestAuth{};  // no RequestAuthentication rules
                           return Verdict::pass();
                         }});
  chain.steps.push_back({"authz", [](RequestContext& ctx) {
                           Verdict v = Verdict::pass();
                           v.reason = "no authorization policy applies";
                           ctx.decision = v;
                           return v;
                         }});
  return chain;
}

ConnectionChain default_connection_chain() {
  ConnectionChain chain;
  chain.steps.push_back({"peer_authn", [](ConnectionContext& ctx) {
                           if (ctx.port_mode == MtlsMode::Strict && !ctx.peer) {
                             return Verdict::deny(0, "", "STRICT port without mTLS peer");
                           }
                           return Verdict::pass();
                         }});
  chain.steps.push_back({"authz", [](ConnectionContext& ctx) {
                           Verdict v = Verdict::pass();
                           v.reason = "no authorization policy applies";
                           ctx.decision = v;
                           return v;
                         }});
  return chain;
}

ChainSet::ChainSet() {
  replace(std::make_shared<const RequestChain>(default_request_chain()),
          std::make_shared<const ConnectionChain>(default_connection_chain()));
}

}  // namespace mg::proxy
