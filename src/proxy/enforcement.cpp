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

}  // namespace mg::proxy
