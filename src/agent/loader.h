// agent/loader.h — loads the control-plane agent (libmeshguard-agent.so, which carries gRPC and
// protobuf) into meshguard-proxy only when --control-plane is given: a standalone proxy stays
// small (the data-plane RSS goal) and never maps those libraries.
//
// The library is looked up as $MESHGUARD_AGENT_LIBRARY if set, else beside the executable
// (/proc/self/exe's directory), which is where the build and an install put it.
#pragma once

#include <memory>

#include "agent/agent.h"
#include "common/result.h"

namespace mg::agent {

inline constexpr const char* kAgentLibrary = "libmeshguard-agent.so";
inline constexpr const char* kAgentFactory = "mg_agent_create";

// The factory the library exports (extern "C"); same compiler and standard library on both sides.
using AgentFactory = Agent* (*)(AgentOptions* options, std::string* error);

Result<std::unique_ptr<Agent>> load_agent(AgentOptions options);

}  // namespace mg::agent
