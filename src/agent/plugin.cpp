// agent/plugin.cpp — the entry point of libmeshguard-agent.so (see agent/loader.h).
#include <string>

#include "agent/agent.h"
#include "agent/loader.h"

extern "C" __attribute__((visibility("default"))) mg::agent::Agent* mg_agent_create(mg::agent::AgentOptions* options,
                                                                                    std::string* error) {
  auto created = mg::agent::Agent::create(std::move(*options));
  if (!created) {
    *error = created.error().to_string();
    return nullptr;
  }
  return created->release();
}

// The loader checks the factory's type at compile time against this definition.
static_assert(std::is_same_v<decltype(&mg_agent_create), mg::agent::AgentFactory>);
