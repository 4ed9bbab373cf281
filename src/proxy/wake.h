// proxy/wake.h — one coroutine waiting for another's signal on a worker's loop: a Wake (an HTTP/2
// stream's "bytes came", "room to write", a connection's "writer idle"), a wait on it with an
// optional deadline, and the DeadlineWatch that keeps many waits' deadlines on one timer.
// A waiting coroutine is parked: its completion handler is kept by the loop's ParkedWaits (an
// Asio service), not by the Wake. A wake hands it to the end of the loop turn
// (proxy/turn_end.h), where it resumes beside the turn's other deferred work. Parked rather than
// waiting on a timer cancelled by the wake: a timer's wait and cancel cost ≈ 1,100 instructions,
// and its completion a separate pass through the scheduler (a poll of the reactor) per wake.
// Kept by the loop's service, not the Wake, because the Wake's owner is usually kept alive by the
// waiting coroutine itself: when the loop is destroyed with waits still parked, the service
// destroys them — and with them their coroutines — as Asio destroys operations still pending.
// Everything runs on the loop's thread.
// Owns: the wake state, the parked waits of a loop, the deadlines of a connection's waits.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <memory>
#include <vector>

#include "proxy/net.h"

namespace mg::proxy {

class Wake;
class DeadlineWatch;

namespace detail {

// A suspended wait_for: its coroutine's handler, in the loop's list.
struct ParkedWait {
  virtual ~ParkedWait() = default;
  // Runs the handler: the coroutine resumes. Consumes the handler.
  virtual void resume() = 0;
  ParkedWait* prev = nullptr;
  ParkedWait* next = nullptr;
  Wake* wake = nullptr;  // cleared when the Wake goes first
  bool due = false;      // woken or expired: its resume is deferred to the turn's end
};

// The parked waits of one loop (io_context). Destroys those still parked when the loop goes.
class ParkedWaits final : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;
  explicit ParkedWaits(asio::execution_context& context) : asio::execution_context::service(context) {}
  ~ParkedWaits() override { shutdown(); }
  // The loop's own, found once per thread and loop.
  static ParkedWaits& of(const asio::any_io_executor& ex);
  void add(std::unique_ptr<ParkedWait> wait);
  // Takes `wait` out of the list: the caller owns it again.
  std::unique_ptr<ParkedWait> remove(ParkedWait* wait);

 private:
  void shutdown() override;
  ParkedWait* head_ = nullptr;
};

}  // namespace detail

// Wakes one waiting coroutine; a wake that comes before the wait is remembered.
class Wake {
 public:
  using Clock = std::chrono::steady_clock;
  // With a watch, a wait may have a deadline (one timer for many waits).
  explicit Wake(const asio::any_io_executor& ex, DeadlineWatch* watch = nullptr) : ex_(ex), watch_(watch) {}
  // A wait still parked stays with the loop, never resumed, until the loop goes (a coroutine
  // waiting on a Wake keeps the Wake's owner alive; one that did not would find it gone).
  ~Wake();
  Wake(const Wake&) = delete;
  Wake& operator=(const Wake&) = delete;
  void notify() {
    pending_ = true;
    if (parked_) make_due();
  }

 private:
  friend net::awaitable<bool> wait_for(Wake& wake, Clock::time_point deadline);
  friend class DeadlineWatch;
  friend struct ParkOp;
  friend class detail::ParkedWaits;
  // The watch's deadline passed: the wait ends, not woken.
  void expire() {
    expired_ = true;
    if (parked_) make_due();
  }
  // Resumes the parked wait at the turn's end (once, however often it is woken meanwhile).
  void make_due();

  asio::any_io_executor ex_;
  detail::ParkedWaits* parked_waits_ = nullptr;  // the loop's, found by the first wait
  detail::ParkedWait* parked_ = nullptr;         // the wait in progress, kept there
  bool pending_ = false;
  DeadlineWatch* watch_;
  Clock::time_point deadline_ = Clock::time_point::max();  // of the watched wait in progress
  size_t watch_index_ = 0;                                 // its place in the watch's list
  bool expired_ = false;
};

// The deadlines of one connection's waiting wakes, on one net::Watchdog: a wait registers its
// deadline here. A timer armed per wait (a response head's upstream timeout, a body's idle
// timeout) would be the soonest of the worker's timers every time, and Asio re-arms the kernel
// timer (timerfd_settime) for each; the watchdog's timer is moved only when a deadline comes
// earlier than the one it waits for, and when it fires it ends the waits that are due and waits
// for the next deadline.
class DeadlineWatch {
 public:
  using Clock = Wake::Clock;
  explicit DeadlineWatch(const asio::any_io_executor& ex);
  DeadlineWatch(const DeadlineWatch&) = delete;
  DeadlineWatch& operator=(const DeadlineWatch&) = delete;

  void add(Wake& wake, Clock::time_point deadline);
  void remove(Wake& wake);

 private:
  void expire_due();

  std::vector<Wake*> waiting_;
  Clock::time_point next_ = Clock::time_point::max();  // what the watchdog waits for
  net::Watchdog watchdog_;
};

// Waits for `wake` until `deadline`: true when woken, false when the deadline passed. A deadline
// is kept by the wake's watch: on a Wake without one, a wait with a deadline ends at once, false.
net::awaitable<bool> wait_for(Wake& wake, Wake::Clock::time_point deadline = Wake::Clock::time_point::max());

}  // namespace mg::proxy
