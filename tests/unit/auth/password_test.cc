// Argon2id password hashing: verify, reject, salted, malformed hashes.
#include "api/auth/password.h"

#include <gtest/gtest.h>

namespace attune::auth {
namespace {

TEST(PasswordTest, HashVerifiesOnlyTheSamePassword) {
  const std::string hash = hash_password("correct horse battery staple");
  EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u) << hash;
  EXPECT_TRUE(verify_password(hash, "correct horse battery staple"));
  EXPECT_FALSE(verify_password(hash, "correct horse battery stapl"));
  EXPECT_FALSE(verify_password(hash, ""));
}

TEST(PasswordTest, HashesAreSalted) {
  EXPECT_NE(hash_password("same"), hash_password("same"));
}

TEST(PasswordTest, MalformedHashesNeverVerify) {
  EXPECT_FALSE(verify_password("", "x"));
  EXPECT_FALSE(verify_password("plaintext", "plaintext"));
  EXPECT_FALSE(verify_password(std::string(200, '$'), "x"));
  std::string with_nul = hash_password("x");
  with_nul.insert(5, 1, '\0');
  EXPECT_FALSE(verify_password(with_nul, "x"));
}

TEST(PasswordTest, PasswordsMayContainNulAndUnicode) {
  const std::string pw = std::string("a\0b", 3) + "\xC3\xA9";
  const std::string hash = hash_password(pw);
  EXPECT_TRUE(verify_password(hash, pw));
  EXPECT_FALSE(verify_password(hash, "a"));
}

}  // namespace
}  // namespace attune::auth
