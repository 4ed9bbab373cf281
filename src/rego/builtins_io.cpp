// rego/builtins_io.cpp — built-ins that perform I/O or reach outside the evaluation (network,
// runtime configuration, the policy source). They are declared, not offered: a policy calling one
// is refused at compile time with an error naming the call, so nothing on the request path can
// block on the network or leak the host's configuration.
#include "rego/builtins.h"

namespace mg::rego {

void register_io(Registry& r) {
  struct Refused {
    const char* name;
    int arity;
  };
  static const Refused kRefused[] = {
      {"http.send", 1},           // outbound HTTP
      {"net.lookup_ip_addr", 1},  // DNS
      {"opa.runtime", 0},         // host configuration and environment
      {"rego.parse_module", 2},   // compiling policy text at evaluation time
  };
  for (const Refused& f : kRefused) {
    BuiltinDecl d;
    d.name = f.name;
    d.arity = f.arity;
    d.io = true;
    r.add(std::move(d));
  }
}

}  // namespace mg::rego
