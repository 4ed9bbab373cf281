#include "common/plugin.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <string>

namespace mg::plugin {

Result<void*> load_symbol(const char* env_var, const char* library, const char* symbol,
                          const char* error_code, const char* what) {
  std::string path;
  if (const char* env = std::getenv(env_var); env && *env) {
    path = env;
  } else {
    char exe[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return fail(error_code, "cannot find the executable's directory");
    std::string dir(exe, static_cast<size_t>(n));
    path = dir.substr(0, dir.rfind('/')) + "/" + library;
  }
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    return fail(error_code,
                std::string("cannot load ") + what + " " + path + ": " + (why ? why : "unknown error"));
  }
  void* address = ::dlsym(handle, symbol);
  if (!address) return fail(error_code, path + " has no " + symbol);
  return address;
}

}  // namespace mg::plugin
