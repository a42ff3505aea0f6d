// Bounded stage stores (topology/store_expiry.h): expiry entries, due passes with budgets, the
// sweep of an earlier build's entries, the pruning schedule — and each committed, reopened and
// verified, through a ProcessorContext over a real RocksDB store.
#include "topology/store_expiry.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "processors/executor/executor_processor.h"
#include "processors/rules/rules_processor.h"
#include "processors/worker/worker_processor.h"
#include "topology/core/time.h"
#include "topology/definitions_table.h"
#include "topology/embedded_log.h"

namespace attune::expiry {
namespace {

using namespace std::chrono_literals;

// A stage transaction without a Runtime: reads see the open transaction, commit() writes it.
class TxnContext final : public ProcessorContext, public Mailbox {
 public:
  TxnContext(state::Db& db, state::Store& store, const Clock& clock)
      : db_(db), store_(store), clock_(clock), ids_(0, clock) {}
  // The test's store by default; a stage's own stores ("stage.<name>") when it names them.
  state::Store& store(std::string_view name) override {
    if (name.empty()) return store_;
    auto s = db_.store("stage." + std::string(name));
    if (!s.ok()) throw std::runtime_error(s.error().message);
    return **s;
  }
  Result<std::optional<std::string>> get(state::Store& s, std::string_view key) override {
    return txn_.get(s, key);
  }
  void put(state::Store& s, std::string key, std::string value) override {
    txn_.put(s, std::move(key), std::move(value));
  }
  void del(state::Store& s, std::string key) override { txn_.del(s, std::move(key)); }
  Status scan(state::Store& s, std::string_view prefix, const state::ScanFn& fn,
              bool reverse) override {
    return txn_.scan(s, prefix, fn, reverse);
  }
  void forward(OutRecord r) override { forwarded.push_back(std::move(r)); }
  void after_commit(std::function<void()>) override {}
  const Clock& clock() const override { return clock_; }
  IdGenerator& ids() override { return ids_; }
  Mailbox& mailbox() override { return *this; }
  void post(Task) override {}
  Log& log() override { throw std::logic_error("no log"); }
  const std::string& stage() const override { return name_; }
  int instance() const override { return 0; }
  void request_punctuate(SystemTime) override {}
  void pause_input(bool) override {}

  std::vector<OutRecord> forwarded;

  void commit() {
    const state::WriteBatch batch = txn_.take_batch();
    ASSERT_TRUE(db_.write(batch).ok());
    txn_.clear();
  }

 private:
  state::Db& db_;
  state::Store& store_;
  const Clock& clock_;
  IdGenerator ids_;
  state::Txn txn_;
  std::string name_ = "test";
};

class StoreExpiryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-expiry-" + std::to_string(std::random_device{}()));
    reopen();
  }
  void TearDown() override {
    ctx_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void reopen() {
    ctx_.reset();
    db_.reset();
    auto db = state::Db::open(dir_.string());
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_ = std::move(*db);
    auto store = db_->store("stage.store");
    ASSERT_TRUE(store.ok());
    store_ = *store;
    ctx_ = std::make_unique<TxnContext>(*db_, *store_, clock_);
  }
  // Committed keys, ours (~...) included.
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    EXPECT_TRUE(store_->scan("", [&](std::string_view k, std::string_view) {
                        out.emplace_back(k);
                        return true;
                      }).ok());
    return out;
  }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (auto& k : keys()) {
      if (!is_internal_key(k)) out.push_back(k);
    }
    return out;
  }
  size_t expiry_entries() const {
    size_t n = 0;
    for (auto& k : keys()) n += k.starts_with(kPrefix) ? 1 : 0;
    return n;
  }

  ManualClock clock_{1767225600000};
  std::filesystem::path dir_;
  std::unique_ptr<state::Db> db_;
  state::Store* store_ = nullptr;
  std::unique_ptr<TxnContext> ctx_;
};

TEST_F(StoreExpiryTest, DueEntriesGoOldestFirstWithinBudgetAndSurviveReopen) {
  const int64_t t0 = clock_.now_ms();
  for (int i = 0; i < 10; ++i) {
    const std::string key = "k" + std::to_string(i);
    ctx_->put(*store_, key, "v");
    schedule(*ctx_, *store_, key, t0 + 1000 * (10 - i));  // k9 is due first
  }
  ctx_->commit();
  reopen();
  EXPECT_EQ(entries().size(), 10u);
  EXPECT_EQ(expiry_entries(), 10u);

  // Nothing due yet.
  auto r = expire_due(*ctx_, *store_, t0, 100);
  EXPECT_EQ(r.expired, 0u);
  EXPECT_FALSE(r.more);
  // Five due, budget three: the three due first go, and the pass says there is more.
  r = expire_due(*ctx_, *store_, t0 + 5000, 3);
  ctx_->commit();
  EXPECT_EQ(r.expired, 3u);
  EXPECT_TRUE(r.more);
  EXPECT_EQ(entries(), (std::vector<std::string>{"k0", "k1", "k2", "k3", "k4", "k5", "k6"}));
  r = expire_due(*ctx_, *store_, t0 + 5000, 3);
  ctx_->commit();
  EXPECT_EQ(r.expired, 2u);
  EXPECT_FALSE(r.more);
  reopen();
  EXPECT_EQ(entries(), (std::vector<std::string>{"k0", "k1", "k2", "k3", "k4"}));
  EXPECT_EQ(expiry_entries(), 5u);
}

TEST_F(StoreExpiryTest, EntriesWrittenInTheOpenTransactionAreSeenByThePass) {
  const int64_t t0 = clock_.now_ms();
  ctx_->put(*store_, "a", "1");
  schedule(*ctx_, *store_, "a", t0 - 1);
  ctx_->put(*store_, "b", "1");
  schedule(*ctx_, *store_, "b", t0 + 60000);
  const auto r = expire_due(*ctx_, *store_, t0, 10);
  EXPECT_EQ(r.expired, 1u);
  ctx_->commit();
  EXPECT_EQ(entries(), std::vector<std::string>{"b"});
  EXPECT_EQ(expiry_entries(), 1u);
}

TEST_F(StoreExpiryTest, LegacySweepGivesOldEntriesTheirDueTimeOnceInChunks) {
  // An earlier build's store: entries without expiry entries; value = when it stops mattering
  // (or "keep" for an entry that still matters).
  const int64_t t0 = clock_.now_ms();
  for (int i = 0; i < 25; ++i) {
    ctx_->put(*store_, "e" + std::to_string(100 + i), i % 5 == 0 ? "keep" : std::to_string(t0 - i));
  }
  ctx_->commit();
  const LegacyDue due = [](std::string_view, std::string_view value) -> std::optional<int64_t> {
    if (value == "keep") return std::nullopt;
    return std::stoll(std::string(value));
  };
  LegacySweep sweep;
  int steps = 0;
  while (sweep.step(*ctx_, *store_, 10, due)) {
    ctx_->commit();
    ++steps;
  }
  ctx_->commit();
  EXPECT_EQ(steps, 2);  // 25 keys, 10 per step
  EXPECT_EQ(expiry_entries(), 20u);
  auto r = expire_due(*ctx_, *store_, t0, 100);
  ctx_->commit();
  EXPECT_EQ(r.expired, 20u);
  EXPECT_EQ(entries().size(), 5u);

  // Done for good: a new sweep (a restart) reads the marker and visits nothing.
  ctx_->put(*store_, "e999", "0");
  ctx_->commit();
  reopen();
  LegacySweep again;
  EXPECT_FALSE(again.step(*ctx_, *store_, 10, due));
  ctx_->commit();
  EXPECT_EQ(expiry_entries(), 0u);
  EXPECT_EQ(entries().size(), 6u);
}

TEST_F(StoreExpiryTest, PrunerWaitsOutTheHoldThenRunsOnItsInterval) {
  PruneSchedule schedule_options;
  schedule_options.interval = 2s;
  schedule_options.hold = 30s;
  schedule_options.budget = 2;
  // Entries of this build have their expiry entries: the (one-time) sweep leaves them alone.
  Pruner pruner(schedule_options,
                [](std::string_view, std::string_view) -> std::optional<int64_t> { return {}; });
  pruner.start(*ctx_);
  const int64_t t0 = clock_.now_ms();
  for (int i = 0; i < 3; ++i) {
    const std::string key = "x" + std::to_string(i);
    ctx_->put(*store_, key, "v");
    schedule(*ctx_, *store_, key, t0 - 1);
  }
  ctx_->commit();
  // Within the hold: nothing is deleted, and the next call is at its end.
  SystemTime next = pruner.run(*ctx_, *store_, clock_.now());
  ctx_->commit();
  EXPECT_EQ(next, SystemTime(std::chrono::milliseconds(t0 + 30000)));
  EXPECT_EQ(entries().size(), 3u);
  clock_.advance(30s);
  // Budget 2 of 3 due: at once again; then the rest and the normal interval.
  next = pruner.run(*ctx_, *store_, clock_.now());
  ctx_->commit();
  EXPECT_EQ(next, clock_.now() + 10ms);
  next = pruner.run(*ctx_, *store_, clock_.now());
  ctx_->commit();
  EXPECT_EQ(next, clock_.now() + 2s);
  EXPECT_TRUE(entries().empty());
  EXPECT_EQ(pruner.expired(), 3u);
}

// When each stage's entries written by an earlier build stop mattering.
TEST(LegacyDue, RulesDedupeWorkerSeenAndExecutorState) {
  ManualClock clock(1767225600000);
  IdGenerator ids(0, clock);
  const int64_t id = ids.next();
  const int64_t minted = IdGenerator::timestamp_ms(id);
  EXPECT_EQ(rules::legacy_dedupe_due(std::to_string(id), 1h), minted + 3600000);
  EXPECT_EQ(rules::legacy_dedupe_due("garbage", 1h), 3600000);  // unreadable: due long ago
  EXPECT_EQ(worker::legacy_seen_due(std::to_string(id) + "/2", 1h), minted + 3600000);

  auto state = [&](const std::string& status, bool skipped = false) {
    Json j = {{"execution",
               {{"id", id}, {"status", status}, {"updated", format_rfc3339_ms(minted + 5000)}}},
              {"root", id}};
    if (skipped) j["skipped"] = true;
    return j.dump();
  };
  const std::string key = "x:" + std::to_string(id);
  for (const char* running : {"requested", "scheduling", "scheduled", "running", "canceling"}) {
    EXPECT_FALSE(executor::legacy_state_due(key, state(running), 1h).has_value()) << running;
  }
  for (const char* ended : {"completed", "failed", "timeout", "cancelled", "abandoned"}) {
    EXPECT_EQ(executor::legacy_state_due(key, state(ended), 1h), minted + 5000 + 3600000) << ended;
  }
  EXPECT_EQ(executor::legacy_state_due(key, state("requested", true), 1h), minted + 3600000);
  EXPECT_EQ(executor::legacy_state_due(key, "not json", 1h), 0);
}

// The stages themselves, through their punctuate(): an entry stays while it can matter and for
// the retention after that, then goes with its expiry entry.
std::vector<std::string> store_keys(state::Db& db, const std::string& name) {
  std::vector<std::string> out;
  auto store = db.store(name);
  EXPECT_TRUE(store.ok());
  EXPECT_TRUE((*store)->scan("", [&](std::string_view k, std::string_view) {
                        out.emplace_back(k);
                        return true;
                      }).ok());
  return out;
}

Record record_of(std::string_view topic, const std::string& key, const Envelope& e) {
  Record r;
  r.topic = std::string(topic);
  r.key = key;
  r.value = e.dump();
  return r;
}

TEST_F(StoreExpiryTest, ExecutorKeepsAMarkerOfAnEndedExecutionForTheRetentionThenDropsIt) {
  auto log = EmbeddedLog::open(*db_, default_topics(1));
  ASSERT_TRUE(log.ok());
  DefinitionsTable table(**log);  // empty: the action is missing, so the request fails at once
  executor::ExecutorOptions options;
  options.terminal_retention = 60s;
  options.prune.hold = 30s;
  executor::ExecutorProcessor executor(table, options);
  executor.init(*ctx_);
  const int64_t id = ctx_->ids().next();
  const Record request = record_of(
      topics::kCommands, std::to_string(id),
      Envelope{"execution.requested", id, "execution:" + std::to_string(id), clock_.now_ms(), "test",
               Json{{"execution", {{"id", id}, {"action_ref", "nope.missing"}, {"config", {{"x", 1}}}}}}});
  executor.process(request, *ctx_);
  ctx_->commit();
  const std::string key = "x:" + std::to_string(id);
  auto stored = db_->store("stage.executions");
  auto value = (*stored)->get(key);
  ASSERT_TRUE(value.ok() && value->has_value());
  const Json state = Json::parse(**value);
  EXPECT_EQ(state["execution"]["status"], "failed");
  EXPECT_FALSE(state["execution"].contains("config")) << "only a marker of an ended execution";
  EXPECT_EQ(state["root"], id);
  EXPECT_EQ(store_keys(*db_, "stage.executions").size(), 2u);  // the marker and its expiry

  // A repeat within the retention is recognized: nothing happens.
  const size_t records = ctx_->forwarded.size();
  executor.process(request, *ctx_);
  EXPECT_EQ(ctx_->forwarded.size(), records);
  // Not during the hold after start, not before the retention is over...
  clock_.advance(31s);
  executor.punctuate(clock_.now(), *ctx_);
  ctx_->commit();
  EXPECT_TRUE((*stored)->get(key)->has_value());
  // ...then it goes with its expiry entry (the sweep's marker stays).
  clock_.advance(30s);
  executor.punctuate(clock_.now(), *ctx_);
  ctx_->commit();
  EXPECT_EQ(store_keys(*db_, "stage.executions"), std::vector<std::string>{std::string(kSweptKey)});
}

TEST_F(StoreExpiryTest, WorkerForgetsADispatchAfterTheRetention) {
  worker::WorkerOptions options;
  options.name = "w";
  options.seen_retention = 60s;
  options.prune.hold = 0s;
  worker::WorkerProcessor worker(options);
  worker.init(*ctx_);
  const int64_t id = ctx_->ids().next();
  // A runtime this worker does not run: it reports the attempt failed without a process.
  const Record dispatch = record_of(
      topics::kDispatch, std::to_string(id),
      Envelope{"execution.dispatch", id, "dispatch:" + std::to_string(id) + ":1", clock_.now_ms(),
               "test",
               Json{{"execution", {{"id", id}, {"action_ref", "p.a"}}},
                    {"attempt", 1},
                    {"root", id},
                    {"action", {{"ref", "p.a"}, {"runtime_ref", "core.elsewhere"}}}}});
  worker.process(dispatch, *ctx_);
  ctx_->commit();
  ASSERT_EQ(ctx_->forwarded.size(), 1u);
  worker.process(dispatch, *ctx_);  // a repeat: ignored
  EXPECT_EQ(ctx_->forwarded.size(), 1u);
  EXPECT_EQ(store_keys(*db_, "stage.seen").size(), 2u);
  clock_.advance(59s);
  worker.punctuate(clock_.now(), *ctx_);
  ctx_->commit();
  EXPECT_EQ(store_keys(*db_, "stage.seen").size(), 3u);  // + the sweep's marker
  clock_.advance(2s);
  worker.punctuate(clock_.now(), *ctx_);
  ctx_->commit();
  EXPECT_EQ(store_keys(*db_, "stage.seen"), std::vector<std::string>{std::string(kSweptKey)});
  worker.close();
}

}  // namespace
}  // namespace attune::expiry

namespace attune::expiry {
namespace {

// Inquiry deadlines (processors/executor/executor_processor.h) are stored with the inquiry: after
// a close and reopen, a deadline that passed meanwhile fires at the first punctuation, as an
// `inquiry.timeout` command to the owner, which then times the inquiry out; an answered inquiry's
// deadline is gone with its answer.
TEST_F(StoreExpiryTest, InquiryDeadlinesSurviveAReopenAndFireAsCommands) {
  const int64_t root = 77;
  auto create = [&](executor::ExecutorProcessor& ex, int64_t id) {
    const Json inquiry = {{"id", id},
                          {"execution", root},
                          {"created_by_execution", nullptr},
                          {"prompt", "ok?"},
                          {"timeout_seconds", 5},
                          {"timeout_at", format_rfc3339_ms(clock_.now_ms() + 5000)},
                          {"scope", "p:x"},
                          {"root", root}};
    ex.process(record_of(topics::kCommands, std::to_string(root),
                         Envelope{"inquiry.create", id, "c" + std::to_string(id), clock_.now_ms(),
                                  "test", Json{{"request", 1000 + id}, {"inquiry", inquiry}}}),
               *ctx_);
    ctx_->commit();
  };
  {
    auto log = EmbeddedLog::open(*db_, default_topics(1));
    ASSERT_TRUE(log.ok());
    DefinitionsTable table(**log);
    executor::ExecutorProcessor ex(table);
    ex.init(*ctx_);
    create(ex, 1);
    create(ex, 2);
    ex.process(record_of(topics::kCommands, std::to_string(root),
                         Envelope{"inquiry.respond", 2, "r2", clock_.now_ms(), "test",
                                  Json{{"request", 1100},
                                       {"id", 2},
                                       {"response", Json::object()},
                                       {"responder", {{"id", 5}, {"login", "a"}}}}}),
               *ctx_);
    ctx_->commit();
    ASSERT_EQ(ctx_->forwarded.size(), 3u);
    for (const auto& r : ctx_->forwarded) EXPECT_EQ(r.topic, topics::kExecutions);
    // Before the deadline nothing fires.
    ctx_->forwarded.clear();
    clock_.advance(4s);
    ex.punctuate(clock_.now(), *ctx_);
    ctx_->commit();
    EXPECT_TRUE(ctx_->forwarded.empty());
  }
  reopen();  // "down" across the deadline
  clock_.advance(10s);
  auto log = EmbeddedLog::open(*db_, default_topics(1));
  ASSERT_TRUE(log.ok());
  DefinitionsTable table(**log);
  executor::ExecutorProcessor ex(table);
  ex.init(*ctx_);
  const auto next = ex.punctuate(clock_.now(), *ctx_);
  ctx_->commit();
  ASSERT_EQ(ctx_->forwarded.size(), 1u);  // only the unanswered one
  const OutRecord cmd = ctx_->forwarded[0];
  EXPECT_EQ(cmd.topic, topics::kCommands);
  EXPECT_EQ(cmd.key, std::to_string(root));
  Envelope fired;
  std::string error;
  ASSERT_TRUE(Envelope::parse(cmd.value, fired, error)) << error;
  EXPECT_EQ(fired.type, "inquiry.timeout");
  EXPECT_EQ(fired.payload["id"], 1);
  ASSERT_TRUE(next.has_value());  // the pruning pass; no deadline left to wait for
  // Fired once: the entry went with the command.
  ctx_->forwarded.clear();
  ex.punctuate(clock_.now(), *ctx_);
  ctx_->commit();
  EXPECT_TRUE(ctx_->forwarded.empty());

  // The owner applies it: timeout, response null.
  ex.process(record_of(topics::kCommands, cmd.key, fired), *ctx_);
  ctx_->commit();
  ASSERT_EQ(ctx_->forwarded.size(), 1u);
  Envelope updated;
  ASSERT_TRUE(Envelope::parse(ctx_->forwarded[0].value, updated, error)) << error;
  EXPECT_EQ(updated.type, "inquiry.updated");
  EXPECT_EQ(updated.payload["change"], "timeout");
  EXPECT_EQ(updated.payload["inquiry"]["status"], "timeout");
  EXPECT_TRUE(updated.payload["inquiry"]["response"].is_null());
  // A repeat of the command changes nothing.
  ctx_->forwarded.clear();
  ex.process(record_of(topics::kCommands, cmd.key, fired), *ctx_);
  ctx_->commit();
  EXPECT_TRUE(ctx_->forwarded.empty());
}

}  // namespace
}  // namespace attune::expiry
