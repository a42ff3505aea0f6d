// Regression tests for issue 12: the log's write pattern on an append store — records appended in
// order per partition while retention deletes the oldest of each partition with a range delete —
// under load and through a crash and write-ahead-log replay. With RocksDB 7.8.3's memtable insert
// hint on the append store (the build before the fix) both tests abort in inlineskiplist.h.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <thread>

#include "state/db.h"

namespace attune::state {
namespace {

constexpr int kPartitions = 4;
constexpr int kRounds = 300;
constexpr int kPerRound = 40;  // appends per partition per round
constexpr int kKeep = 50;      // retention keeps this many records per partition

std::string partition_prefix(int p) {
  std::string k = "attune.events";
  k.push_back('\0');
  return k + encode_be32(static_cast<uint32_t>(p));
}

DbOptions log_options() {
  DbOptions o;
  o.append_stores = {"__log"};  // as attune serve opens its database
  return o;
}

// The pattern of EmbeddedLog + Runtime::trim_consumed: each round appends a few records to every
// partition (one write per group commit, several partitions per write), then trims every
// partition below its end minus kKeep with one range delete.
void write_pattern(Db& db, Store& log) {
  uint64_t next[kPartitions] = {};
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kPerRound; ++i) {
      WriteBatch b;
      for (int p = 0; p < kPartitions; ++p) {
        b.put(log, partition_prefix(p) + encode_be64(next[p]), std::string(64, 'a' + p));
        ++next[p];
      }
      ASSERT_TRUE(db.write(b).ok());
    }
    for (int p = 0; p < kPartitions; ++p) {
      WriteBatch trim;
      trim.del_range(log, partition_prefix(p) + encode_be64(0),
                     partition_prefix(p) + encode_be64(next[p] - kKeep));
      ASSERT_TRUE(db.write(trim).ok());
    }
  }
}

// Every partition holds exactly its newest kKeep records, in offset order.
void expect_newest_records(Store& log) {
  const uint64_t end = static_cast<uint64_t>(kRounds) * kPerRound;
  for (int p = 0; p < kPartitions; ++p) {
    std::vector<uint64_t> offsets;
    ASSERT_TRUE(log.scan(partition_prefix(p),
                         [&](std::string_view k, std::string_view v) {
                           offsets.push_back(decode_be64(k.substr(k.size() - 8)));
                           EXPECT_EQ(v, std::string(64, 'a' + p));
                           return true;
                         })
                    .ok());
    std::vector<uint64_t> want;
    for (uint64_t o = end - kKeep; o < end; ++o) want.push_back(o);
    EXPECT_EQ(offsets, want) << "partition " << p;
  }
}

class AppendStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-append-" + std::to_string(std::random_device{}()));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(AppendStoreTest, AppendsBetweenRangeDeletesKeepEveryRecord) {
  auto db = Db::open(dir_.string(), log_options());
  ASSERT_TRUE(db.ok()) << db.error().message;
  Store& log = **(*db)->store("__log");
  write_pattern(**db, log);
  expect_newest_records(log);
}

TEST_F(AppendStoreTest, ConcurrentWritersAndTrimsKeepEveryRecord) {
  // Group commit: several threads write at once (RocksDB then inserts some groups in parallel
  // and some on the leader alone), while another trims.
  auto db = Db::open(dir_.string(), log_options());
  ASSERT_TRUE(db.ok()) << db.error().message;
  Store& log = **(*db)->store("__log");
  constexpr int kWriters = 4, kPerWriter = 3000;
  std::atomic<uint64_t> written[kWriters] = {};
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (uint64_t i = 0; i < kPerWriter; ++i) {
        WriteBatch b;
        b.put(log, partition_prefix(w) + encode_be64(i), "v");
        ASSERT_TRUE((*db)->write(b).ok());
        written[w].store(i + 1);
      }
      ++done;
    });
  }
  // Retention trims each partition up to a little behind what its writer has written.
  uint64_t trimmed[kWriters] = {};
  while (done.load() < kWriters) {
    for (int w = 0; w < kWriters; ++w) {
      const uint64_t upto = written[w].load() > 10 ? written[w].load() - 10 : 0;
      if (upto <= trimmed[w]) continue;
      WriteBatch t;
      t.del_range(log, partition_prefix(w) + encode_be64(0),
                  partition_prefix(w) + encode_be64(upto));
      ASSERT_TRUE((*db)->write(t).ok());
      trimmed[w] = upto;
    }
  }
  for (auto& t : threads) t.join();
  for (int w = 0; w < kWriters; ++w) {
    uint64_t expect = trimmed[w], n = 0;
    ASSERT_TRUE(log.scan(partition_prefix(w),
                         [&](std::string_view k, std::string_view) {
                           EXPECT_EQ(decode_be64(k.substr(k.size() - 8)), expect);
                           ++expect;
                           ++n;
                           return true;
                         })
                    .ok());
    EXPECT_EQ(expect, static_cast<uint64_t>(kPerWriter)) << "partition " << w << " saw " << n;
  }
}

TEST_F(AppendStoreTest, DirectoryLeftByACrashDuringThePatternRecoversEveryRecord) {
  // A child process writes the pattern and dies without closing the database (as kill -9
  // would): everything is in the write-ahead log, which the next open replays.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto db = Db::open(dir_.string(), log_options());
    if (!db.ok()) _exit(3);
    Store& log = **(*db)->store("__log");
    write_pattern(**db, log);
    _exit(::testing::Test::HasFailure() ? 2 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the writer died: "
      << (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                              : "exit " + std::to_string(WEXITSTATUS(status)));
  for (int reopen = 0; reopen < 2; ++reopen) {  // replayed once, then from its flushed state
    auto db = Db::open(dir_.string(), log_options());
    ASSERT_TRUE(db.ok()) << db.error().message;
    expect_newest_records(**(*db)->store("__log"));
  }
}

}  // namespace
}  // namespace attune::state
