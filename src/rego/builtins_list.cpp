// rego/builtins_list.cpp — the one list of built-in topics. Each topic file defines
// `void register_<topic>(Registry&)`; adding a topic is one declaration and one call here.
#include "rego/builtins.h"

namespace mg::rego {

void register_core(Registry& r);  // builtins_core.cpp: operators, count, membership, print

void register_all_builtins(Registry& r) { register_core(r); }

}  // namespace mg::rego
