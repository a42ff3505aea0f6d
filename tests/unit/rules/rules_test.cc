// Unit tests of rule matching: candidate selection (trigger, rule_ref targeting), disabled and
// deleted rules, conditions, rendered params, dedupe of redelivered events, malformed events.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "processors/keystore/sealed.h"
#include "processors/rules/matcher.h"

namespace attune::rules {
namespace {

constexpr int64_t kNow = 1767225600000;

Json rule(const std::string& ref, bool enabled = true, Json conditions = nullptr,
          Json params = Json::object()) {
  return {{"id", std::hash<std::string>{}(ref) % 1000 + 1},
          {"ref", ref},
          {"pack_ref", "p"},
          {"trigger_ref", "p.hook"},
          {"action", 9},
          {"action_ref", "p.act"},
          {"enabled", enabled},
          {"conditions", conditions},
          {"action_params", params},
          {"updated", "2026-01-01T00:00:00.000Z"}};
}

EventInput event(Json payload, std::string rule_ref = "") {
  Envelope e{"event.created",
             77,
             "k",
             kNow,
             "api",
             {{"id", 77},
              {"trigger", 3},
              {"trigger_ref", "p.hook"},
              {"payload", payload},
              {"rule_ref", rule_ref.empty() ? Json(nullptr) : Json(rule_ref)},
              {"created", "2026-01-01T00:00:00.000Z"},
              {"defs_offset", 5}}};
  auto in = parse_event(e);
  EXPECT_TRUE(in.ok());
  return *in;
}

struct Case {
  std::string name;
  std::vector<Json> rules;
  Json payload;
  std::string rule_ref;           // event.rule_ref
  std::set<std::string> done;     // already enforced
  std::vector<std::string> want;  // matched rule refs, in order
  size_t want_errors = 0;
};

TEST(Decide, TableOfCases) {
  const Json eq = Json::array({{{"field", "a"}, {"operator", "equals"}, {"value", 1}}});
  const std::vector<Case> cases = {
      {"enabled rule, null conditions", {rule("p.r1")}, {{"a", 1}}, "", {}, {"p.r1"}},
      {"{} and [] always match",
       {rule("p.r1", true, Json::object()), rule("p.r2", true, Json::array())},
       {{"a", 1}},
       "",
       {},
       {"p.r1", "p.r2"}},
      {"disabled rule skipped", {rule("p.r1", false), rule("p.r2")}, {{"a", 1}}, "", {}, {"p.r2"}},
      {"no rules", {}, {{"a", 1}}, "", {}, {}},
      {"criteria hold", {rule("p.r1", true, eq)}, {{"a", 1}}, "", {}, {"p.r1"}},
      {"criteria fail", {rule("p.r1", true, eq)}, {{"a", 2}}, "", {}, {}},
      {"expression true",
       {rule("p.r1", true, {{"expression", "event.payload.a > 0"}})},
       {{"a", 1}},
       "",
       {},
       {"p.r1"}},
      {"trigger is an alias of event",
       {rule("p.r1", true, {{"expression", "{{ trigger.payload.a == 1 and trigger.id == 77 }}"}}),
        rule("p.r2", true, {{"expression", "trigger.payload.a == 2"}})},
       {{"a", 1}},
       "",
       {},
       {"p.r1"}},
      {"system.rule names the rule being evaluated",
       {rule("p.r1", true, {{"expression", "system.rule.ref == 'p.r2'"}}),
        rule("p.r2", true, {{"expression", "system.rule.ref == 'p.r2' and system.event.id == 77"}})},
       {{"a", 1}},
       "",
       {},
       {"p.r2"}},
      {"expression error is no match",
       {rule("p.r1", true, {{"expression", "event.payload.a < 'x'"}}), rule("p.r2")},
       {{"a", 1}},
       "",
       {},
       {"p.r2"},
       1},
      {"bad condition is no match",
       {rule("p.r1", true, Json::array({{{"field", "a"}, {"operator", "nope"}}}))},
       {{"a", 1}},
       "",
       {},
       {},
       1},
      {"rule_ref targets one rule", {rule("p.r1"), rule("p.r2")}, {{"a", 1}}, "p.r2", {}, {"p.r2"}},
      {"redelivered event yields nothing",
       {rule("p.r1"), rule("p.r2")},
       {{"a", 1}},
       "",
       {"p.r1", "p.r2"},
       {}},
      {"partly redelivered", {rule("p.r1"), rule("p.r2")}, {{"a", 1}}, "", {"p.r1"}, {"p.r2"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<JsonPtr> candidates;
    for (const auto& r : c.rules) candidates.push_back(std::make_shared<const Json>(r));
    RuleCache cache;
    int64_t next = 100;
    const DefinitionLookup lookup = [](std::string_view, std::string_view) { return nullptr; };
    Decision d = decide(
        event(c.payload, c.rule_ref), candidates,
        [&](std::string_view r) { return c.done.count(std::string(r)) > 0; }, cache, lookup,
        [&] { return next++; }, kNow);
    std::vector<std::string> got;
    for (const auto& m : d.matches) got.push_back(m.rule_ref);
    EXPECT_EQ(got, c.want);
    EXPECT_EQ(d.errors.size(), c.want_errors);
  }
}

TEST(Decide, DeletedTargetRuleSelectsNothing) {
  const DefinitionLookup lookup = [](std::string_view, std::string_view) { return nullptr; };
  EXPECT_TRUE(candidate_rules(event({{"a", 1}}, "p.gone"), lookup, nullptr).empty());
  auto r = std::make_shared<const Json>(rule("p.there"));
  const DefinitionLookup found = [&](std::string_view kind, std::string_view ref) -> JsonPtr {
    return kind == "rule" && ref == "p.there" ? r : nullptr;
  };
  auto c = candidate_rules(event({{"a", 1}}, "p.there"), found, nullptr);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0], r);
}

TEST(Decide, BuildsEnforcementAndRequestWithRenderedParams) {
  auto r = std::make_shared<const Json>(rule("p.r1", true, nullptr,
                                             {{"n", "{{ event.payload.n }}"},
                                              {"msg", "hi {{ event.payload.who }}"},
                                              {"enf", "{{ system.enforcement.id }}"},
                                              {"c", "{{ config.k }}"},
                                              {"lit", 5}}));
  auto pack = std::make_shared<const Json>(Json{{"ref", "p"}, {"config", {{"k", "v"}}}});
  const DefinitionLookup lookup = [&](std::string_view kind, std::string_view) -> JsonPtr {
    return kind == "pack" ? pack : nullptr;
  };
  RuleCache cache;
  int64_t next = 100;
  std::vector<JsonPtr> candidates = {r};
  Decision d = decide(
      event({{"n", 3}, {"who", "bob"}}), candidates, [](std::string_view) { return false; }, cache,
      lookup, [&] { return next++; }, kNow);
  ASSERT_EQ(d.matches.size(), 1u);
  const Match& m = d.matches[0];
  const Json config = {{"n", 3}, {"msg", "hi bob"}, {"enf", 100}, {"c", "v"}, {"lit", 5}};
  EXPECT_EQ(m.enforcement["config"], config);
  EXPECT_EQ(m.enforcement["id"], 100);
  EXPECT_EQ(m.enforcement["event"], 77);
  EXPECT_EQ(m.enforcement["status"], "created");
  EXPECT_EQ(m.enforcement["condition"], "all");
  EXPECT_EQ(m.enforcement["payload"], (Json{{"n", 3}, {"who", "bob"}}));
  EXPECT_TRUE(m.enforcement["resolved_at"].is_null());
  EXPECT_EQ(m.execution["id"], 101);
  EXPECT_EQ(m.execution["enforcement"], 100);
  EXPECT_EQ(m.execution["config"], config);
  EXPECT_EQ(m.execution["action_ref"], "p.act");
  EXPECT_EQ(m.execution["rule_ref"], "p.r1");
  EXPECT_EQ(m.execution["status"], "requested");

  auto records = match_records(m, kNow);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].topic, topics::kEnforcements);
  EXPECT_EQ(records[0].key, "p.r1");
  EXPECT_EQ(records[1].topic, topics::kCommands);
  EXPECT_EQ(records[1].key, "101");
  Envelope e;
  std::string err;
  ASSERT_TRUE(Envelope::parse(records[1].value, e, err));
  EXPECT_EQ(e.type, "execution.requested");
  EXPECT_EQ(e.key, "execution:101");
  EXPECT_EQ(e.payload["execution"], m.execution);
}

TEST(Decide, CacheFollowsRuleVersions) {
  RuleCache cache;
  Json r = rule("p.r1", true, {{"expression", "true"}});
  auto v1 = std::make_shared<const Json>(r);
  EXPECT_TRUE(cache.get(v1).condition.ok());
  EXPECT_EQ(&cache.get(v1), &cache.get(v1));  // same version: compiled once
  // A new version with the same `updated` (two writes in one millisecond) is still recompiled.
  r["conditions"] = Json::array({{{"field", "a"}, {"operator", "bogus"}}});
  auto v2 = std::make_shared<const Json>(r);
  EXPECT_FALSE(cache.get(v2).condition.ok());
  EXPECT_EQ(cache.size(), 2u);
  v1.reset();  // replaced in the table: only the cache holds it
  cache.prune();
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_FALSE(cache.get(v2).condition.ok());
}

TEST(Decide, ContextForConditionsAndParams) {
  auto r = std::make_shared<const Json>(
      rule("p.r1", true, {{"expression", "config.level == 'high' and pack.config.level == 'high'"}},
           {{"via_trigger", "{{ trigger.payload.user.name }}"},
            {"payload", "{{ event.payload }}"},
            {"trigger_ref", "{{ event.trigger_ref }}"},
            {"rule", "{{ system.rule.ref }}:{{ system.rule.id }}"},
            {"event", "{{ system.event.id }}"},
            {"enforcement", "{{ system.enforcement.id }}"},
            {"now", "{{ system.timestamp }}"},
            {"missing", "{{ event.payload.nope }}"},
            {"missing_default", "{{ event.payload.nope | default('x') | upper }}"},
            {"pack_ref", "{{ pack.ref }}"}}));
  auto pack = std::make_shared<const Json>(Json{{"ref", "p"}, {"config", {{"level", "high"}}}});
  const DefinitionLookup lookup = [&](std::string_view kind, std::string_view ref) -> JsonPtr {
    return kind == "pack" && ref == "p" ? pack : nullptr;
  };
  RuleCache cache;
  int64_t next = 500;
  std::vector<JsonPtr> candidates = {r};
  const Json payload = {{"user", {{"name", "ann"}, {"tags", {"a", "b"}}}}, {"n", 2.5}};
  Decision d = decide(
      event(payload), candidates, [](std::string_view) { return false; }, cache, lookup,
      [&] { return next++; }, kNow);
  ASSERT_EQ(d.matches.size(), 1u) << (d.errors.empty() ? "" : d.errors[0]);
  const Json& config = d.matches[0].enforcement["config"];
  EXPECT_EQ(config["via_trigger"], "ann");
  EXPECT_EQ(config["payload"], payload);
  EXPECT_EQ(config["trigger_ref"], "p.hook");
  EXPECT_EQ(config["rule"], "p.r1:" + (*r)["id"].dump());
  EXPECT_EQ(config["event"], 77);
  EXPECT_EQ(config["enforcement"], 500);
  EXPECT_EQ(config["now"], "2026-01-01T00:00:00.000Z");
  EXPECT_TRUE(config["missing"].is_null());
  EXPECT_EQ(config["missing_default"], "X");
  EXPECT_EQ(config["pack_ref"], "p");
  EXPECT_EQ(d.matches[0].execution["config"], config);

  // Without a pack (or its config) `config.*` is undefined: the condition is simply false.
  const DefinitionLookup none = [](std::string_view, std::string_view) { return nullptr; };
  d = decide(
      event(payload), candidates, [](std::string_view) { return false; }, cache, none,
      [&] { return next++; }, kNow);
  EXPECT_TRUE(d.matches.empty());
  EXPECT_TRUE(d.errors.empty());
  EXPECT_EQ(d.not_matched, 1u);
}

TEST(Decide, DedupeStoreAskedOnlyForMatchingRules) {
  std::vector<JsonPtr> candidates;
  for (int i = 0; i < 50; ++i) {
    candidates.push_back(std::make_shared<const Json>(
        rule("p.r" + std::to_string(i), true, {{"expression", "event.payload.a == " + std::to_string(i)}})));
  }
  RuleCache cache;
  int64_t next = 1;
  std::vector<std::string> asked;
  const DefinitionLookup lookup = [](std::string_view, std::string_view) { return nullptr; };
  Decision d = decide(
      event({{"a", 7}}), candidates,
      [&](std::string_view r) {
        asked.emplace_back(r);
        return false;
      },
      cache, lookup, [&] { return next++; }, kNow);
  ASSERT_EQ(d.matches.size(), 1u);
  EXPECT_EQ(d.matches[0].rule_ref, "p.r7");
  EXPECT_EQ(asked, std::vector<std::string>{"p.r7"});
  EXPECT_EQ(d.not_matched, 49u);
}

TEST(Decide, EvaluationErrorsAreReportedWithTheRule) {
  auto r = std::make_shared<const Json>(rule("p.bad", true, {{"expression", "event.payload.x > 5"}}));
  auto t = std::make_shared<const Json>(
      rule("p.tmpl", true, nullptr, {{"v", "{{ event.payload.x - 2 }}"}}));
  std::vector<JsonPtr> candidates = {r, t};
  RuleCache cache;
  int64_t next = 1;
  const DefinitionLookup lookup = [](std::string_view, std::string_view) { return nullptr; };
  Decision d = decide(
      event({{"x", "text"}}), candidates, [](std::string_view) { return false; }, cache, lookup,
      [&] { return next++; }, kNow);
  EXPECT_TRUE(d.matches.empty());
  ASSERT_EQ(d.errors.size(), 2u);
  EXPECT_EQ(d.errors[0].rfind("p.bad: conditions: ", 0), 0u) << d.errors[0];
  EXPECT_NE(d.errors[0].find("at column"), std::string::npos) << d.errors[0];
  EXPECT_EQ(d.errors[1].rfind("p.tmpl: action_params.v: ", 0), 0u) << d.errors[1];
}

TEST(ParseEvent, RejectsMalformedEvents) {
  auto make = [](Json payload) { return Envelope{"event.created", 0, "", 0, "api", payload}; };
  EXPECT_FALSE(parse_event(make(Json::array())).ok());
  EXPECT_FALSE(parse_event(make({{"trigger_ref", "p.hook"}})).ok());
  EXPECT_FALSE(parse_event(make({{"id", 5}})).ok());
  EXPECT_FALSE(parse_event(make({{"id", 5}, {"trigger_ref", "t"}, {"defs_offset", "x"}})).ok());
  auto ok = parse_event(make({{"id", 5}, {"trigger_ref", "t"}}));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->defs_offset, 0);
  EXPECT_TRUE(ok->event["payload"].is_null());
  EXPECT_EQ(dedupe_key(5, "p.r"), "event:5:p.r");
}

}  // namespace
}  // namespace attune::rules

namespace attune::rules {
namespace {

// keystore.* in conditions and params (API.md §10.2, §14), and sealing of secret parameters:
// the action's schema marks `password` secret, and `token` is rendered from an encrypted key, so
// neither may sit in the stored config; both open again with the record's own id.
TEST(Decide, KeystoreTemplatesAndSealedSecrets) {
  const keystore::Cipher cipher("rules-test-secret-0123456789abcdef0123");
  auto r = std::make_shared<const Json>(
      rule("p.r1", true, Json{{"expression", "keystore.mode == 'on'"}},
           {{"token", "{{ keystore.pack.p.api_token }}"},
            {"url", "https://{{ keystore.host }}/x"},
            {"password", "{{ event.payload.pw }}"},
            {"missing", "{{ keystore.nope }}"}}));
  auto action = std::make_shared<const Json>(
      Json{{"ref", "p.act"}, {"param_schema", {{"password", {{"secret", true}}}}}});
  const DefinitionLookup lookup = [&](std::string_view kind, std::string_view) -> JsonPtr {
    return kind == "action" ? action : nullptr;
  };
  int calls = 0;
  SecretContext secrets;
  secrets.cipher = &cipher;
  secrets.keys = [&](const Json& rule_obj) {
    ++calls;
    EXPECT_EQ(rule_obj["ref"], "p.r1");
    keystore::TemplateKeys k;
    k.root = {{"mode", "on"},
              {"host", "example.org"},
              {"system", {{"mode", "on"}, {"host", "example.org"}}},
              {"pack", {{"p", {{"api_token", "tok-secret-999"}}}}}};
    k.secrets = {"tok-secret-999"};
    return k;
  };
  RuleCache cache;
  int64_t next = 200;
  std::vector<JsonPtr> candidates = {r};
  Decision d = decide(
      event({{"pw", "hunter22"}}), candidates, [](std::string_view) { return false; }, cache,
      lookup, [&] { return next++; }, kNow, &secrets);
  ASSERT_EQ(d.matches.size(), 1u) << (d.errors.empty() ? "" : d.errors[0]);
  EXPECT_EQ(calls, 1);
  const Match& m = d.matches[0];
  const Json marker = keystore::redaction_marker();
  const Json stored = {{"token", marker},
                       {"url", "https://example.org/x"},
                       {"password", marker},
                       {"missing", nullptr}};
  EXPECT_EQ(m.execution["config"], stored);
  EXPECT_EQ(m.enforcement["config"], stored);
  // The decrypted key appears in no record; the secret parameter not in the execution request
  // (the enforcement's `payload` is the event's payload copy, redacted on read by the trigger's
  // schema, not sealed).
  for (const auto& rec : match_records(m, kNow)) {
    EXPECT_EQ(rec.value.find("tok-secret-999"), std::string::npos);
    if (rec.topic == topics::kCommands) {
      EXPECT_EQ(rec.value.find("hunter22"), std::string::npos);
    }
  }
  auto open = keystore::unseal_config(m.execution["config"], m.execution["secret_config"].get<std::string>(), cipher,
                                      keystore::sealed_aad("execution", m.execution["id"].get<int64_t>()));
  ASSERT_TRUE(open.ok());
  EXPECT_EQ((*open)["token"], "tok-secret-999");
  EXPECT_EQ((*open)["password"], "hunter22");
  EXPECT_TRUE(keystore::unseal_config(m.enforcement["config"], m.enforcement["secret_config"].get<std::string>(),
                                      cipher, keystore::sealed_aad("enforcement", m.enforcement["id"].get<int64_t>()))
                  .ok());

  // A rule that does not mention keystore never reads keys; without a cipher nothing is sealed.
  auto plain = std::make_shared<const Json>(rule("p.r2", true, nullptr, {{"a", "{{ event.id }}"}}));
  std::vector<JsonPtr> plain_candidates = {plain};
  d = decide(
      event({{"pw", "x"}}), plain_candidates, [](std::string_view) { return false; }, cache, lookup,
      [&] { return next++; }, kNow, &secrets);
  ASSERT_EQ(d.matches.size(), 1u);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(d.matches[0].execution.contains("secret_config"));
}

}  // namespace
}  // namespace attune::rules
