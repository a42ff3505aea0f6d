// Random URL-safe strings and create-once 0600 secret files.
#include "api/auth/secrets.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>

namespace attune::auth {
namespace {

namespace fs = std::filesystem;

class SecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("attune_secrets_" + random_urlsafe(10));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(RandomUrlsafeTest, LengthAlphabetAndUniqueness) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string s = random_urlsafe(43);
    ASSERT_EQ(s.size(), 43u);
    EXPECT_EQ(s.find_first_not_of(
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos);
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_EQ(random_urlsafe(0), "");
}

TEST_F(SecretFileTest, CreatesWithMode0600ThenRereads) {
  const std::string path = (dir_ / "jwt_secret").string();
  auto created = load_or_create_secret(path, 48);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(created->size(), 48u);

  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto reread = load_or_create_secret(path, 48);
  ASSERT_TRUE(reread.ok()) << reread.error().message;
  EXPECT_EQ(*reread, *created);

  // No temporary files are left behind.
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1u);
}

TEST_F(SecretFileTest, ExistingFileIsUsedVerbatimMinusTrailingNewline) {
  const std::string path = (dir_ / "given").string();
  std::ofstream(path) << "operator-provided secret\n";
  auto r = load_or_create_secret(path, 32);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "operator-provided secret");
}

TEST_F(SecretFileTest, EmptyFileIsAnError) {
  const std::string path = (dir_ / "empty").string();
  std::ofstream(path) << "\n";
  auto r = load_or_create_secret(path, 32);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kValidation);
}

TEST_F(SecretFileTest, MissingDirectoryIsAClearError) {
  const std::string path = (dir_ / "no" / "such" / "dir" / "secret").string();
  auto r = load_or_create_secret(path, 32);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInternal);
  EXPECT_NE(r.error().message.find("No such file or directory"), std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace attune::auth
