// proxy/poller.h — a task run every `interval` on an io_context until stopped: the certificate
// files' 1 s poll and policyDir's 250 ms poll. start() and stop() on the io_context's thread.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <optional>

namespace mg::proxy {

class Poller {
 public:
  void start(asio::io_context& io, std::chrono::milliseconds interval, std::function<void()> tick) {
    timer_.emplace(io);
    interval_ = interval;
    tick_ = std::move(tick);
    running_ = true;
    schedule();
  }
  // No tick runs after this (one already queued sees running_ cleared).
  void stop() {
    running_ = false;
    if (timer_) timer_->cancel();
  }

 private:
  void schedule() {
    timer_->expires_after(interval_);
    timer_->async_wait([this](std::error_code ec) {
      if (ec) return;
      tick_();
      if (running_) schedule();
    });
  }

  std::optional<asio::steady_timer> timer_;
  std::chrono::milliseconds interval_{0};
  std::function<void()> tick_;
  bool running_ = false;
};

}  // namespace mg::proxy
