// normalize_policy (processors/admission/policy_def.h): API bodies and pack files → stored
// policies, table-driven over valid shapes, defaults and every field error.
#include "processors/admission/policy_def.h"

#include <gtest/gtest.h>

namespace attune::admission {
namespace {

Json parse(const char* text) { return Json::parse(text); }

struct Valid {
  const char* name;
  const char* body;
  const char* expect;  // members the result must have (as JSON), others unchecked
};

class NormalizeValid : public ::testing::TestWithParam<Valid> {};

TEST_P(NormalizeValid, Normalises) {
  const Valid& v = GetParam();
  Json fields;
  auto got = normalize_policy(parse(v.body), Json::object(), true, fields);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_TRUE(fields.empty()) << fields.dump();
  const Json expected = parse(v.expect);
  for (const auto& [k, want] : expected.items()) {
    ASSERT_TRUE(got->contains(k)) << k << " missing in " << got->dump();
    EXPECT_EQ((*got)[k], want) << k << " in " << got->dump();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Policies, NormalizeValid,
    ::testing::Values(
        Valid{"defaults", R"({"ref":"p"})",
              R"({"description":"","enabled":true,"priority":0,"tags":[],"scope":{"type":"global"},
                  "concurrency":null,"rate_limit":null,"quotas":[],"retry":null})"},
        Valid{"action_ref_top_level", R"({"action_ref":"demo.greet","pack_ref":"demo"})",
              R"({"scope":{"type":"action","pack_ref":"demo","action_ref":"demo.greet"}})"},
        Valid{"pack_ref_top_level", R"({"pack_ref":"demo"})",
              R"({"scope":{"type":"pack","pack_ref":"demo"}})"},
        Valid{"scope_beats_top_level",
              R"({"pack_ref":"demo","action_ref":"demo.a","scope":{"type":"global"}})",
              R"({"scope":{"type":"global"}})"},
        Valid{"scope_action", R"({"scope":{"type":"action","action_ref":"x.y"}})",
              R"({"scope":{"type":"action","pack_ref":"x","action_ref":"x.y"}})"},
        Valid{"concurrency_defaults", R"({"concurrency":{"limit":2}})",
              R"({"concurrency":{"limit":2,"method":"enqueue","parameters":[]}})"},
        Valid{"concurrency_full",
              R"({"concurrency":{"limit":1,"method":"cancel","parameters":["host"]}})",
              R"({"concurrency":{"limit":1,"method":"cancel","parameters":["host"]}})"},
        Valid{"rate_limit", R"({"rate_limit":{"max_executions":5,"window_seconds":60}})",
              R"({"rate_limit":{"max_executions":5,"window_seconds":60}})"},
        Valid{"quotas",
              R"({"quotas":[{"quota_type":"executions_total","limit":0},
                            {"quota_type":"running_executions","limit":3}]})",
              R"({"quotas":[{"quota_type":"executions_total","limit":0},
                            {"quota_type":"running_executions","limit":3}]})"},
        Valid{"retry_normalised", R"({"retry":{"max_retries":2,"backoff":"linear"}})",
              R"({"retry":{"max_retries":2,"on":["failed","timeout"],"backoff":"linear",
                           "delay_seconds":1.0,"max_delay_seconds":300.0}})"},
        Valid{"nulls_take_defaults",
              R"({"description":null,"enabled":null,"tags":null,"quotas":null,"retry":null})",
              R"({"description":"","enabled":true,"tags":[],"quotas":[],"retry":null})"},
        Valid{"plain_fields",
              R"({"label":"L","description":"d","enabled":false,"priority":-3,"tags":["a"]})",
              R"({"label":"L","description":"d","enabled":false,"priority":-3,"tags":["a"]})"}),
    [](const auto& info) { return std::string(info.param.name); });

struct Invalid {
  const char* name;
  const char* body;
  std::vector<std::string> fields;  // exactly these fields are named
};

class NormalizeInvalid : public ::testing::TestWithParam<Invalid> {};

TEST_P(NormalizeInvalid, NamesEachBadField) {
  const Invalid& v = GetParam();
  Json fields;
  auto got = normalize_policy(parse(v.body), Json::object(), true, fields);
  ASSERT_FALSE(got.ok()) << got->dump();
  EXPECT_EQ(got.error().code, Errc::kValidation);
  std::vector<std::string> named;
  for (const auto& [k, msg] : fields.items()) {
    named.push_back(k);
    EXPECT_TRUE(msg.is_string() && !msg.get<std::string>().empty()) << k;
  }
  EXPECT_EQ(named, v.fields) << fields.dump();
  EXPECT_EQ(got.error().message.rfind(v.fields.front() + ": ", 0), 0u) << got.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Policies, NormalizeInvalid,
    ::testing::Values(
        Invalid{"limit_zero", R"({"concurrency":{"limit":0}})", {"concurrency.limit"}},
        Invalid{"limit_missing", R"({"concurrency":{}})", {"concurrency.limit"}},
        Invalid{"limit_string", R"({"concurrency":{"limit":"2"}})", {"concurrency.limit"}},
        Invalid{"method", R"({"concurrency":{"limit":1,"method":"drop"}})", {"concurrency.method"}},
        Invalid{"parameters",
                R"({"concurrency":{"limit":1,"parameters":[1]}})",
                {"concurrency.parameters"}},
        Invalid{"concurrency_type", R"({"concurrency":3})", {"concurrency"}},
        Invalid{"rate_both",
                R"({"rate_limit":{"max_executions":0}})",
                {"rate_limit.max_executions", "rate_limit.window_seconds"}},
        Invalid{"quota_type",
                R"({"quotas":[{"quota_type":"daily","limit":1}]})",
                {"quotas[0].quota_type"}},
        Invalid{"quota_limit",
                R"({"quotas":[{"quota_type":"executions_total","limit":-1}]})",
                {"quotas[0].limit"}},
        Invalid{"quota_entry",
                R"({"quotas":[{"quota_type":"executions_total","limit":1},5]})",
                {"quotas[1]"}},
        Invalid{"quotas_type", R"({"quotas":{}})", {"quotas"}},
        Invalid{"retry_backoff", R"({"retry":{"backoff":"random"}})", {"retry.backoff"}},
        Invalid{"retry_count", R"({"retry":{"max_retries":101}})", {"retry.max_retries"}},
        Invalid{"retry_type", R"({"retry":true})", {"retry"}},
        Invalid{"scope_type", R"({"scope":{"type":"tenant"}})", {"scope.type"}},
        Invalid{"scope_action_missing", R"({"scope":{"type":"action"}})", {"scope.action_ref"}},
        Invalid{"scope_pack_missing", R"({"scope":{"type":"pack"}})", {"scope.pack_ref"}},
        Invalid{"action_ref_unqualified", R"({"action_ref":"greet"})", {"action_ref"}},
        Invalid{"many",
                R"({"enabled":"yes","priority":1.5e12,"tags":"a"})",
                {"enabled", "priority", "tags"}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(NormalizePolicy, UpdateChangesOnlyWhatIsPresent) {
  Json fields;
  auto created =
      normalize_policy(parse(R"({"pack_ref":"demo","concurrency":{"limit":2},"priority":4})"),
                       Json::object(), true, fields);
  ASSERT_TRUE(created.ok());
  Json stored = *created;
  stored["ref"] = "demo.p";
  // pack_ref is not writable: the scope stays; concurrency goes, rate_limit comes.
  auto updated = normalize_policy(parse(R"({"pack_ref":"other","concurrency":null,
                "rate_limit":{"max_executions":1,"window_seconds":2}})"),
                                  stored, false, fields);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ((*updated)["ref"], "demo.p");
  EXPECT_EQ((*updated)["scope"], parse(R"({"type":"pack","pack_ref":"demo"})"));
  EXPECT_TRUE((*updated)["concurrency"].is_null());
  EXPECT_EQ((*updated)["rate_limit"]["max_executions"], 1);
  EXPECT_EQ((*updated)["priority"], 4);
  // A top-level action_ref moves the scope to that action.
  auto moved = normalize_policy(parse(R"({"action_ref":"demo.a"})"), *updated, false, fields);
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ((*moved)["scope"]["type"], "action");
  EXPECT_EQ((*moved)["scope"]["action_ref"], "demo.a");
}

TEST(NormalizePolicy, PackOfRef) {
  EXPECT_EQ(pack_of_ref("demo.greet"), "demo");
  EXPECT_EQ(pack_of_ref("demo.a.b"), "demo");
  EXPECT_EQ(pack_of_ref("greet"), "");
}

}  // namespace
}  // namespace attune::admission
