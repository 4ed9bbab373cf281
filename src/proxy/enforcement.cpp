#include "proxy/enforcement.h"

#include "proxy/policy_state.h"
#include "proxy/report.h"

namespace mg::proxy {

Enforcement::Enforcement(const ProxyConfig& config, const PolicyState& policy, Report& report)
    : config_(config), policy_(policy), report_(report) {}

Judgement Enforcement::judge_connection(size_t index, const std::string& source,
                                        const std::optional<tls::PeerIdentity>& peer) {
  const InboundPort& port = config_.inbound[index];
  ConnectionContext ctx{config_.workload, policy_.port_mode(index), port.port, source, peer, {},
                        port.app_port};
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
  const MtlsMode mode = policy_.port_mode(side.inbound_index);
  if (mode == MtlsMode::Strict && !side.peer) {
    // A reload made this port STRICT while this plaintext keep-alive connection was open.
    report_.connection_refused("inbound", side.source, side.listen_port, "plaintext_on_strict_port",
                               "mTLS is now required (STRICT): plaintext keep-alive connection closed at its "
                               "next request, which was not forwarded");
    return false;
  }
  RequestContext ctx{request, config_.workload,      mode, side.listen_port, side.source, side.peer, {},
                     {},      side.inbound->app_port};
  auto judging = policy_.chains().current();
  out.generation = judging->generation;
  ctx.judged_at = judged_at;
  out.verdict = judging->request->run(ctx);
  out.decision = out.verdict.allow ? std::move(ctx.decision) : out.verdict;
  report_.count_decision(series, out.decision, out.verdict.allow);
  return true;
}

}  // namespace mg::proxy
