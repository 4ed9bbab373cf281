#include "proxy/turn_end.h"

#include <utility>

namespace mg::proxy {

namespace {
thread_local TurnEnd* this_thread_turn_end = nullptr;
}  // namespace

TurnEnd::TurnEnd(asio::io_context& io) : io_(io) { this_thread_turn_end = this; }

TurnEnd::~TurnEnd() {
  if (this_thread_turn_end == this) this_thread_turn_end = nullptr;
}

void TurnEnd::defer(const asio::any_io_executor& ex, Work work) {
  TurnEnd* turn = this_thread_turn_end;
  if (turn == nullptr) {
    asio::post(ex, std::move(work));
    return;
  }
  turn->queue_.push_back(std::move(work));
  if (turn->scheduled_) return;
  turn->scheduled_ = true;
  // The posted pass finds its TurnEnd through the thread, not a pointer it keeps: a loop run
  // again after this TurnEnd went (a test's) runs nothing stale.
  asio::post(turn->io_, [] {
    if (TurnEnd* now = this_thread_turn_end) now->run();
  });
}

void TurnEnd::run() {
  while (!queue_.empty()) {
    running_.swap(queue_);
    for (Work& work : running_) work();
    running_.clear();
  }
  scheduled_ = false;
}

}  // namespace mg::proxy
