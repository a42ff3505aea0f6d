// Unit tests for the stage Runtime: exactly-once commit of state + output + offsets, dead
// letters with rollback, mailbox tasks, after-commit hooks, punctuation, AppliedOffsets.
#include "topology/runtime.h"

#include <future>
#include <latch>
#include <mutex>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "tests/unit/topology/test_util.h"

namespace attune {
namespace {

using testing::BothLogsFixture;
using testing::kWait;
using namespace std::chrono_literals;

// Counts records per key in a store and forwards "<key>:<count>" to commands; throws on "bad".
class CountingProcessor : public Processor {
 public:
  explicit CountingProcessor(std::function<void()> on_init = {}) : on_init_(std::move(on_init)) {}
  void init(ProcessorContext& ctx) override {
    store_ = &ctx.store("counts");
    if (on_init_) on_init_();
  }
  void process(const Record& r, ProcessorContext& ctx) override {
    auto v = ctx.get(*store_, r.key);
    const int n = (v.ok() && v->has_value()) ? std::stoi(**v) + 1 : 1;
    ctx.put(*store_, r.key, std::to_string(n));
    ctx.forward(topics::kCommands, r.key, r.key + ":" + std::to_string(n));
    if (r.value == "bad") throw ProcessingError("value is bad");
  }

 private:
  state::Store* store_ = nullptr;
  std::function<void()> on_init_;
};

class RuntimeTest : public BothLogsFixture {
 protected:
  std::vector<Record> drain(const std::string& topic, size_t want) {
    auto c = log_->reader({topic});
    std::vector<Record> out;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
      auto b = (*c)->poll(100, 100ms);
      out.insert(out.end(), b.begin(), b.end());
    }
    return out;
  }
  // A started Runtime of one stage (the topology lives in the fixture).
  std::unique_ptr<Runtime> start_stage(StageSpec spec) {
    topology_ = Topology();
    topology_.add(std::move(spec));
    RuntimeOptions opts;
    opts.ids = &ids_;
    auto rt = std::make_unique<Runtime>(*log_, topology_, opts);
    EXPECT_TRUE(rt->start().ok());
    return rt;
  }
  IdGenerator ids_{0, SystemClock::instance()};
  Topology topology_;
};
ATTUNE_BOTH_LOGS(RuntimeTest);

TEST_P(RuntimeTest, ProcessesCommitsAndDeadLetters) {
  Topology topo;
  topo.add({"counter", {std::string(topics::kEvents)}, {"counts"}, 2, 64,
            [](int) { return std::make_unique<CountingProcessor>(); }});
  std::atomic<int> dead{0};
  RuntimeOptions opts;
  opts.ids = &ids_;
  opts.on_dead_letter = [&](const std::string&, const Record&, const std::string&) { ++dead; };
  Runtime rt(*log_, topo, opts);
  ASSERT_TRUE(rt.start().ok());
  std::vector<RecordPosition> positions;
  for (int i = 0; i < 20; ++i) {
    auto p = log_->produce({{std::string(topics::kEvents), "k" + std::to_string(i % 4),
                             i == 7 ? "bad" : "ok"}});
    ASSERT_TRUE(p.ok());
    positions.push_back((*p)[0]);
  }
  for (const auto& p : positions) ASSERT_TRUE(rt.applied().wait("counter", p.tp, p.offset, kWait));
  auto out = drain(std::string(topics::kCommands), 19);
  EXPECT_EQ(out.size(), 19u);  // the bad record's forward was rolled back
  auto dl = drain(std::string(topics::kDeadletter), 1);
  ASSERT_EQ(dl.size(), 1u);
  auto j = Json::parse(dl[0].value);
  EXPECT_EQ(j["reason"], "value is bad");
  EXPECT_EQ(j["source_topic"], topics::kEvents);
  EXPECT_EQ(dead.load(), 1);
  rt.stop();
  auto store = db_->store("counter.counts");
  int total = 0;
  for (int k = 0; k < 4; ++k) total += std::stoi(**(*store)->get("k" + std::to_string(k)));
  EXPECT_EQ(total, 19);
}

TEST_P(RuntimeTest, RestartResumesFromCommittedOffsetsWithoutRepeats) {
  Topology topo;
  topo.add({"counter", {std::string(topics::kEvents)}, {"counts"}, 1, 64,
            [](int) { return std::make_unique<CountingProcessor>(); }});
  RuntimeOptions opts;
  opts.ids = &ids_;
  for (int round = 0; round < 3; ++round) {
    Runtime rt(*log_, topo, opts);
    ASSERT_TRUE(rt.start().ok());
    RecordPosition last;
    for (int i = 0; i < 10; ++i) {
      last = (*log_->produce({{std::string(topics::kEvents), "k", "ok"}}))[0];
    }
    ASSERT_TRUE(rt.applied().wait("counter", last.tp, last.offset, kWait));
    rt.stop();
  }
  EXPECT_EQ(**(*db_->store("counter.counts"))->get("k"), "30");
  EXPECT_EQ(drain(std::string(topics::kCommands), 30).size(), 30u);
}

// Writes and produces nothing: the stage only consumes.
class IgnoringProcessor : public Processor {
 public:
  explicit IgnoringProcessor(std::atomic<int64_t>* seen) : seen_(seen) {}
  void process(const Record& r, ProcessorContext&) override { seen_->store(r.offset + 1); }

 private:
  std::atomic<int64_t>* seen_;
};

TEST_P(RuntimeTest, LazyOffsetsAreCommittedWithinTheirWindowAndOnStop) {
  Topology topo;
  std::atomic<int64_t> seen{0};
  StageSpec spec{"skipper", {std::string(topics::kDeadletter)}, {}, 1, 64,
                 [&](int) { return std::make_unique<IgnoringProcessor>(&seen); }};
  spec.lazy_offsets = 300ms;
  topo.add(spec);
  RuntimeOptions opts;
  opts.ids = &ids_;
  const TopicPartition tp{std::string(topics::kDeadletter), 0};
  auto committed = [&] { return *log_->committed("skipper", tp); };
  {
    Runtime rt(*log_, topo, opts);
    ASSERT_TRUE(rt.start().ok());
    RecordPosition last;
    for (int i = 0; i < 5; ++i) {
      last = (*log_->produce({{std::string(topics::kDeadletter), "k", "v"}}))[0];
      std::this_thread::sleep_for(20ms);
    }
    // Committed within the window even though no further record arrives.
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (committed() < last.offset + 1 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(committed(), last.offset + 1);
    // A record consumed just before a clean stop is committed by the stop, not left behind.
    last = (*log_->produce({{std::string(topics::kDeadletter), "k", "v"}}))[0];
    while (seen.load() < last.offset + 1 && std::chrono::steady_clock::now() < deadline + kWait) {
      std::this_thread::sleep_for(1ms);
    }
    ASSERT_EQ(seen.load(), last.offset + 1);
    rt.stop();
    EXPECT_EQ(committed(), last.offset + 1);
  }
}

TEST_P(RuntimeTest, KeyFilteredStagesSeeOnlyWantedRecordsAndCommitPastTheRest) {
  Topology topo;
  std::atomic<int64_t> seen{0};
  std::atomic<int> processed{0};
  class Counting : public Processor {
   public:
    Counting(std::atomic<int64_t>* seen, std::atomic<int>* n) : seen_(seen), n_(n) {}
    void process(const Record& r, ProcessorContext&) override {
      EXPECT_EQ(r.key.rfind("rule:", 0), 0u) << r.key;
      seen_->store(r.offset + 1);
      ++*n_;
    }

   private:
    std::atomic<int64_t>* seen_;
    std::atomic<int>* n_;
  };
  StageSpec spec{"filtered", {std::string(topics::kDeadletter)}, {}, 1, 64,
                 [&](int) { return std::make_unique<Counting>(&seen, &processed); }};
  spec.lazy_offsets = 100ms;
  spec.key_filter = [](std::string_view key) { return key.rfind("rule:", 0) == 0; };
  topo.add(spec);
  RuntimeOptions opts;
  opts.ids = &ids_;
  const TopicPartition tp{std::string(topics::kDeadletter), 0};
  Runtime rt(*log_, topo, opts);
  ASSERT_TRUE(rt.start().ok());
  ASSERT_TRUE(log_->produce({{tp.topic, "key:a", "v"}, {tp.topic, "rule:r", "v"}}).ok());
  RecordPosition last;
  for (int i = 0; i < 20; ++i) last = (*log_->produce({{tp.topic, "key:x", "v"}}))[0];
  // The skipped records after the last wanted one are committed as consumed too.
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (*log_->committed("filtered", tp) < last.offset + 1 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(*log_->committed("filtered", tp), last.offset + 1);
  EXPECT_EQ(processed.load(), 1);
  rt.stop();
}

class HookProcessor : public Processor {
 public:
  explicit HookProcessor(std::promise<std::string>* done) : done_(done) {}
  void init(ProcessorContext& ctx) override {
    Mailbox* mb = &ctx.mailbox();
    std::thread([mb, this] {
      mb->post([this](ProcessorContext& c) {
        c.forward(topics::kResults, "m", "from-mailbox");
        c.after_commit([this] { done_->set_value("committed"); });
      });
    }).detach();
  }
  void process(const Record&, ProcessorContext&) override {}
  std::optional<SystemTime> punctuate(SystemTime now, ProcessorContext& ctx) override {
    if (++punctuations_ == 2) ctx.forward(topics::kResults, "p", "punctuated");
    return punctuations_ < 2 ? std::optional(now + 10ms) : std::nullopt;
  }

 private:
  std::promise<std::string>* done_;
  int punctuations_ = 0;
};

TEST_P(RuntimeTest, MailboxAfterCommitAndPunctuate) {
  std::promise<std::string> done;
  Topology topo;
  topo.add({"hooks", {std::string(topics::kEvents)}, {}, 1, 64,
            [&](int) { return std::make_unique<HookProcessor>(&done); }});
  RuntimeOptions opts;
  opts.ids = &ids_;
  Runtime rt(*log_, topo, opts);
  ASSERT_TRUE(rt.start().ok());
  auto fut = done.get_future();
  ASSERT_EQ(fut.wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(fut.get(), "committed");
  auto out = drain(std::string(topics::kResults), 2);
  std::set<std::string> values;
  for (auto& r : out) values.insert(r.value);
  EXPECT_TRUE(values.count("from-mailbox"));
  EXPECT_TRUE(values.count("punctuated"));
}

TEST_P(RuntimeTest, TrimDropsOnlyWhatEveryReaderConsumed) {
  if (kafka()) GTEST_SKIP() << "Kafka applies its own retention; KafkaLog::trim is a no-op";
  Topology topo;
  topo.add({"counter", {std::string(topics::kEvents)}, {"counts"}, 1, 64,
            [](int) { return std::make_unique<CountingProcessor>(); }});
  RuntimeOptions opts;
  opts.ids = &ids_;
  Runtime rt(*log_, topo, opts);
  ASSERT_TRUE(rt.start().ok());
  RecordPosition last;
  for (int i = 0; i < 100; ++i) {
    last = (*log_->produce({{std::string(topics::kEvents), "k", "ok"}}))[0];
  }
  ASSERT_TRUE(rt.applied().wait("counter", last.tp, last.offset, kWait));
  auto dropped = rt.trim_consumed(10);
  ASSERT_TRUE(dropped.ok()) << dropped.error().message;
  EXPECT_EQ(*dropped, 90);
  EXPECT_EQ(*rt.trim_consumed(10), 0);  // nothing new consumed
  // The tail is still readable; commands (consumed by nobody here) are untouched.
  EXPECT_EQ(drain(std::string(topics::kEvents), 10).size(), 10u);
  EXPECT_EQ(drain(std::string(topics::kCommands), 100).size(), 100u);
  // Offsets keep counting and the stage keeps working after a trim.
  auto next = (*log_->produce({{std::string(topics::kEvents), "k", "ok"}}))[0];
  EXPECT_EQ(next.offset, 100);
  ASSERT_TRUE(rt.applied().wait("counter", next.tp, next.offset, kWait));
  rt.stop();
  EXPECT_EQ(**(*db_->store("counter.counts"))->get("k"), "101");
}

TEST(AppliedOffsetsTest, WaitTimesOutAndWakes) {
  AppliedOffsets a;
  TopicPartition tp{"t", 0};
  EXPECT_FALSE(a.wait("s", tp, 0, 10ms));
  auto fut = std::async(std::launch::async, [&] { return a.wait("s", tp, 4, 5s); });
  a.advance("s", tp, 5);
  EXPECT_TRUE(fut.get());
  a.advance("s", tp, 3);  // never goes backwards
  EXPECT_EQ(a.applied("s", tp), 5);
}

// Records each transaction's size (after-commit hooks run once the batch is durable) and takes
// `cost` of wall time per record.
class SlowBatchProcessor : public Processor {
 public:
  SlowBatchProcessor(std::chrono::microseconds cost, std::vector<size_t>& sizes, std::mutex& mu)
      : cost_(cost), sizes_(sizes), mu_(mu) {}
  void process(const Record&, ProcessorContext& ctx) override {
    const auto until = std::chrono::steady_clock::now() + cost_;
    while (std::chrono::steady_clock::now() < until) {
    }
    if (current_++ == 0) {
      ctx.after_commit([this] {
        std::lock_guard lock(mu_);
        sizes_.push_back(current_);
        current_ = 0;
      });
    }
  }

 private:
  std::chrono::microseconds cost_;
  size_t current_ = 0;
  std::vector<size_t>& sizes_;
  std::mutex& mu_;
};

TEST_P(RuntimeTest, SlowTransactionsShrinkTheBatchToTheTimeBound) {
  // A backlog of records that cost 100 µs each, with a 2 ms bound per transaction: the first
  // batch takes max_batch (512, ~51 ms), then each slow one halves the next, down to kMinBatch —
  // so a stage under a flood commits (and its readers see its changes) every few milliseconds.
  std::vector<OutRecord> backlog;
  for (int i = 0; i < 1200; ++i) backlog.push_back({std::string(topics::kEvents), "k", "v"});
  auto positions = log_->produce(backlog);
  ASSERT_TRUE(positions.ok());
  std::vector<size_t> sizes;
  std::mutex mu;
  StageSpec spec{
      "slow", {std::string(topics::kEvents)},
      {},     1,
      512,    [&](int) {
                   return std::make_unique<SlowBatchProcessor>(100us, sizes, mu); }};
  spec.batch_time = 2ms;
  auto rt = start_stage(spec);
  for (const auto& p : *positions) ASSERT_TRUE(rt->applied().wait("slow", p.tp, p.offset, kWait));
  rt->stop();
  std::lock_guard lock(mu);
  ASSERT_GE(sizes.size(), 6u);
  size_t total = 0;
  for (size_t n : sizes) total += n;
  EXPECT_EQ(total, 1200u);
  EXPECT_GT(*std::max_element(sizes.begin(), sizes.end()), 64u);  // before the bound was hit
  // Once shrunk, the batches stay small: 16 records take at least 1.6 ms, never under half the
  // bound, so they never grow back while the backlog lasts.
  for (size_t i = sizes.size() - 3; i < sizes.size() - 1; ++i) EXPECT_LE(sizes[i], 32u) << i;
}

TEST_P(RuntimeTest, AHeldStageReadsNothingUntilItsHoldIsLifted) {
  // Admission control (StageSpec::hold): the records wait in the log, durable, and are processed
  // once the stages after it have caught up.
  std::atomic<bool> hold{true};
  std::atomic<int> asked{0};
  StageSpec spec{"held",     {std::string(topics::kEvents)},
                 {"counts"}, 1,
                 64,         [](int) { return std::make_unique<CountingProcessor>(); }};
  spec.hold = [&] {
    ++asked;
    return hold.load();
  };
  auto rt = start_stage(spec);
  std::vector<RecordPosition> positions;
  for (int i = 0; i < 10; ++i) {
    auto p = log_->produce({{std::string(topics::kEvents), "k" + std::to_string(i), "ok"}});
    ASSERT_TRUE(p.ok());
    positions.push_back((*p)[0]);
  }
  // Re-asked every few milliseconds while held, and nothing is applied meanwhile.
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (asked.load() < 10 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_GE(asked.load(), 10);
  EXPECT_EQ(rt->backlog("held"), 10);
  for (const auto& p : positions) EXPECT_FALSE(rt->applied().wait("held", p.tp, p.offset, 0ms));
  hold.store(false);
  for (const auto& p : positions) ASSERT_TRUE(rt->applied().wait("held", p.tp, p.offset, kWait));
  EXPECT_EQ(rt->backlog("held"), 0);
  EXPECT_EQ(drain(std::string(topics::kCommands), 10).size(), 10u);
  rt->stop();
}

TEST_P(RuntimeTest, AStageHeldLongerThanMaxPollIntervalKeepsItsPartitions) {
  // A held (or paused) stage does not poll for records; on Kafka it must still take part in its
  // group (keep_alive), or the group expels it after max.poll.interval.ms and its partitions
  // move away (a worker whose waiting queue is full behind long actions).
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(512);
  spdlog::default_logger()->sinks().push_back(sink);
  if (kafka()) {
    kafka_config_ = {{"max.poll.interval.ms", "3000"}};
    reopen();
  }
  std::atomic<bool> hold{false};
  StageSpec spec{"held",     {std::string(topics::kEvents)},
                 {"counts"}, 1,
                 64,         [](int) { return std::make_unique<CountingProcessor>(); }};
  spec.hold = [&] { return hold.load(); };
  auto rt = start_stage(spec);
  auto first = log_->produce({{std::string(topics::kEvents), "k0", "ok"}});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(rt->applied().wait("held", (*first)[0].tp, (*first)[0].offset, kWait));
  hold.store(true);
  std::this_thread::sleep_for(1500ms);  // the poll under way when the hold began has ended
  std::vector<RecordPosition> positions;
  for (int i = 1; i <= 5; ++i) {
    auto p = log_->produce({{std::string(topics::kEvents), "k" + std::to_string(i), "ok"}});
    ASSERT_TRUE(p.ok());
    positions.push_back((*p)[0]);
  }
  std::this_thread::sleep_for(kafka() ? 5s : 200ms);  // longer than max.poll.interval.ms
  for (const auto& p : positions) EXPECT_FALSE(rt->applied().wait("held", p.tp, p.offset, 0ms));
  hold.store(false);
  for (const auto& p : positions) ASSERT_TRUE(rt->applied().wait("held", p.tp, p.offset, kWait));
  EXPECT_EQ(drain(std::string(topics::kCommands), 6).size(), 6u);  // each once
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
  for (const auto& line : sink->last_formatted()) {  // before stop(), which revokes
    EXPECT_EQ(line.find("poll interval"), std::string::npos) << line;
    EXPECT_EQ(line.find("revoked"), std::string::npos) << line;
  }
  rt->stop();
}

// Consumer lag (issue 13): records behind and the age of what the stage last applied, per
// stage and topic, from memory (Kafka: librdkafka's cached watermarks).
TEST_P(RuntimeTest, LagCountsUnappliedRecordsAndTheirAge) {
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  class Gated : public Processor {
   public:
    explicit Gated(std::shared_future<void> open) : open_(std::move(open)) {}
    void process(const Record& r, ProcessorContext&) override {
      if (r.key == "gate") open_.wait();
    }

   private:
    std::shared_future<void> open_;
  };
  StageSpec spec{"lagging", {std::string(topics::kEvents)}, {}, 1, 64,
                 [open](int) { return std::make_unique<Gated>(open); }};
  auto rt = start_stage(spec);
  auto lag_of = [&] {
    for (const auto& l : rt->lag()) {
      if (l.stage == "lagging" && l.topic == topics::kEvents) return l;
    }
    return Runtime::Lag{};
  };
  // Caught up once it applied a first record.
  auto warm = log_->produce({{std::string(topics::kEvents), "warm", "x"}});
  ASSERT_TRUE(warm.ok());
  ASSERT_TRUE(rt->applied().wait("lagging", (*warm)[0].tp, (*warm)[0].offset, kWait));
  // Everything in the gate's partition after the gate waits, and so does the gate.
  auto first = log_->produce({{std::string(topics::kEvents), "gate", "x", (*warm)[0].tp.partition}});
  ASSERT_TRUE(first.ok());
  for (int i = 0; i < 9; ++i) {
    ASSERT_TRUE(log_->produce({{std::string(topics::kEvents), "k", "x", (*warm)[0].tp.partition}}).ok());
  }
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (lag_of().records != 10 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(lag_of().records, 10);
  std::this_thread::sleep_for(1100ms);
  EXPECT_GE(lag_of().seconds, 1.0) << "the last applied record is over a second old";
  gate.set_value();
  while ((lag_of().records != 0 || lag_of().seconds != 0) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(lag_of().records, 0);
  EXPECT_EQ(lag_of().seconds, 0);
  rt->stop();
}

}  // namespace
}  // namespace attune
