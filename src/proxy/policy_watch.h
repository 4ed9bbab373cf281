// proxy/policy_watch.h — noticing that policyDir changed, without inotify: a cheap stat pass
// (names, sizes, mtimes, inodes of *.yaml / *.yml) every poll, and a content hash (SHA-256 of
// every file, combined) when the stat pass differs or every few polls. The content hash is also
// the policy version shown in /config_dump, so the same files always show the same version hash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mg::proxy {

struct PolicyFileStamp {
  std::string name;  // file name inside the directory
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint64_t inode = 0;
  bool operator==(const PolicyFileStamp&) const = default;
};

struct PolicyFileDigest {
  std::string name;
  std::string sha256;  // hex of the content
};

// The policy files of `dir` (the loader's selection: regular *.yaml / *.yml, not recursive),
// sorted by name. An unreadable or missing directory is an error.
Result<std::vector<PolicyFileStamp>> stat_policy_dir(const std::string& dir);
Result<std::vector<PolicyFileDigest>> digest_policy_dir(const std::string& dir);
// The digest of one file's content, as digest_policy_dir makes it (for text held in memory).
PolicyFileDigest digest_policy_text(std::string name, std::string_view text);

// One hex SHA-256 over the (name, content digest) list: independent of mtimes, changed by any
// rename, edit, addition or removal. Pure.
std::string combined_policy_hash(const std::vector<PolicyFileDigest>& files);

}  // namespace mg::proxy
