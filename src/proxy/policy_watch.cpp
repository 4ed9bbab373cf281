#include "proxy/policy_watch.h"

#include <sys/stat.h>
#include <algorithm>
#include <filesystem>

#include "common/files.h"
#include "crypto/openssl.h"

namespace mg::proxy {
namespace {

Result<std::vector<std::string>> policy_file_names(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return fail("policy.io", dir + ": not a readable directory");
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const auto ext = entry.path().extension().string();
    std::error_code type_ec;
    if (entry.is_regular_file(type_ec) && (ext == ".yaml" || ext == ".yml")) {
      names.push_back(entry.path().filename().string());
    }
  }
  if (ec) return fail("policy.io", dir + ": " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

Result<std::vector<PolicyFileStamp>> stat_policy_dir(const std::string& dir) {
  auto names = policy_file_names(dir);
  if (!names) return fail(names.error());
  std::vector<PolicyFileStamp> out;
  for (auto& name : *names) {
    struct stat st {};
    PolicyFileStamp s;
    // A file that vanished between listing and stat keeps an all-zero stamp: still a change.
    if (::stat((dir + "/" + name).c_str(), &st) == 0) {
      s.size = static_cast<uint64_t>(st.st_size);
      s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
      s.inode = st.st_ino;
    }
    s.name = std::move(name);
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<PolicyFileDigest>> digest_policy_dir(const std::string& dir) {
  auto names = policy_file_names(dir);
  if (!names) return fail(names.error());
  std::vector<PolicyFileDigest> out;
  for (auto& name : *names) {
    auto text = files::read_file(dir + "/" + name);
    if (!text) return fail("policy.io", dir + "/" + name + ": " + text.error().message);
    out.push_back(digest_policy_text(std::move(name), *text));
  }
  return out;
}

PolicyFileDigest digest_policy_text(std::string name, std::string_view text) {
  auto digest = crypto::sha256(text);
  return {std::move(name), crypto::hex(digest.data(), digest.size())};
}

std::string combined_policy_hash(const std::vector<PolicyFileDigest>& files) {
  std::string all;
  for (const auto& f : files) {
    all += f.name;
    all.push_back('\0');
    all += f.sha256;
    all.push_back('\n');
  }
  auto digest = crypto::sha256(all);
  return crypto::hex(digest.data(), digest.size());
}

}  // namespace mg::proxy
