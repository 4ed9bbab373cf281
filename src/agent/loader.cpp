#include "agent/loader.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <string>

namespace mg::agent {

Result<std::unique_ptr<Agent>> load_agent(AgentOptions options) {
  std::string path;
  if (const char* env = std::getenv("MESHGUARD_AGENT_LIBRARY"); env && *env) {
    path = env;
  } else {
    char exe[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return fail("agent.load", "cannot find the executable's directory");
    std::string dir(exe, static_cast<size_t>(n));
    path = dir.substr(0, dir.rfind('/')) + "/" + kAgentLibrary;
  }
  // Never closed: the agent's threads and objects live until the process ends.
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    return fail("agent.load", "cannot load the control-plane agent " + path + ": " + (why ? why : "unknown error"));
  }
  auto factory = reinterpret_cast<AgentFactory>(::dlsym(handle, kAgentFactory));
  if (!factory) return fail("agent.load", path + " has no " + kAgentFactory);
  std::string error;
  Agent* agent = factory(&options, &error);
  if (!agent) return fail("agent.options", error);
  return std::unique_ptr<Agent>(agent);
}

}  // namespace mg::agent
