// The monitor and executor stages through the Runtime on a temp EmbeddedLog, the test playing
// the workers: an attempt `running` on a worker that is gone is reported abandoned by the
// monitor; the executor then retries it on the next attempt while the action's max_retries
// allows (ending completed when that attempt completes), and ends it abandoned otherwise.
#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <random>

#include "processors/monitor/monitor_processor.h"
#include "processors/monitor/workers.h"
#include "processors/pipeline.h"
#include "topology/embedded_log.h"
#include "topology/runtime.h"

namespace attune::monitor {
namespace {

using namespace std::chrono_literals;

class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-monitor-" + std::to_string(std::random_device{}()));
    auto db = state::Db::open(dir_.string());
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    auto log = EmbeddedLog::open(*db_, default_topics(2));
    ASSERT_TRUE(log.ok());
    log_ = std::move(*log);
    defs_ = std::make_unique<DefinitionsTable>(*log_);
    ASSERT_TRUE(defs_->start().ok());
    workers_ = std::make_unique<WorkersView>(*log_, 300ms, SystemClock::instance());
    ASSERT_TRUE(workers_->start().ok());
    for (std::string_view t : {topics::kDispatch, topics::kExecutions}) {
      auto reader = log_->reader({std::string(t)});
      ASSERT_TRUE(reader.ok());
      readers_[std::string(t)] = std::move(*reader);
    }
    // w1 announces itself and goes away (worker.stopped); w2 keeps heartbeating.
    Heartbeat w1(*log_, HeartbeatOptions{"w1", 100ms});
    ASSERT_TRUE(w1.start().ok());
    w1.stop();
    w2_ = std::make_unique<Heartbeat>(*log_, HeartbeatOptions{"w2", 100ms});
    ASSERT_TRUE(w2_->start().ok());

    PipelineOptions pipeline;
    pipeline.definitions = defs_.get();
    pipeline.stages = {"executor"};
    add_core_stages(topology_, pipeline);
    add_monitor_stage(topology_, MonitorOptions{workers_.get(), 50ms});
    RuntimeOptions ro;
    ro.ids = &ids_;
    runtime_ = std::make_unique<Runtime>(*log_, topology_, ro);
    ASSERT_TRUE(runtime_->start().ok());
  }
  void TearDown() override {
    if (runtime_) runtime_->stop();
    runtime_.reset();
    if (w2_) w2_->stop();
    w2_.reset();
    if (workers_) workers_->stop();
    workers_.reset();
    if (defs_) defs_->stop();
    defs_.reset();
    readers_.clear();
    log_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  void action(const std::string& ref, int64_t max_retries) {
    Json a = {{"ref", ref}, {"id", 2},  {"enabled", true}, {"runtime_ref", "core.shell"},
              {"entrypoint", "true"}, {"max_retries", max_retries}};
    auto pos = log_->produce({definition_record("action", a, 0, "test")});
    ASSERT_TRUE(pos.ok());
    ASSERT_TRUE(defs_->wait_applied(pos->back().offset, 5s));
  }
  void request(int64_t id, const std::string& action_ref) {
    Envelope e{"execution.requested", id, "execution:" + std::to_string(id), 0, "test",
               Json{{"execution", {{"id", id}, {"action_ref", action_ref}}}}};
    ASSERT_TRUE(
        log_->produce({{std::string(topics::kCommands), std::to_string(id), e.dump()}}).ok());
  }
  // A worker's report on attune.results (key = root id).
  void report(const std::string& type, int64_t id, int64_t attempt, const std::string& worker,
              const std::string& status = "") {
    Json p = {{"id", id}, {"attempt", attempt}, {"worker", worker}};
    if (!status.empty()) {
      p["status"] = status;
      p["result"] = {{"exit_code", 0}};
    } else {
      p["started_at"] = "2026-01-01T00:00:00.000Z";
    }
    Envelope e{type, id, type + ":" + std::to_string(id) + ":" + std::to_string(attempt), 0,
               worker, p};
    ASSERT_TRUE(
        log_->produce({{std::string(topics::kResults), std::to_string(id), e.dump()}}).ok());
  }
  // The next record on `topic` for which `pred` holds (others are skipped), within `wait`.
  std::optional<Envelope> next(std::string_view topic, const std::function<bool(const Envelope&)>& pred,
                               std::chrono::milliseconds wait = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    auto& pending = pending_[std::string(topic)];
    for (;;) {
      while (!pending.empty()) {
        Envelope e = std::move(pending.front());
        pending.pop_front();
        if (pred(e)) return e;
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      for (const Record& r : readers_[std::string(topic)]->poll(64, 100ms)) {
        Envelope e;
        std::string err;
        EXPECT_TRUE(Envelope::parse(r.value, e, err)) << err;
        pending.push_back(std::move(e));
      }
    }
  }
  std::optional<Envelope> dispatch(int64_t id, int64_t attempt, std::chrono::milliseconds wait) {
    return next(topics::kDispatch, [&](const Envelope& e) {
      return e.type == "execution.dispatch" && e.id == id && e.payload["attempt"] == attempt;
    }, wait);
  }
  std::optional<Envelope> execution(int64_t id, const std::string& status) {
    return next(topics::kExecutions, [&](const Envelope& e) {
      return e.id == id && e.payload["status"] == status;
    });
  }

  std::filesystem::path dir_;
  std::unique_ptr<state::Db> db_;
  std::unique_ptr<EmbeddedLog> log_;
  std::unique_ptr<DefinitionsTable> defs_;
  std::unique_ptr<WorkersView> workers_;
  std::unique_ptr<Heartbeat> w2_;
  std::map<std::string, std::unique_ptr<Consumer>> readers_;
  std::map<std::string, std::deque<Envelope>> pending_;  // read, not yet looked at
  IdGenerator ids_{0, SystemClock::instance()};
  Topology topology_;
  std::unique_ptr<Runtime> runtime_;
};

TEST_F(MonitorTest, LostAttemptIsRetriedOnTheNextAttemptAndCompletes) {
  action("p.retry", 1);
  request(101, "p.retry");
  ASSERT_TRUE(dispatch(101, 1, 10s));
  report("result.running", 101, 1, "w1");  // w1 is gone: the monitor abandons the attempt
  auto again = dispatch(101, 2, 10s);
  ASSERT_TRUE(again) << "no second attempt dispatched";
  EXPECT_EQ(again->payload["execution"]["retry_count"], 1);
  auto first = execution(101, "scheduled");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->payload["attempt"], 1);
  auto rescheduled = execution(101, "scheduled");  // after running: the retry
  ASSERT_TRUE(rescheduled);
  EXPECT_EQ(rescheduled->payload["attempt"], 2);
  EXPECT_EQ(rescheduled->payload["old_status"], "running");
  EXPECT_NE(rescheduled->payload["retry_reason"].get<std::string>().find("w1"), std::string::npos)
      << rescheduled->payload.dump();

  report("result.running", 101, 2, "w2");
  report("result.finished", 101, 2, "w2", "completed");
  auto done = execution(101, "completed");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->payload["worker"], "w2");
  EXPECT_EQ(done->payload["retry_count"], 1);
  EXPECT_EQ(done->payload["max_retries"], 1);
  // w2 is alive: its attempt is never abandoned, and no third attempt appears.
  EXPECT_FALSE(dispatch(101, 3, 1s));
}

TEST_F(MonitorTest, LostAttemptWithoutRetriesEndsAbandoned) {
  action("p.once", 0);
  request(202, "p.once");
  ASSERT_TRUE(dispatch(202, 1, 10s));
  report("result.running", 202, 1, "w1");
  auto ended = execution(202, "abandoned");
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->payload["retry_count"], 0);
  EXPECT_EQ(ended->payload["result"]["abandoned_by"], "monitor");
  EXPECT_FALSE(dispatch(202, 2, 1s));
}

}  // namespace
}  // namespace attune::monitor
