#include "policy/load.h"

#include <algorithm>
#include <filesystem>

#include "common/files.h"
#include "policy/parse.h"

namespace mg::policy {

Result<ResourceSet> load_resource_files(const std::vector<std::string>& paths, std::string_view ns) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const auto& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<std::string> inside;
      for (const auto& entry : fs::directory_iterator(path, ec)) {
        const auto ext = entry.path().extension().string();
        if (entry.is_regular_file(ec) && (ext == ".yaml" || ext == ".yml")) inside.push_back(entry.path().string());
      }
      if (ec) return fail("policy.io", path + ": " + ec.message());
      std::sort(inside.begin(), inside.end());
      files.insert(files.end(), inside.begin(), inside.end());
    } else {
      files.push_back(path);
    }
  }
  ResourceSet all;
  for (const auto& file : files) {
    auto text = files::read_file_or_stdin(file);
    if (!text) return fail("policy.io", file + ": " + text.error().message);
    auto parsed = parse_resources(*text, file == "-" ? "<stdin>" : file, ns);
    if (!parsed) return fail(parsed.error());
    all.append(std::move(*parsed));
  }
  return all;
}

}  // namespace mg::policy
