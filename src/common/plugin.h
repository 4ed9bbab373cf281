// common/plugin.h — finding and loading one of meshguard's own dlopen'ed modules (the
// control-plane agent, the gRPC ext_authz client): $ENV if set, else the library beside the
// executable (/proc/self/exe's directory), which is where the build and an install put them.
// A module is never unloaded: its threads and objects live until the process ends.
#pragma once

#include "common/result.h"

namespace mg::plugin {

// The address of `symbol` in the module; errors carry `error_code` and say which file and why.
Result<void*> load_symbol(const char* env_var, const char* library, const char* symbol,
                          const char* error_code, const char* what);

}  // namespace mg::plugin
