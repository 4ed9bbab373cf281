#include "common/files.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <sys/stat.h>

namespace {

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("mg-files-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

mode_t mode_of(const std::filesystem::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 07777;
}

TEST_F(FilesTest, AtomicWriteSetsModeAndContent) {
  auto path = (dir_ / "key.pem").string();
  ASSERT_TRUE(mg::files::write_file_atomic(path, "secret", 0600));
  EXPECT_EQ(mode_of(path), 0600u);
  auto back = mg::files::read_file(path);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, "secret");
  // Replacing keeps the requested mode and leaves no temporary file behind.
  ASSERT_TRUE(mg::files::write_file_atomic(path, "other", 0644));
  EXPECT_EQ(mode_of(path), 0644u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_), {}), 1);
}

TEST_F(FilesTest, RefusesReadableKeys) {
  auto path = (dir_ / "key.pem").string();
  ASSERT_TRUE(mg::files::write_file_atomic(path, "k", 0600));
  EXPECT_TRUE(mg::files::check_private_key_permissions(path));
  ::chmod(path.c_str(), 0640);
  auto st = mg::files::check_private_key_permissions(path);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, "key.permissions");
  EXPECT_NE(st.error().message.find("0640"), std::string::npos);
  ::chmod(path.c_str(), 0604);
  EXPECT_FALSE(mg::files::check_private_key_permissions(path));
}

TEST_F(FilesTest, MissingFileIsAnError) {
  auto r = mg::files::read_file((dir_ / "nope").string());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "file.open");
}

}  // namespace
