#include "proxy/wake.h"

#include <algorithm>
#include <utility>

#include "proxy/turn_end.h"

namespace mg::proxy {

namespace detail {

ParkedWaits& ParkedWaits::of(const asio::any_io_executor& ex) {
  return asio::use_service<ParkedWaits>(
      asio::query(ex, asio::execution::context_as<asio::execution_context&>));
}

void ParkedWaits::add(std::unique_ptr<ParkedWait> wait) {
  ParkedWait* w = wait.release();
  w->prev = nullptr;
  w->next = head_;
  if (head_) head_->prev = w;
  head_ = w;
}

std::unique_ptr<ParkedWait> ParkedWaits::remove(ParkedWait* wait) {
  if (wait->prev) {
    wait->prev->next = wait->next;
  } else {
    head_ = wait->next;
  }
  if (wait->next) wait->next->prev = wait->prev;
  wait->prev = wait->next = nullptr;
  return std::unique_ptr<ParkedWait>(wait);
}

void ParkedWaits::shutdown() {
  // The loop is going: each wait still parked is destroyed unrun, its coroutine with it. That may
  // destroy Wakes with waits of their own parked here: each wait leaves the list before it goes.
  while (head_) {
    std::unique_ptr<ParkedWait> wait = remove(head_);
    if (wait->wake) wait->wake->parked_ = nullptr;
  }
}

}  // namespace detail

namespace {

template <class Handler>
struct ParkedHandler final : detail::ParkedWait {
  explicit ParkedHandler(Handler h) : handler(std::move(h)) {}
  void resume() override { std::move(handler)(); }
  Handler handler;
};

}  // namespace

// Parks the coroutine awaiting it, its handler kept by the loop's ParkedWaits.
struct ParkOp {
  Wake& wake;
  template <class Handler>
  void operator()(Handler handler) const {
    if (!wake.parked_waits_) wake.parked_waits_ = &detail::ParkedWaits::of(wake.ex_);
    auto wait = std::make_unique<ParkedHandler<Handler>>(std::move(handler));
    wake.parked_ = wait.get();
    wait->wake = &wake;
    wake.parked_waits_->add(std::move(wait));
  }
};

Wake::~Wake() {
  if (parked_) parked_->wake = nullptr;
}

void Wake::make_due() {
  detail::ParkedWait* wait = parked_;
  if (wait->due) return;
  wait->due = true;
  // The pass runs only while the loop does, and the wait leaves the loop's list only here or when
  // the loop goes: `wait` is still there when this runs.
  TurnEnd::defer(ex_, [wait, waits = parked_waits_] {
    std::unique_ptr<detail::ParkedWait> owned = waits->remove(wait);
    if (owned->wake) owned->wake->parked_ = nullptr;
    owned->resume();
  });
}

net::awaitable<bool> wait_for(Wake& wake, Wake::Clock::time_point deadline) {
  if (!wake.pending_) {
    const bool timed = deadline != Wake::Clock::time_point::max();
    if (timed && wake.watch_ == nullptr) co_return false;  // nothing would end it at its deadline
    if (timed) wake.watch_->add(wake, deadline);
    co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(ParkOp{wake}, asio::use_awaitable);
    if (timed) wake.watch_->remove(wake);
    const bool expired = std::exchange(wake.expired_, false);
    if (!wake.pending_ && expired) co_return false;  // the deadline passed
  }
  wake.pending_ = false;
  co_return true;
}

DeadlineWatch::DeadlineWatch(const asio::any_io_executor& ex) : watchdog_(ex, [this] { expire_due(); }) {}

void DeadlineWatch::add(Wake& wake, Clock::time_point deadline) {
  wake.deadline_ = deadline;
  wake.watch_index_ = waiting_.size();
  waiting_.push_back(&wake);
  if (deadline < next_) {
    next_ = deadline;
    watchdog_.arm_at(deadline);  // moves Asio's timer only when it waited for a later one
  }
}

void DeadlineWatch::remove(Wake& wake) {
  Wake* last = waiting_.back();
  waiting_[wake.watch_index_] = last;
  last->watch_index_ = wake.watch_index_;
  waiting_.pop_back();
}

void DeadlineWatch::expire_due() {
  // Waits whose deadline passed end (each leaves the list when its coroutine resumes); the
  // watchdog then waits for the soonest deadline left. One whose wake already came left the list.
  const auto now = Clock::now();
  next_ = Clock::time_point::max();
  for (Wake* wake : waiting_) {
    if (wake->expired_) continue;
    if (wake->deadline_ <= now) {
      wake->expire();
    } else {
      next_ = std::min(next_, wake->deadline_);
    }
  }
  if (next_ != Clock::time_point::max()) watchdog_.arm_at(next_);
}

}  // namespace mg::proxy
