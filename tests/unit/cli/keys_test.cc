// Key refs → POST /keys owner fields (api/cli/client/keys.h).
#include "api/cli/client/keys.h"

#include <gtest/gtest.h>

#include "api/cli/client/errors.h"

namespace attune::cli::client {
namespace {

using nlohmann::json;

TEST(CliKeys, RefsMapToOwnerFields) {
  EXPECT_EQ(key_create_body("token"), (json{{"local_ref", "token"}, {"owner_type", "system"}}));
  EXPECT_EQ(key_create_body("system.token"),
            (json{{"local_ref", "token"}, {"owner_type", "system"}}));
  EXPECT_EQ(key_create_body("pack.web.api_key"),
            (json{{"local_ref", "api_key"}, {"owner_type", "pack"}, {"owner_pack_ref", "web"}}));
  EXPECT_EQ(
      key_create_body("action.web.fetch.k"),
      (json{{"local_ref", "k"}, {"owner_type", "action"}, {"owner_action_ref", "web.fetch"}}));
  EXPECT_EQ(key_create_body("sensor.web.poll.k"),
            (json{{"local_ref", "k"}, {"owner_type", "sensor"}, {"owner_sensor_ref", "web.poll"}}));
  EXPECT_EQ(key_create_body("identity.test@attune.local.x"),
            (json{{"local_ref", "x"},
                  {"owner_type", "identity"},
                  {"owner_identity_login", "test@attune.local"}}));
}

TEST(CliKeys, UnknownOwnerTypesAreUsageErrors) {
  for (const std::string ref : {"bogus.a.b", "pack.x", "pack..", "system.a.b"}) {
    try {
      (void)key_create_body(ref);
      ADD_FAILURE() << ref;
    } catch (const CliError& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage) << ref;
    }
  }
}

}  // namespace
}  // namespace attune::cli::client
