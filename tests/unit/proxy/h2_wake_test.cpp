// Unit tests of the waits of HTTP/2 connections and streams (proxy/wake.h): a Wake with a deadline
// kept by the connection's DeadlineWatch ends not woken when its deadline passes — each wait in
// the order of its deadline, also one registered after the watch's timer was set for an earlier
// deadline whose wait was woken meanwhile — and a wake that comes first ends the wait woken. A
// parked wait resumes once however often it is woken, at the turn's end beside other deferred
// work, and one still parked when its loop goes is destroyed with its coroutine.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "proxy/turn_end.h"
#include "proxy/wake.h"

namespace mg::proxy {
namespace {

using namespace std::chrono_literals;
using Clock = Wake::Clock;

struct Loop {
  asio::io_context io;
  // Runs until `done` or a 5 s bound (a deadline never kept fails the test instead of hanging it).
  void run_until(const std::function<bool()>& done) {
    auto until = Clock::now() + 5s;
    while (!done() && Clock::now() < until) {
      io.run_for(5ms);
      if (io.stopped()) io.restart();
    }
  }
};

// Waits on `wake` until `deadline`; its result goes to `result`, its name to `order` when it ends.
void spawn_wait(Loop& loop, Wake& wake, Clock::time_point deadline, std::optional<bool>& result,
                std::vector<char>& order, char name) {
  asio::co_spawn(
      loop.io,
      [&wake, deadline, &result, &order, name]() -> net::awaitable<void> {
        const bool woken = co_await wait_for(wake, deadline);
        result = woken;
        order.push_back(name);
      },
      asio::detached);
}

TEST(H2Wake, WatchedDeadlinesEndTheirWaitsInOrder) {
  Loop loop;
  DeadlineWatch watch(loop.io.get_executor());
  Wake late(loop.io.get_executor(), &watch), early(loop.io.get_executor(), &watch),
      woken(loop.io.get_executor(), &watch);
  std::optional<bool> late_result, early_result, woken_result;
  std::vector<char> order;
  const auto now = Clock::now();
  spawn_wait(loop, late, now + 120ms, late_result, order, 'L');
  spawn_wait(loop, early, now + 40ms, early_result, order, 'E');
  spawn_wait(loop, woken, now + 80ms, woken_result, order, 'W');
  loop.io.poll();  // all three waiting
  woken.notify();
  loop.run_until([&] { return late_result.has_value(); });
  ASSERT_TRUE(late_result && early_result && woken_result);
  EXPECT_FALSE(*late_result);
  EXPECT_FALSE(*early_result);
  EXPECT_TRUE(*woken_result);
  EXPECT_EQ(order, (std::vector<char>{'W', 'E', 'L'}));
  EXPECT_GE(Clock::now(), now + 120ms);  // not before its deadline
}

// The watch's timer waits for the first deadline; that wait is woken, and a later wait arrives:
// when the timer fires it finds nothing due and waits again, for the later deadline.
TEST(H2Wake, ALaterDeadlineIsKeptAfterTheEarlierWaitWasWoken) {
  Loop loop;
  DeadlineWatch watch(loop.io.get_executor());
  Wake first(loop.io.get_executor(), &watch), second(loop.io.get_executor(), &watch);
  std::optional<bool> first_result, second_result;
  std::vector<char> order;
  const auto now = Clock::now();
  spawn_wait(loop, first, now + 30ms, first_result, order, '1');
  loop.io.poll();
  first.notify();
  loop.run_until([&] { return first_result.has_value(); });
  ASSERT_TRUE(first_result);
  EXPECT_TRUE(*first_result);
  spawn_wait(loop, second, now + 90ms, second_result, order, '2');
  loop.run_until([&] { return second_result.has_value(); });
  ASSERT_TRUE(second_result);
  EXPECT_FALSE(*second_result);
  EXPECT_GE(Clock::now(), now + 90ms);
  // A wake that came before the wait: the next wait ends at once, woken.
  second.notify();
  std::optional<bool> again;
  spawn_wait(loop, second, Clock::now() + 10s, again, order, '3');
  loop.io.poll();
  ASSERT_TRUE(again);
  EXPECT_TRUE(*again);
}

// Without a watch nothing would end a wait at its deadline: such a wait ends at once, not woken.
TEST(H2Wake, ADeadlineWithoutAWatchEndsTheWaitAtOnce) {
  Loop loop;
  Wake wake(loop.io.get_executor());
  std::optional<bool> result;
  std::vector<char> order;
  spawn_wait(loop, wake, Clock::now() + 10s, result, order, 'U');
  loop.io.poll();
  ASSERT_TRUE(result);
  EXPECT_FALSE(*result);
}

// Woken twice, and its deadline passing too, before it resumes: it resumes once, woken, and the
// next wait waits for the next wake. The resume rides on the turn's end with other deferred work.
TEST(H2Wake, AWaitResumesOnceAtTheTurnsEndHoweverOftenWoken) {
  Loop loop;
  TurnEnd turn(loop.io);
  DeadlineWatch watch(loop.io.get_executor());
  Wake wake(loop.io.get_executor(), &watch);
  int resumed = 0;
  std::vector<bool> results;
  std::string order;
  asio::co_spawn(
      loop.io,
      [&]() -> net::awaitable<void> {
        for (int i = 0; i < 2; ++i) {
          results.push_back(co_await wait_for(wake, Clock::now() + 30ms));
          ++resumed;
          order += "R";
        }
      },
      asio::detached);
  loop.io.poll();
  EXPECT_EQ(resumed, 0);
  asio::post(loop.io, [&] {
    wake.notify();
    TurnEnd::defer(loop.io.get_executor(), [&] { order += "D"; });
    wake.notify();
    order += "H";
  });
  loop.run_until([&] { return resumed == 2; });
  ASSERT_EQ(resumed, 2);
  // Resumed after the handler that woke it, in the turn-end pass, in the order deferred.
  EXPECT_EQ(order, "HRDR");
  // The second wait was not woken by the first wait's two wakes: its deadline ended it.
  EXPECT_EQ(results, (std::vector<bool>{true, false}));
}

// A coroutine waits on a Wake its own frame keeps alive (a stream's, through the stream): when the
// loop goes with it still waiting, the loop's ParkedWaits destroys the wait and so the coroutine,
// which frees the owner — nothing is left behind (LeakSanitizer checks this in the ASan build).
TEST(H2Wake, AWaitStillParkedWhenItsLoopGoesIsDestroyedWithItsCoroutine) {
  struct Owner {
    explicit Owner(const asio::any_io_executor& ex, bool& gone) : wake(ex), gone(gone) {}
    ~Owner() { gone = true; }
    Wake wake;
    bool& gone;
  };
  bool gone = false;
  bool resumed = false;
  {
    asio::io_context io{1};
    auto owner = std::make_shared<Owner>(io.get_executor(), gone);
    asio::co_spawn(
        io,
        [owner, &resumed]() -> net::awaitable<void> {
          co_await wait_for(owner->wake);
          resumed = true;
        },
        asio::detached);
    owner.reset();
    io.poll();
    EXPECT_FALSE(gone) << "the waiting coroutine keeps its owner";
  }
  EXPECT_TRUE(gone);
  EXPECT_FALSE(resumed);
}

}  // namespace
}  // namespace mg::proxy
