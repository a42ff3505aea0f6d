// key=value coercion by parameter schema (api/cli/client/params.h), table-driven.
#include "api/cli/client/params.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "api/cli/client/errors.h"

namespace attune::cli::client {
namespace {

using nlohmann::json;

const json kSchema = {
    {"name", {{"type", "string"}, {"required", true}, {"description", "who"}}},
    {"count", {{"type", "integer"}, {"default", 3}}},
    {"ratio", {{"type", "number"}}},
    {"loud", {{"type", "boolean"}}},
    {"opts", {{"type", "object"}}},
    {"tags", {{"type", "array"}}},
    {"token", {{"type", "string"}, {"secret", true}}},
};

TEST(CliParams, CoercesEachTypeBySchema) {
  struct Case {
    std::string arg;
    json want;
  };
  const std::vector<Case> cases = {
      {"name=42", json{{"name", "42"}}},  // string stays text, even if it looks like JSON
      {"name=", json{{"name", ""}}},
      {"name=a=b", json{{"name", "a=b"}}},
      {"count=7", json{{"count", 7}}},
      {"count=-2", json{{"count", -2}}},
      {"ratio=1.5", json{{"ratio", 1.5}}},
      {"ratio=2", json{{"ratio", 2}}},
      {"loud=true", json{{"loud", true}}},
      {"loud=false", json{{"loud", false}}},
      {"opts={\"a\":1}", json{{"opts", {{"a", 1}}}}},
      {"opts={a: 1, b: x}", json{{"opts", {{"a", 1}, {"b", "x"}}}}},  // YAML flow mapping
      {"tags=[1,\"x\"]", json{{"tags", {1, "x"}}}},
      {"tags=[a, b]", json{{"tags", {"a", "b"}}}},
      {"extra=5", json{{"extra", 5}}},            // unknown: JSON when it parses
      {"extra=hello", json{{"extra", "hello"}}},  // else text
      {"extra={\"k\":[1]}", json{{"extra", {{"k", {1}}}}}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse_key_values({c.arg}, kSchema), c.want) << c.arg;
  }
}

TEST(CliParams, BadValuesAreUsageErrorsNamingTheParameter) {
  for (const std::string arg :
       {"count=abc", "count=1.5", "ratio=x", "loud=maybe", "opts=[1]", "tags={a: 1}", "count="}) {
    try {
      (void)parse_key_values({arg}, kSchema);
      ADD_FAILURE() << arg << " was accepted";
    } catch (const CliError& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage) << arg;
      EXPECT_NE(std::string(e.what()).find("'" + arg.substr(0, arg.find('=')) + "'"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(CliParams, ArgumentsWithoutKeyAreUsageErrors) {
  for (const std::string arg : {"novalue", "=x"}) {
    try {
      (void)parse_key_values({arg}, kSchema);
      ADD_FAILURE() << arg;
    } catch (const CliError& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage);
    }
  }
}

TEST(CliParams, LaterKeysWinAndNoSchemaMeansJsonOrText) {
  EXPECT_EQ(parse_key_values({"a=1", "a=2"}, nullptr), (json{{"a", 2}}));
  EXPECT_EQ(parse_key_values({"a=true", "b=x y"}, json::object()),
            (json{{"a", true}, {"b", "x y"}}));
}

TEST(CliParams, JsonSchemaStyleIsReadLikeTheFlatStyle) {
  const json schema = {{"type", "object"},
                       {"properties", {{"n", {{"type", "integer"}}}, {"s", {{"type", "string"}}}}},
                       {"required", {"n"}}};
  EXPECT_EQ(parse_key_values({"n=4", "s=4"}, schema), (json{{"n", 4}, {"s", "4"}}));
  const auto specs = schema_params(schema);
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].name, "n");
  EXPECT_TRUE(specs[0].required);
  EXPECT_FALSE(specs[1].required);
}

TEST(CliParams, SchemaParamsKeepsSecretDefaultAndDescription) {
  const auto specs = schema_params(kSchema);
  ASSERT_EQ(specs.size(), kSchema.size());
  for (const auto& p : specs) {
    if (p.name == "token") {
      EXPECT_TRUE(p.secret);
    }
    if (p.name == "count") {
      EXPECT_EQ(p.default_value, json(3));
    }
    if (p.name == "name") {
      EXPECT_TRUE(p.required);
      EXPECT_EQ(p.description, "who");
    }
  }
  EXPECT_TRUE(schema_params(nullptr).empty());
  EXPECT_TRUE(schema_params(json::array()).empty());
}

TEST(CliParams, ParamsFilesJsonAndYaml) {
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("cli-params-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "p.json") << R"({"a": 1, "b": "x"})";
  std::ofstream(dir / "p.yaml") << "a: 1\nb: x\nc: [1, 2]\nd: 'true'\n";
  std::ofstream(dir / "bad.json") << "{";
  std::ofstream(dir / "list.yaml") << "- 1\n";
  EXPECT_EQ(load_params_file((dir / "p.json").string()), (json{{"a", 1}, {"b", "x"}}));
  EXPECT_EQ(load_params_file((dir / "p.yaml").string()),
            (json{{"a", 1}, {"b", "x"}, {"c", {1, 2}}, {"d", "true"}}));
  for (const char* f : {"bad.json", "list.yaml", "missing.json"}) {
    try {
      (void)load_params_file((dir / f).string());
      ADD_FAILURE() << f;
    } catch (const CliError& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage) << f;
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace attune::cli::client
