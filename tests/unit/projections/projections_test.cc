// Unit tests for the projections: the "api" stage run by the Runtime on a temp EmbeddedLog, and
// every read path checked against a brute-force model of the same rows.
#include "api/projections/projections.h"

#include <algorithm>
#include <future>
#include <thread>

#include "api/projections/projection_processor.h"
#include "tests/unit/topology/test_util.h"
#include "topology/core/time.h"

namespace attune::projections {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kT0 = 1767225600000;  // 2026-01-01

std::string value_of(const std::string& type, int64_t id, const Json& payload) {
  Envelope e{type, id, type + ":" + std::to_string(id), kT0, "test", payload};
  return e.dump();
}

Json event_row(int64_t id, int64_t trigger, const std::string& trigger_ref, Json source,
               const std::string& source_ref, int64_t created, Json payload) {
  return {{"id", id},           {"trigger", trigger},   {"trigger_ref", trigger_ref},
          {"config", {{"c", 1}}}, {"payload", payload}, {"source", source},
          {"source_ref", source_ref}, {"rule", nullptr}, {"rule_ref", nullptr},
          {"created", format_rfc3339_ms(created)}, {"updated", format_rfc3339_ms(created)}};
}

Json enforcement_row(int64_t id, int64_t rule, const std::string& rule_ref,
                     const std::string& trigger_ref, int64_t event, int64_t created) {
  return {{"id", id},         {"rule", rule},       {"rule_ref", rule_ref},
          {"trigger_ref", trigger_ref}, {"event", event}, {"status", "created"},
          {"config", {{"x", id}}}, {"payload", {{"p", 1}}}, {"condition", "all"},
          {"conditions", Json::array()}, {"resolved_at", nullptr},
          {"created", format_rfc3339_ms(created)}, {"updated", format_rfc3339_ms(created)}};
}

Json execution_row(int64_t id, const std::string& action_ref, const std::string& status,
                   int64_t created, Json enforcement, Json parent, Json rule, Json rule_ref,
                   Json trigger_ref, Json result, int64_t updated) {
  return {{"id", id},
          {"action", 100 + id % 3},
          {"action_ref", action_ref},
          {"pack_ref", action_ref.substr(0, action_ref.find('.'))},
          {"config", Json::object()},
          {"env_vars", Json::object()},
          {"parent", parent},
          {"enforcement", enforcement},
          {"rule", rule},
          {"rule_ref", rule_ref},
          {"trigger_ref", trigger_ref},
          {"executor", nullptr},
          {"status", status},
          {"result", result},
          {"attempt", 1},
          {"created", format_rfc3339_ms(created)},
          {"updated", format_rfc3339_ms(updated)}};
}

std::vector<int64_t> ids_of(const Json& items) {
  std::vector<int64_t> out;
  for (const auto& r : items) out.push_back(r["id"].get<int64_t>());
  return out;
}

// The reference: filter, order by (created, id), page.
template <class Pred>
std::pair<std::vector<int64_t>, int64_t> model_list(const std::map<int64_t, Json>& rows, Pred pred,
                                                    const Page& page) {
  std::vector<std::pair<int64_t, int64_t>> keys;
  for (const auto& entry : rows) {
    const Json& r = entry.second;
    if (pred(r)) keys.emplace_back(*parse_rfc3339_ms(r["created"].get<std::string>()), entry.first);
  }
  std::sort(keys.begin(), keys.end());
  if (page.descending) std::reverse(keys.begin(), keys.end());
  std::vector<int64_t> ids;
  for (int64_t i = page.offset; i < page.offset + page.limit && i < std::ssize(keys); ++i) {
    ids.push_back(keys[i].second);
  }
  return {ids, static_cast<int64_t>(keys.size())};
}

bool model_match(const Json& r, const ExecutionFilter& f) {
  const int64_t created = *parse_rfc3339_ms(r["created"].get<std::string>());
  auto eq = [&](const char* field, const auto& want) { return r[field] == Json(want); };
  if (!f.statuses.empty() && std::find(f.statuses.begin(), f.statuses.end(),
                                       r["status"].get<std::string>()) == f.statuses.end()) {
    return false;
  }
  if (f.action_ref && !eq("action_ref", *f.action_ref)) return false;
  if (f.pack_ref && !eq("pack_ref", *f.pack_ref)) return false;
  if (f.enforcement && !eq("enforcement", *f.enforcement)) return false;
  if (f.parent && !eq("parent", *f.parent)) return false;
  if (f.rule && !eq("rule", *f.rule)) return false;
  if (f.rule_ref && !eq("rule_ref", *f.rule_ref)) return false;
  if (f.trigger_ref && !eq("trigger_ref", *f.trigger_ref)) return false;
  if (f.created_after && created < *f.created_after) return false;
  if (f.created_before && created >= *f.created_before) return false;
  if (f.result_contains &&
      (r["result"].is_null() || r["result"].dump().find(*f.result_contains) == std::string::npos)) {
    return false;
  }
  if (f.scopes && std::find(f.scopes->begin(), f.scopes->end(),
                            record_scope(Entity::kExecution, r)) == f.scopes->end()) {
    return false;
  }
  return true;
}

using Scopes = std::vector<std::string>;

class ProjectionsTest : public testing::LogFixture {
 protected:
  void TearDown() override {
    stop();
    LogFixture::TearDown();
  }

  void start(int instances = 1, RetentionOptions retention = {}) {
    topology_ = std::make_unique<Topology>();
    RuntimeOptions opts;
    opts.ids = &ids_;
    opts.on_dead_letter = [this](const std::string&, const Record&, const std::string&) {
      ++dead_letters_;
    };
    runtime_ = std::make_unique<Runtime>(*log_, *topology_, opts);
    if (retention.keep.enabled() && !retention.references_applied) {
      retention.references_applied = [rt = runtime_.get()] {  // as attune serve wires it
        bool known = false;
        for (const auto& l : rt->lag()) {
          if (l.stage != kStage || l.topic == topics::kEvents) continue;
          if (l.records > 0) return false;
          known = true;
        }
        return known;
      };
    }
    auto stage = make_projection_stage(*log_, runtime_->applied(),
                                       {.instances = instances, .retention = retention});
    ASSERT_TRUE(stage.ok()) << stage.error().message;
    topology_->add(std::move(stage->spec));
    proj_ = stage->projections;
    proj_->add_change_hook([this](const Change& c) {
      {
        std::lock_guard lock(changes_mu_);
        changes_.push_back(c);
      }
      changes_cv_.notify_all();
    });
    ASSERT_TRUE(runtime_->start().ok());
  }

  void stop() {
    if (runtime_) runtime_->stop();
    runtime_.reset();
    topology_.reset();
    proj_.reset();
  }

  void produce(std::string_view topic, const std::string& key, const std::string& type,
               int64_t id, const Json& payload) {
    auto p = log_->produce({{std::string(topic), key, value_of(type, id, payload)}});
    ASSERT_TRUE(p.ok()) << p.error().message;
    auto& last = last_[(*p)[0].tp];
    last = std::max(last, (*p)[0].offset);
  }
  void produce_raw(std::string_view topic, const std::string& key, const std::string& value) {
    auto p = log_->produce({{std::string(topic), key, value}});
    ASSERT_TRUE(p.ok());
    auto& last = last_[(*p)[0].tp];
    last = std::max(last, (*p)[0].offset);
  }
  // Waits until the stage has applied everything produced so far.
  void sync() {
    for (const auto& [tp, offset] : last_) ASSERT_TRUE(proj_->wait_applied(tp, offset, 10s));
  }

  void put_event(const Json& row) {
    events_[row["id"]] = row;
    Json payload = row;
    payload["defs_offset"] = 7;
    produce(topics::kEvents, row["trigger_ref"], "event.created", row["id"], payload);
  }
  void put_enforcement(const Json& row) {
    enforcements_[row["id"]] = row;
    produce(topics::kEnforcements, row["rule_ref"], "enforcement.created", row["id"], row);
  }
  void update_enforcement(int64_t id, const std::string& status, int64_t at) {
    Json patch = {{"id", id},
                  {"status", status},
                  {"resolved_at", format_rfc3339_ms(at)},
                  {"updated", format_rfc3339_ms(at)}};
    Json& row = enforcements_[id];
    for (auto& [k, v] : patch.items()) row[k] = v;
    produce(topics::kEnforcements, row["rule_ref"], "enforcement.updated", id, patch);
  }
  void put_execution(const Json& row, Json old_status = nullptr) {
    executions_[row["id"]] = row;
    Json payload = row;
    payload["old_status"] = old_status;
    const Json& parent = row["parent"];
    const std::string key = std::to_string(parent.is_null() ? row["id"].get<int64_t>()
                                                            : parent.get<int64_t>());
    produce(topics::kExecutions, key, "execution.updated", row["id"], payload);
  }

  void expect_executions(const ExecutionFilter& f, const Page& page, const std::string& what) {
    auto got = proj_->list_executions(f, page);
    ASSERT_TRUE(got.ok()) << got.error().message;
    auto [ids, total] = model_list(executions_, [&](const Json& r) { return model_match(r, f); },
                                   page);
    EXPECT_EQ(ids_of(got->items), ids) << what;
    EXPECT_EQ(got->total, total) << what;
    for (const auto& item : got->items) EXPECT_EQ(item, executions_[item["id"]]) << what;
  }

  std::vector<Change> changes() {
    std::lock_guard lock(changes_mu_);
    return changes_;
  }
  // Hooks run after the applied offset advances, so tests about hooks wait for them.
  void wait_changes(size_t n) {
    std::unique_lock lock(changes_mu_);
    ASSERT_TRUE(changes_cv_.wait_for(lock, 10s, [&] { return changes_.size() >= n; }))
        << changes_.size() << " of " << n << " changes";
  }
  // A record whose change, once seen, proves every earlier record was applied and hooked.
  void barrier(int64_t id) {
    sync();  // everything before the barrier is committed, so its hooks run before the barrier's
    put_execution(execution_row(id, "barrier.x", "requested", kT0, nullptr, nullptr, nullptr,
                                nullptr, nullptr, nullptr, kT0));
    sync();
    std::unique_lock lock(changes_mu_);
    ASSERT_TRUE(changes_cv_.wait_for(lock, 10s, [&] {
      return !changes_.empty() && changes_.back().id == id;
    })) << changes_.size() << " changes, last " << (changes_.empty() ? 0 : changes_.back().id);
  }

  // A mixed population of executions; some share a created ms so the id breaks ties.
  void populate_executions(int n) {
    const std::vector<std::string> actions = {"core.echo", "core.http", "ops.deploy"};
    const std::vector<std::string> statuses = {"requested", "running", "completed", "failed",
                                               "scheduled"};
    for (int i = 1; i <= n; ++i) {
      const int64_t id = 1000 + i;
      const int64_t created = kT0 + (i / 2) * 1000;
      Json enforcement = i % 4 == 0 ? Json(nullptr) : Json(500 + i % 5);
      Json parent = i > 10 && i % 7 == 0 ? Json(1001 + i % 3) : Json(nullptr);
      Json rule = enforcement.is_null() ? Json(nullptr) : Json(70 + i % 2);
      Json rule_ref = enforcement.is_null() ? Json(nullptr) : Json(i % 2 ? "core.r1" : "ops.r0");
      Json trigger_ref = enforcement.is_null() ? Json(nullptr) : Json("core.timer");
      const std::string status = statuses[i % statuses.size()];
      Json result = status == "completed" ? Json{{"stdout", "hello " + std::to_string(i % 3)}}
                                          : Json(nullptr);
      put_execution(execution_row(id, actions[i % actions.size()], status, created, enforcement,
                                  parent, rule, rule_ref, trigger_ref, result, created));
    }
  }

  IdGenerator ids_{0, SystemClock::instance()};
  std::unique_ptr<Topology> topology_;
  std::unique_ptr<Runtime> runtime_;
  std::shared_ptr<Projections> proj_;
  std::map<TopicPartition, int64_t> last_;
  std::atomic<int> dead_letters_{0};
  std::mutex changes_mu_;
  std::condition_variable changes_cv_;
  std::vector<Change> changes_;
  std::map<int64_t, Json> events_, enforcements_, executions_;
};

TEST_F(ProjectionsTest, EventsGetAndEveryFilter) {
  start();
  for (int i = 1; i <= 30; ++i) {
    const std::string trigger_ref = i % 3 == 0 ? "core.webhook" : "core.timer";
    Json source = i % 5 == 0 ? Json(900 + i % 2) : Json(nullptr);
    const std::string source_ref = i % 5 == 0 ? "mypack.sensor" : "webhook";
    Json payload = i % 4 == 0 ? Json::object() : Json{{"n", i}};
    put_event(event_row(i, i % 3 == 0 ? 11 : 12, trigger_ref, source, source_ref,
                        kT0 + (i / 3) * 10, payload));
  }
  sync();

  auto got = proj_->get_event(4);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, events_[4]);  // full row, defs_offset dropped
  EXPECT_FALSE(proj_->get_event(99)->has_value());

  struct Case {
    EventFilter f;
    std::function<bool(const Json&)> pred;
    std::string what;
  };
  auto created = [](const Json& r) { return *parse_rfc3339_ms(r["created"].get<std::string>()); };
  const std::vector<Case> cases = {
      {{}, [](const Json&) { return true; }, "all"},
      {{.trigger = 11}, [](const Json& r) { return r["trigger"] == 11; }, "trigger id"},
      {{.trigger_ref = "core.timer"}, [](const Json& r) { return r["trigger_ref"] == "core.timer"; },
       "trigger_ref"},
      {{.source = "901"}, [](const Json& r) { return r["source"] == 901; }, "source id"},
      {{.source = "webhook"}, [](const Json& r) { return r["source_ref"] == "webhook"; },
       "source_ref"},
      {{.created_after = kT0 + 50}, [&](const Json& r) { return created(r) >= kT0 + 50; },
       "created_after"},
      {{.trigger_ref = "core.webhook", .source = "mypack.sensor", .created_after = kT0 + 20},
       [&](const Json& r) {
         return r["trigger_ref"] == "core.webhook" && r["source_ref"] == "mypack.sensor" &&
                created(r) >= kT0 + 20;
       },
       "combined"},
      {{.trigger = 12, .trigger_ref = "core.webhook"}, [](const Json&) { return false; },
       "contradiction"},
  };
  for (const auto& c : cases) {
    for (const Page page : {Page{0, 50, true}, Page{0, 50, false}, Page{3, 4, true},
                            Page{2, 5, false}, Page{100, 10, true}, Page{0, 0, true}}) {
      auto list = proj_->list_events(c.f, page);
      ASSERT_TRUE(list.ok()) << list.error().message;
      auto [ids, total] = model_list(events_, c.pred, page);
      EXPECT_EQ(ids_of(list->items), ids) << c.what << " offset " << page.offset;
      EXPECT_EQ(list->total, total) << c.what;
      for (const auto& item : list->items) {
        EXPECT_FALSE(item.contains("payload"));
        EXPECT_FALSE(item.contains("config"));
        const Json& full = events_[item["id"]];
        EXPECT_EQ(item["has_payload"], !full["payload"].empty()) << item;
        EXPECT_EQ(item["trigger_ref"], full["trigger_ref"]);
      }
    }
  }
}

TEST_F(ProjectionsTest, EnforcementsMergeUpdatesAndFilter) {
  start();
  for (int i = 1; i <= 24; ++i) {
    put_enforcement(enforcement_row(200 + i, 30 + i % 2, i % 2 ? "core.r1" : "ops.r0",
                                    i % 3 ? "core.timer" : "core.webhook", 10 + i % 6,
                                    kT0 + i * 100));
  }
  for (int i = 1; i <= 24; i += 3) update_enforcement(200 + i, i % 2 ? "processed" : "disabled",
                                                      kT0 + 5000 + i);
  sync();

  auto row = proj_->get_enforcement(201);
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ(**row, enforcements_[201]);
  EXPECT_EQ((**row)["status"], "processed");
  EXPECT_EQ((**row)["config"], Json({{"x", 201}}));  // untouched by the partial update

  struct Case {
    EnforcementFilter f;
    std::function<bool(const Json&)> pred;
    std::string what;
  };
  auto created = [](const Json& r) { return *parse_rfc3339_ms(r["created"].get<std::string>()); };
  const std::vector<Case> cases = {
      {{}, [](const Json&) { return true; }, "all"},
      {{.rule = 31}, [](const Json& r) { return r["rule"] == 31; }, "rule id"},
      {{.rule_ref = "ops.r0"}, [](const Json& r) { return r["rule_ref"] == "ops.r0"; }, "rule_ref"},
      {{.event = 12}, [](const Json& r) { return r["event"] == 12; }, "event"},
      {{.status = "created"}, [](const Json& r) { return r["status"] == "created"; }, "created"},
      {{.status = "processed"}, [](const Json& r) { return r["status"] == "processed"; },
       "processed"},
      {{.trigger_ref = "core.webhook"},
       [](const Json& r) { return r["trigger_ref"] == "core.webhook"; }, "trigger_ref"},
      {{.created_after = kT0 + 1200}, [&](const Json& r) { return created(r) >= kT0 + 1200; },
       "created_after"},
      {{.rule_ref = "core.r1", .status = "created", .trigger_ref = "core.timer",
        .created_after = kT0 + 300},
       [&](const Json& r) {
         return r["rule_ref"] == "core.r1" && r["status"] == "created" &&
                r["trigger_ref"] == "core.timer" && created(r) >= kT0 + 300;
       },
       "combined"},
  };
  for (const auto& c : cases) {
    for (const Page page : {Page{0, 50, true}, Page{0, 50, false}, Page{1, 3, true},
                            Page{2, 2, false}}) {
      auto list = proj_->list_enforcements(c.f, page);
      ASSERT_TRUE(list.ok()) << list.error().message;
      auto [ids, total] = model_list(enforcements_, c.pred, page);
      EXPECT_EQ(ids_of(list->items), ids) << c.what;
      EXPECT_EQ(list->total, total) << c.what;
      for (const auto& item : list->items) EXPECT_EQ(item, enforcements_[item["id"]]);
    }
  }

  // An update of an unknown enforcement is dead-lettered; the stage goes on.
  produce(topics::kEnforcements, "core.r1", "enforcement.updated", 999,
          {{"id", 999}, {"status", "processed"}});
  produce_raw(topics::kEnforcements, "core.r1", "not json");
  produce(topics::kEnforcements, "core.r1", "enforcement.something_new", 201, {{"id", 201}});
  sync();
  EXPECT_EQ(dead_letters_.load(), 2);
  EXPECT_FALSE(proj_->get_enforcement(999)->has_value());
  EXPECT_EQ(**proj_->get_enforcement(201), enforcements_[201]);
}

TEST_F(ProjectionsTest, ExecutionsEveryFilterAloneAndCombined) {
  start();
  populate_executions(90);
  sync();
  ASSERT_EQ(**proj_->get_execution(1005), executions_[1005]);
  EXPECT_FALSE((**proj_->get_execution(1005)).contains("old_status"));

  std::vector<std::pair<ExecutionFilter, std::string>> cases = {
      {{}, "all"},
      {{.action_ref = "core.echo"}, "action_ref"},
      {{.pack_ref = "core"}, "pack_ref"},
      {{.statuses = {"running"}}, "status"},
      {{.statuses = {"running", "completed", "failed"}}, "statuses"},
      {{.statuses = {"nonexistent"}}, "unknown status"},
      {{.enforcement = 502}, "enforcement"},
      {{.parent = 1002}, "parent"},
      {{.rule = 71}, "rule id"},
      {{.rule_ref = "ops.r0"}, "rule_ref"},
      {{.trigger_ref = "core.timer"}, "trigger_ref"},
      {{.created_after = kT0 + 20000}, "created_after"},
      {{.created_before = kT0 + 7000}, "created_before"},
      {{.created_after = kT0 + 5000, .created_before = kT0 + 9000}, "created range"},
      {{.result_contains = "hello 1"}, "result_contains"},
      {{.action_ref = "core.http", .statuses = {"completed", "requested"}}, "action+statuses"},
      {{.pack_ref = "core", .rule_ref = "core.r1", .trigger_ref = "core.timer"}, "pack+rule"},
      {{.statuses = {"completed"}, .created_after = kT0 + 10000, .result_contains = "hello"},
       "status+range+result"},
      {{.action_ref = "ops.deploy", .enforcement = 501, .rule = 71}, "action+enf+rule"},
      {{.pack_ref = "ops", .parent = 1003, .created_before = kT0 + 40000}, "pack+parent+before"},
  };
  for (const auto& [f, what] : cases) {
    for (const Page page : {Page{0, 100, true}, Page{0, 100, false}, Page{5, 7, true},
                            Page{3, 4, false}, Page{200, 10, true}, Page{0, 0, false}}) {
      expect_executions(f, page, what + " offset " + std::to_string(page.offset));
    }
  }
}

TEST_F(ProjectionsTest, StatusChangesMoveIndexEntriesAndStats) {
  start();
  populate_executions(40);
  sync();
  // Walk one execution through its lifecycle; every step moves it between status prefixes.
  Json row = executions_[1001];
  int64_t at = kT0 + 100000;
  for (const char* status : {"scheduling", "scheduled", "running", "completed"}) {
    const Json old_status = row["status"];
    row["status"] = status;
    row["updated"] = format_rfc3339_ms(++at);
    put_execution(row, old_status);
    sync();
    for (auto s : kExecutionStatuses) {
      expect_executions({.statuses = {std::string(s)}}, {0, 100, true}, std::string(s));
    }
  }

  for (const ExecutionFilter& f : {ExecutionFilter{}, ExecutionFilter{.statuses = {"running"}},
                                   ExecutionFilter{.action_ref = "core.echo"},
                                   ExecutionFilter{.pack_ref = "core", .statuses = {"completed",
                                                                                    "running"}},
                                   ExecutionFilter{.created_after = kT0 + 10000}}) {
    auto stats = proj_->execution_stats(f);
    ASSERT_TRUE(stats.ok());
    ExecutionStats want;
    for (auto s : kExecutionStatuses) want.by_status[std::string(s)] = 0;
    for (const auto& [id, r] : executions_) {
      if (!model_match(r, f)) continue;
      ++want.total;
      ++want.by_status[r["status"].get<std::string>()];
      if (!is_terminal_execution_status(r["status"].get<std::string>())) ++want.active;
    }
    EXPECT_EQ(stats->to_json(), want.to_json());
    EXPECT_EQ(stats->by_status.size(), 10u);
  }
}

TEST_F(ProjectionsTest, RedeliveryAndStaleReplaysChangeNothing) {
  start();
  populate_executions(20);
  put_event(event_row(1, 11, "core.timer", nullptr, "timer", kT0, {{"a", 1}}));
  put_enforcement(enforcement_row(201, 31, "core.r1", "core.timer", 1, kT0));
  update_enforcement(201, "processed", kT0 + 10);
  Json row = executions_[1001];
  Json first = row;
  row["status"] = "running";
  row["updated"] = format_rfc3339_ms(kT0 + 99000);
  put_execution(row, first["status"]);
  sync();
  wait_changes(24);
  const size_t changes_before = changes().size();
  auto before = proj_->list_executions({.created_after = kT0 + 1}, {0, 100, true});
  auto stats_before = proj_->execution_stats({.created_after = kT0 + 1});

  // Everything again with the same ids, plus an older state of 1001 (a replay).
  const auto events = events_;
  const auto executions = executions_;
  for (const auto& [id, r] : events) put_event(r);
  produce(topics::kEnforcements, "core.r1", "enforcement.created", 201,
          enforcement_row(201, 31, "core.r1", "core.timer", 1, kT0));
  update_enforcement(201, "processed", kT0 + 10);
  for (const auto& [id, r] : executions) put_execution(r);
  put_execution(first);
  executions_[1001] = row;  // the model keeps the newer state
  barrier(1);

  EXPECT_EQ(changes().size(), changes_before + 1);
  auto after = proj_->list_executions({.created_after = kT0 + 1}, {0, 100, true});
  EXPECT_EQ(after->items, before->items);
  EXPECT_EQ(after->total, 19);  // 1001 and the barrier were created at kT0
  EXPECT_EQ(proj_->execution_stats({.created_after = kT0 + 1})->to_json(),
            stats_before->to_json());
  EXPECT_EQ(**proj_->get_execution(1001), row);
  expect_executions({.statuses = {"running"}}, {0, 100, true}, "running");
  expect_executions({.statuses = {std::string(first["status"])}}, {0, 100, true}, "old status");
  EXPECT_EQ(proj_->list_events({}, {0, 10, true})->total, 1);
  EXPECT_EQ(proj_->list_enforcements({.status = "processed"}, {0, 10, true})->total, 1);
  EXPECT_EQ(proj_->list_enforcements({.status = "created"}, {0, 10, true})->total, 0);
}

TEST_F(ProjectionsTest, WaitForExecutionWakesOnCommit) {
  start();
  auto waiter = std::async(std::launch::async, [&] { return proj_->wait_for_execution(42, 10s); });
  auto running = std::async(std::launch::async, [&] {
    return proj_->wait_for_execution(42, 10s, [](const Json& r) { return r["status"] == "running"; });
  });
  EXPECT_EQ(waiter.wait_for(20ms), std::future_status::timeout);
  Json row = execution_row(42, "core.echo", "requested", kT0, nullptr, nullptr, nullptr, nullptr,
                           nullptr, nullptr, kT0);
  put_execution(row);
  auto got = waiter.get();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ((*got)["status"], "requested");
  EXPECT_EQ(running.wait_for(20ms), std::future_status::timeout);
  row["status"] = "running";
  row["updated"] = format_rfc3339_ms(kT0 + 1);
  put_execution(row, "requested");
  auto r = running.get();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)["status"], "running");

  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(proj_->wait_for_execution(43, 50ms).has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
}

TEST_F(ProjectionsTest, HooksFireOncePerChangeInRecordOrder) {
  start();
  // One partition key for all so that record order is total.
  auto exec = [](const std::string& status, int64_t updated) {
    return execution_row(7, "core.echo", status, kT0, 201, nullptr, 31, "core.r1", "core.timer",
                         nullptr, updated);
  };
  put_execution(exec("requested", kT0));
  put_execution(exec("scheduled", kT0 + 1), "requested");
  put_execution(exec("scheduled", kT0 + 1), "requested");  // duplicate: no change
  put_execution(exec("running", kT0 + 2), "scheduled");
  put_execution(exec("completed", kT0 + 3), "running");
  sync();
  put_event(event_row(1, 11, "core.timer", nullptr, "timer", kT0, {{"a", 1}}));
  sync();
  put_enforcement(enforcement_row(201, 31, "core.r1", "core.timer", 1, kT0));
  update_enforcement(201, "processed", kT0 + 10);
  sync();
  wait_changes(7);

  const auto got = changes();
  std::vector<std::string> seen;
  for (const auto& c : got) {
    std::string old_status = c.old_row.is_null() ? "new" : c.old_row.value("status", "-");
    seen.push_back(c.entity_type + ":" + std::to_string(c.id) + ":" + old_status + ">" +
                   c.new_row.value("status", "-"));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "execution:7:new>requested", "execution:7:requested>scheduled",
                      "execution:7:scheduled>running", "execution:7:running>completed",
                      "event:1:new>-", "enforcement:201:new>created",
                      "enforcement:201:created>processed"}));
  EXPECT_EQ(got[4].new_row, events_[1]);  // hooks get full rows
  // When a hook runs, the change is already visible to readers.
  std::promise<Json> visible;
  proj_->add_change_hook([&](const Change& c) {
    if (c.id == 8) visible.set_value(**proj_->get_execution(8));
  });
  Json eight = exec("requested", kT0);
  eight["id"] = 8;
  put_execution(eight);
  EXPECT_EQ(visible.get_future().get()["id"], 8);
}

TEST_F(ProjectionsTest, CloseReopenVerifyAndContinue) {
  start();
  populate_executions(30);
  for (int i = 1; i <= 5; ++i) {
    put_event(event_row(i, 11, "core.timer", nullptr, "timer", kT0 + i, {{"i", i}}));
  }
  put_enforcement(enforcement_row(201, 31, "core.r1", "core.timer", 1, kT0));
  sync();
  wait_changes(36);
  stop();
  reopen();
  last_.clear();
  changes_.clear();
  start();
  for (const ExecutionFilter& f :
       {ExecutionFilter{}, ExecutionFilter{.action_ref = "core.echo"},
        ExecutionFilter{.statuses = {"completed"}}, ExecutionFilter{.enforcement = 503}}) {
    expect_executions(f, {0, 100, true}, "after reopen");
  }
  EXPECT_EQ(proj_->list_events({.trigger_ref = "core.timer"}, {0, 10, true})->total, 5);
  EXPECT_EQ(**proj_->get_enforcement(201), enforcements_[201]);
  EXPECT_TRUE(changes().empty());  // nothing was re-applied

  // Counters keep counting from where they were.
  populate_executions(35);  // 30 identical rows (no change) + 5 new
  barrier(1);
  expect_executions({}, {0, 10, true}, "continued");
  expect_executions({.statuses = {"running"}}, {0, 10, false}, "continued status");
  EXPECT_EQ(changes().size(), 6u);
}

// queue.stats records (API.md §15): the latest payload per action, kept across a restart; a
// payload without an action_ref is dead-lettered and changes nothing.
TEST_F(ProjectionsTest, QueueStatsKeepTheLatestPerActionAcrossRestart) {
  start();
  EXPECT_FALSE(proj_->queue_stats("core.echo")->has_value());
  auto stats = [](const char* action, int active, int queued) {
    return Json{{"action_ref", action},          {"active_count", active},
                {"max_concurrent", 2},           {"queue_length", queued},
                {"total_enqueued", 7},           {"total_completed", 5},
                {"oldest_enqueued_at", nullptr}, {"last_updated", "2026-03-01T09:30:00.125Z"}};
  };
  produce(topics::kExecutions, "core.echo", "queue.stats", 1, stats("core.echo", 1, 0));
  produce(topics::kExecutions, "core.echo", "queue.stats", 2, stats("core.echo", 2, 3));
  produce(topics::kExecutions, "core.noop", "queue.stats", 3, stats("core.noop", 0, 0));
  produce(topics::kExecutions, "core.echo", "queue.stats", 4, Json{{"active_count", 9}});
  sync();
  EXPECT_EQ(dead_letters_.load(), 1);
  EXPECT_EQ(**proj_->queue_stats("core.echo"), stats("core.echo", 2, 3));
  EXPECT_EQ(**proj_->queue_stats("core.noop"), stats("core.noop", 0, 0));
  EXPECT_TRUE(changes().empty());  // statistics are not notified
  // Nothing else reads them as executions.
  EXPECT_EQ(proj_->list_executions({}, {0, 10, true})->total, 0);
  stop();
  reopen();
  start();
  EXPECT_EQ(**proj_->queue_stats("core.echo"), stats("core.echo", 2, 3));
  EXPECT_FALSE(proj_->queue_stats("core.sleep")->has_value());
}

TEST_F(ProjectionsTest, SeveralInstancesShareCountersCorrectly) {
  start(/*instances=*/2);
  populate_executions(60);
  sync();
  for (const ExecutionFilter& f :
       {ExecutionFilter{}, ExecutionFilter{.pack_ref = "ops"},
        ExecutionFilter{.statuses = {"failed", "scheduled"}}, ExecutionFilter{.rule = 70}}) {
    expect_executions(f, {0, 100, true}, "two instances");
    expect_executions(f, {4, 3, false}, "two instances paged");
  }
}

// --- Visibility scopes (API.md §16.3) ----------------------------------------------------------

TEST(RecordScope, DerivedRecordsShareTheirPacksAndCoreRunsAreTheUsers) {
  struct Case {
    Entity entity;
    Json row;
    std::string want;
  };
  const std::vector<Case> cases = {
      // Executions: the rule's pack first; else a user's run of a core action is theirs.
      {Entity::kExecution,
       {{"rule_ref", "ops.r1"}, {"action_ref", "core.echo"}, {"executor", 7}},
       "p:ops"},
      {Entity::kExecution, {{"rule_ref", ""}, {"action_ref", "core.echo"}, {"executor", 7}}, "i:7"},
      {Entity::kExecution,
       {{"rule_ref", nullptr}, {"action_ref", "core.echo"}, {"executor", 7}},
       "i:7"},
      {Entity::kExecution, {{"action_ref", "core.echo"}, {"executor", 0}}, "p:core"},
      {Entity::kExecution, {{"action_ref", "core.echo"}, {"executor", -3}}, "p:core"},
      {Entity::kExecution, {{"action_ref", "core.echo"}, {"executor", "7"}}, "p:core"},
      {Entity::kExecution, {{"action_ref", "core.echo"}, {"executor", nullptr}}, "p:core"},
      {Entity::kExecution, {{"action_ref", "core.echo"}}, "p:core"},
      {Entity::kExecution, {{"action_ref", "ops.deploy"}, {"executor", 7}}, "p:ops"},
      {Entity::kExecution, {{"action_ref", "ops.deploy.sub"}}, "p:ops"},
      {Entity::kExecution, {{"action_ref", "nodot"}, {"executor", 7}}, "p:"},
      {Entity::kExecution, {{"action_ref", 12}}, "p:"},
      {Entity::kExecution, Json::object(), "p:"},
      {Entity::kExecution, {{"rule_ref", "nodot"}, {"action_ref", "ops.x"}}, "p:"},
      // Enforcements: the rule's pack, else the trigger's.
      {Entity::kEnforcement, {{"rule_ref", "web.r"}, {"trigger_ref", "core.timer"}}, "p:web"},
      {Entity::kEnforcement, {{"rule_ref", nullptr}, {"trigger_ref", "core.timer"}}, "p:core"},
      {Entity::kEnforcement, {{"rule_ref", "norule"}, {"trigger_ref", "ops.t"}}, "p:ops"},
      {Entity::kEnforcement, Json::object(), "p:"},
      // Events: a core trigger fired for a rule belongs to the rule's pack.
      {Entity::kEvent, {{"trigger_ref", "core.timer"}, {"rule_ref", "ops.nightly"}}, "p:ops"},
      {Entity::kEvent, {{"trigger_ref", "core.timer"}, {"rule_ref", ""}}, "p:core"},
      {Entity::kEvent, {{"trigger_ref", "core.webhook"}, {"rule_ref", nullptr}}, "p:core"},
      {Entity::kEvent, {{"trigger_ref", "web.hook"}, {"rule_ref", "ops.r"}}, "p:web"},
      {Entity::kEvent, {{"trigger_ref", nullptr}}, "p:"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(record_scope(c.entity, c.row), c.want) << entity_name(c.entity) << " " << c.row;
  }
  EXPECT_EQ(pack_of(Json("a.b.c")), "a");
  EXPECT_EQ(pack_of(Json(".x")), "");
  EXPECT_EQ(pack_of(Json(nullptr)), "");
}

// Executions spread over the scopes p:core, p:ops, p:web, p: (no pack), i:7 and i:8.
Json scoped_execution(int i) {
  static const char* kActions[] = {"core.echo", "core.http", "ops.deploy", "web.check", "nodot"};
  static const char* kStatuses[] = {"requested", "running",   "completed",
                                    "failed",    "scheduled", "failed"};
  const int64_t id = 5000 + i;
  const int64_t created = kT0 + (i / 3) * 1000;  // triples share a created ms
  Json rule_ref = i % 5 == 0   ? Json("ops.r1")
                  : i % 5 == 1 ? Json("web.r2")
                  : i % 5 == 2 ? Json("")
                               : Json(nullptr);
  const std::string status = kStatuses[i % 6];
  Json row = execution_row(
      id, kActions[i % 5 == 3 ? i % 2 : (i / 5) % 5], status, created,
      i % 4 == 0 ? Json(nullptr) : Json(600 + i % 3), nullptr, nullptr, rule_ref, nullptr,
      status == "completed" ? Json{{"stdout", "hi " + std::to_string(i % 2)}} : Json(nullptr),
      created);
  row["executor"] = i % 4 == 0   ? Json(7)
                    : i % 4 == 1 ? Json(8)
                    : i % 4 == 2 ? Json(nullptr)
                                 : Json(0);
  return row;
}

class ScopedProjectionsTest : public ProjectionsTest {
 protected:
  void populate(int n) {
    for (int i = 1; i <= n; ++i) put_execution(scoped_execution(i));
  }

  void expect_stats(const ExecutionFilter& f, const std::string& what) {
    auto stats = proj_->execution_stats(f);
    ASSERT_TRUE(stats.ok()) << stats.error().message;
    ExecutionStats want;
    for (auto s : kExecutionStatuses) want.by_status[std::string(s)] = 0;
    for (const auto& [id, r] : executions_) {
      if (!model_match(r, f)) continue;
      ++want.total;
      ++want.by_status[r["status"].get<std::string>()];
      if (!is_terminal_execution_status(r["status"].get<std::string>())) ++want.active;
    }
    EXPECT_EQ(stats->to_json(), want.to_json()) << what;
  }

  // Every scoped filter shape: merged prefixes, status pairs, another index chosen, row checks,
  // the many-scopes fallback, empty and unknown scopes.
  std::vector<std::pair<ExecutionFilter, std::string>> scoped_cases() const {
    Scopes many;
    // More than kMaxScopePrefixes: narrowed to the two with rows.
    for (size_t i = 0; i <= kMaxScopePrefixes; ++i) many.push_back("p:x" + std::to_string(i));
    many.push_back("p:core");
    many.push_back("i:7");
    // More than kMaxScopeLookups: not narrowed, so the scope is checked on every row.
    Scopes huge = many;
    for (size_t i = 0; i < kMaxScopeLookups; ++i) huge.push_back("i:" + std::to_string(1000 + i));
    Scopes twenty = {"p:ops", "i:8"};
    for (int i = 0; i < 18; ++i) twenty.push_back("i:" + std::to_string(100 + i));
    return {
        {{.scopes = Scopes{"p:core"}}, "one scope"},
        {{.scopes = Scopes{"p:core", "p:ops", "i:7"}}, "three scopes"},
        {{.scopes = Scopes{"i:7", "i:8", "p:"}}, "identities and no pack"},
        {{.scopes = Scopes{"p:core", "p:core"}}, "duplicate scope"},
        {{.scopes = Scopes{}}, "empty scopes"},
        {{.scopes = Scopes{"p:nope"}}, "unknown scope"},
        {{.statuses = {"failed"}, .scopes = Scopes{"p:core", "p:web", "i:7"}}, "failed, scoped"},
        {{.statuses = {"failed", "running", "completed"}, .scopes = Scopes{"p:ops", "i:8"}},
         "statuses, scoped"},
        {{.statuses = {"failed"}, .scopes = Scopes{}}, "status, empty scopes"},
        {{.statuses = {"requested", "running", "completed", "failed"}, .scopes = twenty},
         "more pairs than prefixes"},
        {{.action_ref = "core.echo", .scopes = Scopes{"p:core", "i:7"}}, "action_ref, scoped"},
        {{.action_ref = "core.http",
          .statuses = {"failed", "running"},
          .scopes = Scopes{"p:core", "i:8", "p:web"}},
         "action_ref + statuses, scoped"},
        {{.pack_ref = "core", .statuses = {"failed"}, .scopes = Scopes{"p:core", "i:7"}},
         "pack_ref + status, scoped (facets)"},
        {{.statuses = {"completed", "requested"}, .rule_ref = "ops.r1"}, "rule_ref + statuses"},
        {{.action_ref = "ops.deploy", .rule_ref = "ops.r1", .scopes = Scopes{"p:ops"}},
         "two faceted filters"},
        {{.enforcement = 601, .scopes = Scopes{"p:web", "i:7", "p:"}}, "enforcement, scoped"},
        {{.created_after = kT0 + 20000, .scopes = Scopes{"p:core", "p:ops"}}, "after, scoped"},
        {{.statuses = {"completed"}, .created_before = kT0 + 9000, .scopes = Scopes{"p:ops"}},
         "before + status, scoped"},
        {{.result_contains = "hi 1", .scopes = Scopes{"p:core", "i:7", "i:8"}}, "result, scoped"},
        {{.scopes = many}, "many scopes"},
        {{.statuses = {"failed"}, .scopes = many}, "many scopes + status"},
        {{.pack_ref = "core", .scopes = many}, "many scopes + pack"},
        {{.scopes = huge}, "huge scope list (row scan)"},
        {{.statuses = {"failed", "completed"}, .scopes = huge}, "huge scope list + statuses"},
        {{.enforcement = 602, .scopes = huge}, "huge scope list + enforcement"},
    };
  }

  void expect_scoped(const std::string& what) {
    for (const auto& [f, name] : scoped_cases()) {
      for (const Page page :
           {Page{0, 200, true}, Page{0, 200, false}, Page{0, 5, true}, Page{7, 9, true},
            Page{11, 6, false}, Page{1000, 10, true}, Page{0, 0, false}}) {
        expect_executions(f, page, what + ": " + name + " offset " + std::to_string(page.offset));
      }
      expect_stats(f, what + ": " + name);
    }
    for (const ExecutionFilter& f : {ExecutionFilter{}, ExecutionFilter{.statuses = {"failed"}}}) {
      expect_executions(f, {0, 50, true}, what + ": unscoped");
      expect_stats(f, what + ": unscoped");
    }
  }

  // Executions store, as the stage opens it.
  state::Store& executions_store() {
    auto s = db_->store(std::string(kStage) + "." + std::string(kExecutionsStore));
    EXPECT_TRUE(s.ok());
    return **s;
  }
  // Makes `store` look written by a build without the scope indexes.
  void drop_scope_index(state::Store& store) {
    state::WriteBatch b;
    for (std::string_view p :
         {"i/by_scope/", "i/by_status_scope/", "c/by_scope/", "c/by_status_scope/"}) {
      b.del_range(store, std::string(p), state::prefix_successor(p));
    }
    b.del(store, std::string(kScopeIndexMarker));
    ASSERT_TRUE(db_->write(b).ok());
  }
  int64_t count_keys(state::Store& store, std::string_view prefix) {
    int64_t n = 0;
    auto st = store.scan(prefix, [&](std::string_view, std::string_view) { return ++n > 0; });
    EXPECT_TRUE(st.ok());
    return n;
  }
};

TEST_F(ScopedProjectionsTest, ScopedListsTotalsAndStatsMatchTheModel) {
  start();
  populate(150);
  sync();
  expect_scoped("fresh");

  // Scope and status move together: a run gains a rule, loses its executor, changes status.
  Json row = executions_[5004];  // i:7 (executor 7, core action, no rule)
  ASSERT_EQ(record_scope(Entity::kExecution, row), "i:7");
  row["status"] = "running";
  row["updated"] = format_rfc3339_ms(kT0 + 900000);
  put_execution(row, "requested");
  row["rule_ref"] = "web.r9";
  row["status"] = "failed";
  row["updated"] = format_rfc3339_ms(kT0 + 900001);
  put_execution(row, "running");
  sync();
  expect_scoped("after moves");

  // Counters and entries survive close → reopen.
  stop();
  reopen();
  last_.clear();
  start();
  expect_scoped("reopened");
}

// Index entries carry "status:scope" so scoped lists with another filter (action, pack, rule...)
// check visibility without reading rows; entries an older build wrote hold the bare status and
// the row answers for them. Both kinds mixed in one store give the model's answers.
TEST_F(ScopedProjectionsTest, EntriesOfTheOlderBareStatusFormStillFilterByScope) {
  start();
  populate(150);
  sync();
  stop();
  state::Store& store = executions_store();
  std::vector<std::pair<std::string, std::string>> entries;
  ASSERT_TRUE(store
                  .scan("i/",
                        [&](std::string_view k, std::string_view v) {
                          entries.emplace_back(std::string(k), std::string(v));
                          return true;
                        })
                  .ok());
  ASSERT_FALSE(entries.empty());
  int64_t rewritten = 0;
  state::WriteBatch b;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& [key, value] = entries[i];
    ASSERT_TRUE(entry_scope(value).has_value()) << key << " = " << value;
    if (i % 2 == 0) {
      b.put(store, key, std::string(entry_status(value)));
      ++rewritten;
    }
  }
  ASSERT_TRUE(db_->write(b).ok());
  ASSERT_GT(rewritten, 100);
  reopen();
  last_.clear();
  start();
  expect_scoped("half the entries in the older form");
}

TEST_F(ScopedProjectionsTest, EventsAndEnforcementsByScope) {
  start();
  for (int i = 1; i <= 30; ++i) {
    Json ev = event_row(i, 11, i % 3 == 0 ? "web.hook" : "core.timer", nullptr, "timer",
                        kT0 + (i / 2) * 10, {{"i", i}});
    if (i % 4 == 0) ev["rule_ref"] = "ops.nightly";
    put_event(ev);
    Json en = enforcement_row(200 + i, 30, i % 2 ? "core.r1" : "ops.r0", "web.hook", i,
                              kT0 + (i / 2) * 10);
    if (i % 5 == 0) en["rule_ref"] = "";  // no rule pack: the trigger's
    put_enforcement(en);
  }
  for (int i = 1; i <= 30; i += 3) update_enforcement(200 + i, "processed", kT0 + 1000 + i);
  sync();
  for (const Scopes& scopes :
       {Scopes{"p:core"}, Scopes{"p:ops", "p:web"}, Scopes{}, Scopes{"p:core", "p:ops", "p:web"}}) {
    for (const Page page : {Page{0, 100, true}, Page{0, 100, false}, Page{3, 4, true}}) {
      auto in = [&](Entity e, const Json& r) {
        return std::find(scopes.begin(), scopes.end(), record_scope(e, r)) != scopes.end();
      };
      auto ev = proj_->list_events({.scopes = scopes}, page);
      ASSERT_TRUE(ev.ok());
      auto [ev_ids, ev_total] = model_list(
          events_, [&](const Json& r) { return in(Entity::kEvent, r); }, page);
      EXPECT_EQ(ids_of(ev->items), ev_ids);
      EXPECT_EQ(ev->total, ev_total);
      auto ev2 = proj_->list_events({.trigger_ref = "core.timer", .scopes = scopes}, page);
      ASSERT_TRUE(ev2.ok());
      auto [ev2_ids, ev2_total] = model_list(
          events_,
          [&](const Json& r) { return r["trigger_ref"] == "core.timer" && in(Entity::kEvent, r); },
          page);
      EXPECT_EQ(ids_of(ev2->items), ev2_ids);
      EXPECT_EQ(ev2->total, ev2_total);
      for (const std::optional<std::string>& status :
           {std::optional<std::string>(), std::optional<std::string>("processed")}) {
        auto en = proj_->list_enforcements({.status = status, .scopes = scopes}, page);
        ASSERT_TRUE(en.ok());
        auto [en_ids, en_total] = model_list(
            enforcements_,
            [&](const Json& r) {
              return (!status || r["status"] == *status) && in(Entity::kEnforcement, r);
            },
            page);
        EXPECT_EQ(ids_of(en->items), en_ids) << (status ? *status : "any");
        EXPECT_EQ(en->total, en_total) << (status ? *status : "any");
      }
    }
  }
}

TEST_F(ScopedProjectionsTest, BackfillBuildsTheIndexOfAnOlderStoreOnce) {
  start();
  populate(120);
  sync();
  stop();
  state::Store& store = executions_store();
  const int64_t scope_entries = count_keys(store, "i/by_scope/");
  const int64_t pair_entries = count_keys(store, "i/by_status_scope/");
  EXPECT_EQ(scope_entries, 120);
  EXPECT_EQ(pair_entries, 120);
  drop_scope_index(store);
  EXPECT_EQ(count_keys(store, "i/by_scope/"), 0);

  // Interrupted (as by kill -9 between batches): some batches committed, no marker.
  auto partial = backfill_scope_index(*db_, store, Entity::kExecution, /*batch_rows=*/16,
                                      /*max_batches=*/3);
  ASSERT_TRUE(partial.ok()) << partial.error().message;
  EXPECT_EQ(*partial, 2 * 48);
  EXPECT_FALSE(store.get(kScopeIndexMarker)->has_value());

  // The next open finishes it: every row once, counters exact.
  reopen();
  last_.clear();
  start();
  state::Store& reopened = executions_store();
  EXPECT_EQ(count_keys(reopened, "i/by_scope/"), scope_entries);
  EXPECT_EQ(count_keys(reopened, "i/by_status_scope/"), pair_entries);
  EXPECT_EQ(**reopened.get(kScopeIndexMarker), kScopeIndexVersion);
  expect_scoped("backfilled");

  // New records keep counting on top of the backfilled counters; the marker stops a rerun.
  for (int i = 121; i <= 140; ++i) put_execution(scoped_execution(i));
  sync();
  auto again = backfill_scope_index(*db_, reopened, Entity::kExecution);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
  expect_scoped("after backfill, more records");

  // A store whose marker is missing but whose entries exist (rows written by this build) is not
  // counted twice.
  stop();
  state::WriteBatch b;
  b.del(reopened, std::string(kScopeIndexMarker));
  ASSERT_TRUE(db_->write(b).ok());
  start();
  expect_scoped("marker lost");
}

// Stores written before the facet counters existed (no f/ keys, no marker) get them at the next
// open, from their rows; a backfill interrupted after writing some counters writes the same
// absolute values again. Totals of one-filter-plus-statuses lists then come from the counters.
TEST_F(ScopedProjectionsTest, FacetCountersOfAnOlderStoreAreBuiltAtOpen) {
  start();
  populate(150);
  sync();
  stop();
  state::Store& store = executions_store();
  const int64_t facets = count_keys(store, "f/");
  EXPECT_GT(facets, 20);
  auto drop_facets = [&](state::Store& st) {
    state::WriteBatch b;
    b.del_range(st, "f/", state::prefix_successor("f/"));
    b.del(st, std::string(kFacetMarker));
    ASSERT_TRUE(db_->write(b).ok());
  };
  drop_facets(store);
  EXPECT_EQ(count_keys(store, "f/"), 0);
  reopen();
  last_.clear();
  start();
  expect_scoped("facets backfilled");
  state::Store& reopened = executions_store();
  EXPECT_EQ(**reopened.get(kFacetMarker), kFacetVersion);

  // Interrupted: the store has no facet counters of its stage yet (older build) and a backfill
  // wrote some of its own before a kill -9 (here with a wrong value), without the marker.
  stop();
  drop_facets(reopened);
  {
    state::WriteBatch b;
    b.put(reopened, facet_key(index_prefix("by_action", "core.echo"), "failed:p:core",
                              kBackfillInstance),
          state::encode_be64(999));
    ASSERT_TRUE(db_->write(b).ok());
  }
  reopen();
  last_.clear();
  start();
  expect_scoped("facets rebuilt after an interruption");
  for (int i = 171; i <= 190; ++i) put_execution(scoped_execution(i));
  sync();
  expect_scoped("facets backfilled, then more records");
}

// A total no counter answers (two faceted filters; a created range) is counted up to a budget
// past the page and estimated beyond it; pages stay exact.
TEST_F(ProjectionsTest, TotalsPastTheCountBudgetAreEstimated) {
  start(4);
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const int64_t created = kT0 + int64_t{i} * 1000;
    put_execution(execution_row(100000 + i, i % 3 ? "core.http" : "core.echo",
                                i % 10 ? "completed" : "failed", created, Json(7000 + i / 4),
                                nullptr, Json(70 + i % 2), Json(i % 2 ? "core.r1" : "core.r0"),
                                Json("core.timer"), nullptr, created));
  }
  sync();
  struct Case {
    ExecutionFilter f;
    std::string what;
  };
  for (const Case& c : {Case{{.action_ref = "core.echo", .rule_ref = "core.r0"}, "two filters"},
                        Case{{.created_after = kT0 + 5000 * 1000}, "created_after"},
                        Case{{.statuses = {"completed"},
                              .created_after = kT0 + 1000 * 1000,
                              .created_before = kT0 + 19000 * 1000},
                             "status + range"},
                        Case{{.statuses = {"completed"},
                              .created_after = kT0 + 1000 * 1000,
                              .scopes = std::vector<std::string>{"p:core", "p:ops", "i:7"}},
                             "status + range + scopes"}}) {
    for (const Page page : {Page{0, 50, true}, Page{0, 50, false}, Page{100, 20, true}}) {
      auto got = proj_->list_executions(c.f, page);
      ASSERT_TRUE(got.ok()) << got.error().message;
      auto [ids, total] = model_list(
          executions_, [&](const Json& r) { return model_match(r, c.f); }, page);
      EXPECT_EQ(ids_of(got->items), ids) << c.what;
      EXPECT_FALSE(got->total_exact) << c.what;
      EXPECT_NEAR(static_cast<double>(got->total), static_cast<double>(total), 0.05 * total)
          << c.what;
      EXPECT_GT(got->total, page.offset + std::ssize(ids)) << c.what;
    }
  }
  // A burst (2,000 rows in 2 s) after the evenly spread ones: the budget runs out inside it, and
  // the rest of the range is sampled, not extrapolated from the burst's density (which would be
  // off by orders of magnitude). The sample sees each slice's start, so the part of the burst
  // left in the last slice is missed: within 15 %, not 5 %.
  for (int i = 0; i < 2000; ++i) {
    const int64_t created = kT0 + int64_t{n} * 1000 + i;
    put_execution(execution_row(200000 + i, "core.echo", "completed", created, nullptr, nullptr,
                                nullptr, nullptr, nullptr, nullptr, created));
  }
  sync();
  for (const ExecutionFilter& f : {ExecutionFilter{.created_after = kT0 + 12000 * 1000},
                                   ExecutionFilter{.statuses = {"completed"},
                                                   .created_after = kT0 + 2000 * 1000}}) {
    auto got = proj_->list_executions(f, {0, 50, true});
    ASSERT_TRUE(got.ok());
    auto [ids, total] = model_list(
        executions_, [&](const Json& r) { return model_match(r, f); }, {0, 50, true});
    EXPECT_EQ(ids_of(got->items), ids);
    EXPECT_FALSE(got->total_exact);
    EXPECT_NEAR(static_cast<double>(got->total), static_cast<double>(total), 0.15 * total);
  }
  // Counters answer these exactly whatever their size.
  for (const ExecutionFilter& f :
       {ExecutionFilter{.action_ref = "core.echo", .statuses = {"failed"}},
        ExecutionFilter{.statuses = {"completed"}, .rule_ref = "core.r1"},
        ExecutionFilter{.pack_ref = "core"}, ExecutionFilter{}}) {
    auto got = proj_->list_executions(f, {0, 50, true});
    ASSERT_TRUE(got.ok());
    EXPECT_TRUE(got->total_exact);
    expect_executions(f, {0, 50, true}, "exact");
  }
}

TEST_F(ScopedProjectionsTest, BackfillOfEventsAndEnforcements) {
  start();
  for (int i = 1; i <= 20; ++i) {
    put_event(
        event_row(i, 11, i % 2 ? "core.timer" : "web.hook", nullptr, "timer", kT0 + i, {{"i", i}}));
    put_enforcement(
        enforcement_row(200 + i, 30, i % 3 ? "core.r1" : "ops.r0", "web.hook", i, kT0 + i));
  }
  sync();
  stop();
  for (std::string_view name : {kEventsStore, kEnforcementsStore}) {
    auto s = db_->store(std::string(kStage) + "." + std::string(name));
    ASSERT_TRUE(s.ok());
    drop_scope_index(**s);
  }
  reopen();
  last_.clear();
  start();
  auto ev = proj_->list_events({.scopes = Scopes{"p:web"}}, {0, 3, true});
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->total, 10);
  EXPECT_EQ(ids_of(ev->items), (std::vector<int64_t>{20, 18, 16}));
  auto en =
      proj_->list_enforcements({.status = "created", .scopes = Scopes{"p:ops"}}, {0, 100, false});
  ASSERT_TRUE(en.ok());
  EXPECT_EQ(en->total, 6);
  EXPECT_EQ(ids_of(en->items), (std::vector<int64_t>{203, 206, 209, 212, 215, 218}));
}

// --- History retention (issue 13) -------------------------------------------------------------

TEST(HistoryKeepParse, AcceptedFormsAndErrors) {
  auto keep = parse_history_keep("all");
  ASSERT_TRUE(keep.ok());
  EXPECT_FALSE(keep->enabled());
  struct Case {
    const char* text;
    HistoryKeep::Mode mode;
    int64_t count;
    int64_t age_ms;
  };
  for (const Case& c : {Case{"5", HistoryKeep::Mode::kCount, 5, 0},
                        Case{"1000000", HistoryKeep::Mode::kCount, 1000000, 0},
                        Case{"30s", HistoryKeep::Mode::kAge, 0, 30000},
                        Case{"15m", HistoryKeep::Mode::kAge, 0, 900000},
                        Case{"12h", HistoryKeep::Mode::kAge, 0, 43200000},
                        Case{"7d", HistoryKeep::Mode::kAge, 0, 604800000}}) {
    auto k = parse_history_keep(c.text);
    ASSERT_TRUE(k.ok()) << c.text << ": " << k.error().message;
    EXPECT_EQ(k->mode, c.mode) << c.text;
    EXPECT_EQ(k->count, c.count) << c.text;
    EXPECT_EQ(k->age.count(), c.age_ms) << c.text;
    EXPECT_TRUE(k->enabled());
  }
  EXPECT_EQ(parse_history_keep("7d")->describe(), "7d");
  EXPECT_EQ(parse_history_keep("90s")->describe(), "90s");
  EXPECT_EQ(parse_history_keep("120m")->describe(), "2h");
  EXPECT_EQ(parse_history_keep("5")->describe(), "5 newest");
  for (const char* bad : {"", "7x", "0", "0s", "-1", "1.5h", "d", "s", "5 ", " 5", "5ms", "7D",
                          "99999999999999999999", "2000000000000", "40000d", "ALL", "1e3"}) {
    auto k = parse_history_keep(bad);
    ASSERT_FALSE(k.ok()) << "'" << bad << "' was accepted";
    EXPECT_NE(k.error().message.find("invalid history keep"), std::string::npos);
    EXPECT_NE(k.error().message.find("7d"), std::string::npos) << "names the accepted forms";
  }
}

TEST(HistoryKeepDecisions, BoundsAndEligibility) {
  const HistoryKeep five = *parse_history_keep("5");
  const HistoryKeep hour = *parse_history_keep("1h");
  const HistoryKeep all;
  EXPECT_EQ(excess_over(20, five), 15);
  EXPECT_EQ(excess_over(5, five), 0);
  EXPECT_EQ(excess_over(3, five), 0);
  EXPECT_EQ(excess_over(20, hour), 0);
  EXPECT_EQ(excess_over(20, all), 0);
  EXPECT_EQ(age_cutoff_ms(hour, 10'000'000), 10'000'000 - 3'600'000);
  EXPECT_FALSE(age_cutoff_ms(five, 10'000'000).has_value());
  EXPECT_FALSE(age_cutoff_ms(all, 10'000'000).has_value());

  for (std::string_view s : kExecutionStatuses) {
    EXPECT_EQ(execution_prunable(s), is_terminal_execution_status(s)) << s;
  }
  EXPECT_FALSE(execution_prunable("running"));
  EXPECT_FALSE(execution_prunable("canceling"));

  const auto settle = std::chrono::milliseconds(10000);
  const int64_t now = 1'000'000;
  EXPECT_TRUE(enforcement_prunable("processed", false, now - 10000, now, settle));
  EXPECT_TRUE(enforcement_prunable("disabled", false, now - 20000, now, settle));
  EXPECT_FALSE(enforcement_prunable("created", false, now - 20000, now, settle)) << "unresolved";
  EXPECT_FALSE(enforcement_prunable("processed", true, now - 20000, now, settle)) << "referenced";
  EXPECT_FALSE(enforcement_prunable("processed", false, now - 9999, now, settle)) << "too young";
  EXPECT_TRUE(event_prunable(false, now - 10000, now, settle));
  EXPECT_FALSE(event_prunable(true, now - 20000, now, settle));
  EXPECT_FALSE(event_prunable(false, now - 1, now, settle));
}

class HistoryRetentionTest : public ProjectionsTest {
 protected:
  // Waits (bounded) for the pruning passes to bring the lists to the model's totals.
  void wait_totals(size_t events, size_t enforcements, size_t executions) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      auto ev = proj_->list_events({}, {0, 1, true});
      auto en = proj_->list_enforcements({}, {0, 1, true});
      auto ex = proj_->list_executions({}, {0, 1, true});
      ASSERT_TRUE(ev.ok() && en.ok() && ex.ok());
      if (ev->total == std::ssize(events_) && en->total == std::ssize(enforcements_) &&
          ex->total == std::ssize(executions_)) {
        return;
      }
      ASSERT_LT(std::chrono::steady_clock::now(), deadline)
          << "totals " << ev->total << "/" << en->total << "/" << ex->total << ", want "
          << events << "/" << enforcements << "/" << executions;
      std::this_thread::sleep_for(10ms);
    }
  }
  // One event → one enforcement (processed) → one execution in `status`, created at `at`.
  void flow(int i, int64_t at, const std::string& status) {
    put_event(event_row(100 + i, 9, "core.webhook", nullptr, "webhook", at, {{"i", i}}));
    put_enforcement(enforcement_row(200 + i, 70, "core.r1", "core.webhook", 100 + i, at + 1));
    update_enforcement(200 + i, "processed", at + 2);
    put_execution(execution_row(300 + i, "core.echo", status, at + 2, 200 + i, nullptr, 70,
                                "core.r1", "core.webhook", nullptr, at + 3));
  }
  void forget(int i) {
    events_.erase(100 + i);
    enforcements_.erase(200 + i);
    executions_.erase(300 + i);
  }
  void expect_lists(const std::string& what) {
    for (const ExecutionFilter& f :
         {ExecutionFilter{}, ExecutionFilter{.statuses = {"completed"}},
          ExecutionFilter{.statuses = {"running", "failed"}},
          ExecutionFilter{.rule_ref = "core.r1"}, ExecutionFilter{.enforcement = 201},
          ExecutionFilter{.enforcement = 220},
          ExecutionFilter{.action_ref = "core.echo", .statuses = {"failed"}},
          ExecutionFilter{.created_after = kT0}, ExecutionFilter{.scopes = Scopes{"p:core"}},
          ExecutionFilter{.statuses = {"completed", "running"}, .scopes = Scopes{"p:core", "i:1"}},
          ExecutionFilter{.scopes = Scopes{"p:ops"}}}) {
      expect_executions(f, {0, 100, true}, what);
      expect_executions(f, {2, 3, false}, what + " paged");
    }
    auto scoped_stats = proj_->execution_stats({.scopes = Scopes{"p:core"}});
    ASSERT_TRUE(scoped_stats.ok());
    EXPECT_EQ(scoped_stats->total, std::ssize(executions_)) << what;
    auto scoped_en = proj_->list_enforcements({.scopes = Scopes{"p:core"}}, {0, 1, true});
    ASSERT_TRUE(scoped_en.ok());
    EXPECT_EQ(scoped_en->total, std::ssize(enforcements_)) << what;
    auto scoped_ev = proj_->list_events({.scopes = Scopes{"p:core"}}, {0, 1, true});
    ASSERT_TRUE(scoped_ev.ok());
    EXPECT_EQ(scoped_ev->total, std::ssize(events_)) << what;
    auto en = proj_->list_enforcements({.rule_ref = "core.r1"}, {0, 100, false});
    ASSERT_TRUE(en.ok());
    std::vector<int64_t> want;
    for (const auto& [id, row] : enforcements_) want.push_back(id);
    EXPECT_EQ(ids_of(en->items), want) << what;
    EXPECT_EQ(en->total, std::ssize(want)) << what;
    auto ev = proj_->list_events({.trigger_ref = "core.webhook"}, {0, 100, false});
    ASSERT_TRUE(ev.ok());
    want.clear();
    for (const auto& [id, row] : events_) want.push_back(id);
    EXPECT_EQ(ids_of(ev->items), want) << what;
    EXPECT_EQ(ev->total, std::ssize(want)) << what;
    auto stats = proj_->execution_stats({});
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->total, std::ssize(executions_)) << what;
    for (const auto& [id, row] : executions_) {
      EXPECT_TRUE(proj_->get_execution(id)->has_value()) << id;
    }
  }
};

TEST_F(HistoryRetentionTest, KeepNewestNTerminalExecutionsAndWhatNothingReferences) {
  RetentionOptions retention;
  retention.keep = *parse_history_keep("5");
  retention.interval = 20ms;
  retention.settle = 0ms;
  // 20 flows; every third execution still runs. Terminal: 14; the newest 5 of them stay.
  std::vector<int> terminal;
  for (int i = 1; i <= 20; ++i) {
    const bool running = i % 3 == 0;
    flow(i, kT0 + i * 1000, running ? "running" : (i % 2 ? "completed" : "failed"));
    if (!running) terminal.push_back(i);
  }
  start(/*instances=*/2, retention);
  sync();
  for (size_t k = 0; k + 5 < terminal.size(); ++k) forget(terminal[k]);
  wait_totals(11, 11, 11);
  expect_lists("after pruning");
  for (int i : {1, 2, 4, 13}) {
    EXPECT_FALSE(proj_->get_execution(300 + i)->has_value()) << i;
    EXPECT_FALSE(proj_->get_enforcement(200 + i)->has_value()) << i;
    EXPECT_FALSE(proj_->get_event(100 + i)->has_value()) << i;
  }

  // Redelivered records of pruned rows (Kafka) do not bring them back, nor dead-letter.
  Json stale = execution_row(301, "core.echo", "running", kT0 + 1002, 201, nullptr, 70, "core.r1",
                             "core.webhook", nullptr, kT0 + 1003);
  produce(topics::kExecutions, "301", "execution.updated", 301, stale);
  produce(topics::kEnforcements, "core.r1", "enforcement.updated", 201,
          {{"id", 201}, {"status", "processed"}});
  produce(topics::kEvents, "core.webhook", "event.created", 101,
          event_row(101, 9, "core.webhook", nullptr, "webhook", kT0 + 1000, nullptr));
  sync();
  EXPECT_EQ(dead_letters_.load(), 0);
  expect_lists("after redelivery");

  // "Newest" is by creation: a long-running execution that ends now is older than the five kept
  // ones, so it goes at once (and with it its enforcement and event).
  Json done = executions_[303];
  done["status"] = "completed";
  done["updated"] = format_rfc3339_ms(kT0 + 99000);
  put_execution(done, "running");
  forget(3);
  wait_totals(10, 10, 10);
  expect_lists("after one more ended");

  // Close, reopen, verify: the counters behind the totals were committed with the deletions.
  stop();
  start(/*instances=*/2, retention);
  expect_lists("reopened");
}

TEST_F(HistoryRetentionTest, KeepByAgeNeverPrunesRunningExecutions) {
  RetentionOptions retention;
  retention.keep = *parse_history_keep("1h");
  retention.interval = 20ms;
  retention.settle = 0ms;
  const int64_t now = SystemClock::instance().now_ms();
  const int64_t old = now - 2 * 3600 * 1000;
  flow(1, old, "completed");
  flow(2, old + 10, "failed");
  flow(3, old + 20, "running");   // old but running: kept, with its enforcement and event
  flow(4, old + 30, "canceling");
  flow(5, now - 60000, "completed");  // within the hour
  flow(6, now, "timeout");
  start(/*instances=*/1, retention);
  sync();
  forget(1);
  forget(2);
  wait_totals(4, 4, 4);
  expect_lists("age");
  EXPECT_TRUE(proj_->get_execution(303)->has_value());
  EXPECT_TRUE(proj_->get_enforcement(203)->has_value());
  EXPECT_TRUE(proj_->get_event(103)->has_value());
}

TEST_F(HistoryRetentionTest, DefaultKeepsEverything) {
  start(/*instances=*/1, RetentionOptions{});
  for (int i = 1; i <= 10; ++i) flow(i, kT0 + i * 1000, "completed");
  sync();
  expect_lists("keep all");
  EXPECT_EQ(executions_.size(), 10u);
}

}  // namespace
}  // namespace attune::projections

namespace attune::projections {
namespace {

Json inquiry_row(int64_t id, int64_t execution, const std::string& status,
                 const std::string& scope, Json assigned_to, int64_t created, int64_t rev) {
  return {{"id", id},
          {"execution", execution},
          {"created_by_execution", id % 2 ? Json(execution) : Json(nullptr)},
          {"workflow_execution", nullptr},
          {"workflow_task_name", nullptr},
          {"purpose", "approve"},
          {"prompt", "ok?"},
          {"response_schema", nullptr},
          {"response_options", nullptr},
          {"assigned_to", assigned_to},
          {"status", status},
          {"response", nullptr},
          {"timeout_at", nullptr},
          {"responded_at", nullptr},
          {"scope", scope},
          {"root", execution},
          {"rev", rev},
          {"created", format_rfc3339_ms(created)},
          {"updated", format_rfc3339_ms(created)}};
}

bool inquiry_match(const Json& r, const InquiryFilter& f) {
  if (!f.statuses.empty() &&
      std::find(f.statuses.begin(), f.statuses.end(), r["status"].get<std::string>()) ==
          f.statuses.end()) {
    return false;
  }
  if (f.execution && r["execution"] != *f.execution) return false;
  if (f.created_by_execution && r["created_by_execution"] != *f.created_by_execution) return false;
  if (f.assigned_to && r["assigned_to"] != *f.assigned_to) return false;
  if (f.scopes && std::find(f.scopes->begin(), f.scopes->end(), r["scope"].get<std::string>()) ==
                      f.scopes->end()) {
    return false;
  }
  return true;
}

class InquiryProjectionsTest : public ProjectionsTest {
 protected:
  void put_inquiry(const Json& row, Json request = nullptr, int code = 200) {
    inquiries_[row["id"]] = row;
    produce(topics::kExecutions, std::to_string(row["root"].get<int64_t>()), "inquiry.updated",
            row["id"], Json{{"inquiry", row}, {"change", "x"}, {"request", request}, {"code", code}});
  }
  void expect_inquiries(const InquiryFilter& f, const Page& page, const std::string& what) {
    auto got = proj_->list_inquiries(f, page);
    ASSERT_TRUE(got.ok()) << got.error().message;
    auto [ids, total] =
        model_list(inquiries_, [&](const Json& r) { return inquiry_match(r, f); }, page);
    EXPECT_EQ(ids_of(got->items), ids) << what;
    EXPECT_EQ(got->total, total) << what;
  }
  void expect_all_filters(const std::string& what) {
    const std::vector<InquiryFilter> filters = {
        {},
        {.statuses = {"pending"}},
        {.statuses = {"responded", "timeout"}},
        {.execution = 901},
        {.created_by_execution = 902},
        {.assigned_to = "alice"},
        {.scopes = Scopes{"p:ops"}},
        {.statuses = {"pending"}, .scopes = Scopes{"p:core"}},
        {.execution = 900, .scopes = Scopes{"p:core", "p:ops"}},
        {.scopes = Scopes{}},
    };
    for (size_t i = 0; i < filters.size(); ++i) {
      expect_inquiries(filters[i], {0, 100, true}, what + " filter " + std::to_string(i));
      expect_inquiries(filters[i], {1, 2, false}, what + " page of filter " + std::to_string(i));
    }
  }
  std::map<int64_t, Json> inquiries_;
};

TEST_F(InquiryProjectionsTest, FiltersScopesOutcomesStaleRevsDeletesAndReopen) {
  start();
  const char* statuses[] = {"pending", "responded", "timeout", "cancelled"};
  for (int i = 1; i <= 24; ++i) {
    put_inquiry(inquiry_row(5000 + i, 900 + i % 3, statuses[i % 4], i % 2 ? "p:core" : "p:ops",
                            i % 3 == 0 ? Json("alice") : Json(nullptr), kT0 + (i / 2) * 1000, 1),
                i == 1 ? Json(777) : Json(nullptr), 201);
  }
  produce(topics::kExecutions, "901", "inquiry.outcome", 5001,
          Json{{"request", 778}, {"id", 5001}, {"code", 409}, {"message", "Inquiry 5001 is already x"}});
  sync();
  expect_all_filters("initial");

  auto created = proj_->wait_for_inquiry_outcome(777, 5s);
  ASSERT_TRUE(created.has_value());
  EXPECT_EQ((*created)["code"], 201);
  EXPECT_EQ((*created)["id"], 5001);
  auto refused = proj_->wait_for_inquiry_outcome(778, 5s);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ((*refused)["code"], 409);
  EXPECT_EQ((*refused)["message"], "Inquiry 5001 is already x");
  EXPECT_FALSE(proj_->wait_for_inquiry_outcome(779, 30ms).has_value());

  // A waiter blocked before the outcome exists wakes when it is applied.
  auto waiter = std::async(std::launch::async, [&] { return proj_->wait_for_inquiry_outcome(780, 10s); });
  Json responded = inquiries_[5001];
  responded["status"] = "responded";
  responded["rev"] = 2;
  put_inquiry(responded, 780, 200);
  auto woke = waiter.get();
  ASSERT_TRUE(woke.has_value());
  EXPECT_EQ((*woke)["id"], 5001);

  // A replayed older revision changes nothing.
  Json stale = responded;
  stale["status"] = "pending";
  stale["rev"] = 1;
  produce(topics::kExecutions, "901", "inquiry.updated", 5001,
          Json{{"inquiry", stale}, {"change", "x"}, {"request", nullptr}, {"code", 200}});
  produce(topics::kExecutions, "902", "inquiry.deleted", 5002, Json{{"id", 5002}, {"request", 781}});
  inquiries_.erase(5002);
  sync();
  EXPECT_EQ((**proj_->get_inquiry(5001))["status"], "responded");
  EXPECT_FALSE(proj_->get_inquiry(5002)->has_value());
  ASSERT_TRUE(proj_->wait_for_inquiry_outcome(781, 5s).has_value());
  expect_all_filters("after updates");
  EXPECT_EQ(dead_letters_.load(), 0);

  stop();
  reopen();
  last_.clear();
  start();
  expect_all_filters("after reopen");
  EXPECT_EQ((**proj_->get_inquiry(5001))["status"], "responded");
}

}  // namespace
}  // namespace attune::projections
