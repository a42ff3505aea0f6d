// Permission evaluation, table-driven: grants × constraints × resources × actions × ownership.
#include "api/authz/authz.h"

#include <gtest/gtest.h>

namespace attune::authz {
namespace {

std::vector<Grant> grants(const Json& j) {
  auto g = parse_grants(j);
  EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.error().message);
  return g.ok() ? *g : std::vector<Grant>{};
}

const std::vector<Grant>& set(const char* ref) { return builtin_sets().at(ref); }

TEST(AuthzTest, BuiltInSets) {
  struct Case {
    const char* set;
    const char* resource;
    const char* action;
    bool allowed;
  };
  const std::vector<Case> cases = {
      {"core.viewer", "actions", "read", true},      {"core.viewer", "actions", "execute", false},
      {"core.viewer", "executions", "decrypt", false}, {"core.viewer", "keys", "decrypt", false},
      {"core.viewer", "permissions", "read", true},  {"core.viewer", "packs", "create", false},
      {"core.executor", "actions", "execute", true}, {"core.executor", "executions", "cancel", true},
      {"core.executor", "inquiries", "respond", true}, {"core.executor", "actions", "create", false},
      {"core.executor", "keys", "use", false},       {"core.editor", "actions", "create", true},
      {"core.editor", "packs", "install", true},     {"core.editor", "packs", "configure", true},
      {"core.editor", "keys", "delete", true},       {"core.editor", "keys", "decrypt", false},
      {"core.editor", "identities", "create", false}, {"core.editor", "permissions", "manage", false},
      {"core.admin", "permissions", "manage", true}, {"core.admin", "keys", "decrypt", true},
      {"core.admin", "executions", "decrypt", true}, {"core.admin", "identities", "delete", true},
      {"core.admin", "caches", "read", false},  // unknown resources grant nothing
  };
  for (const auto& c : cases) {
    EXPECT_EQ(allowed(set(c.set), c.action, Object{c.resource, "demo"}), c.allowed)
        << c.set << " " << c.resource << ":" << c.action;
  }
}

TEST(AuthzTest, ConstraintsNarrowGrants) {
  const auto g = grants(Json::parse(R"([
    {"resource": "actions", "actions": ["read", "execute"], "constraints": {"pack_refs": ["ops"]}},
    {"resource": "keys", "actions": ["read"], "constraints": {"owner_types": ["pack"], "owner_refs": ["ops"]}},
    {"resource": "events", "actions": ["read"]}
  ])"));
  struct Case {
    Object object;
    const char* action;
    bool allowed;
  };
  const std::vector<Case> cases = {
      {{"actions", "ops"}, "execute", true},
      {{"actions", "dev"}, "execute", false},
      {{"actions", ""}, "read", false},  // a constrained grant needs the attribute
      {{"actions", "ops"}, "delete", false},
      {{"keys", "ops", "pack", "ops"}, "read", true},
      {{"keys", "ops", "identity", "ops"}, "read", false},
      {{"keys", "ops", "pack", "dev"}, "read", false},
      {{"keys", "", "", ""}, "read", false},
      {{"events", "anything"}, "read", true},
      {{"events", ""}, "read", true},
      {{"events", "x"}, "decrypt", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(allowed(g, c.action, c.object), c.allowed)
        << c.object.resource << "/" << c.object.pack_ref << "/" << c.object.owner_type << "/"
        << c.object.owner_ref << " " << c.action;
  }
}

TEST(AuthzTest, PackVisibility) {
  const Json core = {{"ref", "core"}, {"owner_identity", nullptr}};
  const Json mine = {{"ref", "mine"}, {"owner_identity", 7}};
  const Json theirs = {{"ref", "theirs"}, {"owner_identity", 8}};
  const Json operator_pack = {{"ref", "ops"}, {"owner_identity", nullptr}};
  const Principal nobody{7, {}};
  const Principal admin{7, set("core.admin")};
  const Principal granted{7, grants(Json::parse(
                                 R"([{"resource": "rules", "actions": ["read"], "constraints": {"pack_refs": ["theirs"]}}])"))};
  struct Case {
    const char* who;
    const Principal& principal;
    const Json& pack;
    bool visible;
  };
  const std::vector<Case> cases = {
      {"nobody/core", nobody, core, true},
      {"nobody/mine", nobody, mine, true},
      {"nobody/theirs", nobody, theirs, false},
      {"nobody/operator", nobody, operator_pack, false},
      {"admin/theirs", admin, theirs, false},  // core.admin does not reveal another tenant's pack
      {"admin/operator", admin, operator_pack, true},
      {"granted/theirs", granted, theirs, true},
      {"granted/operator", granted, operator_pack, false},
  };
  for (const auto& c : cases) EXPECT_EQ(pack_visible(c.principal, c.pack), c.visible) << c.who;
  EXPECT_FALSE(pack_visible(Principal{0, {}}, mine));  // no identity owns nothing
}

TEST(AuthzTest, BadGrantsNameTheEntry) {
  struct Case {
    const char* grants;
    const char* error;
  };
  const std::vector<Case> cases = {
      {R"({"resource": "x"})", "grants: must be a list"},
      {R"([1])", "grants[0]: must be an object"},
      {R"([{"actions": ["read"]}])", "grants[0].resource"},
      {R"([{"resource": "packs"}])", "grants[0].actions: is required"},
      {R"([{"resource": "packs", "actions": "read"}])", "grants[0].actions: must be a list"},
      {R"([{"resource": "packs", "actions": ["read"]}, {"resource": "keys", "actions": ["read"], "constraints": {"pack_refs": "a"}}])",
       "grants[1].constraints.pack_refs"},
      {R"([{"resource": "packs", "actions": ["read"], "constraints": []}])", "grants[0].constraints"},
  };
  for (const auto& c : cases) {
    auto g = parse_grants(Json::parse(c.grants));
    ASSERT_FALSE(g.ok()) << c.grants;
    EXPECT_NE(g.error().message.find(c.error), std::string::npos) << g.error().message;
  }
  // Unknown resources and actions are stored as written and grant nothing.
  auto unknown = parse_grants(Json::parse(R"([{"resource": "caches", "actions": ["flush"]}])"));
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(allowed(*unknown, "read", Object{"packs", "x"}));
  EXPECT_EQ(unknown->front().to_json(), Json::parse(R"({"resource": "caches", "actions": ["flush"]})"));
}

TEST(AuthzTest, EffectivePermissionsMergeUnconstrainedGrants) {
  auto g = set("core.executor");
  auto extra = grants(Json::parse(
      R"([{"resource": "keys", "actions": ["use"], "constraints": {"owner_types": ["pack"]}},
          {"resource": "keys", "actions": ["use"], "constraints": {"owner_types": ["pack"]}}])"));
  g.insert(g.end(), extra.begin(), extra.end());
  const Json eff = effective_permissions(g);
  Json actions_entry;
  size_t constrained = 0;
  for (const auto& e : eff) {
    if (e["resource"] == "actions" && !e.contains("constraints")) actions_entry = e;
    if (e.contains("constraints")) ++constrained;
  }
  EXPECT_EQ(actions_entry["actions"], Json({"execute", "read"}));
  EXPECT_EQ(constrained, 1u);  // duplicates collapse
}

}  // namespace
}  // namespace attune::authz
