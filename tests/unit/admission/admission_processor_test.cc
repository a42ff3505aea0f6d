// The admission stage (processors/admission/admission_processor.h) through a real RocksDB store
// and a real DefinitionsTable over an EmbeddedLog: records in (admission.request / release /
// pump), records out (admission.granted / rejected on attune.commands, queue.stats on
// attune.executions), every input processed in its own committed transaction, time from a
// ManualClock.
#include "processors/admission/admission_processor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "topology/core/time.h"
#include "topology/definitions_table.h"
#include "tests/unit/txn_context.h"
#include "topology/embedded_log.h"

namespace attune::admission {
namespace {

using namespace std::chrono_literals;

Envelope parse(const OutRecord& r) {
  Envelope e;
  std::string err;
  EXPECT_TRUE(Envelope::parse(r.value, e, err)) << err;
  return e;
}

struct Decision {
  std::string type;  // admission.granted / admission.rejected
  int64_t id = 0;
  std::string key;  // the record key on attune.commands (the root)
  Json payload;
};

constexpr std::string_view kAction = "p.a";

class AdmissionStage : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-admission-" + std::to_string(std::random_device{}()));
    state::DbOptions o;
    o.append_stores = {std::string(EmbeddedLog::kLogStore)};
    auto db = state::Db::open(dir_.string(), o);
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_ = std::move(*db);
    auto log = EmbeddedLog::open(*db_, default_topics(1));
    ASSERT_TRUE(log.ok()) << log.error().message;
    log_ = std::move(*log);
    table_ = std::make_unique<DefinitionsTable>(*log_);
    ASSERT_TRUE(table_->start().ok());
  }
  void TearDown() override {
    stage_.reset();
    ctx_.reset();
    if (table_) table_->stop();
    table_.reset();
    log_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A policy of action `kAction` (scope action) with the given aspects.
  void define_policy(const std::string& ref, Json aspects, const std::string& action = "p.a") {
    Json p = {{"id", ++def_id_},
              {"ref", ref},
              {"pack_ref", "p"},
              {"name", ref.substr(2)},
              {"description", ""},
              {"enabled", true},
              {"priority", 0},
              {"scope", {{"type", "action"}, {"action_ref", action}, {"pack_ref", "p"}}},
              {"concurrency", nullptr},
              {"rate_limit", nullptr},
              {"quotas", Json::array()},
              {"retry", nullptr},
              {"tags", Json::array()}};
    p.update(aspects);
    ASSERT_TRUE(log_->produce({definition_record(kPolicyKind, p, clock_.now_ms(), "test")}).ok());
  }
  void delete_policy(const std::string& ref) {
    ASSERT_TRUE(
        log_->produce({definition_tombstone(kPolicyKind, ref, 0, clock_.now_ms(), "test")}).ok());
  }
  static Json concurrency(int64_t limit, const std::string& method = "enqueue",
                          Json parameters = Json::array()) {
    return {{"concurrency", {{"limit", limit}, {"method", method}, {"parameters", parameters}}}};
  }
  static Json merge(Json a, const Json& b) {
    a.update(b);
    return a;
  }
  static Json rate(int64_t max, int64_t window) {
    return {{"rate_limit", {{"max_executions", max}, {"window_seconds", window}}}};
  }

  // A new stage instance over the committed store (an open transaction is lost), then its first
  // punctuation (the pump of every waiting action a restart does) processed.
  void start() {
    std::vector<OutRecord> kept;
    if (ctx_) {
      ctx_->crash();
      kept = std::move(ctx_->forwarded);
    }
    stage_ = std::make_unique<AdmissionProcessor>(*table_, options_);
    ctx_ = std::make_unique<TxnContext>(*db_, clock_);
    ctx_->set_stage(std::string(kStage));
    ctx_->forwarded = std::move(kept);
    stage_->init(*ctx_);
    ctx_->commit();
    tick();
  }

  void process(const std::string& type, int64_t id, Json payload, const std::string& key) {
    Record r;
    r.topic = std::string(topics::kAdmission);
    r.key = key;
    r.value = Envelope{type,
                       id,
                       type + ":" + std::to_string(id),
                       clock_.now_ms(),
                       "executor",
                       std::move(payload)}
                  .dump();
    stage_->process(r, *ctx_);
    ctx_->commit();
  }
  void request(int64_t id, const std::string& group = "", int64_t root = 0,
               std::string_view action = kAction) {
    Json p = {{"id", id}, {"action_ref", action}, {"group", group}, {"at", clock_.now_ms()}};
    p["root"] = root > 0 ? root : id;
    process("admission.request", id, std::move(p), std::string(action));
  }
  void release(int64_t id, std::string_view action = kAction) {
    process("admission.release", id, {{"id", id}, {"action_ref", action}}, std::string(action));
  }
  void pump(std::string_view action = kAction) {
    process("admission.pump", 0, {{"action_ref", action}}, std::string(action));
  }

  // Punctuation at the clock's time, then the admission.pump records it produced processed (as
  // the log would deliver them). Returns what punctuate() asked for and the pumps seen.
  struct Tick {
    std::optional<SystemTime> next;
    std::vector<std::string> pumped;  // action refs
  };
  Tick tick() {
    Tick t;
    const size_t from = ctx_->forwarded.size();
    t.next = stage_->punctuate(clock_.now(), *ctx_);
    ctx_->commit();
    std::vector<OutRecord> pumps;
    for (size_t i = from; i < ctx_->forwarded.size(); ++i) {
      const OutRecord& r = ctx_->forwarded[i];
      if (r.topic != topics::kAdmission) continue;
      const Envelope e = parse(r);
      EXPECT_EQ(e.type, "admission.pump");
      EXPECT_EQ(e.payload.value("action_ref", ""), r.key);
      t.pumped.push_back(r.key);
      pumps.push_back(r);
    }
    for (const OutRecord& o : pumps) {
      Record r;
      r.topic = o.topic;
      r.key = o.key;
      r.value = o.value;
      stage_->process(r, *ctx_);
      ctx_->commit();
    }
    return t;
  }

  // Decisions forwarded since the last call, in order.
  std::vector<Decision> decisions() {
    std::vector<Decision> out;
    for (; seen_ < ctx_->forwarded.size(); ++seen_) {
      const OutRecord& r = ctx_->forwarded[seen_];
      if (r.topic != topics::kCommands) continue;
      const Envelope e = parse(r);
      out.push_back({e.type, e.payload.value("id", int64_t{0}), r.key, e.payload});
    }
    return out;
  }
  // The ids granted since the last call (and no rejection).
  std::vector<int64_t> granted() {
    std::vector<int64_t> out;
    for (const Decision& d : decisions()) {
      EXPECT_EQ(d.type, "admission.granted") << d.id;
      out.push_back(d.id);
    }
    return out;
  }
  // The latest queue.stats of `action` (null if none).
  Json stats(std::string_view action = kAction) const {
    for (auto it = ctx_->forwarded.rbegin(); it != ctx_->forwarded.rend(); ++it) {
      if (it->topic != topics::kExecutions || it->key != action) continue;
      const Envelope e = parse(*it);
      if (e.type == "queue.stats") return e.payload;
    }
    return nullptr;
  }
  size_t stats_count() const {
    size_t n = 0;
    for (const OutRecord& r : ctx_->forwarded) n += r.topic == topics::kExecutions;
    return n;
  }
  // Punctuations at the clock's time until no pump record follows: whatever the stage publishes
  // once a batch is done (queue.stats) is out, and the pumps it asked for are processed.
  void flush() {
    for (int i = 0; i < 10; ++i) {
      if (tick().pumped.empty()) return;
    }
    ADD_FAILURE() << "pumps never stop";
  }
  // Checks the counting fields of the latest stats (after a flush()).
  void expect_stats(int64_t active, int64_t queue, int64_t enqueued, int64_t completed,
                    Json max_concurrent, std::optional<int64_t> oldest_ms,
                    std::string_view action = kAction) {
    flush();
    const Json s = stats(action);
    ASSERT_TRUE(s.is_object()) << "no queue.stats for " << action;
    EXPECT_EQ(s.value("action_ref", ""), action);
    EXPECT_EQ(s["active_count"], active) << s.dump();
    EXPECT_EQ(s["queue_length"], queue) << s.dump();
    EXPECT_EQ(s["total_enqueued"], enqueued) << s.dump();
    EXPECT_EQ(s["total_completed"], completed) << s.dump();
    EXPECT_EQ(s["max_concurrent"], max_concurrent) << s.dump();
    EXPECT_EQ(s["oldest_enqueued_at"],
              oldest_ms ? Json(format_rfc3339_ms(*oldest_ms)) : Json(nullptr))
        << s.dump();
    EXPECT_TRUE(s.contains("last_updated")) << s.dump();
  }

  // The keys of the stage's store under `prefix` (committed and open writes).
  std::vector<std::string> keys(std::string_view prefix) {
    std::vector<std::string> out;
    auto st = ctx_->scan(
        ctx_->store(kQueuesStore), prefix,
        [&](std::string_view k, std::string_view) {
          out.emplace_back(k);
          return true;
        },
        false);
    EXPECT_TRUE(st.ok());
    return out;
  }

  ManualClock clock_{1767225600000};
  AdmissionOptions options_;
  std::filesystem::path dir_;
  std::unique_ptr<state::Db> db_;
  std::unique_ptr<Log> log_;
  std::unique_ptr<DefinitionsTable> table_;
  std::unique_ptr<TxnContext> ctx_;
  std::unique_ptr<AdmissionProcessor> stage_;
  size_t seen_ = 0;
  int64_t def_id_ = 100;
};

using Ids = std::vector<int64_t>;

TEST_F(AdmissionStage, FifoWithLimitOneOverFiveRequests) {
  define_policy("p.one", concurrency(1));
  start();
  std::map<int64_t, int64_t> at;
  for (int64_t id = 1; id <= 5; ++id) {
    at[id] = clock_.now_ms();
    request(id, "", 1000 + id);
    clock_.advance(1s);
  }
  auto d = decisions();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].type, "admission.granted");
  EXPECT_EQ(d[0].id, 1);
  EXPECT_EQ(d[0].key, "1001");  // keyed by the root
  EXPECT_EQ(d[0].payload, (Json{{"id", 1}}));
  expect_stats(1, 4, 5, 0, 1, at[2]);
  // The stats record: attune.executions, keyed by the action ref (stats() looks only there),
  // updated at the time of the last change or later.
  const auto updated = parse_rfc3339_ms(stats().value("last_updated", ""));
  ASSERT_TRUE(updated);
  EXPECT_GE(*updated, clock_.now_ms() - 1000);
  EXPECT_LE(*updated, clock_.now_ms());

  for (int64_t id = 1; id <= 4; ++id) {
    release(id);
    d = decisions();
    ASSERT_EQ(d.size(), 1u) << "release of " << id;
    EXPECT_EQ(d[0].type, "admission.granted");
    EXPECT_EQ(d[0].id, id + 1);
    EXPECT_EQ(d[0].key, std::to_string(1000 + id + 1));
    expect_stats(1, 4 - id, 5, id, 1,
                 id + 2 <= 5 ? std::optional<int64_t>(at[id + 2]) : std::nullopt);
  }
  release(5);
  EXPECT_TRUE(decisions().empty());
  expect_stats(0, 0, 5, 5, 1, std::nullopt);
}

TEST_F(AdmissionStage, GroupsByParameters) {
  define_policy("p.host", concurrency(1, "enqueue", {"host"}));
  start();
  ConcurrencySpec spec;
  spec.parameters = {"host"};
  const std::string a = group_key(spec, {{"host", "a"}}), b = group_key(spec, {{"host", "b"}});
  request(1, a);
  request(2, b);
  request(3, a);
  request(4, b);
  request(5, a);
  EXPECT_EQ(granted(), (Ids{1, 2}));  // one per group
  expect_stats(2, 3, 5, 0, 1, clock_.now_ms());
  release(2);
  EXPECT_EQ(granted(), (Ids{4}));  // b's next, not a's
  release(1);
  EXPECT_EQ(granted(), (Ids{3}));
  release(4);
  EXPECT_EQ(granted(), Ids{});  // b is empty now
  expect_stats(1, 1, 5, 3, 1, clock_.now_ms());
  release(3);
  EXPECT_EQ(granted(), (Ids{5}));
  release(5);
  EXPECT_EQ(granted(), Ids{});
  expect_stats(0, 0, 5, 5, 1, std::nullopt);
}

TEST_F(AdmissionStage, ReleaseOfAQueuedOneInTheMiddle) {
  define_policy("p.one", concurrency(1));
  start();
  std::map<int64_t, int64_t> at;
  for (int64_t id = 1; id <= 5; ++id) {
    at[id] = clock_.now_ms();
    request(id);
    clock_.advance(1s);
  }
  EXPECT_EQ(granted(), (Ids{1}));
  release(3);  // cancelled while queued
  EXPECT_EQ(granted(), Ids{});
  expect_stats(1, 3, 5, 1, 1, at[2]);
  release(1);
  EXPECT_EQ(granted(), (Ids{2}));
  expect_stats(1, 2, 5, 2, 1, at[4]);
  release(2);
  EXPECT_EQ(granted(), (Ids{4}));  // 3 is gone: the others keep their order
  release(4);
  EXPECT_EQ(granted(), (Ids{5}));
  release(5);
  EXPECT_EQ(granted(), Ids{});
  expect_stats(0, 0, 5, 5, 1, std::nullopt);
}

TEST_F(AdmissionStage, ReleaseOfTheQueuedHead) {
  define_policy("p.one", concurrency(1));
  start();
  std::map<int64_t, int64_t> at;
  for (int64_t id = 1; id <= 6; ++id) {
    at[id] = clock_.now_ms();
    request(id);
    clock_.advance(1s);
  }
  EXPECT_EQ(granted(), (Ids{1}));
  release(2);  // the head of the queue
  EXPECT_EQ(granted(), Ids{});
  expect_stats(1, 4, 6, 1, 1, at[3]);
  release(4);  // one in the middle, then the new head: the head moves past both
  release(3);
  EXPECT_EQ(granted(), Ids{});
  expect_stats(1, 2, 6, 3, 1, at[5]);
  release(6);  // the tail
  expect_stats(1, 1, 6, 4, 1, at[5]);
  release(1);
  EXPECT_EQ(granted(), (Ids{5}));
  expect_stats(1, 0, 6, 5, 1, std::nullopt);
  // The group is empty again and takes new requests in order.
  request(7);
  request(8);
  release(5);
  EXPECT_EQ(granted(), (Ids{7}));
  release(7);
  EXPECT_EQ(granted(), (Ids{8}));
  release(8);
  expect_stats(0, 0, 8, 8, 1, std::nullopt);
}

TEST_F(AdmissionStage, RepeatedRequestAndReleaseChangeNothing) {
  define_policy("p.one", concurrency(1));
  start();
  request(1);
  request(1);  // a repeat (Kafka redelivery)
  EXPECT_EQ(granted(), (Ids{1}));
  request(2);
  request(2);
  EXPECT_EQ(granted(), Ids{});
  expect_stats(1, 1, 2, 0, 1, clock_.now_ms());
  release(1);
  EXPECT_EQ(granted(), (Ids{2}));
  release(1);  // again
  EXPECT_EQ(granted(), Ids{});
  expect_stats(1, 0, 2, 1, 1, std::nullopt);
  request(1);  // a request after its release: decided already
  EXPECT_EQ(granted(), Ids{});
  expect_stats(1, 0, 2, 1, 1, std::nullopt);
  release(2);
  release(2);
  expect_stats(0, 0, 2, 2, 1, std::nullopt);
  // A release that arrives before its request (never requested here): the late request is
  // ignored and nothing counts.
  release(9);
  request(9);
  EXPECT_TRUE(decisions().empty());
  expect_stats(0, 0, 2, 2, 1, std::nullopt);
  // A fresh one still goes through.
  request(10);
  EXPECT_EQ(granted(), (Ids{10}));
  expect_stats(1, 0, 3, 2, 1, std::nullopt);
}

// A release names the execution; the stage knows its action from its own record.
TEST_F(AdmissionStage, ReleaseNeedsOnlyTheId) {
  define_policy("p.one", concurrency(1));
  start();
  request(1);
  request(2);
  EXPECT_EQ(granted(), (Ids{1}));
  process("admission.release", 1, {{"id", 1}}, "p.a");
  EXPECT_EQ(granted(), (Ids{2}));
  expect_stats(1, 0, 2, 1, 1, std::nullopt);
}

// Records the stage cannot use are refused (dead-lettered by the runtime) without changing
// anything; unknown types are ignored.
TEST_F(AdmissionStage, MalformedRecordsAreRefused) {
  define_policy("p.one", concurrency(1));
  start();
  request(1);
  EXPECT_EQ(granted(), (Ids{1}));
  auto refused = [&](const std::string& type, Json payload) {
    Record r;
    r.topic = std::string(topics::kAdmission);
    r.key = "p.a";
    r.value = Envelope{type, 5, "k", clock_.now_ms(), "executor", std::move(payload)}.dump();
    EXPECT_THROW(stage_->process(r, *ctx_), ProcessingError) << type;
    ctx_->crash();  // the runtime rolls the transaction back
  };
  refused("admission.request", {{"action_ref", "p.a"}});
  refused("admission.request", {{"id", 5}});
  refused("admission.request", {{"id", 0}, {"action_ref", "p.a"}});
  refused("admission.release", {{"action_ref", "p.a"}});
  refused("admission.pump", Json::object());
  refused("admission.request", Json::array());
  Record garbage;
  garbage.topic = std::string(topics::kAdmission);
  garbage.key = "p.a";
  garbage.value = "not json";
  EXPECT_THROW(stage_->process(garbage, *ctx_), ProcessingError);
  ctx_->crash();
  process("something.else", 5, {{"id", 5}}, "p.a");
  EXPECT_TRUE(decisions().empty());
  request(2);  // still counting right
  EXPECT_EQ(granted(), Ids{});
  expect_stats(1, 1, 2, 0, 1, clock_.now_ms());
}

// One stored policy with a wrongly typed field (here `enabled: null`, for another pack's action)
// must not stop admission for every action.
TEST_F(AdmissionStage, AMalformedPolicyElsewhereDoesNotStopAdmission) {
  define_policy("p.one", concurrency(1));
  define_policy("q.bad", merge(concurrency(1), {{"enabled", nullptr}}), "q.x");
  start();
  EXPECT_NO_THROW(request(1));
  EXPECT_NO_THROW(request(2));
  EXPECT_EQ(granted(), (Ids{1}));
  EXPECT_NO_THROW(release(1));
  EXPECT_EQ(granted(), (Ids{2}));
}

TEST_F(AdmissionStage, MethodCancelRejects) {
  define_policy("p.cancel", concurrency(1, "cancel"));
  start();
  request(1, "", 1001);
  request(2, "", 1002);
  auto d = decisions();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].type, "admission.granted");
  EXPECT_EQ(d[0].id, 1);
  EXPECT_EQ(d[1].type, "admission.rejected");
  EXPECT_EQ(d[1].id, 2);
  EXPECT_EQ(d[1].key, "1002");
  EXPECT_EQ(d[1].payload, (Json{{"id", 2}, {"error", "Concurrency limit reached"}}));
  expect_stats(1, 0, 1, 0, 1, std::nullopt);  // a rejected one passed no admission
  request(2, "", 1002);                       // repeated: decided already
  EXPECT_TRUE(decisions().empty());
  release(2);  // the executor ends the rejected one: nothing to count
  expect_stats(1, 0, 1, 0, 1, std::nullopt);
  release(1);
  EXPECT_TRUE(decisions().empty());
  expect_stats(0, 0, 1, 1, 1, std::nullopt);
  request(3);
  EXPECT_EQ(granted(), (Ids{3}));
  expect_stats(1, 0, 2, 1, 1, std::nullopt);
}

TEST_F(AdmissionStage, RateLimitWakesUpThroughPunctuate) {
  define_policy("p.rate", rate(2, 10));
  start();
  const int64_t t0 = clock_.now_ms();
  request(1);
  clock_.advance(3s);
  request(2);
  clock_.advance(1s);
  ctx_->punctuations.clear();
  request(3);
  request(4);
  request(5);
  EXPECT_EQ(granted(), (Ids{1, 2}));
  expect_stats(2, 3, 5, 0, nullptr, t0 + 4000);
  // The stage asked to be woken when the start at t0 leaves the window.
  EXPECT_NE(std::find(ctx_->punctuations.begin(), ctx_->punctuations.end(), t0 + 10000),
            ctx_->punctuations.end());
  // Ending executions does not free the rate window.
  release(1);
  release(2);
  EXPECT_EQ(granted(), Ids{});

  clock_.set_ms(t0 + 9999);
  Tick t = tick();
  EXPECT_TRUE(t.pumped.empty());
  ASSERT_TRUE(t.next);
  EXPECT_LE(to_ms(*t.next), t0 + 10000);
  EXPECT_EQ(granted(), Ids{});

  clock_.set_ms(t0 + 10000);
  t = tick();
  EXPECT_EQ(t.pumped, (std::vector<std::string>{"p.a"}));
  EXPECT_EQ(granted(), (Ids{3}));  // the start at t0+3s still counts
  ASSERT_TRUE(t.next);
  EXPECT_LE(to_ms(*t.next), t0 + 13000);

  clock_.set_ms(t0 + 12999);
  EXPECT_TRUE(tick().pumped.empty());
  EXPECT_EQ(granted(), Ids{});
  clock_.set_ms(t0 + 13000);
  EXPECT_EQ(tick().pumped, (std::vector<std::string>{"p.a"}));
  EXPECT_EQ(granted(), (Ids{4}));

  clock_.set_ms(t0 + 19999);
  tick();
  EXPECT_EQ(granted(), Ids{});
  clock_.set_ms(t0 + 20000);
  tick();
  EXPECT_EQ(granted(), (Ids{5}));
  expect_stats(3, 0, 5, 2, nullptr, std::nullopt);
}

// The last queued one admitted while the window is (then) full: nothing waits, so no wake-up is
// asked for and no pump record follows.
TEST_F(AdmissionStage, NoWakeUpOnceTheQueueIsEmpty) {
  define_policy("p.rate", rate(1, 10));
  start();
  const int64_t t0 = clock_.now_ms();
  request(1);
  request(2);
  EXPECT_EQ(granted(), (Ids{1}));
  clock_.set_ms(t0 + 10000);
  ctx_->punctuations.clear();
  EXPECT_EQ(tick().pumped, (std::vector<std::string>{"p.a"}));
  EXPECT_EQ(granted(), (Ids{2}));
  expect_stats(2, 0, 2, 0, nullptr, std::nullopt);
  std::vector<int64_t> later;  // wake-ups asked for in the future (not "after this batch")
  for (int64_t at : ctx_->punctuations) {
    if (at > clock_.now_ms()) later.push_back(at);
  }
  EXPECT_EQ(later, std::vector<int64_t>{})
      << "the stage asked to be woken although its queue is empty";
  clock_.set_ms(t0 + 60000);
  const size_t stats_before = stats_count();
  EXPECT_EQ(tick().pumped, std::vector<std::string>{})
      << "a pump record for an action with nothing waiting";
  EXPECT_EQ(stats_count(), stats_before);
}

// An explicit pump before the window moved changes nothing; one after it admits.
TEST_F(AdmissionStage, PumpRecordsAdmitWhatTheWindowAllows) {
  define_policy("p.rate", rate(1, 5));
  start();
  const int64_t t0 = clock_.now_ms();
  request(1);
  request(2);
  EXPECT_EQ(granted(), (Ids{1}));
  pump();
  EXPECT_EQ(granted(), Ids{});
  clock_.set_ms(t0 + 5000);
  pump();
  EXPECT_EQ(granted(), (Ids{2}));
  expect_stats(2, 0, 2, 0, nullptr, std::nullopt);
  // A pump for an action the stage never saw: nothing at all.
  const size_t n = ctx_->forwarded.size();
  pump("p.unknown");
  EXPECT_EQ(ctx_->forwarded.size(), n);
}

TEST_F(AdmissionStage, RaisedLimitAdmitsQueuedOnes) {
  define_policy("p.lim", concurrency(1));
  start();
  for (int64_t id = 1; id <= 5; ++id) request(id);
  EXPECT_EQ(granted(), (Ids{1}));
  define_policy("p.lim", concurrency(3));  // updated in the table
  const Tick t = tick();
  EXPECT_EQ(t.pumped, (std::vector<std::string>{"p.a"}));
  EXPECT_EQ(granted(), (Ids{2, 3}));
  expect_stats(3, 2, 5, 0, 3, clock_.now_ms());
  // Lowered again: running ones stay, nobody new starts until below the limit.
  define_policy("p.lim", concurrency(1));
  tick();
  EXPECT_EQ(granted(), Ids{});
  release(1);
  release(2);
  EXPECT_EQ(granted(), Ids{});
  expect_stats(1, 2, 5, 2, 1, clock_.now_ms());
  release(3);
  EXPECT_EQ(granted(), (Ids{4}));
  // The policy deleted: no limit any more; the rest starts.
  delete_policy("p.lim");
  tick();
  EXPECT_EQ(granted(), (Ids{5}));
}

// A restart (a new instance over the committed store) keeps queue order and counters.
TEST_F(AdmissionStage, RestartKeepsTheQueue) {
  define_policy("p.one", concurrency(1));
  start();
  for (int64_t id = 1; id <= 4; ++id) request(id);
  EXPECT_EQ(granted(), (Ids{1}));
  // A request processed but not committed is lost with the crash, then redelivered.
  Record r;
  r.topic = std::string(topics::kAdmission);
  r.key = "p.a";
  r.value = Envelope{"admission.release", 1,          "r",
                     clock_.now_ms(),     "executor", {{"id", 1}, {"action_ref", "p.a"}}}
                .dump();
  stage_->process(r, *ctx_);
  start();  // crash + restart
  EXPECT_EQ(granted(), Ids{});
  expect_stats(1, 3, 4, 0, 1, clock_.now_ms());
  release(1);
  EXPECT_EQ(granted(), (Ids{2}));
  release(2);
  EXPECT_EQ(granted(), (Ids{3}));
  release(3);
  EXPECT_EQ(granted(), (Ids{4}));
  release(4);
  expect_stats(0, 0, 4, 4, 1, std::nullopt);
}

// A restart forgets the in-memory wake-ups; its first punctuation pumps every waiting action.
TEST_F(AdmissionStage, RestartUnderARateLimitStillWakes) {
  define_policy("p.rate", rate(1, 10));
  start();
  const int64_t t0 = clock_.now_ms();
  request(1);
  request(2);
  EXPECT_EQ(granted(), (Ids{1}));
  clock_.set_ms(t0 + 4000);
  start();  // restart inside the window: the pump finds the window full
  EXPECT_EQ(granted(), Ids{});
  clock_.set_ms(t0 + 10000);
  tick();
  EXPECT_EQ(granted(), (Ids{2}));
}

// New partitions assigned: the next punctuation pumps every waiting action (its rate wake-ups
// were another instance's, in memory).
TEST_F(AdmissionStage, AssignedPartitionsArePumped) {
  define_policy("p.rate", rate(1, 10));
  start();
  const int64_t t0 = clock_.now_ms();
  request(1);
  request(2);
  EXPECT_EQ(granted(), (Ids{1}));
  clock_.set_ms(t0 + 5000);
  EXPECT_EQ(tick().pumped, std::vector<std::string>{});
  stage_->assigned({}, *ctx_);
  ctx_->commit();
  EXPECT_EQ(tick().pumped, (std::vector<std::string>{"p.a"}));
  EXPECT_EQ(granted(), Ids{});  // the window is still full
  clock_.set_ms(t0 + 10000);
  tick();
  EXPECT_EQ(granted(), (Ids{2}));
}

// Two actions do not share limits or queues.
TEST_F(AdmissionStage, ActionsAreIndependent) {
  define_policy("p.one", concurrency(1));
  define_policy("p.two", concurrency(1), "p.b");
  start();
  request(1, "", 0, "p.a");
  request(2, "", 0, "p.b");
  request(3, "", 0, "p.a");
  request(4, "", 0, "p.b");
  EXPECT_EQ(granted(), (Ids{1, 2}));
  release(2, "p.b");
  EXPECT_EQ(granted(), (Ids{4}));
  expect_stats(1, 1, 2, 0, 1, clock_.now_ms(), "p.a");
  expect_stats(1, 0, 2, 1, 1, std::nullopt, "p.b");
}

// Under a rate limit nobody overtakes a queued execution of another group; a concurrency-full
// group does not hold the others back.
TEST_F(AdmissionStage, RateLimitKeepsOrderAcrossGroups) {
  define_policy("p.both", merge(concurrency(1, "enqueue", {"host"}), rate(1, 10)));
  start();
  ConcurrencySpec spec;
  spec.parameters = {"host"};
  const std::string a = group_key(spec, {{"host", "a"}}), b = group_key(spec, {{"host", "b"}});
  const int64_t t0 = clock_.now_ms();
  request(1, a);
  request(2, b);  // the window is full
  request(3, a);
  EXPECT_EQ(granted(), (Ids{1}));
  clock_.set_ms(t0 + 10000);
  tick();
  EXPECT_EQ(granted(), (Ids{2}));  // b's head is older than a's (and a is full)
  release(1);
  clock_.set_ms(t0 + 20000);
  tick();
  EXPECT_EQ(granted(), (Ids{3}));
  expect_stats(2, 0, 3, 1, 1, std::nullopt);
}

TEST_F(AdmissionStage, FullGroupDoesNotHoldOthersBackUnderARateLimit) {
  define_policy("p.both", merge(concurrency(1, "enqueue", {"host"}), rate(10, 10)));
  start();
  ConcurrencySpec spec;
  spec.parameters = {"host"};
  const std::string a = group_key(spec, {{"host", "a"}}), b = group_key(spec, {{"host", "b"}});
  request(1, a);
  request(2, a);  // a is full
  request(3, b);  // room in the window and in b: starts now
  EXPECT_EQ(granted(), (Ids{1, 3}));
  expect_stats(2, 1, 3, 0, 1, clock_.now_ms());
}

TEST_F(AdmissionStage, QuotaAndNoPolicy) {
  define_policy("p.q", merge(concurrency(5),
                             {{"quotas", {{{"quota_type", "running_executions"}, {"limit", 2}}}}}));
  start();
  for (int64_t id = 1; id <= 3; ++id) request(id);
  EXPECT_EQ(granted(), (Ids{1, 2}));
  expect_stats(2, 1, 3, 0, 2, clock_.now_ms());
  // An action without any policy: everything starts; max_concurrent null.
  for (int64_t id = 11; id <= 13; ++id) request(id, "", 0, "p.free");
  EXPECT_EQ(granted(), (Ids{11, 12, 13}));
  expect_stats(3, 0, 3, 0, nullptr, std::nullopt, "p.free");
}

// The store stays bounded: a drained action keeps only its counters; released markers expire
// after the retention.
TEST_F(AdmissionStage, StoreIsBoundedAfterDraining) {
  options_.retention = std::chrono::minutes(1);
  options_.prune.hold = std::chrono::milliseconds(0);
  options_.prune.interval = std::chrono::milliseconds(0);
  define_policy("p.one", concurrency(1));
  start();
  for (int64_t id = 1; id <= 5; ++id) request(id);
  release(3);  // one cancelled while queued
  for (int64_t id : {1, 2, 4, 5}) release(id);
  EXPECT_EQ(granted(), (Ids{1, 2, 4, 5}));
  EXPECT_EQ(keys("q:"), std::vector<std::string>{});
  EXPECT_EQ(keys("g:"), std::vector<std::string>{});
  EXPECT_EQ(keys("w:"), std::vector<std::string>{});
  EXPECT_EQ(keys("a:"), std::vector<std::string>{"a:p.a"});
  EXPECT_EQ(keys("e:").size(), 5u);  // released markers, until the retention passes
  clock_.advance(std::chrono::minutes(2));
  tick();
  tick();
  EXPECT_EQ(keys("e:"), std::vector<std::string>{});
  expect_stats(0, 0, 5, 5, 1, std::nullopt);
}

// --- the stage against a reference model, over random operations ---------------------------

// What the stage should answer, written plainly: FIFO queues of ids per group, active ids per
// group, every start made; the stage starts whatever may start after every record.
struct StageModel {
  int64_t limit = 1;
  bool cancel = false;
  std::optional<RateSpec> rate;
  std::map<std::string, std::deque<int64_t>> queued;
  std::map<std::string, std::set<int64_t>> active;
  std::map<int64_t, int64_t> seq;
  std::map<int64_t, std::string> group_of;
  std::set<int64_t> done;  // decided once: repeats change nothing
  std::vector<int64_t> starts;
  int64_t enqueued = 0, completed = 0, next_seq = 0;

  int64_t in_window(int64_t now) const {
    if (!rate) return 0;
    return std::count_if(starts.begin(), starts.end(),
                         [&](int64_t t) { return now < t + rate->window_seconds * 1000; });
  }
  bool rate_full(int64_t now) const { return rate && in_window(now) >= rate->max_executions; }
  bool full(const std::string& g) const {
    auto it = active.find(g);
    return it != active.end() && static_cast<int64_t>(it->second.size()) >= limit;
  }
  size_t total_queued() const {
    size_t n = 0;
    for (auto& [g, q] : queued) n += q.size();
    return n;
  }
  size_t total_active() const {
    size_t n = 0;
    for (auto& [g, a] : active) n += a.size();
    return n;
  }
  // Starts what may start now, oldest head first; returns the ids granted.
  std::vector<int64_t> pump(int64_t now) {
    std::vector<int64_t> out;
    for (;;) {
      if (rate_full(now)) return out;
      std::optional<std::string> best;
      for (auto& [g, q] : queued) {
        if (q.empty() || full(g)) continue;
        if (!best || seq.at(q.front()) < seq.at(queued[*best].front())) best = g;
      }
      if (!best) return out;
      const int64_t id = queued[*best].front();
      queued[*best].pop_front();
      active[*best].insert(id);
      if (rate) starts.push_back(now);
      out.push_back(id);
    }
  }
  // Returns granted ids (in order) and whether `id` itself was rejected.
  std::vector<int64_t> request(int64_t id, const std::string& g, int64_t now, bool& rejected) {
    rejected = false;
    if (done.count(id) || group_of.count(id)) return {};  // a repeat
    group_of[id] = g;
    std::vector<int64_t> out;
    if (full(g) && cancel) {
      rejected = true;
      done.insert(id);
      return pump(now);
    }
    ++enqueued;
    if (full(g) || rate_full(now) || !queued[g].empty() || (rate && total_queued() > 0)) {
      queued[g].push_back(id);
      seq[id] = next_seq++;
    } else {
      active[g].insert(id);
      if (rate) starts.push_back(now);
      out.push_back(id);
    }
    auto more = pump(now);
    out.insert(out.end(), more.begin(), more.end());
    return out;
  }
  std::vector<int64_t> release(int64_t id, int64_t now) {
    if (done.count(id) || !group_of.count(id)) return {};
    done.insert(id);
    const std::string& g = group_of[id];
    if (active[g].erase(id) == 0) {
      auto& q = queued[g];
      q.erase(std::find(q.begin(), q.end(), id));
    }
    ++completed;
    return pump(now);
  }
};

TEST_F(AdmissionStage, RandomOperationsMatchTheModel) {
  struct Config {
    const char* name;
    bool cancel;
    std::optional<RateSpec> rate;
  };
  const std::vector<Config> configs = {
      {"concurrency per host", false, std::nullopt},
      {"concurrency per host and a rate limit", false, RateSpec{3, 5}},
      {"cancel per host and a rate limit", true, RateSpec{4, 3}},
  };
  // Fixed, so a failure repeats; ATTUNE_TEST_SEED explores others.
  const char* env_seed = std::getenv("ATTUNE_TEST_SEED");
  const uint32_t seed =
      env_seed ? static_cast<uint32_t>(std::strtoul(env_seed, nullptr, 10)) : 20261207;
  std::printf("stage property test: seed %u\n", seed);
  ConcurrencySpec spec;
  spec.parameters = {"host"};
  int64_t next_id = 1;
  for (const Config& cfg : configs) {
    SCOPED_TRACE(cfg.name);
    const std::string action = std::string("p.") + std::to_string(next_id);  // a fresh action
    StageModel m;
    m.limit = 2;
    m.cancel = cfg.cancel;
    m.rate = cfg.rate;
    const std::string policy_ref = "p.pol" + std::to_string(next_id);
    auto set_policy = [&] {
      Json aspects = concurrency(m.limit, m.cancel ? "cancel" : "enqueue", {"host"});
      if (m.rate) aspects.update(rate(m.rate->max_executions, m.rate->window_seconds));
      define_policy(policy_ref, aspects, action);
    };
    set_policy();
    if (!stage_) start();
    tick();
    decisions();
    std::mt19937 rng(seed);
    std::vector<int64_t> ids;  // requested so far
    int64_t granted_n = 0, rejected_n = 0;
    for (int step = 0; step < 1500; ++step) {
      const int op = std::uniform_int_distribution<int>(0, 99)(rng);
      std::vector<int64_t> want_granted, want_rejected;
      const int64_t now = clock_.now_ms();
      if (op < 35) {
        const int64_t id = next_id++;
        const std::string g = group_key(
            spec, {{"host", "h" + std::to_string(std::uniform_int_distribution<int>(0, 2)(rng))}});
        bool rej = false;
        want_granted = m.request(id, g, now, rej);
        if (rej) want_rejected.push_back(id);
        ids.push_back(id);
        request(id, g, 0, action);
      } else if (op < 62 && !ids.empty()) {  // an end, a cancel while queued, or a repeat
        std::vector<int64_t> pool;
        const int kind = std::uniform_int_distribution<int>(0, 9)(rng);
        if (kind < 6) {
          for (auto& [g, a] : m.active) pool.insert(pool.end(), a.begin(), a.end());
        } else if (kind < 8) {
          for (auto& [g, q] : m.queued) pool.insert(pool.end(), q.begin(), q.end());
        }
        if (pool.empty()) pool = ids;
        const int64_t id = pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng)];
        want_granted = m.release(id, now);
        release(id, action);
      } else if (op < 66 && !ids.empty()) {  // a repeated request
        const int64_t id = ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(rng)];
        bool rej = false;
        want_granted = m.request(id, m.group_of[id], now, rej);
        request(id, m.group_of[id], 0, action);
      } else if (op < 68) {  // the limit changes; the stage pumps at its next punctuation
        m.limit = std::uniform_int_distribution<int64_t>(1, 3)(rng);
        set_policy();
        tick();
        want_granted = m.pump(now);
      } else {  // time passes
        clock_.advance(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 2500)(rng)));
        tick();
        want_granted = m.pump(clock_.now_ms());
      }
      // The batch is done: statistics out, pumps asked for processed (nothing more may start).
      flush();
      const auto more = m.pump(clock_.now_ms());
      want_granted.insert(want_granted.end(), more.begin(), more.end());
      std::vector<int64_t> got_granted, got_rejected;
      for (const Decision& d : decisions()) {
        if (!m.group_of.count(d.id)) continue;  // an earlier configuration's action
        (d.type == "admission.granted" ? got_granted : got_rejected).push_back(d.id);
      }
      ASSERT_EQ(got_granted, want_granted) << "step " << step << " op " << op;
      ASSERT_EQ(got_rejected, want_rejected) << "step " << step << " op " << op;
      granted_n += static_cast<int64_t>(got_granted.size());
      rejected_n += static_cast<int64_t>(got_rejected.size());
      const Json st = stats(action);
      if (st.is_object()) {
        ASSERT_EQ(st["active_count"], static_cast<int64_t>(m.total_active())) << "step " << step;
        ASSERT_EQ(st["queue_length"], static_cast<int64_t>(m.total_queued())) << "step " << step;
        ASSERT_EQ(st["total_enqueued"], m.enqueued) << "step " << step;
        ASSERT_EQ(st["total_completed"], m.completed) << "step " << step;
      }
      ctx_->forwarded.clear();
      seen_ = 0;
      if (step % 500 == 499) start();  // a restart now and then: nothing changes
    }
    std::printf("  %s: %lld granted, %lld rejected, %zu queued at the end\n", cfg.name,
                static_cast<long long>(granted_n), static_cast<long long>(rejected_n),
                m.total_queued());
    EXPECT_GT(granted_n, 100);
  }
}

// 100,000 queued behind one running execution, then released one by one: every release grants
// the next. Each step must cost about the same (no scan of the queue per record).
TEST_F(AdmissionStage, HundredThousandQueuedReleasedOneByOne) {
  define_policy("p.one", concurrency(1));
  start();
  constexpr int64_t kN = 100'000;
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  for (int64_t id = 1; id <= kN; ++id) {
    request(id);
    if (id % 10000 == 0) {  // keep memory flat
      ctx_->forwarded.clear();
      seen_ = 0;
    }
  }
  const auto t1 = Clock::now();
  ctx_->forwarded.clear();
  seen_ = 0;
  int64_t wrong = 0;
  std::vector<double> per_10k;
  auto lap = Clock::now();
  for (int64_t id = 1; id <= kN; ++id) {
    release(id);
    // Only the new records: the grant of the next one and the stats.
    for (const OutRecord& r : ctx_->forwarded) {
      if (r.topic != topics::kCommands) continue;
      const Envelope e = parse(r);
      if (e.type != "admission.granted" || e.id != id + 1) ++wrong;
    }
    ctx_->forwarded.clear();
    if (id % 10000 == 0) {
      const auto now = Clock::now();
      per_10k.push_back(std::chrono::duration<double>(now - lap).count());
      lap = now;
    }
  }
  const auto t2 = Clock::now();
  EXPECT_EQ(wrong, 0);
  const double requests_s = std::chrono::duration<double>(t1 - t0).count();
  const double releases_s = std::chrono::duration<double>(t2 - t1).count();
  std::printf("100,000 requests: %.2f s; 100,000 releases: %.2f s; per 10,000 releases:",
              requests_s, releases_s);
  for (double s : per_10k) std::printf(" %.2f", s);
  std::printf("\n");
  // The last slice of releases costs about what the first did (not quadratic).
  EXPECT_LT(per_10k.back(), per_10k.front() * 4 + 0.5);
  EXPECT_LT(requests_s + releases_s, 60.0);
  // Back to nothing running (checked from a stats record).
  request(kN + 1);
  expect_stats(1, 0, kN + 1, kN, 1, std::nullopt);
}

// Many groups waiting at once (a concurrency limit per host, every host busy with one queued
// behind): each record should cost about the same however many other groups wait.
// DISABLED — a known limitation, reduced but not removed: without a rate limit a record now
// reads only its own group, but the action's entry still lists the waiting groups and each
// batch's statistics read every waiting group for `oldest_enqueued_at` (O(waiting groups) per
// batch: 14 → 52 ms per 150 records at 600 groups). An index of waiting groups ordered by their
// head would make both O(1).
TEST_F(AdmissionStage, DISABLED_ManyGroupsWaitingStayFast) {
  define_policy("p.host", concurrency(1, "enqueue", {"host"}));
  start();
  constexpr int64_t kGroups = 600, kSlice = 150;
  ConcurrencySpec spec;
  spec.parameters = {"host"};
  auto host = [&](int64_t i) { return group_key(spec, {{"host", "h" + std::to_string(i)}}); };
  using Clock = std::chrono::steady_clock;
  std::vector<double> slices;
  auto lap = Clock::now();
  for (int64_t i = 0; i < kGroups; ++i) {
    request(2 * i + 1, host(i));  // runs
    request(2 * i + 2, host(i));  // waits
    ctx_->forwarded.clear();
    seen_ = 0;
    if ((i + 1) % kSlice == 0) {
      const auto now = Clock::now();
      slices.push_back(std::chrono::duration<double>(now - lap).count());
      lap = now;
    }
  }
  int64_t wrong = 0;
  for (int64_t i = 0; i < kGroups; ++i) {
    release(2 * i + 1);
    const auto d = decisions();
    if (d.size() != 1 || d[0].id != 2 * i + 2) ++wrong;
    ctx_->forwarded.clear();
    seen_ = 0;
    if ((i + 1) % kSlice == 0) {
      const auto now = Clock::now();
      slices.push_back(std::chrono::duration<double>(now - lap).count());
      lap = now;
    }
  }
  EXPECT_EQ(wrong, 0);
  std::printf("%lld groups, per %lld groups (requests, then releases):",
              static_cast<long long>(kGroups), static_cast<long long>(kSlice));
  for (double s : slices) std::printf(" %.2f", s);
  std::printf(" s\n");
  // Requests: the last slice (600 groups waiting) costs about what the first did.
  EXPECT_LT(slices[kGroups / kSlice - 1], slices[0] * 3)
      << "a request costs more the more groups wait (a scan of every waiting group per record)";
}

// A generous rate limit (many starts per window): each record should cost about the same
// however many starts the window holds.
// DISABLED — a known limitation, not fixed yet: the start times inside the window are kept in
// the action's entry, so a record costs O(starts in the window) (fine for rate limits of up to
// a few thousand per window; 0.36 → 1.42 s per 1,000 records at 100,000/h). Keeping one key per
// start number (the check needs only the start max_executions ago) would make it O(1).
TEST_F(AdmissionStage, DISABLED_LargeRateWindowStaysFast) {
  define_policy("p.rate", rate(100000, 3600));
  start();
  constexpr int64_t kN = 4000, kSlice = 1000;
  using Clock = std::chrono::steady_clock;
  std::vector<double> slices;
  auto lap = Clock::now();
  int64_t wrong = 0;
  for (int64_t id = 1; id <= kN; ++id) {
    request(id);
    release(id);
    const auto d = decisions();
    if (d.size() != 1 || d[0].id != id) ++wrong;
    ctx_->forwarded.clear();
    seen_ = 0;
    clock_.advance(1ms);
    if (id % kSlice == 0) {
      const auto now = Clock::now();
      slices.push_back(std::chrono::duration<double>(now - lap).count());
      lap = now;
    }
  }
  EXPECT_EQ(wrong, 0);
  std::printf("rate limit 100000/h, per %lld request+release pairs:",
              static_cast<long long>(kSlice));
  for (double s : slices) std::printf(" %.2f", s);
  std::printf(" s\n");
  EXPECT_LT(slices.back(), slices.front() * 3)
      << "a record costs more the more starts the rate window holds";
}

}  // namespace
}  // namespace attune::admission
