// Unit tests of the end-of-turn queue (proxy/turn_end.h): work deferred by a handler runs after
// that handler, on one post shared by everything deferred until the pass ends (work deferred by
// deferred work included), and without a TurnEnd on the thread deferring is a plain post.
#include "proxy/turn_end.h"

#include <gtest/gtest.h>

#include <string>

namespace mg::proxy {
namespace {

TEST(TurnEnd, WorkRunsAfterItsHandlerAndWorkItDefersJoinsThePass) {
  asio::io_context io{1};
  TurnEnd turn(io);
  const auto ex = io.get_executor();
  std::string order;
  asio::post(io, [&] {
    TurnEnd::defer(ex, [&] {
      order += "1";
      // Posted first, deferred second: the deferred work still runs first, in this same pass.
      asio::post(io, [&] { order += "P"; });
      TurnEnd::defer(ex, [&] { order += "3"; });
    });
    TurnEnd::defer(ex, [&] { order += "2"; });
    order += "H";
  });
  const size_t handlers = io.run();
  EXPECT_EQ(order, "H123P");
  // The handler, one pass for all three pieces of work, the post: separate posts would be five.
  EXPECT_EQ(handlers, 3u);
}

TEST(TurnEnd, AThreadWithoutOnePostsTheWork) {
  asio::io_context io{1};
  int ran = 0;
  TurnEnd::defer(io.get_executor(), [&] { ++ran; });
  TurnEnd::defer(io.get_executor(), [&] { ++ran; });
  EXPECT_EQ(io.run(), 2u);
  EXPECT_EQ(ran, 2);
}

TEST(TurnEnd, APassPostedBeforeItsTurnEndWentRunsNothing) {
  asio::io_context io{1};
  int ran = 0;
  {
    TurnEnd turn(io);
    TurnEnd::defer(io.get_executor(), [&] { ++ran; });
  }
  io.run();
  EXPECT_EQ(ran, 0);
  // A TurnEnd made afterwards on the same thread starts its own passes.
  TurnEnd again(io);
  io.restart();
  TurnEnd::defer(io.get_executor(), [&] { ++ran; });
  io.run();
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace mg::proxy
