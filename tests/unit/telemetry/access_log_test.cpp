// The access log's per-turn batching: lines gathered on a batching thread reach the file only when
// the batch is flushed (once per loop turn), whole and in order; other threads write at once.
#include "telemetry/access_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace mg::telemetry {
namespace {

class AccessLogFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/mg-accesslog-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/access.log";
  }
  void TearDown() override {
    std::remove(path_.c_str());
    rmdir(dir_.c_str());
  }
  std::string contents() const {
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::string dir_, path_;
};

TEST_F(AccessLogFile, WithoutBatchEachLineIsWrittenAtOnce) {
  auto log = AccessLog::open(path_);
  ASSERT_TRUE(log) << log.error().to_string();
  std::string line = R"({"a":1})";
  (*log)->write_line(line);
  EXPECT_EQ(contents(), "{\"a\":1}\n");
}

TEST_F(AccessLogFile, BatchedLinesWaitForTheFlushAndKeepTheirOrder) {
  auto log = AccessLog::open(path_);
  ASSERT_TRUE(log) << log.error().to_string();
  int scheduled = 0;
  {
    AccessLog::TurnBatch batch([&] { ++scheduled; });
    for (int i = 0; i < 3; ++i) {
      std::string line = "{\"n\":" + std::to_string(i) + "}";
      (*log)->write_line(line);
    }
    EXPECT_EQ(scheduled, 1) << "one flush scheduled per turn, not per line";
    EXPECT_EQ(contents(), "") << "nothing written before the turn ends";
    AccessLog::TurnBatch::flush();
    EXPECT_EQ(contents(), "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n");
    std::string next = R"({"n":3})";
    (*log)->write_line(next);
    EXPECT_EQ(scheduled, 2) << "the next turn schedules again";
    // Another thread has no batch: its line is written at once, whole.
    std::thread([&] {
      std::string other = R"({"other":true})";
      (*log)->write_line(other);
    }).join();
    EXPECT_EQ(contents(), "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n{\"other\":true}\n");
  }
  // The batch's end writes what was left: nothing is lost when a loop stops.
  EXPECT_EQ(contents(), "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n{\"other\":true}\n{\"n\":3}\n");
}

TEST_F(AccessLogFile, ABigBatchIsWrittenBeforeTheTurnEnds) {
  auto log = AccessLog::open(path_);
  ASSERT_TRUE(log) << log.error().to_string();
  AccessLog::TurnBatch batch([] {});
  const std::string body(1000, 'x');
  size_t written = 0;
  for (int i = 0; i < 100; ++i) {
    std::string line = "{\"x\":\"" + body + "\"}";
    written += line.size() + 1;
    (*log)->write_line(line);
  }
  const std::string now = contents();
  EXPECT_GE(now.size(), 64u * 1024) << "past 64 KiB the batch goes out without waiting";
  EXPECT_LT(now.size(), written);
  EXPECT_EQ(now.back(), '\n') << "only whole lines";
  AccessLog::TurnBatch::flush();
  EXPECT_EQ(contents().size(), written);
}

TEST_F(AccessLogFile, LinesOfAnotherLogFlushTheBatchFirst) {
  auto first = AccessLog::open(path_);
  auto second = AccessLog::open(dir_ + "/second.log");
  ASSERT_TRUE(first && second);
  AccessLog::TurnBatch batch([] {});
  std::string a = R"({"log":1})";
  (*first)->write_line(a);
  std::string b = R"({"log":2})";
  (*second)->write_line(b);
  EXPECT_EQ(contents(), "{\"log\":1}\n") << "switching logs wrote the first one's lines";
  AccessLog::TurnBatch::flush();
  std::ifstream in(dir_ + "/second.log");
  std::string got;
  std::getline(in, got);
  EXPECT_EQ(got, "{\"log\":2}");
  std::remove((dir_ + "/second.log").c_str());
}

}  // namespace
}  // namespace mg::telemetry
