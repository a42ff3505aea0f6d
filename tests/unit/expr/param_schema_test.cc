// Parameter schemas (processors/expr/param_schema.h): one table of values against flat and
// JSON-Schema-style schemas — defaults filled, errors per field.
#include "processors/expr/param_schema.h"

#include <gtest/gtest.h>

namespace attune::expr {
namespace {

const Json kFlat = Json::parse(R"({
  "name":  {"type": "string", "required": true},
  "count": {"type": "integer", "default": 3, "minimum": 1, "maximum": 5},
  "mode":  {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
  "ratio": {"type": "number"},
  "tags":  {"type": "array"},
  "any":   {}
})");

const Json kJsonSchema = Json::parse(R"({
  "type": "object",
  "properties": {"name": {"type": "string"}, "count": {"type": "integer", "default": 3}},
  "required": ["name"]
})");

struct Case {
  const char* label;
  const Json& schema;
  Json params;
  Json expect;  // the filled parameters, or {"errors": {...}}
};

TEST(ParamSchema, Table) {
  const Case cases[] = {
      {"defaults filled", kFlat, {{"name", "a"}}, {{"name", "a"}, {"count", 3}, {"mode", "safe"}}},
      {"null takes the default", kFlat, {{"name", "a"}, {"count", nullptr}},
       {{"name", "a"}, {"count", 3}, {"mode", "safe"}}},
      {"extra passes", kFlat, {{"name", "a"}, {"x", 1}},
       {{"name", "a"}, {"count", 3}, {"mode", "safe"}, {"x", 1}}},
      {"integral float is an integer", kFlat, {{"name", "a"}, {"count", 2.0}, {"mode", "fast"}},
       {{"name", "a"}, {"count", 2.0}, {"mode", "fast"}}},
      {"missing required", kFlat, Json::object(), {{"errors", {{"name", "is required"}}}}},
      {"non-object params count as {}", kFlat, Json::array(),
       {{"errors", {{"name", "is required"}}}}},
      {"wrong type", kFlat, {{"name", 5}},
       {{"errors", {{"name", "must be of type string, got integer"}}}}},
      {"enum", kFlat, {{"name", "a"}, {"mode", "slow"}},
       {{"errors", {{"mode", "must be one of [\"fast\",\"safe\"]"}}}}},
      {"bounds", kFlat, {{"name", "a"}, {"count", 9}, {"ratio", "x"}},
       {{"errors", {{"count", "must be <= 5"}, {"ratio", "must be of type number, got string"}}}}},
      {"minimum", kFlat, {{"name", "a"}, {"count", 0}}, {{"errors", {{"count", "must be >= 1"}}}}},
      {"json-schema style", kJsonSchema, {{"name", "a"}}, {{"name", "a"}, {"count", 3}}},
      {"json-schema required", kJsonSchema, Json::object(),
       {{"errors", {{"name", "is required"}}}}},
  };
  for (const Case& c : cases) {
    Json errors = Json::object();
    auto out = validate_parameters(c.schema, c.params, errors);
    if (c.expect.contains("errors")) {
      EXPECT_FALSE(out.has_value()) << c.label;
      EXPECT_EQ(errors, c.expect["errors"]) << c.label;
    } else {
      ASSERT_TRUE(out.has_value()) << c.label << ": " << errors.dump();
      EXPECT_EQ(*out, c.expect) << c.label;
    }
  }
}

TEST(ParamSchema, TypeNamesAndFlatForms) {
  EXPECT_STREQ(json_type_name(Json(nullptr)), "null");
  EXPECT_STREQ(json_type_name(Json(1.5)), "number");
  EXPECT_STREQ(json_type_name(Json::object()), "object");
  EXPECT_TRUE(matches_type(Json("x"), "any"));
  EXPECT_EQ(flat_schema(Json("nonsense")), Json::object());
  EXPECT_EQ(flat_schema(kJsonSchema)["name"]["required"], true);
  EXPECT_EQ(flat_schema(kFlat), kFlat);
}

}  // namespace
}  // namespace attune::expr
