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

std::vector<std::shared_ptr<const Json>> packs_of(std::initializer_list<Json> packs) {
  std::vector<std::shared_ptr<const Json>> out;
  for (const auto& p : packs) out.push_back(std::make_shared<const Json>(p));
  return out;
}

// The View every route and notification asks: visibility (404) vs permission (403), record
// scopes, grant-free catalogue reads, execution tokens.
TEST(AuthzTest, ViewDecidesVisibilityPermissionAndRecordScopes) {
  const auto packs = packs_of({{{"ref", "core"}, {"owner_identity", nullptr}},
                               {{"ref", "mine"}, {"owner_identity", 7}},
                               {{"ref", "theirs"}, {"owner_identity", 8}},
                               {{"ref", "ops"}, {"owner_identity", nullptr}}});
  const View nobody(Principal{7, {}}, packs);
  const View viewer(Principal{7, set("core.viewer")}, packs);
  const View editor(Principal{7, set("core.editor")}, packs);
  const View admin(Principal{7, set("core.admin")}, packs);
  const View narrow(Principal{7, grants(Json::parse(R"([
      {"resource": "actions", "actions": ["read", "execute"], "constraints": {"pack_refs": ["theirs"]}},
      {"resource": "executions", "actions": ["read"], "constraints": {"pack_refs": ["theirs"]}}])"))},
                    packs);
  struct Case {
    const char* what;
    const View& view;
    std::string action;
    Object object;
    bool sees, may;
  };
  const std::vector<Case> cases = {
      // Grant-free reads: every visible pack, the core catalogue; nothing else.
      {"nobody reads packs", nobody, "read", {"packs", "mine"}, true, true},
      {"nobody reads core actions", nobody, "read", {"actions", "core"}, true, true},
      {"nobody reads own actions", nobody, "read", {"actions", "mine"}, true, false},
      {"nobody executes core", nobody, "execute", {"actions", "core"}, true, false},
      {"nobody reads core executions", nobody, "read", {"executions", "core"}, true, false},
      {"nobody sees theirs", nobody, "read", {"packs", "theirs"}, false, true},
      // Built-in sets.
      {"viewer reads", viewer, "read", {"rules", "mine"}, true, true},
      {"viewer creates", viewer, "create", {"rules", "mine"}, true, false},
      {"viewer executes", viewer, "execute", {"actions", "core"}, true, false},
      {"viewer decrypts", viewer, "decrypt", {"executions", "mine"}, true, false},
      {"editor creates", editor, "create", {"actions", "mine"}, true, true},
      {"editor manages permissions", editor, "manage", {"permissions", ""}, false, false},
      {"admin sees operator packs", admin, "read", {"packs", "ops"}, true, true},
      {"admin does not see theirs", admin, "delete", {"packs", "theirs"}, false, true},
      // A grant naming a pack reveals it and allows only what it says.
      {"narrow sees theirs", narrow, "execute", {"actions", "theirs"}, true, true},
      {"narrow deletes theirs", narrow, "delete", {"actions", "theirs"}, true, false},
      {"narrow executes mine", narrow, "execute", {"actions", "mine"}, true, false},
      {"narrow and operator packs", narrow, "read", {"packs", "ops"}, false, true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.view.sees(c.object.pack_ref), c.sees) << c.what;
    EXPECT_EQ(c.view.may(c.action, c.object), c.may) << c.what;
  }
  // Record scopes: readable packs' scopes plus the caller's own core runs.
  EXPECT_EQ(admin.record_scopes("executions"),
            (std::vector<std::string>{"i:7", "p:core", "p:mine", "p:ops"}));
  EXPECT_EQ(narrow.record_scopes("executions"), (std::vector<std::string>{"p:theirs"}));
  EXPECT_TRUE(nobody.record_scopes("executions").empty());
  EXPECT_TRUE(admin.may_read_record("events", "p:mine"));
  EXPECT_FALSE(admin.may_read_record("events", "p:theirs"));
  EXPECT_FALSE(admin.may_read_record("executions", "i:8"));  // another identity's core run
  EXPECT_EQ(View::scope_pack("i:8"), "core");
  EXPECT_EQ(View::scope_pack("p:mine"), "mine");
  EXPECT_TRUE(admin.may_some("permissions", "manage"));
  EXPECT_FALSE(editor.may_some("permissions", "manage"));
}

TEST(AuthzTest, PrivateObjectsOfSharedPacksNeedOwnershipOrANamingGrant) {
  const auto packs = packs_of({{{"ref", "core"}, {"owner_identity", nullptr}},
                               {{"ref", "ops"}, {"owner_identity", nullptr}},
                               {{"ref", "mine"}, {"owner_identity", 7}}});
  const View admin(Principal{7, set("core.admin")}, packs);
  const View named(Principal{9, grants(Json::parse(
                                    R"([{"resource": "actions", "actions": ["read"], "constraints": {"pack_refs": ["ops"]}}])"))},
                   packs);
  EXPECT_TRUE(admin.sees("ops", "public"));
  EXPECT_FALSE(admin.sees("ops", "private"));
  EXPECT_TRUE(admin.sees("mine", "private"));  // its own pack
  EXPECT_TRUE(named.sees("ops", "private"));
  EXPECT_FALSE(named.sees("core", "private"));
}

TEST(AuthzTest, ExecutionTokensReadTheirActionPackAndExecutionOnly) {
  const auto packs = packs_of({{{"ref", "core"}, {"owner_identity", nullptr}},
                               {{"ref", "mine"}, {"owner_identity", 7}}});
  Principal token;
  token.execution_id = 42;
  token.standard_action_ref = "mine.act";
  token.standard_pack_ref = "mine";
  const View view(token, packs);
  EXPECT_TRUE(view.sees("mine"));
  EXPECT_TRUE(view.may("read", Object{"actions", "mine", "", "", "mine.act"}));
  EXPECT_FALSE(view.may("read", Object{"actions", "mine", "", "", "mine.other"}));
  EXPECT_TRUE(view.may("read", Object{"packs", "mine"}));
  EXPECT_FALSE(view.may("read", Object{"actions", "core"}));  // no grant-free catalogue reads
  EXPECT_FALSE(view.may("execute", Object{"actions", "mine", "", "", "mine.act"}));
  EXPECT_TRUE(view.may_read_record("executions", "p:other", 42));
  EXPECT_FALSE(view.may_read_record("executions", "p:mine", 43));
  // Its own execution's inquiries (record id = the inquiry's execution), nothing else; and no
  // inquiries grant (creating for its own execution is decided by the inquiries route).
  EXPECT_TRUE(view.may_read_record("inquiries", "p:other", 42));
  EXPECT_FALSE(view.may_read_record("inquiries", "p:mine", 43));
  EXPECT_FALSE(view.may_some("inquiries", "create"));
  EXPECT_FALSE(view.may_read_record("events", "p:other", 42));
}

TEST(AuthzTest, ReferenceVisibility) {
  const Json pub = {{"ref", "a.pub"}, {"pack_ref", "a"}, {"reference_visibility", "public"}};
  const Json restricted = {{"ref", "a.r"},
                           {"pack_ref", "a"},
                           {"reference_visibility", "restricted"},
                           {"reference_allowed_pack_refs", {"b"}}};
  const Json priv = {{"ref", "a.p"}, {"pack_ref", "a"}, {"reference_visibility", "private"}};
  EXPECT_TRUE(may_reference(pub, "b"));
  EXPECT_TRUE(may_reference(restricted, "b"));
  EXPECT_FALSE(may_reference(restricted, "c"));
  EXPECT_FALSE(may_reference(priv, "b"));
  EXPECT_TRUE(may_reference(priv, "a"));  // its own pack always
  const auto packs = packs_of({{{"ref", "a"}, {"owner_identity", 1}},
                               {{"ref", "b"}, {"owner_identity", 2}},
                               {{"ref", "c"}, {"owner_identity", 2}}});
  const View b_owner(Principal{2, set("core.editor")}, packs);
  EXPECT_TRUE(discoverable(b_owner, pub, ""));
  EXPECT_FALSE(discoverable(b_owner, restricted, ""));
  EXPECT_TRUE(discoverable(b_owner, restricted, "b"));
  EXPECT_FALSE(discoverable(b_owner, restricted, "c"));
  EXPECT_FALSE(discoverable(b_owner, priv, "b"));
  const View a_owner(Principal{1, set("core.editor")}, packs);
  EXPECT_TRUE(discoverable(a_owner, priv, ""));  // visible anyway
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
