// Unit tests for both Logs (embedded and Kafka on the mock cluster): produce/consume, partitioning, committed offsets across reopen,
// group commit under concurrency, blocking polls woken by producers and by wakeup().
#include <condition_variable>
#include <future>
#include <optional>
#include <set>
#include <thread>

#include "tests/unit/topology/test_util.h"

namespace attune {
namespace {

using testing::BothLogsFixture;
using testing::kWait;
using namespace std::chrono_literals;

class LogTest : public BothLogsFixture {};
ATTUNE_BOTH_LOGS(LogTest);

TEST_P(LogTest, ProducedRecordsAreConsumedInOrderPerPartition) {
  std::vector<OutRecord> recs;
  for (int i = 0; i < 30; ++i) {
    recs.push_back({std::string(topics::kEvents), "k" + std::to_string(i % 5), std::to_string(i)});
  }
  auto pos = log_->produce(recs);
  ASSERT_TRUE(pos.ok());
  ASSERT_EQ(pos->size(), 30u);
  auto c = log_->subscribe("g", {std::string(topics::kEvents)});
  ASSERT_TRUE(c.ok());
  std::vector<Record> got = poll_n(**c, 30, 7);
  ASSERT_EQ(got.size(), 30u);
  std::map<std::string, std::vector<int>> by_key;
  for (const auto& r : got) {
    EXPECT_EQ(r.partition, partition_for(r.key, 3));
    by_key[r.key].push_back(std::stoi(r.value));
  }
  for (auto& [k, v] : by_key) EXPECT_TRUE(std::is_sorted(v.begin(), v.end())) << k;
  EXPECT_TRUE((*c)->poll(10, 10ms).empty());
}

TEST_P(LogTest, CommittedOffsetsSurviveReopen) {
  std::vector<OutRecord> recs;
  for (int i = 0; i < 10; ++i) recs.push_back({std::string(topics::kCommands), "same", std::to_string(i)});
  ASSERT_TRUE(log_->produce(recs).ok());
  {
    auto c = log_->subscribe("g", {std::string(topics::kCommands)});
    auto batch = poll_n(**c, 4);
    ASSERT_EQ(batch.size(), 4u);
    Transaction t;
    t.offsets = (*c)->positions();
    ASSERT_TRUE(log_->commit(std::move(t)).ok());
  }
  reopen();
  auto c = log_->subscribe("g", {std::string(topics::kCommands)});
  auto batch = poll_n(**c, 6);
  ASSERT_EQ(batch.size(), 6u);
  EXPECT_TRUE((*c)->poll(100, 50ms).empty());
  EXPECT_EQ(batch.front().value, "4");
  // Producing after reopen continues the offsets.
  auto pos = log_->produce({{std::string(topics::kCommands), "same", "10"}});
  ASSERT_TRUE(pos.ok());
  EXPECT_EQ((*pos)[0].offset, 10);
}

TEST_P(LogTest, TransactionIsAtomicWithState) {
  auto store = db_->store("stage.s");
  ASSERT_TRUE(store.ok());
  Transaction t;
  t.state.put(**store, "k", "v");
  t.records.push_back({std::string(topics::kEvents), "a", "x"});
  t.offsets.push_back({"g", {std::string(topics::kCommands), 0}, 7});
  ASSERT_TRUE(log_->commit(std::move(t)).ok());
  EXPECT_EQ(**(*store)->get("k"), "v");
  EXPECT_EQ(*log_->committed("g", {std::string(topics::kCommands), 0}), 7);
}

TEST_P(LogTest, UnknownTopicIsRejected) {
  auto r = log_->produce({{"no.such.topic", "k", "v"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("unknown topic"), std::string::npos);
}

TEST_P(LogTest, ConcurrentCommitsGetUniqueContiguousOffsets) {
  constexpr int kThreads = 8, kEach = 300;
  std::vector<std::thread> ts;
  std::mutex mu;
  std::set<int64_t> offsets;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        auto pos = log_->produce({{std::string(topics::kDeadletter), "k", "v"}});
        ASSERT_TRUE(pos.ok());
        std::lock_guard lock(mu);
        offsets.insert((*pos)[0].offset);
      }
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_EQ(offsets.size(), size_t{kThreads * kEach});
  EXPECT_EQ(*offsets.begin(), 0);
  EXPECT_EQ(*offsets.rbegin(), kThreads * kEach - 1);
  EXPECT_EQ(log_->end_offset({std::string(topics::kDeadletter), 0}), kThreads * kEach);
}

TEST_P(LogTest, AsyncCommitsCallBackOnceEachAlongsideSyncCommits) {
  // Async producers (each waits for nothing) race sync producers; every callback runs exactly
  // once with its own position, and the offsets stay unique and contiguous.
  constexpr int kAsyncThreads = 4, kSyncThreads = 2, kEach = 200;
  std::mutex mu;
  std::condition_variable cv;
  std::set<int64_t> offsets;
  int callbacks = 0, failures = 0;
  std::vector<std::thread> ts;
  for (int t = 0; t < kAsyncThreads; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        log_->produce_async({{std::string(topics::kDeadletter), "k", "async"}},
                            [&](Result<std::vector<RecordPosition>> pos) {
                              std::lock_guard lock(mu);
                              ++callbacks;
                              if (!pos.ok() || pos->size() != 1) {
                                ++failures;
                              } else {
                                offsets.insert((*pos)[0].offset);
                              }
                              cv.notify_all();
                            });
      }
    });
  }
  for (int t = 0; t < kSyncThreads; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        auto pos = log_->produce({{std::string(topics::kDeadletter), "k", "sync"}});
        ASSERT_TRUE(pos.ok());
        std::lock_guard lock(mu);
        offsets.insert((*pos)[0].offset);
      }
    });
  }
  for (auto& t : ts) t.join();
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, kWait, [&] { return callbacks == kAsyncThreads * kEach; }))
      << callbacks << " callbacks";
  EXPECT_EQ(failures, 0);
  constexpr int kTotal = (kAsyncThreads + kSyncThreads) * kEach;
  ASSERT_EQ(offsets.size(), size_t{kTotal});
  EXPECT_EQ(*offsets.begin(), 0);
  EXPECT_EQ(*offsets.rbegin(), kTotal - 1);
  lock.unlock();
  std::this_thread::sleep_for(50ms);  // no late second call
  lock.lock();
  EXPECT_EQ(callbacks, kAsyncThreads * kEach);
}

TEST_P(LogTest, AsyncCommitOfUnknownTopicFailsThroughTheCallback) {
  std::optional<Status> got;
  log_->produce_async({{"no.such.topic", "k", "v"}},
                      [&](Result<std::vector<RecordPosition>> pos) {
                        got = pos.ok() ? Status{} : Status(pos.error());
                      });
  ASSERT_TRUE(got.has_value());
  EXPECT_FALSE(got->ok());
}

TEST_P(LogTest, PollBlocksUntilProduced) {
  auto c = log_->subscribe("g", {std::string(topics::kEvents)});
  auto fut = std::async(std::launch::async, [&] { return (*c)->poll(10, kWait); });
  // The poll is waiting; a produce must wake it long before its 10 s timeout.
  ASSERT_EQ(fut.wait_for(50ms), std::future_status::timeout);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(log_->produce({{std::string(topics::kEvents), "k", "v"}}).ok());
  auto got = fut.get();
  EXPECT_EQ(got.size(), 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, kafka() ? 15s : 5s);
}

TEST_P(LogTest, WakeupReturnsEmptyPoll) {
  auto c = log_->subscribe("g", {std::string(topics::kEvents)});
  auto fut = std::async(std::launch::async, [&] { return (*c)->poll(10, 10s); });
  ASSERT_EQ(fut.wait_for(20ms), std::future_status::timeout);
  (*c)->wakeup();
  EXPECT_EQ(fut.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(fut.get().empty());
}

TEST_P(LogTest, PartitionSubsetAndStartAtEnd) {
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(log_->produce({{std::string(topics::kEvents), std::to_string(i), "old"}}).ok());
  }
  auto c = log_->subscribe("late", {std::string(topics::kEvents)}, {1}, /*from_beginning=*/false);
  EXPECT_TRUE((*c)->poll(100, 10ms).empty());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(log_->produce({{std::string(topics::kEvents), std::to_string(i), "new"}}).ok());
  }
  auto got = poll_n(**c, 1);
  ASSERT_FALSE(got.empty());
  for (const auto& r : got) {
    EXPECT_EQ(r.partition, 1);
    EXPECT_EQ(r.value, "new");
  }
}

TEST_P(LogTest, KeyFilterSkipsRecordsButMovesPastThem) {
  const std::string topic(topics::kDeadletter);  // one partition
  ASSERT_TRUE(log_->produce({{topic, "key:a", "1"}, {topic, "rule:r", "2"}, {topic, "key:b", "3"},
                             {topic, "rule:s", "4"}, {topic, "key:c", "5"}})
                  .ok());
  auto c = log_->subscribe("g", {topic});
  ASSERT_TRUE(c.ok());
  (*c)->set_key_filter([](std::string_view key) { return key.rfind("rule:", 0) == 0; });
  std::vector<Record> got = poll_n(**c, 2, 100);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].value, "2");
  EXPECT_EQ(got[1].value, "4");
  // Positions include the skipped records, also those after the last one taken.
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while ((*c)->positions()[0].next_offset < 5 && std::chrono::steady_clock::now() < deadline) {
    EXPECT_TRUE((*c)->poll(10, 50ms).empty());
  }
  EXPECT_EQ((*c)->positions()[0].next_offset, 5);
  // Only skipped records: the poll waits out its timeout and returns nothing, positions moved.
  ASSERT_TRUE(log_->produce({{topic, "key:d", "6"}}).ok());
  const auto until = std::chrono::steady_clock::now() + kWait;
  while ((*c)->positions()[0].next_offset < 6 && std::chrono::steady_clock::now() < until) {
    EXPECT_TRUE((*c)->poll(10, 50ms).empty());
  }
  EXPECT_EQ((*c)->positions()[0].next_offset, 6);
  // A wanted record still wakes a blocked poll.
  auto later = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(50ms);
    return log_->produce({{topic, "key:e", "7"}, {topic, "rule:t", "8"}}).ok();
  });
  auto woken = poll_n(**c, 1, 10);
  ASSERT_TRUE(later.get());
  ASSERT_EQ(woken.size(), 1u);
  EXPECT_EQ(woken[0].value, "8");
}

// The mock cluster answers a waiting fetch when a record arrives, as a broker does (its
// long-poll proxy, topology/kafka_mock.h), not after fetch.wait.max.ms: a hop between stages
// costs round trips, not fetch waits.
TEST_P(LogTest, AFetchWaitingOnTheBrokerReturnsWhenARecordArrives) {
  if (!kafka()) GTEST_SKIP() << "Kafka fetches only";
  kafka_config_ = {{"fetch.wait.max.ms", "3000"}};
  reopen();
  auto c = log_->subscribe("g", {std::string(topics::kEvents)});
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(log_->produce({{std::string(topics::kEvents), "k", "warm"}}).ok());
  ASSERT_EQ(poll_n(**c, 1).size(), 1u);  // assigned and fetching
  // Ten hops, each produced while the consumer's fetch waits at the broker: on the bare mock
  // each would take up to 3 s.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(log_->produce({{std::string(topics::kEvents), "k", std::to_string(i)}}).ok());
    auto got = poll_n(**c, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].value, std::to_string(i));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

}  // namespace
}  // namespace attune

namespace attune {
namespace {

class EmbeddedLogTest : public testing::LogFixture {};

TEST_F(EmbeddedLogTest, AppendListenersRunOnceReadableInOrderBeforeCallbacks) {
  const std::string topic(topics::kEvents);
  std::mutex mu;
  std::vector<std::string> seen;  // what the listener and the callbacks saw, in order
  auto reader = log_->reader({topic});
  ASSERT_TRUE(reader.ok());
  const int id = log_->add_append_listener(topic, [&] {
    // Called serially: the reader is used by this listener only. A group may hold more records
    // than one poll returns: read until there is nothing more.
    for (auto batch = (*reader)->poll(16, 0ms); !batch.empty(); batch = (*reader)->poll(16, 0ms)) {
      std::lock_guard lock(mu);
      for (const Record& r : batch) seen.push_back("listener " + r.value);
    }
  });
  ASSERT_GE(id, 0);
  int other_calls = 0;
  const int other = log_->add_append_listener(topics::kCommands, [&] { ++other_calls; });
  std::atomic<int> pending{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 50; ++i) {
        const std::string v = std::to_string(w) + "." + std::to_string(i);
        ++pending;
        log_->produce_async({{topic, "k", v, 0}}, [&, v](Result<std::vector<RecordPosition>> pos) {
          EXPECT_TRUE(pos.ok());
          std::lock_guard lock(mu);
          seen.push_back("callback " + v);
          --pending;
        });
      }
    });
  }
  for (auto& t : writers) t.join();
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (pending.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(pending.load(), 0);
  log_->remove_append_listener(id);
  log_->remove_append_listener(other);
  ASSERT_TRUE(log_->produce({{topic, "k", "after"}}).ok());  // no listener any more
  std::lock_guard lock(mu);
  EXPECT_EQ(other_calls, 0);  // nothing was written to its topic
  ASSERT_EQ(seen.size(), 400u);
  // Every record reached the listener before its producer's callback.
  for (size_t i = 0; i < seen.size(); ++i) {
    if (seen[i].rfind("callback ", 0) != 0) continue;
    const std::string v = seen[i].substr(9);
    auto at = std::find(seen.begin(), seen.end(), "listener " + v);
    EXPECT_LT(at - seen.begin(), static_cast<std::ptrdiff_t>(i)) << v;
  }
  EXPECT_EQ(std::count_if(seen.begin(), seen.end(),
                          [](const std::string& s) { return s.rfind("listener ", 0) == 0; }),
            200);
}

TEST_F(EmbeddedLogTest, RecentRecordsProducedWithTheirEnvelopeAreHandedOverParsed) {
  const std::string topic(topics::kEvents);
  auto env = std::make_shared<const Envelope>(
      Envelope{"event.created", 7, "event:7", 1, "test", Json{{"x", 1}}});
  OutRecord with{topic, "k", env->dump(), 0, {}, env};
  OutRecord without{topic, "k", Envelope{"event.created", 8, "event:8", 1, "test", {}}.dump(), 0};
  ASSERT_TRUE(log_->produce({with, without}).ok());
  auto c = log_->subscribe("g", {topic});
  ASSERT_TRUE(c.ok());
  auto got = poll_n(**c, 2);
  ASSERT_EQ(got.size(), 2u);
  ASSERT_TRUE(got[0].parsed);
  EXPECT_EQ(got[0].parsed.get(), env.get());
  EXPECT_FALSE(got[1].parsed);
  // Consumers get the same Envelope either way.
  Envelope a, b;
  std::string error;
  ASSERT_TRUE(envelope_of(got[0], a, error));
  ASSERT_TRUE(envelope_of(got[1], b, error));
  EXPECT_EQ(a.payload, Json({{"x", 1}}));
  EXPECT_EQ(b.id, 8);

  // The window is bounded: far older records are read (and parsed) from storage, and a reader
  // that catches up reads the rest from memory.
  std::vector<OutRecord> many;
  for (int i = 0; i < 1100; ++i) many.push_back(with);
  ASSERT_TRUE(log_->produce(many).ok());
  auto from_start = log_->subscribe("g2", {topic});
  auto all = poll_n(**from_start, 1102, 100);
  ASSERT_EQ(all.size(), 1102u);
  EXPECT_FALSE(all[0].parsed);
  EXPECT_EQ(all[0].value, env->dump());
  EXPECT_TRUE(all.back().parsed);
}

TEST_F(EmbeddedLogTest, CompactionKeepsTheNewestRecordPerKeyAcrossIncrementalPasses) {
  const TopicPartition tp{std::string(topics::kDefinitions), 0};
  auto compact = [&] { return dynamic_cast<EmbeddedLog&>(*log_).compact(tp); };
  auto values = [&] {
    auto reader = log_->reader({tp.topic});
    std::vector<std::string> out;
    for (auto batch = (*reader)->poll(100, 0ms); !batch.empty(); batch = (*reader)->poll(100, 0ms)) {
      for (const auto& r : batch) out.push_back(r.key + "=" + r.value);
    }
    return out;
  };
  ASSERT_TRUE(log_->produce({{tp.topic, "a", "1"}, {tp.topic, "b", "1"}, {tp.topic, "a", "2"}}).ok());
  EXPECT_EQ(*compact(), 1);
  EXPECT_EQ(values(), (std::vector<std::string>{"b=1", "a=2"}));
  EXPECT_EQ(*compact(), 0);  // nothing new
  // Later records supersede records of earlier passes, and each other.
  ASSERT_TRUE(log_->produce({{tp.topic, "b", "2"}, {tp.topic, "c", "1"}, {tp.topic, "b", "3"}}).ok());
  EXPECT_EQ(*compact(), 2);
  EXPECT_EQ(values(), (std::vector<std::string>{"a=2", "c=1", "b=3"}));
  // Many superseded versions go in several deletes; a reopened log starts with a full pass.
  std::vector<OutRecord> many;
  for (int i = 0; i < 3000; ++i) many.push_back({tp.topic, "k" + std::to_string(i % 10), "v"});
  ASSERT_TRUE(log_->produce(many).ok());
  reopen();
  EXPECT_EQ(*compact(), 2990);
  EXPECT_EQ(values().size(), 13u);
  // Offsets keep counting after the gaps.
  auto pos = log_->produce({{tp.topic, "a", "3"}});
  EXPECT_EQ((*pos)[0].offset, 3006);
  EXPECT_EQ(*compact(), 1);
  EXPECT_EQ(values().size(), 13u);
}

TEST_F(EmbeddedLogTest, TheInMemoryWindowIsBoundedInBytes) {
  // Parsed 250 KB envelopes weigh ~750 KB each in the window: only the newest five fit in its
  // 4 MiB; the others are read back from storage, byte for byte.
  const std::string topic(topics::kEvents);
  std::vector<OutRecord> big;
  for (int i = 0; i < 10; ++i) {
    auto env = std::make_shared<const Envelope>(Envelope{
        "event.created", i + 1, "event", 1, "test", Json{{"blob", std::string(250000, 'a' + i)}}});
    big.push_back(OutRecord{topic, "k", env->dump(), 0, {}, env});
  }
  std::vector<std::string> values;
  for (const auto& r : big) values.push_back(r.value);
  ASSERT_TRUE(log_->produce(big).ok());
  auto c = log_->subscribe("g", {topic});
  auto got = poll_n(**c, 10, 1);
  ASSERT_EQ(got.size(), 10u);
  int parsed = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].value, values[i]);
    if (got[i].parsed) ++parsed;
  }
  EXPECT_EQ(parsed, 5);
  EXPECT_TRUE(got.back().parsed);
  EXPECT_FALSE(got.front().parsed);
}

TEST_F(EmbeddedLogTest, RetentionWhileProducingKeepsEveryRecordThroughReopen) {
  // Issue 12: the server's write pattern under load — producers appending to every partition
  // while retention trims each one right behind its consumer — on the database options of attune
  // serve. It aborted in RocksDB's memtable (insert hint shared with range deletions), while
  // writing or when the write-ahead log was replayed at the next open.
  const std::string topic(topics::kEvents);
  constexpr int kProducers = 3, kPerProducer = 2000, kKeep = 25;
  std::vector<std::thread> producers;
  for (int t = 0; t < kProducers; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < kPerProducer; ++i) {
        const std::string key = "k" + std::to_string((t * kPerProducer + i) % 7);
        ASSERT_TRUE(
            log_->produce({{topic, key, std::to_string(t) + ":" + std::to_string(i)}}).ok());
      }
    });
  }
  auto c = log_->subscribe("g", {topic});
  ASSERT_TRUE(c.ok());
  size_t consumed = 0;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (consumed < kProducers * kPerProducer && std::chrono::steady_clock::now() < deadline) {
    consumed += (*c)->poll(64, 100ms).size();
    for (const auto& o : (*c)->positions()) {
      ASSERT_TRUE(log_->trim(o.tp, o.next_offset - kKeep).ok());
    }
  }
  for (auto& p : producers) p.join();
  ASSERT_EQ(consumed, static_cast<size_t>(kProducers * kPerProducer));
  std::map<int32_t, int64_t> ends;
  for (int32_t p = 0; p < log_->partitions(topic); ++p) ends[p] = log_->end_offset({topic, p});

  reopen();  // replays the write-ahead log: the same inserts again
  auto fresh = log_->subscribe("after-reopen", {topic});
  ASSERT_TRUE(fresh.ok());
  size_t expected = 0;
  for (const auto& [p, end] : ends) expected += static_cast<size_t>(std::min<int64_t>(end, kKeep));
  auto kept = poll_n(**fresh, expected);
  ASSERT_EQ(kept.size(), expected);
  std::map<int32_t, std::vector<int64_t>> offsets;
  for (const auto& r : kept) offsets[r.partition].push_back(r.offset);
  for (const auto& [p, end] : ends) {
    std::vector<int64_t> want;
    for (int64_t o = std::max<int64_t>(0, end - kKeep); o < end; ++o) want.push_back(o);
    EXPECT_EQ(offsets[p], want) << "partition " << p;
    EXPECT_EQ(log_->end_offset({topic, p}), end);
  }
  EXPECT_TRUE((*fresh)->poll(10, 50ms).empty());
}

TEST_F(EmbeddedLogTest, ABusyTopicDoesNotStarveTheOtherTopicsOfAConsumer) {
  // Issue 12: the projection stage reads events, enforcements and executions. During a webhook
  // flood the events topic always had a full batch waiting, and execution changes were read only
  // after the flood: every poll must give each partition with records its turn.
  std::vector<OutRecord> flood;
  for (int i = 0; i < 3000; ++i) {
    flood.push_back({std::string(topics::kEvents), "e" + std::to_string(i), std::to_string(i)});
  }
  ASSERT_TRUE(log_->produce(flood).ok());
  ASSERT_TRUE(log_->produce({{std::string(topics::kExecutions), "x", "done"}}).ok());
  auto c = log_->subscribe("g", {std::string(topics::kEvents), std::string(topics::kExecutions)});
  ASSERT_TRUE(c.ok());
  auto first = (*c)->poll(64, 100ms);
  EXPECT_EQ(first.size(), 64u);
  EXPECT_TRUE(std::any_of(first.begin(), first.end(), [](const Record& r) {
    return r.topic == topics::kExecutions;
  })) << "the execution record waited behind the events";
  // Every partition of the busy topic gets its turn as well, and nothing is read twice.
  std::set<std::pair<int32_t, int64_t>> seen;
  std::set<int32_t> partitions_in_first;
  for (const auto& r : first) {
    if (r.topic == topics::kEvents) partitions_in_first.insert(r.partition);
    seen.emplace(r.topic == topics::kEvents ? r.partition : -1, r.offset);
  }
  EXPECT_EQ(partitions_in_first.size(), 3u);
  auto rest = poll_n(**c, 3001 - first.size());
  for (const auto& r : rest) {
    EXPECT_TRUE(seen.emplace(r.topic == topics::kEvents ? r.partition : -1, r.offset).second);
  }
  EXPECT_EQ(seen.size(), 3001u);
}

}  // namespace
}  // namespace attune
