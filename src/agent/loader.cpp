#include "agent/loader.h"

#include <string>

#include "common/plugin.h"

namespace mg::agent {

Result<std::unique_ptr<Agent>> load_agent(AgentOptions options) {
  auto symbol = plugin::load_symbol("MESHGUARD_AGENT_LIBRARY", kAgentLibrary, kAgentFactory, "agent.load",
                                    "the control-plane agent");
  if (!symbol) return fail(symbol.error());
  auto factory = reinterpret_cast<AgentFactory>(*symbol);
  std::string error;
  Agent* agent = factory(&options, &error);
  if (!agent) return fail("agent.options", error);
  return std::unique_ptr<Agent>(agent);
}

}  // namespace mg::agent
