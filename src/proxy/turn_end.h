// proxy/turn_end.h — work a worker runs once the handlers already ready in this loop turn have
// run: an HTTP/2 connection's writes (what its streams queued in the turn goes out in one write),
// the access log's gathered lines, a stream's coroutine started from inside a dispatch. All of it
// rides on one post per turn. Each post costs a poll of the reactor before it runs (Asio's
// scheduler polls, epoll_wait with a zero timeout, whenever handlers wait behind its reactor
// task), so separate posts — a writer's, its coroutine's completion, the log's — cost a system
// call each, per request at a low rate.
// Owns: the thread's deferred work, while a TurnEnd lives on that thread (a proxy worker's).
#pragma once

#include <asio.hpp>
#include <functional>
#include <vector>

namespace mg::proxy {

class TurnEnd {
 public:
  using Work = std::function<void()>;
  // Installs itself as this thread's (one at a time); `io` is the loop this thread runs.
  explicit TurnEnd(asio::io_context& io);
  // Work still deferred is dropped unrun: the loop has stopped.
  ~TurnEnd();
  TurnEnd(const TurnEnd&) = delete;
  TurnEnd& operator=(const TurnEnd&) = delete;

  // Runs `work` on this thread once the handlers ready now have run, in the order deferred; work
  // deferred while deferred work runs joins the same pass. A thread without a TurnEnd (a unit
  // test's loop, the proxy's main thread) posts `work` to `ex` instead.
  static void defer(const asio::any_io_executor& ex, Work work);

 private:
  void run();

  asio::io_context& io_;
  std::vector<Work> queue_;
  std::vector<Work> running_;  // the pass in progress (its capacity kept for the next)
  bool scheduled_ = false;
};

}  // namespace mg::proxy
