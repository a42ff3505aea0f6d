// The executor's workflow wiring (processors/executor/workflows.cc): a workflow action's execution
// runs in the executor, its children are ordinary executions dispatched to a (simulated) worker,
// and every input is processed through a transaction over a real RocksDB store.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>
#include <random>

#include "processors/executor/executor_processor.h"
#include "processors/keystore/keys.h"
#include "processors/keystore/sealed.h"
#include "topology/core/time.h"
#include "topology/definitions_table.h"
#include "topology/embedded_log.h"
#include "tests/unit/txn_context.h"

namespace attune::executor {
namespace {

using namespace std::chrono_literals;

// What the simulated worker answers for a child: status and result.
using Behaviour = std::function<std::pair<std::string, Json>(const Json& execution)>;

Behaviour echo_all() {
  return [](const Json& ex) {
    return std::pair<std::string, Json>{"completed", Json{{"echo", ex["config"]}}};
  };
}

class WorkflowExecutor : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-wfx-" + std::to_string(std::random_device{}()));
    state::DbOptions o;
    o.append_stores = {std::string(EmbeddedLog::kLogStore)};
    auto db = state::Db::open(dir_.string(), o);
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_ = std::move(*db);
    auto log = EmbeddedLog::open(*db_, default_topics(1));
    ASSERT_TRUE(log.ok()) << log.error().message;
    log_ = std::move(*log);
    define_action("t.ok");
    define_action("t.fail");
  }
  void TearDown() override {
    executor_.reset();
    ctx_.reset();
    if (table_) table_->stop();
    table_.reset();
    log_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  void define_action(const std::string& ref, Json workflow_def = nullptr,
                     Json param_schema = Json::object()) {
    Json a = {{"id", ++def_id_},     {"ref", ref},       {"pack_ref", "t"}, {"enabled", true},
              {"runtime_ref", "core.shell"}, {"entrypoint", "x"}, {"workflow_def", workflow_def},
              {"param_schema", std::move(param_schema)}};
    ASSERT_TRUE(log_->produce({definition_record("action", a, clock_.now_ms(), "test")}).ok());
  }
  void define_workflow(const std::string& ref, Json def) { define_action(ref, std::move(def)); }

  void start() {
    table_ = std::make_unique<DefinitionsTable>(*log_);
    ASSERT_TRUE(table_->start().ok());
    restart();
  }
  // A new processor over the same committed store (the open transaction is lost).
  void restart() {
    std::vector<OutRecord> kept;
    if (ctx_) {
      ctx_->crash();
      kept = std::move(ctx_->forwarded);
    }
    clock_.advance(1s);  // a restart takes time: new ids never repeat old ones
    ExecutorOptions options;
    options.cipher = cipher_;
    executor_ = std::make_unique<ExecutorProcessor>(*table_, options);
    ctx_ = std::make_unique<TxnContext>(*db_, clock_);
    ctx_->forwarded = std::move(kept);
    executor_->init(*ctx_);
    ctx_->commit();
  }

  void process(std::string_view topic, const std::string& key, Envelope e, bool commit = true) {
    executor_->process(record_of(topic, key, e), *ctx_);
    if (commit) ctx_->commit();
  }

  int64_t request(const std::string& action, Json params = Json::object()) {
    const int64_t id = ctx_->ids().next();
    request_again(id, action, params);
    return id;
  }
  void request_again(int64_t id, const std::string& action, Json params = Json::object(),
                     bool commit = true) {
    process(topics::kCommands, std::to_string(id),
            Envelope{"execution.requested", id, "execution:" + std::to_string(id),
                     clock_.now_ms(), "test",
                     Json{{"execution", {{"id", id}, {"action_ref", action}, {"config", params}}}}},
            commit);
  }
  void cancel(int64_t id) {
    process(topics::kCommands, std::to_string(id),
            Envelope{"execution.cancel", id, "cancel:" + std::to_string(id), clock_.now_ms(),
                     "test", Json{{"id", id}}});
  }
  void report(const Json& dispatch, const std::string& status, Json result) {
    const Json& ex = dispatch["execution"];
    const int64_t id = ex["id"];
    const std::string root = std::to_string(dispatch["root"].get<int64_t>());
    const int64_t attempt = dispatch["attempt"];
    process(topics::kResults, root,
            Envelope{"result.running", id, "r", clock_.now_ms(), "worker",
                     Json{{"id", id}, {"attempt", attempt}, {"worker", "w"}}});
    process(topics::kResults, root,
            Envelope{"result.finished", id, "f", clock_.now_ms(), "worker",
                     Json{{"id", id},
                          {"attempt", attempt},
                          {"status", status},
                          {"result", std::move(result)}}});
  }

  // Punctuation, then the `workflow.timer` records it produced processed (as the log would).
  void tick() {
    const size_t from = ctx_->forwarded.size();
    executor_->punctuate(clock_.now(), *ctx_);
    ctx_->commit();
    std::vector<OutRecord> timers;
    for (size_t i = from; i < ctx_->forwarded.size(); ++i) {
      if (ctx_->forwarded[i].topic == topics::kCommands) timers.push_back(ctx_->forwarded[i]);
    }
    for (const OutRecord& r : timers) {
      Record rec;
      rec.topic = r.topic;
      rec.key = r.key;
      rec.value = r.value;
      executor_->process(rec, *ctx_);
      ctx_->commit();
    }
  }

  // Dispatches not yet answered, in order.
  std::vector<Json> new_dispatches() {
    std::vector<Json> out;
    for (; seen_ < ctx_->forwarded.size(); ++seen_) {
      const OutRecord& r = ctx_->forwarded[seen_];
      if (r.topic != topics::kDispatch) continue;
      Envelope e;
      std::string err;
      EXPECT_TRUE(Envelope::parse(r.value, e, err)) << err;
      if (e.type == "execution.dispatch") out.push_back(e.payload);
    }
    return out;
  }
  // The simulated worker answers every dispatch until none is left.
  void run_children(const Behaviour& behave) {
    for (int round = 0; round < 1000; ++round) {
      auto ds = new_dispatches();
      if (ds.empty()) return;
      for (const Json& d : ds) {
        auto [status, result] = behave(d["execution"]);
        report(d, status, result);
      }
    }
    FAIL() << "children never settled";
  }

  // The latest row of every execution (as the projection would have it).
  std::map<int64_t, Json> rows() const {
    std::map<int64_t, Json> out;
    for (const OutRecord& r : ctx_->forwarded) {
      if (r.topic != topics::kExecutions) continue;
      Envelope e;
      std::string err;
      if (Envelope::parse(r.value, e, err) && e.type == "execution.updated") out[e.id] = e.payload;
    }
    return out;
  }
  Json row(int64_t id) const {
    auto all = rows();
    return all.count(id) ? all[id] : Json();
  }
  // task name → children rows (all levels below `parent` are not included).
  std::map<std::string, std::vector<Json>> children_of(int64_t parent) const {
    std::map<std::string, std::vector<Json>> out;
    for (auto& [id, r] : rows()) {
      if (r.value("parent", Json()) == parent) {
        out[r["workflow_task"]["task_name"].get<std::string>()].push_back(r);
      }
    }
    return out;
  }
  std::map<std::string, size_t> counts(int64_t parent) const {
    std::map<std::string, size_t> out;
    for (auto& [name, v] : children_of(parent)) out[name] = v.size();
    return out;
  }
  // Statuses an execution went through, in order.
  std::vector<std::string> history(int64_t id) const {
    std::vector<std::string> out;
    for (const OutRecord& r : ctx_->forwarded) {
      Envelope e;
      std::string err;
      if (r.topic == topics::kExecutions && Envelope::parse(r.value, e, err) && e.id == id) {
        const std::string s = e.payload["status"];
        if (out.empty() || out.back() != s) out.push_back(s);
      }
    }
    return out;
  }

  ManualClock clock_{1767225600000};
  std::filesystem::path dir_;
  std::unique_ptr<state::Db> db_;
  std::unique_ptr<Log> log_;
  std::unique_ptr<DefinitionsTable> table_;
  std::unique_ptr<TxnContext> ctx_;
  std::unique_ptr<ExecutorProcessor> executor_;
  size_t seen_ = 0;
  int64_t def_id_ = 100;
  std::shared_ptr<const keystore::Cipher> cipher_;
};

Json task(const std::string& name, const std::string& action, Json extra = Json::object()) {
  Json t = {{"name", name}, {"action", action}, {"input", {{"msg", name}}}};
  t.update(extra);
  return t;
}

// --- table-driven: definition, worker behaviour → workflow status and children per task ------

struct Case {
  const char* name;
  Json definition;
  Json parameters;
  const char* status;
  std::map<std::string, size_t> children;
  Json result;  // null: not checked
};

TEST_F(WorkflowExecutor, DefinitionsRunToTheExpectedEnd) {
  const Json seq = Json::array({task("a", "t.ok", {{"on_success", "b"}}),
                                task("b", "t.ok", {{"on_success", "c"}}), task("c", "t.ok")});
  const std::vector<Case> cases = {
      {"sequential", {{"version", "1"}, {"tasks", seq}}, {}, "completed",
       {{"a", 1}, {"b", 1}, {"c", 1}}, nullptr},
      {"failure stops",
       {{"version", "1"},
        {"tasks", {task("a", "t.ok", {{"on_success", "b"}}), task("b", "t.fail", {{"on_success", "c"}}),
                   task("c", "t.ok")}}},
       {}, "failed", {{"a", 1}, {"b", 1}}, nullptr},
      {"on_failure path",
       {{"version", "1"},
        {"tasks", {task("b", "t.fail", {{"on_failure", "fix"}, {"on_success", "c"}}),
                   task("c", "t.ok"), task("fix", "t.ok")}}},
       {}, "completed", {{"b", 1}, {"fix", 1}}, nullptr},
      {"with_items",
       {{"version", "1"},
        {"tasks", {task("each", "t.ok", {{"with_items", "{{ parameters.xs }}"},
                                          {"input", {{"msg", "{{ item }}"}}}})}},
        {"output_map", {{"n", "{{ task.each.result | length }}"}}}},
       {{"xs", {1, 2, 3}}}, "completed", {{"each", 3}}, {{"n", 3}}},
      {"with_items empty",
       {{"version", "1"},
        {"tasks", {task("each", "t.ok", {{"with_items", "{{ parameters.xs }}"}})}}},
       {{"xs", Json::array()}}, "completed", {}, nullptr},
      {"publish and join",
       {{"version", "1"},
        {"tasks",
         {task("a", "t.ok", {{"next", {{{"publish", {{{"v", "{{ task.a.result.echo.msg }}"}}}},
                                        {"do", {"l", "r"}}}}}}),
          task("l", "t.ok", {{"on_success", "j"}}), task("r", "t.ok", {{"on_success", "j"}}),
          task("j", "t.ok", {{"join", "all"}, {"input", {{"msg", "{{ workflow.v }}"}}}})}},
        {"output_map", {{"j", "{{ task.j.result.echo.msg }}"}}}},
       {}, "completed", {{"a", 1}, {"l", 1}, {"r", 1}, {"j", 1}}, {{"j", "a"}}},
  };
  define_workflow("t.seq", cases[0].definition);
  for (size_t i = 1; i < cases.size(); ++i) {
    define_workflow("t.case" + std::to_string(i), cases[i].definition);
  }
  start();
  const Behaviour behave = [](const Json& ex) {
    return ex["action_ref"] == "t.fail"
               ? std::pair<std::string, Json>{"failed", Json{{"exit_code", 1}}}
               : std::pair<std::string, Json>{"completed", Json{{"echo", ex["config"]}}};
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    const int64_t wf = request(i == 0 ? "t.seq" : "t.case" + std::to_string(i),
                               cases[i].parameters.is_null() ? Json::object() : cases[i].parameters);
    run_children(behave);
    const Json r = row(wf);
    EXPECT_EQ(r["status"], cases[i].status) << r.dump();
    EXPECT_EQ(counts(wf), cases[i].children);
    if (!cases[i].result.is_null()) {
      Json want = cases[i].result;  // completed: also under `data` (API.md §11)
      if (r["status"] == "completed" && want.is_object()) want["data"] = cases[i].result;
      EXPECT_EQ(r["result"], want);
    }
    EXPECT_EQ(history(wf), (std::vector<std::string>{"requested", "scheduling", "scheduled",
                                                     "running", cases[i].status}));
    EXPECT_TRUE(r["started_at"].is_string());
    for (auto& [name, kids] : children_of(wf)) {
      for (const Json& k : kids) {
        EXPECT_EQ(k["workflow_task"]["workflow_execution"], wf);
        EXPECT_EQ(k["workflow_task"]["task_name"], name);
      }
    }
  }
}

TEST_F(WorkflowExecutor, NestedWorkflowsPropagateResultsUpOnePartition) {
  define_workflow("t.l3", {{"version", "1"},
                           {"tasks", {task("leaf", "t.ok", {{"input", {{"msg", "deep"}}}})}},
                           {"output_map", {{"v", "{{ task.leaf.result.echo.msg }}"}}}});
  define_workflow("t.l2", {{"version", "1"},
                           {"tasks", {task("mid", "t.l3")}},
                           {"output_map", {{"v", "{{ task.mid.result.v }}"}}}});
  define_workflow("t.l1", {{"version", "1"},
                           {"tasks", {task("top", "t.l2")}},
                           {"output_map", {{"v", "{{ task.top.result.v }}"}}}});
  start();
  const int64_t wf = request("t.l1");
  run_children(echo_all());
  EXPECT_EQ(row(wf)["status"], "completed");
  // Each level's result is its output_map under `data` and at the top level, so the level above
  // reads `task.<sub>.result.v` directly.
  EXPECT_EQ(row(wf)["result"], Json({{"v", "deep"}, {"data", {{"v", "deep"}}}}));
  const Json mid = children_of(wf)["top"].at(0);
  const Json leaf_wf = children_of(mid["id"])["mid"].at(0);
  EXPECT_EQ(leaf_wf["status"], "completed");
  // Every record of the tree is keyed by the root: one partition.
  for (const OutRecord& r : ctx_->forwarded) {
    if (r.topic == topics::kExecutions) {
      EXPECT_EQ(r.key, std::to_string(wf));
    }
  }
}

TEST_F(WorkflowExecutor, RedeliveredInputsCreateNothingTwice) {
  define_workflow("t.wf", {{"version", "1"},
                           {"tasks", {task("a", "t.ok", {{"on_success", "b"}}), task("b", "t.ok")}}});
  start();
  const int64_t wf = request("t.wf");
  auto first = new_dispatches();
  ASSERT_EQ(first.size(), 1u);
  // The request again (a redelivery): nothing new.
  const size_t before = ctx_->forwarded.size();
  request_again(wf, "t.wf");
  EXPECT_EQ(ctx_->forwarded.size(), before);
  // A result processed but not committed (crash): the replay after a restart creates b once.
  const Json& d = first[0];
  const std::string root = std::to_string(d["root"].get<int64_t>());
  process(topics::kResults, root,
          Envelope{"result.running", 0, "r", clock_.now_ms(), "w",
                   Json{{"id", d["execution"]["id"]}, {"attempt", 1}}});
  process(topics::kResults, root,
          Envelope{"result.finished", 0, "f", clock_.now_ms(), "w",
                   Json{{"id", d["execution"]["id"]}, {"attempt", 1}, {"status", "completed"},
                        {"result", {{"ok", true}}}}},
          false);
  restart();
  EXPECT_TRUE(new_dispatches().empty()) << "the uncommitted transaction left nothing";
  report(d, "completed", {{"ok", true}});  // the replay (result.running again is ignored)
  report(d, "completed", {{"ok", true}});  // and a duplicate on top
  auto second = new_dispatches();
  ASSERT_EQ(second.size(), 1u);
  report(second[0], "completed", {{"ok", true}});
  EXPECT_TRUE(new_dispatches().empty());
  EXPECT_EQ(row(wf)["status"], "completed");
  EXPECT_EQ(counts(wf), (std::map<std::string, size_t>{{"a", 1}, {"b", 1}}));
}

TEST_F(WorkflowExecutor, CancelCascadesToRunningAndHeldChildren) {
  define_workflow("t.inner", {{"version", "1"}, {"cancellation_policy", "cancel_running"},
                              {"tasks", {task("z", "t.ok")}}});
  define_workflow("t.wf", {{"version", "1"},
                           {"cancellation_policy", "cancel_running"},
                           {"tasks", {task("nest", "t.inner"),
                                      task("items", "t.ok", {{"with_items", "{{ [1, 2, 3] }}"}})}}});
  start();
  const int64_t wf = request("t.wf");
  auto ds = new_dispatches();
  ASSERT_EQ(ds.size(), 2u);  // inner's z and the first item (concurrency 1; two held)
  for (const Json& d : ds) {
    process(topics::kResults, std::to_string(wf),
            Envelope{"result.running", 0, "r", clock_.now_ms(), "w",
                     Json{{"id", d["execution"]["id"]}, {"attempt", 1}}});
  }
  cancel(wf);
  EXPECT_EQ(row(wf)["status"], "canceling");
  // The worker is asked to cancel both running leaves; they report cancelled.
  size_t cancels = 0;
  for (const OutRecord& r : ctx_->forwarded) {
    Envelope e;
    std::string err;
    if (r.topic == topics::kDispatch && Envelope::parse(r.value, e, err) &&
        e.type == "execution.cancel") {
      ++cancels;
      EXPECT_NE(e.id, wf) << "a workflow is never sent to a worker";
    }
  }
  EXPECT_EQ(cancels, 2u);
  for (const Json& d : ds) {
    process(topics::kResults, std::to_string(wf),
            Envelope{"result.finished", 0, "f", clock_.now_ms(), "w",
                     Json{{"id", d["execution"]["id"]}, {"attempt", 1}, {"status", "cancelled"}}});
  }
  EXPECT_EQ(row(wf)["status"], "cancelled");
  for (auto& [id, r] : rows()) EXPECT_EQ(r["status"], "cancelled") << r.dump();
  EXPECT_EQ(rows().size(), 6u);  // wf, inner, z, three items
  EXPECT_TRUE(new_dispatches().empty());
}

TEST_F(WorkflowExecutor, DelayTimerIsDurableAcrossARestart) {
  define_workflow("t.wf", {{"version", "1"}, {"tasks", {task("later", "t.ok", {{"delay", 5}})}}});
  start();
  const int64_t wf = request("t.wf");
  EXPECT_TRUE(new_dispatches().empty());
  clock_.advance(2s);
  tick();
  EXPECT_TRUE(new_dispatches().empty()) << "not yet due";
  restart();
  clock_.advance(4s);
  tick();
  auto ds = new_dispatches();
  ASSERT_EQ(ds.size(), 1u);
  // The timer record redelivered: a stale event, nothing new.
  for (const OutRecord& r : std::vector<OutRecord>(ctx_->forwarded)) {
    if (r.topic != topics::kCommands) continue;
    Record rec;
    rec.topic = r.topic;
    rec.key = r.key;
    rec.value = r.value;
    executor_->process(rec, *ctx_);
    ctx_->commit();
    EXPECT_EQ(rec.key, std::to_string(wf)) << "keyed by the root: the owning partition";
  }
  EXPECT_TRUE(new_dispatches().empty());
  report(ds[0], "completed", {{"ok", 1}});
  EXPECT_EQ(row(wf)["status"], "completed");
  // fired once: another punctuation dispatches nothing
  tick();
  EXPECT_TRUE(new_dispatches().empty());
}

// Keys of the executor store under `prefix`, with their values (committed and open).
std::map<std::string, std::string> keys_under(TxnContext& ctx, std::string_view prefix) {
  std::map<std::string, std::string> out;
  auto st = ctx.scan(
      ctx.store(kExecutionsStore), prefix,
      [&](std::string_view k, std::string_view v) {
        out.emplace(std::string(k), std::string(v));
        return true;
      },
      false);
  EXPECT_TRUE(st.ok());
  return out;
}

// A run stored by a build before per-slot keys ({definition, state with inline slots, children}
// in w:<id> alone) resumes after the upgrade, and an ended run leaves no keys behind.
TEST_F(WorkflowExecutor, RunStoredInTheEarlierLayoutResumes) {
  define_workflow("t.wf", {{"version", "1"},
                           {"tasks", {task("each", "t.ok",
                                           {{"with_items", "{{ [10, 20, 30, 40] }}"},
                                            {"concurrency", 2},
                                            {"input", {{"msg", "{{ item }}"}}},
                                            {"on_success", "after"}}),
                                      task("after", "t.ok")}},
                           {"output_map", {{"all", "{{ task.each.result }}"}}}});
  start();
  const int64_t wf = request("t.wf");
  auto ds = new_dispatches();
  ASSERT_EQ(ds.size(), 2u);
  report(ds[1], "completed", {{"echo", ds[1]["execution"]["config"]}});  // item 1; releases 2
  // Rewrite the run as the earlier build stored it.
  const std::string run_key = "w:" + std::to_string(wf);
  auto keys = keys_under(*ctx_, run_key + "/");
  Json run = Json::parse(keys_under(*ctx_, run_key).at(run_key));
  run["definition"] = Json::parse(keys.at(run_key + "/d"));
  run["children"] = Json::object();
  Json& each = run["state"]["tasks"]["each"];
  each["slots"] = Json::array();
  for (int64_t i = 0; i < each["slot_count"].get<int64_t>(); ++i) {
    each["slots"].push_back(Json::parse(keys.at(run_key + "/s/each/1/" + std::to_string(i))));
  }
  for (const char* f : {"slot_count", "released", "busy", "first_bad", "first_bad_status",
                        "any_cancelled"}) {
    each.erase(f);
  }
  run["state"]["tasks"].erase("after");
  for (auto& [k, v] : keys) {
    const std::string c = run_key + "/c/";
    if (k.rfind(c, 0) == 0) run["children"][k.substr(c.size())] = std::stoll(v);
    ctx_->del(ctx_->store(kExecutionsStore), k);
  }
  ctx_->put(ctx_->store(kExecutionsStore), run_key, run.dump());
  ctx_->commit();
  ASSERT_EQ(keys_under(*ctx_, run_key + "/").size(), 0u);
  restart();
  report(ds[0], "completed", {{"echo", ds[0]["execution"]["config"]}});  // item 0, dispatched before
  run_children(echo_all());
  EXPECT_EQ(row(wf)["status"], "completed") << row(wf).dump();
  EXPECT_EQ(row(wf)["result"]["all"],
            Json::parse(R"([{"echo": {"msg": 10}}, {"echo": {"msg": 20}}, {"echo": {"msg": 30}},
                            {"echo": {"msg": 40}}])"));
  EXPECT_EQ(counts(wf), (std::map<std::string, size_t>{{"each", 4}, {"after", 1}}));
  EXPECT_TRUE(keys_under(*ctx_, "w:").empty()) << "the ended run's keys are deleted";
}

// While a with_items task runs, the run record holds counters, not one entry per item.
TEST_F(WorkflowExecutor, RunRecordDoesNotGrowWithItems) {
  define_workflow("t.wf", {{"version", "1"},
                           {"tasks", {task("each", "t.ok",
                                           {{"with_items", "{{ parameters.items }}"},
                                            {"concurrency", 3},
                                            {"input", {{"msg", "{{ item }}"}}}})}}});
  start();
  size_t sizes[2];
  for (int k = 0; k < 2; ++k) {
    Json items = Json::array();
    for (int i = 0; i < (k == 0 ? 10 : 1000); ++i) items.push_back(i);
    const int64_t wf = request("t.wf", {{"items", items}});
    const std::string run_key = "w:" + std::to_string(wf);
    sizes[k] = keys_under(*ctx_, run_key).at(run_key).size();
    run_children(echo_all());
    EXPECT_EQ(row(wf)["status"], "completed");
  }
  EXPECT_LE(sizes[1], sizes[0] + 16) << sizes[0] << " vs " << sizes[1];
}

// 20 levels of nested workflows: the leaf's result reaches the top.
TEST_F(WorkflowExecutor, TwentyLevelsOfNesting) {
  for (int level = 19; level >= 0; --level) {
    const std::string below = level == 19 ? "t.ok" : "t.n" + std::to_string(level + 1);
    const std::string value = level == 19 ? "{{ task.t.result.echo.msg }}" : "{{ task.t.result.v }}";
    define_workflow("t.n" + std::to_string(level),
                    {{"version", "1"},
                     {"tasks", {task("t", below, {{"input", {{"msg", "leaf"}}}})}},
                     {"output_map", {{"v", value}}}});
  }
  start();
  const int64_t wf = request("t.n0");
  run_children(echo_all());
  EXPECT_EQ(row(wf)["status"], "completed") << row(wf).dump();
  EXPECT_EQ(row(wf)["result"]["v"], "leaf");
  EXPECT_EQ(rows().size(), 21u);
  EXPECT_TRUE(keys_under(*ctx_, "w:").empty());
}

// wait_for (API.md §12.4): the waiting task has no child until its inquiry leaves pending; a
// response runs it with `inquiry.<task>.response`, a timeout takes its timed_out() path and the
// task never runs. The wait survives a restart (it is in the store, not in memory).
class WaitFor : public WorkflowExecutor {
 protected:
  void inquiry_command(int64_t root, const std::string& type, Json payload) {
    process(topics::kCommands, std::to_string(root),
            Envelope{type, 0, type + ":" + std::to_string(++commands_), clock_.now_ms(), "test",
                     std::move(payload)});
  }
  void create_inquiry(int64_t root, int64_t id, int64_t creator, int timeout_s) {
    inquiry_command(
        root, "inquiry.create",
        {{"request", 9000 + id},
         {"inquiry",
          {{"id", id},
           {"execution", creator},
           {"created_by_execution", creator},
           {"purpose", "approval"},
           {"prompt", "Deploy?"},
           {"response_schema", {{"ok", {{"type", "boolean"}, {"required", true}}}}},
           {"response_options", nullptr},
           {"assigned_to", nullptr},
           {"timeout_seconds", timeout_s},
           {"timeout_at", format_rfc3339_ms(clock_.now_ms() + timeout_s * 1000)},
           {"created", format_rfc3339_ms(clock_.now_ms())}}}});
  }
  Json definition() {
    Json ask = task("ask", "t.ok", {{"next", {{{"do", {"approve"}}}}}});
    Json approve = task("approve", "t.ok",
                        {{"wait_for", {{"inquiry", "{{ task.ask.result.inquiry_id }}"}}},
                         {"input", {{"msg", "{{ inquiry.approve.response.ok }}"}}},
                         {"next", {{{"when", "{{ timed_out() }}"}, {"do", {"expired"}}}}}});
    return {{"version", "1"}, {"tasks", {ask, approve, task("expired", "t.ok")}}};
  }
  // Runs `ask`, whose child creates inquiry `inquiry` (as an action would with its token).
  int64_t start_waiting(int64_t inquiry) {
    define_workflow("t.wf", definition());
    start();
    const int64_t wf = request("t.wf");
    auto ds = new_dispatches();
    EXPECT_EQ(ds.size(), 1u);
    if (ds.size() != 1) return wf;
    create_inquiry(wf, inquiry, ds[0]["execution"]["id"], 30);
    report(ds[0], "completed", {{"inquiry_id", inquiry}});
    EXPECT_TRUE(new_dispatches().empty()) << "approve waits: no child row";
    EXPECT_EQ(counts(wf), (std::map<std::string, size_t>{{"ask", 1}}));
    return wf;
  }
  int commands_ = 0;
};

TEST_F(WaitFor, AResponseRunsTheTaskWithIt) {
  const int64_t wf = start_waiting(777);
  restart();  // the wait is durable
  inquiry_command(wf, "inquiry.respond",
                  {{"request", 1}, {"id", 777}, {"response", {{"ok", true}}},
                   {"responder", {{"id", 1}, {"login", "admin"}, {"unrestricted", true}}}});
  auto ds = new_dispatches();
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0]["execution"]["config"], (Json{{"msg", true}}));
  report(ds[0], "completed", {{"ok", 1}});
  EXPECT_EQ(row(wf)["status"], "completed");
  EXPECT_EQ(counts(wf), (std::map<std::string, size_t>{{"ask", 1}, {"approve", 1}}));
}

TEST_F(WaitFor, ATimeoutTakesTheTimedOutPathAndTheTaskNeverRuns) {
  const int64_t wf = start_waiting(778);
  clock_.advance(31s);
  tick();  // the deadline's inquiry.timeout command, processed as the log would deliver it
  auto ds = new_dispatches();
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0]["execution"]["workflow_task"]["task_name"], "expired");
  report(ds[0], "completed", {{"ok", 1}});
  EXPECT_EQ(row(wf)["status"], "completed");
  EXPECT_EQ(counts(wf), (std::map<std::string, size_t>{{"ask", 1}, {"expired", 1}}));
}

TEST_F(WaitFor, AnInquiryAnsweredBeforeTheTaskWaitsResolvesAtOnce) {
  Json ask = task("ask", "t.ok", {{"next", {{{"do", {"approve"}}}}}});
  Json approve = task("approve", "t.ok",
                      {{"wait_for", {{"inquiry", "{{ task.ask.result.inquiry_id }}"}}},
                       {"input", {{"msg", "{{ inquiry.approve.response.ok }}"}}}});
  define_workflow("t.wf", {{"version", "1"}, {"tasks", {ask, approve}}});
  start();
  const int64_t wf = request("t.wf");
  auto ds = new_dispatches();
  ASSERT_EQ(ds.size(), 1u);
  create_inquiry(wf, 779, ds[0]["execution"]["id"], 30);
  inquiry_command(wf, "inquiry.respond",
                  {{"request", 2}, {"id", 779}, {"response", {{"ok", false}}},
                   {"responder", {{"id", 1}, {"login", "admin"}, {"unrestricted", true}}}});
  report(ds[0], "completed", {{"inquiry_id", "779"}});  // a string id works too
  auto next = new_dispatches();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0]["execution"]["config"], (Json{{"msg", false}}));
}

TEST_F(WaitFor, AnUnknownInquiryOrACancelledOneNeverLeavesTheTaskWaiting) {
  // Unknown: timed_out() path at once. Cancelled (PUT status cancelled): the same.
  const int64_t wf = start_waiting(780);
  inquiry_command(wf, "inquiry.update",
                  {{"request", 3}, {"id", 780}, {"changes", {{"status", "cancelled"}}}});
  auto ds = new_dispatches();
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0]["execution"]["workflow_task"]["task_name"], "expired");

  define_workflow("t.wf2", definition());
  const int64_t wf2 = request("t.wf2");
  auto ds2 = new_dispatches();
  ASSERT_EQ(ds2.size(), 1u);
  report(ds2[0], "completed", {{"inquiry_id", 424242}});  // never created
  auto ds3 = new_dispatches();
  ASSERT_EQ(ds3.size(), 1u);
  EXPECT_EQ(ds3[0]["execution"]["workflow_task"]["task_name"], "expired");
  EXPECT_NE(wf, wf2);
}

// Children's parameters meet their action's param_schema when dispatched (API.md §12: a child is
// an execution like any other): defaults filled in; invalid ones fail the child (and, unhandled,
// the workflow) with the fields named, and never reach a worker.
TEST_F(WorkflowExecutor, ChildParametersGetDefaultsOrFailWithTheFieldsNamed) {
  const Json schema = {{"msg", {{"type", "string"}, {"required", true}}},
                       {"count", {{"type", "integer"}, {"default", 3}, {"maximum", 5}}}};
  define_action("t.typed", nullptr, schema);
  define_workflow("t.wf", {{"version", "1"},
                           {"tasks", {task("a", "t.typed", {{"next", {{{"do", {"b"}}}}}}),
                                      task("b", "t.typed", {{"input", {{"msg", "x"}, {"count", 9}}}})}}});
  start();
  const int64_t wf = request("t.wf");
  auto ds = new_dispatches();
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0]["execution"]["config"], (Json{{"msg", "a"}, {"count", 3}}));
  report(ds[0], "completed", {{"ok", 1}});
  EXPECT_TRUE(new_dispatches().empty()) << "b's parameters are invalid: never dispatched";
  auto b = children_of(wf)["b"];
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0]["status"], "failed");
  EXPECT_EQ(b[0]["result"]["error"], "Invalid parameters for action 't.typed': count must be <= 5");
  EXPECT_EQ(row(wf)["status"], "failed");
}

// Secrets (API.md §11.4): a workflow's secret parameters and decrypted keystore values reach the
// templates, but every child's stored config holds the redaction marker and the values travel
// sealed (secret_config, AAD execution:<child id>) — and secret fields of the child's own schema are
// sealed even when not rendered from a secret.
TEST_F(WorkflowExecutor, SecretsInChildParametersStaySealed) {
  cipher_ = std::make_shared<keystore::Cipher>("0123456789abcdef0123456789abcdef");
  define_action("t.login", nullptr,
                {{"user", {{"type", "string"}}}, {"password", {{"type", "string"}, {"secret", true}}}});
  Json key = {{"id", ++def_id_}, {"ref", "system.api_token"}, {"owner_type", "system"},
              {"owner", nullptr}, {"local_ref", "api_token"}, {"encrypted", true}};
  keystore::set_value(key, "tok-s3cr3t-value", true, *cipher_);
  ASSERT_TRUE(log_->produce({definition_record("key", key, clock_.now_ms(), "test")}).ok());
  define_workflow(
      "t.wf",
      {{"version", "1"},
       {"tasks",
        {task("a", "t.login",
              {{"input", {{"user", "{{ parameters.user }}"},
                          {"password", "{{ parameters.pw }}"},
                          {"header", "Bearer {{ keystore.api_token }}"}}}})}}});
  start();
  const int64_t wf = ctx_->ids().next();
  // As the API stores an execute with a secret parameter: marker in config, value sealed.
  auto sealed_params = keystore::seal_config({{"user", "ann"}, {"pw", "hunter2-secret"}}, {"pw"},
                                             {}, *cipher_, keystore::sealed_aad("execution", wf));
  ASSERT_TRUE(sealed_params.sealed.has_value());
  process(topics::kCommands, std::to_string(wf),
          Envelope{"execution.requested", wf, "execution:" + std::to_string(wf), clock_.now_ms(),
                   "test",
                   Json{{"execution",
                         {{"id", wf},
                          {"action_ref", "t.wf"},
                          {"config", sealed_params.config},
                          {keystore::kSecretConfigField, *sealed_params.sealed}}}}});
  auto ds = new_dispatches();
  ASSERT_EQ(ds.size(), 1u);
  const Json& child = ds[0]["execution"];
  EXPECT_EQ(child["config"]["user"], "ann");
  EXPECT_TRUE(keystore::is_marker(child["config"]["password"])) << child.dump();
  EXPECT_TRUE(keystore::is_marker(child["config"]["header"])) << child.dump();
  ASSERT_TRUE(child.contains(keystore::kSecretConfigField));
  auto open = keystore::unseal_config(child["config"], child[keystore::kSecretConfigField],
                                      *cipher_, keystore::sealed_aad("execution", child["id"]));
  ASSERT_TRUE(open.ok()) << open.error().message;
  EXPECT_EQ((*open)["password"], "hunter2-secret");
  EXPECT_EQ((*open)["header"], "Bearer tok-s3cr3t-value");
  // Nowhere in plaintext: not in any record written, nor in the executor's store.
  for (const OutRecord& r : ctx_->forwarded) {
    EXPECT_EQ(r.value.find("hunter2-secret"), std::string::npos) << r.topic;
    EXPECT_EQ(r.value.find("tok-s3cr3t"), std::string::npos) << r.topic;
  }
  auto store = db_->store("stage.executions");
  ASSERT_TRUE(store.ok());
  auto st = (*store)->scan("", [&](std::string_view k, std::string_view v) {
    EXPECT_EQ(v.find("hunter2-secret"), std::string::npos) << k;
    return true;
  });
  EXPECT_TRUE(st.ok());
  // The sealed run state opens again for the next event, also after a restart.
  restart();
  report(ds[0], "completed", {{"ok", 1}});
  EXPECT_EQ(row(wf)["status"], "completed");
}

// A workflow execution's own `timeout_seconds` (a parent task's `timeout` for a nested workflow):
// at the deadline it ends `timeout` at once (so the parent's timed_out() path can run), its running
// children are cancelled whatever its cancellation_policy, and nothing new starts. The deadline is a
// stored timer, so it also fires after a restart.
TEST_F(WorkflowExecutor, AWorkflowTimesOutAtItsDeadline) {
  define_workflow("t.inner", {{"version", "1"},
                              {"tasks", {task("slow", "t.ok", {{"next", {{{"do", {"after"}}}}}}),
                                         task("after", "t.ok")}}});
  define_workflow("t.outer",
                  {{"version", "1"},
                   {"tasks",
                    {task("nest", "t.inner",
                          {{"timeout", 2},
                           {"next", {{{"when", "{{ timed_out() }}"}, {"do", {"recover"}}}}}}),
                     task("recover", "t.ok")}}});
  start();
  const int64_t outer = request("t.outer");
  auto ds = new_dispatches();
  ASSERT_EQ(ds.size(), 1u);  // inner's `slow`, running
  const Json inner = children_of(outer)["nest"].at(0);
  EXPECT_EQ(inner["timeout_seconds"], 2);
  process(topics::kResults, std::to_string(outer),
          Envelope{"result.running", ds[0]["execution"]["id"], "r", clock_.now_ms(), "worker",
                   Json{{"id", ds[0]["execution"]["id"]}, {"attempt", 1}, {"worker", "w"}}});
  restart();
  clock_.advance(2500ms);
  tick();
  EXPECT_EQ(row(inner["id"])["status"], "timeout");
  EXPECT_EQ(row(inner["id"])["result"]["error"], "workflow timed out after 2 seconds");
  EXPECT_EQ(row(inner["id"])["workflow_task"]["timed_out"], true);
  const int64_t slow = ds[0]["execution"]["id"];
  EXPECT_EQ(row(slow)["status"], "canceling") << "its running child is cancelled (allow_finish)";
  auto next = new_dispatches();
  ASSERT_EQ(next.size(), 1u) << "the outer workflow's timed_out() path";
  EXPECT_EQ(next[0]["execution"]["workflow_task"]["task_name"], "recover");
  report(next[0], "completed", {{"ok", 1}});
  EXPECT_EQ(row(outer)["status"], "completed");
  // The cancelled child finishing starts nothing more in the timed-out workflow.
  process(topics::kResults, std::to_string(outer),
          Envelope{"result.finished", slow, "f", clock_.now_ms(), "worker",
                   Json{{"id", slow}, {"attempt", 1}, {"status", "cancelled"}, {"result", nullptr}}});
  EXPECT_TRUE(new_dispatches().empty());
  EXPECT_EQ(row(inner["id"])["status"], "timeout");
  EXPECT_EQ(counts(inner["id"]), (std::map<std::string, size_t>{{"slow", 1}}));
}

// A child's workflow_task follows it (API.md §7): started_at, then completed_at, duration_ms and
// timed_out.
TEST_F(WorkflowExecutor, ChildWorkflowTaskRecordsItsTimes) {
  define_workflow("t.wf", {{"version", "1"}, {"tasks", {task("a", "t.ok")}}});
  start();
  const int64_t wf = request("t.wf");
  auto ds = new_dispatches();
  ASSERT_EQ(ds.size(), 1u);
  const Json& created = ds[0]["execution"]["workflow_task"];
  EXPECT_TRUE(created["started_at"].is_null());
  EXPECT_EQ(created["timed_out"], false);
  const int64_t id = ds[0]["execution"]["id"];
  process(topics::kResults, std::to_string(wf),
          Envelope{"result.running", id, "r", clock_.now_ms(), "worker",
                   Json{{"id", id}, {"attempt", 1}, {"worker", "w"}}});
  EXPECT_TRUE(row(id)["workflow_task"]["started_at"].is_string());
  clock_.advance(1500ms);
  process(topics::kResults, std::to_string(wf),
          Envelope{"result.finished", id, "f", clock_.now_ms(), "worker",
                   Json{{"id", id}, {"attempt", 1}, {"status", "timeout"}, {"result", nullptr}}});
  const Json wt = row(id)["workflow_task"];
  EXPECT_EQ(wt["timed_out"], true);
  EXPECT_EQ(wt["duration_ms"], 1500);
  EXPECT_TRUE(wt["completed_at"].is_string());
  EXPECT_EQ(row(wf)["status"], "failed");
}

TEST_F(WorkflowExecutor, InvalidStoredDefinitionFailsTheExecution) {
  define_workflow("t.bad", {{"version", "1"}, {"tasks", Json::array()}});
  start();
  const int64_t wf = request("t.bad");
  EXPECT_EQ(row(wf)["status"], "failed");
  EXPECT_NE(row(wf)["result"]["error"].get<std::string>().find("invalid workflow definition"),
            std::string::npos);
  EXPECT_TRUE(new_dispatches().empty());
}

}  // namespace
}  // namespace attune::executor
