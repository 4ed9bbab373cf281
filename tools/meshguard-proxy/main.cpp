// meshguard-proxy: the data-plane sidecar, standalone mode (config from a YAML file).
//   meshguard-proxy --config proxy.yaml [--workers N]
#include <cstdio>
#include <cstring>
#include <string>

#include "proxy/config.h"
#include "proxy/proxy.h"

namespace {
int usage(const char* why) {
  std::fprintf(stderr, "meshguard-proxy: %s\nusage: meshguard-proxy --config FILE [--workers N]\n", why);
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  long workers = -1;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--config" || arg == "-c") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg == "--workers" && i + 1 < argc) {
      char* end = nullptr;
      workers = std::strtol(argv[++i], &end, 10);
      if (!end || *end != '\0' || workers < 1 || workers > 256) return usage("--workers must be 1..256");
    } else if (arg == "--help" || arg == "-h") {
      return usage("the meshguard data-plane proxy");
    } else {
      return usage(("unknown argument: " + arg).c_str());
    }
  }
  if (config_path.empty()) return usage("--config is required");
  auto config = mg::proxy::load_config(config_path);
  if (!config) {
    std::fprintf(stderr, "meshguard-proxy: %s\n", config.error().to_string().c_str());
    return 1;
  }
  if (workers > 0) config->workers = static_cast<uint32_t>(workers);
  auto proxy = mg::proxy::Proxy::create(std::move(*config));
  if (!proxy) {
    std::fprintf(stderr, "meshguard-proxy: %s\n", proxy.error().to_string().c_str());
    return 1;
  }
  if (auto st = (*proxy)->start(); !st) {
    std::fprintf(stderr, "meshguard-proxy: %s\n", st.error().to_string().c_str());
    return 1;
  }
  return (*proxy)->run();
}
