// telemetry/access_log.h — one JSON object per line, written whole (one write per line under a
// lock, flushed), to stdout or an append-only file. Lines from concurrent workers never interleave.
#pragma once

#include <array>
#include <cstdio>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mg::telemetry {

class AccessLog {
 public:
  // "" or "-" means stdout.
  static Result<std::unique_ptr<AccessLog>> open(const std::string& path);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void write(const nlohmann::json& entry);
  // `line` is one complete JSON object (telemetry/json_line.h); a newline is appended to it.
  void write_line(std::string& line);
  // This thread's reused line buffer: a request's line costs no allocation once it has grown.
  static std::string& scratch();

 private:
  AccessLog(std::FILE* file, bool owned) : file_(file), owned_(owned) {}
  std::mutex mutex_;
  std::FILE* file_;
  bool owned_;
};

// RFC 3339 UTC timestamp with milliseconds, e.g. "2026-11-23T08:45:17.123Z".
std::string now_rfc3339();
// The same text written into `buf`, without an allocation.
std::string_view now_rfc3339(std::array<char, 64>& buf);

}  // namespace mg::telemetry
