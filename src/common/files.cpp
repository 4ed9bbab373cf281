#include "common/files.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace mg::files {

namespace {
std::string errno_text() { return std::strerror(errno); }
}  // namespace

Result<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("file.open", "cannot open " + path + ": " + errno_text());
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string msg = "cannot read " + path + ": " + errno_text();
      ::close(fd);
      return fail("file.read", msg);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Result<std::string> read_file_or_stdin(const std::string& path) {
  return path == "-" ? read_file("/dev/stdin") : read_file(path);
}

Status write_file_atomic(const std::string& path, const std::string& data, mode_t mode) {
  std::filesystem::path target(path);
  std::string tmp = (target.parent_path() / ("." + target.filename().string() + ".tmpXXXXXX")).string();
  if (target.parent_path().empty()) tmp = "." + target.filename().string() + ".tmpXXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return fail("file.create", "cannot create temporary file for " + path + ": " + errno_text());
  // mkstemp creates 0600; widen only if asked, never narrow-after-write.
  if (::fchmod(fd, mode) != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return fail("file.chmod", "cannot set mode on " + path + ": " + errno_text());
  }
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string msg = "cannot write " + path + ": " + errno_text();
      ::close(fd);
      ::unlink(tmp.c_str());
      return fail("file.write", msg);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return fail("file.sync", "cannot flush " + path + ": " + errno_text());
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string msg = "cannot replace " + path + ": " + errno_text();
    ::unlink(tmp.c_str());
    return fail("file.rename", msg);
  }
  return {};
}

Status check_private_key_permissions(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail("file.open", "cannot open " + path + ": " + errno_text());
  if (!S_ISREG(st.st_mode)) return fail("key.not_regular", path + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail("key.permissions",
                "refusing private key " + path + ": mode " + mode +
                    " lets group/others read it; run chmod 600 " + path);
  }
  return {};
}

Status make_dirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return {};
  std::filesystem::path p(path);
  std::filesystem::path acc;
  for (const auto& part : p) {
    acc /= part;
    if (std::filesystem::is_directory(acc, ec)) continue;
    if (::mkdir(acc.c_str(), mode) != 0 && errno != EEXIST)
      return fail("file.mkdir", "cannot create directory " + acc.string() + ": " + errno_text());
  }
  return {};
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

FileStamp stamp_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {st.st_mtime, st.st_size, st.st_ino};
}

}  // namespace mg::files
