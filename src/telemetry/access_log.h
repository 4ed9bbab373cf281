// telemetry/access_log.h — one JSON object per line, written whole (under a lock, flushed), to
// stdout or an append-only file. Lines from concurrent workers never interleave. An event-loop
// thread may gather its lines and write them once per loop turn (TurnBatch): at saturation one
// write(2) per line was a measurable share of a request's CPU.
#pragma once

#include <array>
#include <cstdio>
#include <functional>
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

  // While a TurnBatch lives on a thread, that thread's lines are gathered and written together:
  // `schedule_flush` is called with the first line of a turn and must arrange for flush() to run
  // on this thread once the turn's ready events are handled (a proxy worker posts it to its
  // io_context, behind the handlers already queued). A batch past 64 KiB is written at once; the
  // destructor writes what is left, so nothing is lost when the loop stops.
  class TurnBatch {
   public:
    explicit TurnBatch(std::function<void()> schedule_flush);
    ~TurnBatch();
    TurnBatch(const TurnBatch&) = delete;
    TurnBatch& operator=(const TurnBatch&) = delete;
    static void flush();  // this thread's gathered lines

   private:
    friend class AccessLog;
    std::function<void()> schedule_flush_;
    AccessLog* log_ = nullptr;  // the log the gathered lines belong to
    std::string pending_;
    bool scheduled_ = false;
  };

 private:
  AccessLog(std::FILE* file, bool owned) : file_(file), owned_(owned) {}
  void write_now(std::string_view bytes);
  std::mutex mutex_;
  std::FILE* file_;
  bool owned_;
};

// RFC 3339 UTC timestamp with milliseconds, e.g. "2026-11-23T08:45:17.123Z".
std::string now_rfc3339();
// The same text written into `buf`, without an allocation.
std::string_view now_rfc3339(std::array<char, 64>& buf);

}  // namespace mg::telemetry
