// policy/load.h — the thin file loader in front of the pure parser: reads files and
// directories (every *.yaml / *.yml inside, sorted by name, not recursive) and parses each
// with its path as the error source. All or nothing: one bad file rejects the whole load.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "policy/resources.h"

namespace mg::policy {

Result<ResourceSet> load_resource_files(const std::vector<std::string>& paths);

}  // namespace mg::policy
