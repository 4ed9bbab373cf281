// telemetry/access_log.h — one JSON object per line, written whole (one write per line under a
// lock, flushed), to stdout or an append-only file. Lines from concurrent workers never interleave.
#pragma once

#include <cstdio>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

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

 private:
  AccessLog(std::FILE* file, bool owned) : file_(file), owned_(owned) {}
  std::mutex mutex_;
  std::FILE* file_;
  bool owned_;
};

// RFC 3339 UTC timestamp with milliseconds, e.g. "2026-11-23T08:45:17.123Z".
std::string now_rfc3339();

}  // namespace mg::telemetry
