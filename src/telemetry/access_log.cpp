#include "telemetry/access_log.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>

#include "common/time.h"

namespace mg::telemetry {

Result<std::unique_ptr<AccessLog>> AccessLog::open(const std::string& path) {
  if (path.empty() || path == "-") return std::unique_ptr<AccessLog>(new AccessLog(stdout, false));
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (!f) return fail("accesslog.open", "cannot open access log " + path + ": " + std::strerror(errno));
  return std::unique_ptr<AccessLog>(new AccessLog(f, true));
}

AccessLog::~AccessLog() {
  if (owned_) std::fclose(file_);
}

namespace {

thread_local AccessLog::TurnBatch* this_thread_batch = nullptr;
constexpr size_t kMaxBatchBytes = 64 * 1024;

}  // namespace

void AccessLog::write(const nlohmann::json& entry) {
  // Invalid UTF-8 from the wire (e.g. a path) must not throw: replace it.
  std::string line = entry.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  write_line(line);
}

void AccessLog::write_line(std::string& line) {
  line += '\n';
  TurnBatch* batch = this_thread_batch;
  if (!batch) {
    write_now(line);
    return;
  }
  if (batch->log_ != this) {
    TurnBatch::flush();  // lines of another log (another proxy in this process) go out first
    batch->log_ = this;
  }
  batch->pending_ += line;
  if (batch->pending_.size() >= kMaxBatchBytes) {
    TurnBatch::flush();
  } else if (!batch->scheduled_) {
    batch->scheduled_ = true;
    batch->schedule_flush_();
  }
}

void AccessLog::write_now(std::string_view bytes) {
  std::lock_guard lock(mutex_);
  std::fwrite(bytes.data(), 1, bytes.size(), file_);
  std::fflush(file_);
}

AccessLog::TurnBatch::TurnBatch(std::function<void()> schedule_flush) : schedule_flush_(std::move(schedule_flush)) {
  this_thread_batch = this;
}

AccessLog::TurnBatch::~TurnBatch() {
  flush();
  this_thread_batch = nullptr;
}

void AccessLog::TurnBatch::flush() {
  TurnBatch* batch = this_thread_batch;
  if (!batch) return;
  batch->scheduled_ = false;
  if (batch->pending_.empty()) return;
  batch->log_->write_now(batch->pending_);
  batch->pending_.clear();
}

std::string& AccessLog::scratch() {
  thread_local std::string line;
  return line;
}

std::string now_rfc3339() {
  std::array<char, 64> buf;
  return std::string(now_rfc3339(buf));
}

std::string_view now_rfc3339(std::array<char, 64>& buf) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  // The date and time of day change once a second: formatted then, per thread, not per line.
  thread_local std::time_t cached_secs = -1;
  thread_local char cached[20];  // "YYYY-MM-DDTHH:MM:SS"
  if (secs != cached_secs) {
    if (!timefmt::utc_seconds(secs, cached)) return {};  // a year past 9999
    cached_secs = secs;
  }
  int millis = static_cast<int>(ms % 1000);
  std::memcpy(buf.data(), cached, 19);
  buf[19] = '.';
  buf[20] = static_cast<char>('0' + millis / 100);
  buf[21] = static_cast<char>('0' + millis / 10 % 10);
  buf[22] = static_cast<char>('0' + millis % 10);
  buf[23] = 'Z';
  return std::string_view(buf.data(), 24);
}

}  // namespace mg::telemetry
