// common/files.h — whole-file reads, crash-safe writes, and the stamp a poller compares. Secrets
// are written 0600 from the first byte (never chmod-after-write) and replaced atomically, so a
// crash never leaves a half-written key or certificate behind.
#pragma once

#include <string>
#include <sys/types.h>

#include "common/result.h"

namespace mg::files {

Result<std::string> read_file(const std::string& path);
// read_file(), except that "-" reads standard input to its end (kubectl's `-f -`).
Result<std::string> read_file_or_stdin(const std::string& path);

// Writes to a temporary file in the same directory, fsyncs, then renames over `path`.
Status write_file_atomic(const std::string& path, const std::string& data, mode_t mode);

// Refuses a private-key file that group or others can read (or that is not a regular file).
Status check_private_key_permissions(const std::string& path);

// Creates `path` (and parents) if missing, with `mode` for the directories it creates.
Status make_dirs(const std::string& path, mode_t mode = 0755);

bool exists(const std::string& path);

// What a poller compares to notice that a file was replaced (rename or rewrite): modification
// time, size and inode; all zero when the file cannot be read (so its return is a change too).
struct FileStamp {
  time_t mtime = 0;
  off_t size = 0;
  ino_t inode = 0;
  bool operator==(const FileStamp&) const = default;
};
FileStamp stamp_of(const std::string& path);

}  // namespace mg::files
