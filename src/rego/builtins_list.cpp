// rego/builtins_list.cpp — the one list of built-in topics. Each topic file defines
// `void register_<topic>(Registry&)`; adding a topic is one declaration and one call here.
#include "rego/builtins.h"

namespace mg::rego {

void register_core(Registry& r);  // builtins_core.cpp: operators, count, membership, print
void register_strings(Registry& r);      // builtins_strings.cpp
void register_regex(Registry& r);        // builtins_regex.cpp
void register_glob(Registry& r);         // builtins_glob.cpp
void register_collections(Registry& r);  // builtins_collections.cpp: aggregates, array.*, object.*, sets
void register_types(Registry& r);        // builtins_types.cpp: type_name, is_*, to_number, units.*
void register_encoding(Registry& r);     // builtins_encoding.cpp: json.*, yaml.*, base64*, hex.*, urlquery.*
void register_net(Registry& r);          // builtins_net.cpp: net.cidr_*
void register_semver(Registry& r);       // builtins_semver.cpp
void register_time(Registry& r);         // builtins_time.cpp
void register_jwt(Registry& r);          // builtins_jwt.cpp: io.jwt.*
void register_crypto(Registry& r);       // builtins_crypto.cpp: crypto.* digests and HMACs
void register_io(Registry& r);           // builtins_io.cpp: print; I/O built-ins declared to be refused

void register_all_builtins(Registry& r) {
  register_core(r);
  register_strings(r);
  register_regex(r);
  register_glob(r);
  register_collections(r);
  register_types(r);
  register_encoding(r);
  register_net(r);
  register_semver(r);
  register_time(r);
  register_jwt(r);
  register_crypto(r);
  register_io(r);
}

}  // namespace mg::rego
