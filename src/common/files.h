// common/files.h — whole-file reads and crash-safe writes. Secrets are written 0600 from the
// first byte (never chmod-after-write) and replaced atomically, so a crash never leaves a
// half-written key or certificate behind.
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

}  // namespace mg::files
