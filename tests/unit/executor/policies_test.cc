// Policies through the executor and the admission stage together (issue 17): every record either
// stage produces is routed to the stage that consumes it, as the log would, over real RocksDB
// stores; a simulated worker answers dispatches. Checks the FIFO queue, cancel of a queued
// execution, method cancel, the queue statistics, durable retries with backoff, and restarts.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <random>

#include "processors/admission/admission_processor.h"
#include "processors/admission/policy.h"
#include "processors/executor/executor_processor.h"
#include "tests/unit/txn_context.h"
#include "topology/definitions_table.h"
#include "topology/embedded_log.h"

namespace attune::executor {
namespace {

using namespace std::chrono_literals;

class PolicyFlow : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-pol-" + std::to_string(std::random_device{}()));
    state::DbOptions o;
    o.append_stores = {std::string(EmbeddedLog::kLogStore)};
    auto db = state::Db::open(dir_.string(), o);
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_ = std::move(*db);
    auto log = EmbeddedLog::open(*db_, default_topics(1));
    ASSERT_TRUE(log.ok()) << log.error().message;
    log_ = std::move(*log);
    Json a = {{"id", 7},         {"ref", "t.job"},   {"pack_ref", "t"}, {"enabled", true},
              {"runtime_ref", "core.shell"}, {"entrypoint", "x"}};
    ASSERT_TRUE(log_->produce({definition_record("action", a, clock_.now_ms(), "test")}).ok());
    Json wf = {{"id", 8},          {"ref", "t.wf"},    {"pack_ref", "t"}, {"enabled", true},
               {"runtime_ref", "core.shell"}, {"entrypoint", "x"},
               {"workflow_def",
                {{"version", "1.0"},
                 {"tasks", {{{"name", "only"}, {"action", "t.job"}, {"input", Json::object()}}}}}}};
    ASSERT_TRUE(log_->produce({definition_record("action", wf, clock_.now_ms(), "test")}).ok());
    table_ = std::make_unique<DefinitionsTable>(*log_);
    ASSERT_TRUE(table_->start().ok());
    restart();
  }
  void TearDown() override {
    executor_.reset();
    admission_.reset();
    exec_ctx_.reset();
    adm_ctx_.reset();
    table_->stop();
    table_.reset();
    log_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  void policy(const std::string& ref, Json fields) {
    Json p = {{"id", ++def_id_},
              {"ref", ref},
              {"pack_ref", "t"},
              {"name", ref},
              {"enabled", true},
              {"priority", 0},
              {"scope", {{"type", "action"}, {"action_ref", "t.job"}}}};
    p.update(fields);
    ASSERT_TRUE(log_->produce({definition_record("policy", p, clock_.now_ms(), "test")}).ok());
  }

  // New processors over the committed stores (what was not committed is lost).
  void restart() {
    clock_.advance(1s);
    executor_ = std::make_unique<ExecutorProcessor>(*table_);
    admission_ = std::make_unique<admission::AdmissionProcessor>(*table_);
    exec_ctx_ = std::make_unique<TxnContext>(*db_, clock_);
    adm_ctx_ = std::make_unique<TxnContext>(*db_, clock_);
    adm_ctx_->set_stage("admission");
    exec_seen_ = adm_seen_ = 0;
    executor_->init(*exec_ctx_);
    exec_ctx_->commit();
    admission_->init(*adm_ctx_);
    adm_ctx_->commit();
    tick();
  }

  // Delivers every produced record to its consumer until nothing new is produced.
  void route() {
    for (int round = 0; round < 100000; ++round) {
      std::vector<OutRecord> batch;
      for (; exec_seen_ < exec_ctx_->forwarded.size(); ++exec_seen_) {
        batch.push_back(exec_ctx_->forwarded[exec_seen_]);
      }
      for (; adm_seen_ < adm_ctx_->forwarded.size(); ++adm_seen_) {
        batch.push_back(adm_ctx_->forwarded[adm_seen_]);
      }
      if (batch.empty()) return;
      bool admitted = false;
      for (const OutRecord& r : batch) {
        Envelope e;
        std::string err;
        ASSERT_TRUE(Envelope::parse(r.value, e, err)) << err;
        Record rec;
        rec.topic = r.topic;
        rec.key = r.key;
        rec.value = r.value;
        if (r.topic == topics::kCommands || r.topic == topics::kResults) {
          executor_->process(rec, *exec_ctx_);
          exec_ctx_->commit();
        } else if (r.topic == topics::kAdmission) {
          admission_->process(rec, *adm_ctx_);
          adm_ctx_->commit();
          admitted = true;
        } else if (r.topic == topics::kDispatch && e.type == "execution.dispatch") {
          dispatched_.push_back(e.payload);
        } else if (r.topic == topics::kExecutions && e.type == "execution.updated") {
          rows_[e.id] = e.payload;
        } else if (r.topic == topics::kExecutions && e.type == "queue.stats") {
          stats_ = e.payload;
        }
      }
      if (admitted) {  // the batch is done: the stage publishes its statistics
        admission_->punctuate(clock_.now(), *adm_ctx_);
        adm_ctx_->commit();
      }
    }
    FAIL() << "records never settled";
  }
  void tick() {
    executor_->punctuate(clock_.now(), *exec_ctx_);
    exec_ctx_->commit();
    admission_->punctuate(clock_.now(), *adm_ctx_);
    adm_ctx_->commit();
    route();
  }

  int64_t execute(Json params = Json::object(), Json extra = Json::object(),
                  const std::string& action = "t.job") {
    const int64_t id = exec_ctx_->ids().next();
    Json ex = {{"id", id}, {"action_ref", action}, {"config", std::move(params)}};
    ex.update(extra);
    executor_->process(record_of(topics::kCommands, std::to_string(id),
                                 Envelope{"execution.requested", id, "x", clock_.now_ms(), "t",
                                          Json{{"execution", ex}}}),
                       *exec_ctx_);
    exec_ctx_->commit();
    route();
    return id;
  }
  void cancel(int64_t id) {
    executor_->process(record_of(topics::kCommands, std::to_string(id),
                                 Envelope{"execution.cancel", id, "c", clock_.now_ms(), "t",
                                          Json{{"id", id}}}),
                       *exec_ctx_);
    exec_ctx_->commit();
    route();
  }
  // The simulated worker: the dispatch of `id` runs and ends with `status`.
  void finish(int64_t id, const std::string& status) {
    const Json* d = nullptr;
    for (const Json& x : dispatched_) {
      if (x["execution"]["id"] == id) d = &x;
    }
    ASSERT_NE(d, nullptr) << "execution " << id << " was never dispatched";
    const int64_t attempt = (*d)["attempt"];
    const std::string root = std::to_string((*d)["root"].get<int64_t>());
    for (const char* type : {"result.running", "result.finished"}) {
      Json p = {{"id", id}, {"attempt", attempt}, {"worker", "w"}};
      if (std::string(type) == "result.finished") {
        p["status"] = status;
        p["result"] = Json{{"exit_code", status == "completed" ? 0 : 1}};
      }
      executor_->process(
          record_of(topics::kResults, root, Envelope{type, id, "r", clock_.now_ms(), "w", p}),
          *exec_ctx_);
      exec_ctx_->commit();
    }
    route();
  }
  std::vector<int64_t> dispatched_ids() const {
    std::vector<int64_t> out;
    for (const Json& d : dispatched_) out.push_back(d["execution"]["id"]);
    return out;
  }
  std::string status(int64_t id) { return rows_[id].value("status", ""); }
  void expect_stats(int64_t active, int64_t queued, int64_t enqueued, int64_t completed) {
    EXPECT_EQ(stats_.value("active_count", -1), active) << stats_.dump();
    EXPECT_EQ(stats_.value("queue_length", -1), queued) << stats_.dump();
    EXPECT_EQ(stats_.value("total_enqueued", -1), enqueued) << stats_.dump();
    EXPECT_EQ(stats_.value("total_completed", -1), completed) << stats_.dump();
  }

  ManualClock clock_{1767225600000};
  std::filesystem::path dir_;
  std::unique_ptr<state::Db> db_;
  std::unique_ptr<Log> log_;
  std::unique_ptr<DefinitionsTable> table_;
  std::unique_ptr<TxnContext> exec_ctx_, adm_ctx_;
  std::unique_ptr<ExecutorProcessor> executor_;
  std::unique_ptr<admission::AdmissionProcessor> admission_;
  size_t exec_seen_ = 0, adm_seen_ = 0;
  std::vector<Json> dispatched_;
  std::map<int64_t, Json> rows_;
  Json stats_ = Json::object();
  int64_t def_id_ = 100;
};

TEST_F(PolicyFlow, ConcurrencyOneRunsFiveInSubmissionOrderOneAtATime) {
  policy("t.one", {{"concurrency", {{"limit", 1}, {"method", "enqueue"}}}});
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(execute({{"n", i}}));
  EXPECT_EQ(dispatched_ids(), std::vector<int64_t>{ids[0]});
  for (size_t i = 1; i < 5; ++i) EXPECT_EQ(status(ids[i]), "scheduling");
  EXPECT_EQ(stats_.value("max_concurrent", 0), 1);
  expect_stats(1, 4, 5, 0);
  for (size_t i = 0; i < 5; ++i) {
    ASSERT_EQ(dispatched_.size(), i + 1);
    EXPECT_EQ(dispatched_ids().back(), ids[i]);
    finish(ids[i], "completed");
    expect_stats(i < 4 ? 1 : 0, i < 4 ? static_cast<int64_t>(3 - i) : 0, 5,
                 static_cast<int64_t>(i + 1));
  }
  EXPECT_EQ(dispatched_ids(), ids);
}

TEST_F(PolicyFlow, CancelOfAQueuedExecutionLeavesTheQueueAndTheRestKeepTheirOrder) {
  policy("t.one", {{"concurrency", {{"limit", 1}}}});
  std::vector<int64_t> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(execute());
  cancel(ids[1]);  // in the middle
  EXPECT_EQ(status(ids[1]), "cancelled");
  expect_stats(1, 2, 4, 1);
  cancel(ids[2]);  // now the head
  expect_stats(1, 1, 4, 2);
  finish(ids[0], "completed");
  finish(ids[3], "completed");
  EXPECT_EQ(dispatched_ids(), (std::vector<int64_t>{ids[0], ids[3]}));
  expect_stats(0, 0, 4, 4);
}

TEST_F(PolicyFlow, CancelOfTheRunningOneHandsTheSlotOn) {
  policy("t.one", {{"concurrency", {{"limit", 1}}}});
  const int64_t a = execute(), b = execute();
  cancel(a);
  EXPECT_EQ(status(a), "canceling");
  EXPECT_EQ(dispatched_ids(), std::vector<int64_t>{a});  // still running until the worker says
  finish(a, "cancelled");
  EXPECT_EQ(status(a), "cancelled");
  EXPECT_EQ(dispatched_ids(), (std::vector<int64_t>{a, b}));
}

TEST_F(PolicyFlow, MethodCancelEndsTheExtrasCancelled) {
  policy("t.two", {{"concurrency", {{"limit", 2}, {"method", "cancel"}}}});
  const int64_t a = execute(), b = execute(), c = execute();
  EXPECT_EQ(dispatched_ids(), (std::vector<int64_t>{a, b}));
  EXPECT_EQ(status(c), "cancelled");
  EXPECT_EQ(rows_[c]["result"]["error"], "Concurrency limit reached");
  finish(a, "completed");
  const int64_t d = execute();
  EXPECT_EQ(dispatched_ids(), (std::vector<int64_t>{a, b, d}));
}

TEST_F(PolicyFlow, ParametersGroupTheLimit) {
  policy("t.host", {{"concurrency", {{"limit", 1}, {"parameters", {"host"}}}}});
  const int64_t a1 = execute({{"host", "a"}}), a2 = execute({{"host", "a"}});
  const int64_t b1 = execute({{"host", "b"}});
  EXPECT_EQ(dispatched_ids(), (std::vector<int64_t>{a1, b1}));
  finish(a1, "completed");
  EXPECT_EQ(dispatched_ids(), (std::vector<int64_t>{a1, b1, a2}));
}

TEST_F(PolicyFlow, ARaisedLimitStartsQueuedExecutionsAtOnce) {
  policy("t.one", {{"concurrency", {{"limit", 1}}}});
  for (int i = 0; i < 4; ++i) execute();
  EXPECT_EQ(dispatched_.size(), 1u);
  policy("t.one", {{"concurrency", {{"limit", 3}}}});
  tick();
  EXPECT_EQ(dispatched_.size(), 3u);
  expect_stats(3, 1, 4, 0);
}

TEST_F(PolicyFlow, DeletingThePolicyReleasesTheQueue) {
  policy("t.one", {{"concurrency", {{"limit", 1}}}});
  for (int i = 0; i < 4; ++i) execute();
  EXPECT_EQ(dispatched_.size(), 1u);
  ASSERT_TRUE(
      log_->produce({definition_tombstone("policy", "t.one", 101, clock_.now_ms(), "test")}).ok());
  tick();
  EXPECT_EQ(dispatched_.size(), 4u);
  expect_stats(4, 0, 4, 0);
  EXPECT_TRUE(stats_["max_concurrent"].is_null()) << stats_.dump();
}

TEST_F(PolicyFlow, ANewPolicyCountsTheExecutionsAlreadyRunning) {
  const int64_t a = execute(), b = execute();
  EXPECT_EQ(dispatched_.size(), 2u);
  policy("t.late", {{"concurrency", {{"limit", 1}}}});
  const int64_t c = execute(), d = execute();
  EXPECT_EQ(status(c), "scheduling");
  expect_stats(2, 2, 4, 0);
  finish(a, "completed");
  EXPECT_EQ(status(c), "scheduling") << "b still runs: at the limit";
  finish(b, "completed");
  EXPECT_EQ(dispatched_ids(), (std::vector<int64_t>{a, b, c}));
  finish(c, "completed");
  finish(d, "completed");
  expect_stats(0, 0, 4, 4);
}

TEST_F(PolicyFlow, AWorkflowActionIsHeldLikeAnyOther) {
  policy("t.wf_one", {{"concurrency", {{"limit", 1}}},
                      {"scope", {{"type", "action"}, {"action_ref", "t.wf"}}}});
  const int64_t first = execute(Json::object(), Json::object(), "t.wf");
  const int64_t second = execute(Json::object(), Json::object(), "t.wf");
  EXPECT_EQ(status(first), "running");
  EXPECT_EQ(status(second), "scheduling");
  ASSERT_EQ(dispatched_.size(), 1u);  // the first run's child
  finish(dispatched_ids()[0], "completed");
  EXPECT_EQ(status(first), "completed");
  EXPECT_EQ(status(second), "running");
  ASSERT_EQ(dispatched_.size(), 2u);
  finish(dispatched_ids()[1], "completed");
  EXPECT_EQ(status(second), "completed");
  expect_stats(0, 0, 2, 2);
}

TEST_F(PolicyFlow, QueueSurvivesARestartInOrder) {
  policy("t.one", {{"concurrency", {{"limit", 1}}}});
  std::vector<int64_t> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(execute());
  finish(ids[0], "completed");
  restart();
  expect_stats(1, 4, 6, 1);
  for (size_t i = 1; i < ids.size(); ++i) finish(ids[i], "completed");
  EXPECT_EQ(dispatched_ids(), ids);
}

TEST_F(PolicyFlow, RetriesWithExponentialBackoffAsNewLinkedExecutions) {
  policy("t.retry", {{"retry", {{"max_retries", 2}, {"delay_seconds", 2}}}});
  const int64_t first = execute();
  finish(first, "failed");
  EXPECT_EQ(dispatched_.size(), 1u);
  clock_.advance(1999ms);
  tick();
  EXPECT_EQ(dispatched_.size(), 1u) << "retried before its delay";
  clock_.advance(1ms);
  tick();
  ASSERT_EQ(dispatched_.size(), 2u);
  const Json second = dispatched_[1]["execution"];
  EXPECT_EQ(second["original_execution"], first);
  EXPECT_EQ(second["retry_count"], 1);
  EXPECT_EQ(second["retry_reason"], "failed");
  finish(second["id"], "timeout");
  clock_.advance(3999ms);
  tick();
  EXPECT_EQ(dispatched_.size(), 2u);
  clock_.advance(1ms);
  tick();
  ASSERT_EQ(dispatched_.size(), 3u);
  const Json third = dispatched_[2]["execution"];
  EXPECT_EQ(third["original_execution"], first);
  EXPECT_EQ(third["retry_count"], 2);
  EXPECT_EQ(third["retry_reason"], "timeout");
  finish(third["id"], "failed");
  clock_.advance(1h);
  tick();
  EXPECT_EQ(dispatched_.size(), 3u) << "max_retries 2 allows three attempts in all";
}

TEST_F(PolicyFlow, NoRetryOnSuccessNorOnAStatusNotListed) {
  policy("t.retry", {{"retry", {{"max_retries", 3}, {"on", {"timeout"}}, {"delay_seconds", 0}}}});
  finish(execute(), "completed");
  finish(execute(), "failed");
  clock_.advance(1s);
  tick();
  EXPECT_EQ(dispatched_.size(), 2u);
}

TEST_F(PolicyFlow, TheExecutionsOwnRetryBeatsThePolicyAndADueRetryRunsOnceAfterARestart) {
  policy("t.retry", {{"retry", {{"max_retries", 0}}}});
  const int64_t first =
      execute(Json::object(), {{"retry", {{"max_retries", 1}, {"backoff", "constant"},
                                          {"delay_seconds", 5}}}});
  finish(first, "failed");
  restart();  // down for the whole delay
  clock_.advance(10s);
  tick();
  tick();
  ASSERT_EQ(dispatched_.size(), 2u);
  EXPECT_EQ(dispatched_[1]["execution"]["original_execution"], first);
  restart();
  tick();
  EXPECT_EQ(dispatched_.size(), 2u);
}

TEST_F(PolicyFlow, RateLimitStartsNoMoreThanMaxPerSlidingWindow) {
  policy("t.rate", {{"rate_limit", {{"max_executions", 2}, {"window_seconds", 10}}}});
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(execute());
  for (int64_t id : ids) {
    if (status(id) != "scheduling") finish(id, "completed");
  }
  EXPECT_EQ(dispatched_.size(), 2u);
  clock_.advance(9s);
  tick();
  EXPECT_EQ(dispatched_.size(), 2u);
  clock_.advance(1s);
  tick();
  EXPECT_EQ(dispatched_.size(), 4u);
  clock_.advance(10s);
  tick();
  EXPECT_EQ(dispatched_ids(), ids);
}

}  // namespace
}  // namespace attune::executor
