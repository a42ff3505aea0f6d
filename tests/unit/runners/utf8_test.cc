// UTF-8 sanitising and cutting of captured output.
#include "runners/utf8.h"

#include <gtest/gtest.h>

namespace attune::runners {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8Test, SanitizeKeepsValidText) {
  EXPECT_EQ(sanitize_utf8("plain ascii"), "plain ascii");
  EXPECT_EQ(sanitize_utf8("é € 😀"), "é € 😀");
  EXPECT_EQ(sanitize_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(Utf8Test, SanitizeReplacesIllFormedSequences) {
  struct Case {
    std::string in, out;
  };
  const Case cases[] = {
      {"\xFF", kFffd},
      {"a\x80z", "a" + kFffd + "z"},                        // lone continuation
      {"\xC3", kFffd},                                      // truncated at the end
      {"\xE2\x82z", kFffd + "z"},                           // truncated 3-byte: one U+FFFD
      {"\xC0\xAF", kFffd + kFffd},                          // overlong
      {"\xED\xA0\x80", kFffd + kFffd + kFffd},              // surrogate
      {"\xF4\x90\x80\x80", kFffd + kFffd + kFffd + kFffd},  // above U+10FFFF
      {"\xF0\x9F\x98", kFffd},                              // truncated 4-byte
  };
  for (const auto& c : cases) EXPECT_EQ(sanitize_utf8(c.in), c.out) << c.in;
}

TEST(Utf8Test, CutNeverSplitsACharacter) {
  const std::string s = "aé€😀";  // 1 + 2 + 3 + 4 bytes
  EXPECT_EQ(utf8_cut(s, 100), s.size());
  EXPECT_EQ(utf8_cut(s, 1), 1u);
  EXPECT_EQ(utf8_cut(s, 2), 1u);
  EXPECT_EQ(utf8_cut(s, 3), 3u);
  EXPECT_EQ(utf8_cut(s, 5), 3u);
  EXPECT_EQ(utf8_cut(s, 6), 6u);
  EXPECT_EQ(utf8_cut(s, 9), 6u);
  EXPECT_EQ(utf8_cut(s, 0), 0u);
  EXPECT_EQ(utf8_cut(std::string(10, '\x80'), 5), 5u);  // not UTF-8: cut where asked
}

}  // namespace
}  // namespace attune::runners
