// Unit tests of an HTTP/2 connection's waits (proxy/h2_connection.h): a Wake with a deadline
// kept by the connection's DeadlineWatch ends not woken when its deadline passes — each wait in
// the order of its deadline, also one registered after the watch's timer was set for an earlier
// deadline whose wait was woken meanwhile — and a wake that comes first ends the wait woken.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <vector>

#include "proxy/h2_connection.h"

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

// Without a watch a wait keeps its own deadline (the connection's writer and the stream pumps).
TEST(H2Wake, UnwatchedDeadlineEndsTheWait) {
  Loop loop;
  Wake wake(loop.io.get_executor());
  std::optional<bool> result;
  std::vector<char> order;
  spawn_wait(loop, wake, Clock::now() + 20ms, result, order, 'U');
  loop.run_until([&] { return result.has_value(); });
  ASSERT_TRUE(result);
  EXPECT_FALSE(*result);
}

}  // namespace
}  // namespace mg::proxy
