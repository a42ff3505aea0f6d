// multipart/form-data parsing of upload bodies.
#include "api/rest/multipart.h"

#include <gtest/gtest.h>

namespace attune::rest {
namespace {

std::string body(const std::string& b, const std::string& binary) {
  return "--" + b + "\r\n" +
         "Content-Disposition: form-data; name=\"pack\"; filename=\"p.tar.gz\"\r\n"
         "Content-Type: application/gzip\r\n\r\n" +
         binary + "\r\n--" + b + "\r\n" +
         "Content-Disposition: form-data; name=\"force\"\r\n\r\ntrue\r\n--" + b + "--\r\n";
}

TEST(MultipartTest, FilesAndFieldsWithBinaryContent) {
  const std::string binary("\x1f\x8b\0\r\n--not-a-boundary\r\n", 24);
  auto parts = parse_multipart("multipart/form-data; boundary=XyZ123", body("XyZ123", binary));
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->count("pack"), 1u);
  EXPECT_EQ(parts->at("pack").data, binary);
  EXPECT_EQ(parts->at("pack").filename, "p.tar.gz");
  EXPECT_EQ(parts->at("pack").content_type, "application/gzip");
  EXPECT_EQ(parts->at("force").data, "true");
  // Quoted boundaries, as some clients send them.
  auto quoted = parse_multipart("multipart/form-data; boundary=\"a b\"", body("a b", "x"));
  ASSERT_TRUE(quoted.ok());
  EXPECT_EQ(quoted->at("pack").data, "x");
}

TEST(MultipartTest, MalformedBodiesAreBadRequests) {
  EXPECT_FALSE(parse_multipart("application/json", "{}").ok());
  EXPECT_FALSE(parse_multipart("multipart/form-data", "--x\r\n").ok());
  EXPECT_FALSE(parse_multipart("multipart/form-data; boundary=x", "no boundary here").ok());
  EXPECT_FALSE(parse_multipart("multipart/form-data; boundary=x",
                               "--x\r\nContent-Disposition: form-data; name=a\r\n\r\nunterminated")
                   .ok());
  EXPECT_FALSE(parse_multipart("multipart/form-data; boundary=x", "--x\r\nno blank line").ok());
}

}  // namespace
}  // namespace attune::rest
