#include "proxy/enforcement.h"

#include <chrono>

#include "http2/grpc.h"
#include "policy/resources.h"

#include "proxy/policy_state.h"
#include "proxy/report.h"
#include "proxy/worker.h"

namespace mg::proxy {

namespace {

// gRPC's status codes reserve PERMISSION_DENIED for a caller who is known and not allowed ("use
// UNAUTHENTICATED instead" when the caller cannot be identified). A call no ALLOW rule matched
// only because it carried no token is answered 401, which a gRPC caller receives as grpc-status
// 16 UNAUTHENTICATED; an HTTP caller keeps Istio's 403.
void tell_grpc_caller_to_authenticate(const http::Request& request, Verdict& verdict) {
  if (verdict.allow || !verdict.lacks_credential || verdict.status != 403 || !http2::is_grpc_request(request))
    return;
  verdict.status = 401;
  verdict.body = "Jwt is missing";
}

}  // namespace

Enforcement::Enforcement(const ProxyConfig& config, const PolicyState& policy, Report& report)
    : config_(config), policy_(policy), report_(report) {}

Judgement Enforcement::judge_connection(size_t index, const std::string& source,
                                        const std::optional<tls::PeerIdentity>& peer, std::string_view sni) {
  const InboundPort& port = config_.inbound[index];
  ConnectionContext ctx{config_.workload, policy_.port_mode(index), port.port, source, peer, {},
                        port.app_port};
  ctx.sni = std::string(sni);
  auto judging = policy_.chains().current();
  Judgement out;
  out.generation = judging->generation;
  out.verdict = judging->connection->run(ctx);
  out.decision = out.verdict.allow ? std::move(ctx.decision) : out.verdict;
  report_.count_decision(out.decision, out.verdict.allow);
  return out;
}

bool Enforcement::judge_request(http::Request& request, const HttpSide& side,
                                std::optional<int64_t> judged_at, SeriesCache& series, Judgement& out) {
  RequestContext ctx{request,
                     config_.workload,
                     policy_.port_mode(side.inbound_index),
                     side.listen_port,
                     side.source,
                     side.peer,
                     {},
                     {},
                     side.inbound->app_port};
  ctx.gateway_listener = side.gateway.has_value();
  auto judging = policy_.chains().current();
  out.generation = judging->generation;
  ctx.judged_at = judged_at;
  out.verdict = judging->request->run(ctx);
  if (out.verdict.refusal == Refusal::PlaintextOnStrictPort) {
    // A reload made this port STRICT while this plaintext keep-alive connection was open.
    report_.connection_refused(side.source, side.listen_port, Refusal::PlaintextOnStrictPort,
                               "mTLS is now required (STRICT): plaintext keep-alive connection closed at its "
                               "next request, which was not forwarded");
    return false;
  }
  tell_grpc_caller_to_authenticate(request, out.verdict);
  out.decision = out.verdict.allow ? std::move(ctx.decision) : out.verdict;
  if (ctx.pending_custom && !out.verdict.allow) {
    out.pending = std::move(ctx.pending_custom);
    return true;  // counted once the provider has answered (ask_provider)
  }
  report_.count_decision(series, out.decision, out.verdict.allow);
  return true;
}

net::awaitable<void> Enforcement::ask_provider(http::Request& request, const HttpSide& side,
                                               std::string_view own_principal, const extauthz::CheckBody& body,
                                               Worker& worker, Judgement& out) {
  std::shared_ptr<PendingCustom> pending = std::move(out.pending);
  const policy::ExtensionProvider& provider = *pending->provider;
  const auto start = std::chrono::steady_clock::now();
  const ExtAuthzQuery query{request, side, own_principal, &body};  // named: not a temporary in co_await (gcc 12)
  // A provider whose service is a mesh workload is called over mTLS, as any call into the mesh.
  std::optional<ProviderInMesh> in_mesh;
  if (auto published = policy_.current(); published && published->registry) {
    if (auto match = provider_in_mesh(*published->registry, provider))
      in_mesh.emplace(ProviderInMesh{published->registry, *match, worker.upstreams, config_.outlier});
  }
  const extauthz::CheckResult result =
      co_await ext_authz_.check(provider, query, worker.ext_authz, in_mesh ? &*in_mesh : nullptr);
  Verdict::ExtAuthzCall call;
  call.provider = provider.name;
  call.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const std::string who = "ext_authz provider \"" + provider.name + "\" (CUSTOM policy " +
                          pending->pending.policy.value_or("?") +
                          (pending->pending.rule ? " rule " + std::to_string(*pending->pending.rule) : "") + ")";
  Verdict decision;
  auto allowed = [&](const std::string& why) {
    decision = pending->resume(request);
    if (decision.allow) {
      if (!decision.policy) {  // no ALLOW policy decided: the provider's allow is the reason
        decision.policy = pending->pending.policy;
        decision.rule = pending->pending.rule;
        decision.action = policy::DecidingAction::Custom;
      }
      decision.reason = why + "; " + decision.reason;
    }
  };
  switch (result.kind) {
    case extauthz::CheckResult::Kind::Allow:
      call.outcome = Verdict::ExtAuthzCall::Outcome::Allowed;
      extauthz::apply_upstream_mutations(result, request.headers);
      allowed("allowed by " + who);
      if (decision.allow) {
        for (const auto& h : result.downstream_headers) decision.response_headers.push_back(h);
      }
      break;
    case extauthz::CheckResult::Kind::Deny:
      call.outcome = Verdict::ExtAuthzCall::Outcome::Denied;
      decision = pending->pending;
      decision.allow = false;
      decision.status = result.status;
      decision.body = result.body;
      decision.response_headers = result.downstream_headers;
      decision.reason = "denied by " + who + ": HTTP " + std::to_string(result.status);
      break;
    case extauthz::CheckResult::Kind::Error: {
      call.outcome =
          result.timed_out ? Verdict::ExtAuthzCall::Outcome::Timeout : Verdict::ExtAuthzCall::Outcome::Error;
      call.error = result.error;
      const auto on_error = extauthz::on_error(provider);
      if (on_error.allow) {
        allowed(who + " failed (" + result.error + "): failOpen allows");
      } else {
        decision = pending->pending;
        decision.allow = false;
        decision.status = on_error.status;
        decision.body.clear();
        decision.response_headers.clear();
        decision.reason = who + " failed (" + result.error + "): denied with statusOnError " +
                          std::to_string(on_error.status);
      }
      break;
    }
  }
  tell_grpc_caller_to_authenticate(request, decision);
  decision.ext_authz = std::move(call);
  out.decision = decision;
  out.verdict = decision.allow ? Verdict::pass() : std::move(decision);
  report_.count_decision(worker.series, out.decision, out.verdict.allow);
  report_.ext_authz_call(*out.decision.ext_authz);
}

}  // namespace mg::proxy
