// rego/builtins_io.cpp — the evaluation's only ways out. print() writes one line to the context's
// sink (the CLI's stderr, the proxy's log), never failing the policy. Built-ins that perform I/O or
// reach outside the evaluation (network, runtime configuration, the policy source) are declared,
// not offered: a policy calling one is refused at compile time with an error naming the call, so
// nothing on the request path can block on the network or leak the host's configuration.
#include "rego/builtins.h"

namespace mg::rego {
namespace {

// OPA's print: operands separated by a space, strings as they are, other values in Rego syntax.
BuiltinResult print(std::span<const Value> args, BuiltinContext& ctx) {
  if (ctx.print) {
    std::string line;
    for (size_t i = 0; i < args.size(); ++i) {
      if (i) line += ' ';
      if (args[i].is_string()) {
        line += args[i].as_string();
      } else {
        args[i].append_rego_text(line);
      }
    }
    ctx.print->print(line);
  }
  return Value::boolean(true);
}

}  // namespace

void register_io(Registry& r) {
  r.add({"print", -1, print, false, false, false, {}});

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
