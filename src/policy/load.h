// policy/load.h — the thin file loader in front of the pure parser: reads files and
// directories (every *.yaml / *.yml inside, sorted by name, not recursive) and parses each
// with its path as the error source ("-" is standard input, named "<stdin>"). All or nothing:
// one bad file rejects the whole load. `ns` is kubectl's -n/--namespace (parse.h); of two
// documents naming one resource the later wins.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policy/resources.h"

namespace mg::policy {

Result<ResourceSet> load_resource_files(const std::vector<std::string>& paths, std::string_view ns = {});

}  // namespace mg::policy
