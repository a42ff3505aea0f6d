// credentials.json (mode 0600, dir 0700, atomic replace, round trip) and --password-file parsing.
#include "api/cli/client/credentials.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace attune::cli::client {
namespace {

class CliCredentials : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = std::filesystem::temp_directory_path() /
            ("cli-creds-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(base_);
    dir_ = (base_ / "nested" / "attune").string();
  }
  void TearDown() override { std::filesystem::remove_all(base_); }
  std::filesystem::path base_;
  std::string dir_;
};

TEST_F(CliCredentials, RoundTripWithPrivateModes) {
  Credentials c{"http://127.0.0.1:8080", "admin", "acc.tok.en", "ref.tok.en", 1893456000};
  ASSERT_EQ(save_credentials(dir_, c), "");
  struct stat st {};
  ASSERT_EQ(::stat(credentials_path(dir_).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  std::string warning;
  const auto back = load_credentials(dir_, &warning);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(warning, "");
  EXPECT_EQ(back->url, c.url);
  EXPECT_EQ(back->login, c.login);
  EXPECT_EQ(back->access_token, c.access_token);
  EXPECT_EQ(back->refresh_token, c.refresh_token);
  EXPECT_EQ(back->expires_at, c.expires_at);
  // Replace: new content, still 0600, no temp files left behind.
  c.access_token = "second";
  ASSERT_EQ(save_credentials(dir_, c), "");
  EXPECT_EQ(load_credentials(dir_, nullptr)->access_token, "second");
  ASSERT_EQ(::stat(credentials_path(dir_).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
  EXPECT_TRUE(delete_credentials(dir_));
  EXPECT_FALSE(load_credentials(dir_, nullptr).has_value());
  EXPECT_FALSE(delete_credentials(dir_));
}

TEST_F(CliCredentials, MalformedFileReadsAsNotLoggedInWithAWarning) {
  std::filesystem::create_directories(dir_);
  std::ofstream(credentials_path(dir_)) << "{not json";
  std::string warning;
  EXPECT_FALSE(load_credentials(dir_, &warning).has_value());
  EXPECT_NE(warning.find("attune login"), std::string::npos);
  std::ofstream(credentials_path(dir_)) << "[1,2]";
  EXPECT_FALSE(load_credentials(dir_, &warning).has_value());
}

TEST(CliPasswordFile, BareAndLoginPasswordForms) {
  struct Case {
    std::string contents;
    std::optional<std::string> user;
    std::optional<std::string> login;
    std::string password;
  };
  const std::vector<Case> cases = {
      {"s3cret\n", std::nullopt, std::nullopt, "s3cret"},
      {"s3cret\r\n", std::nullopt, std::nullopt, "s3cret"},
      {"s3cret", "bob", std::nullopt, "s3cret"},
      {"admin:pa:ss\n", std::nullopt, "admin", "pa:ss"},  // split at the first ':'
      {"admin:pass", "admin", "admin", "pass"},
      {"admin:pass", "bob", std::nullopt,
       "admin:pass"},  // another login: whole text is the password
      {":pass", std::nullopt, std::nullopt, ":pass"},
      {"has space:pw", std::nullopt, std::nullopt, "has space:pw"},
      {"", std::nullopt, std::nullopt, ""},
      {"pw\n\n", std::nullopt, std::nullopt, "pw\n"},  // only one trailing newline is dropped
  };
  for (const auto& c : cases) {
    const auto pf = parse_password_file(c.contents, c.user);
    EXPECT_EQ(pf.login, c.login) << c.contents;
    EXPECT_EQ(pf.password, c.password) << c.contents;
  }
}

}  // namespace
}  // namespace attune::cli::client
