// proxy/buffer_pool.h — a worker's 16 KB read buffers, lent per burst of I/O and returned before
// a connection waits idle: an idle keep-alive or spliced connection then holds none (issue 5:
// 16 KB per idle connection). Only the worker's own thread touches its pool, so no lock.
#pragma once

#include <asio/buffer.hpp>
#include <cstddef>
#include <memory>
#include <vector>

namespace mg::proxy {

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kIdleRead = 1024;  // first read of a request: a typical head fits

class BufferPool {
 public:
  class Lease {
   public:
    Lease() = default;
    explicit Lease(BufferPool& pool) : pool_(&pool) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { release(); }
    // The whole buffer, taken from the pool on first use.
    asio::mutable_buffer get() {
      if (!buf_) buf_ = pool_->take();
      return asio::buffer(buf_.get(), kReadChunk);
    }
    const char* data() const { return buf_.get(); }
    void release() {
      if (buf_) pool_->give(std::move(buf_));
    }

   private:
    BufferPool* pool_ = nullptr;
    std::unique_ptr<char[]> buf_;
  };

  std::unique_ptr<char[]> take() {
    if (free_.empty()) return std::make_unique_for_overwrite<char[]>(kReadChunk);
    auto b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void give(std::unique_ptr<char[]> b) {
    if (free_.size() < kMaxFree) free_.push_back(std::move(b));
  }

 private:
  static constexpr size_t kMaxFree = 64;  // enough for a burst of concurrent requests per worker
  std::vector<std::unique_ptr<char[]>> free_;
};

}  // namespace mg::proxy
