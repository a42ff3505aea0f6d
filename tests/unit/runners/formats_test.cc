// Parameter document formats (API.md §11.3) and YAML parsing.
#include "runners/formats.h"

#include <gtest/gtest.h>

namespace attune::runners {
namespace {

const Json kDoc = Json::parse(R"({
  "message": "it's here", "count": 3, "ratio": 0.5, "flag": true, "nothing": null,
  "list": [1, "two"], "nested": {"b": {"c": "deep"}, "a": 1}, "empty": {}, "num_str": "123"
})");

TEST(FormatsTest, JsonIsOneCompactLine) {
  auto out = render_parameters(kDoc, "json");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->find('\n'), out->size() - 1);
  EXPECT_EQ(Json::parse(*out), kDoc);
}

TEST(FormatsTest, DotenvIsSortedFlatAndQuoted) {
  auto out = render_parameters(kDoc, "dotenv");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out,
            "count='3'\n"
            "empty='{}'\n"
            "flag='true'\n"
            "list='[1,\"two\"]'\n"
            "message='it'\\''s here'\n"
            "nested.a='1'\n"
            "nested.b.c='deep'\n"
            "nothing=''\n"
            "num_str='123'\n"
            "ratio='0.5'\n");
}

TEST(FormatsTest, YamlRoundTripsWithTypes) {
  auto out = render_parameters(kDoc, "yaml");
  ASSERT_TRUE(out.ok());
  auto back = parse_yaml(*out);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, kDoc) << *out;
}

TEST(FormatsTest, RejectsUnknownFormatAndNonObjects) {
  EXPECT_FALSE(render_parameters(kDoc, "xml").ok());
  EXPECT_FALSE(render_parameters(Json::array(), "json").ok());
}

TEST(FormatsTest, ShellQuote) {
  EXPECT_EQ(shell_quote("plain"), "'plain'");
  EXPECT_EQ(shell_quote("a'b"), "'a'\\''b'");
  EXPECT_EQ(shell_quote(""), "''");
}

TEST(FormatsTest, ParseYamlResolvesPlainScalars) {
  auto doc = parse_yaml(
      "a: 1\nb: -2.5\nc: true\nd: ~\ne: hello\nf: '42'\ng: [x, 0x1F]\nh:\n  i: False\nj: 1e3\n");
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  EXPECT_EQ(*doc, Json::parse(R"({"a":1,"b":-2.5,"c":true,"d":null,"e":"hello","f":"42",
                                  "g":["x",31],"h":{"i":false},"j":1000.0})"));
  EXPECT_EQ(*parse_yaml(""), Json(nullptr));
  EXPECT_FALSE(parse_yaml("a: [unclosed").ok());
}

}  // namespace
}  // namespace attune::runners
