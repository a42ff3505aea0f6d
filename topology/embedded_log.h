// EmbeddedLog: durable, partitioned topics inside the process's own RocksDB (the default).
//
// Records live in store "__log" under <topic>\0<partition BE32><offset BE64>; committed group
// offsets in "__offsets". commit() group-commits: concurrent callers queue their transactions,
// one of them (the leader) assigns offsets and writes everything in one RocksDB write, then wakes
// the others and the consumers of the topics it wrote (condition variables; no polling sleeps).
// commit_async() joins the same groups without blocking its caller: it leads at once when no one
// leads, otherwise the current leader's successor (a waiting committer, or the log's own async
// leader thread) writes it, and its callback runs on the thread that wrote it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "topology/core/hash.h"
#include "topology/log.h"

namespace attune {

class EmbeddedLog final : public Log {
 public:
  // Opens the log on `db` (not owned; must outlive the log) with these topics. Topic partition
  // counts are fixed on first use and kept in the database; a later, different count is ignored.
  static Result<std::unique_ptr<EmbeddedLog>> open(state::Db& db, std::vector<TopicConfig> topics);
  // The store holding the records (keys: topic, partition, big-endian offset). List it in
  // state::DbOptions::append_stores: appends then skip the memtable's search.
  static constexpr std::string_view kLogStore = "__log";

  ~EmbeddedLog() override;

  int32_t partitions(std::string_view topic) const override;
  Result<std::vector<RecordPosition>> commit(Transaction txn) override;
  void commit_async(Transaction txn, CommitCallback done) override;
  Result<std::unique_ptr<Consumer>> subscribe(std::string group, std::vector<std::string> topics,
                                              std::vector<int32_t> partitions = {},
                                              bool from_beginning = true) override;
  Result<std::unique_ptr<Consumer>> reader(std::vector<std::string> topic_names) override;
  int64_t end_offset(const TopicPartition& tp) const override;
  state::Db& db() override { return db_; }

  // Reads the records of one partition from `offset` (inclusive) below `end`, looking at up to
  // `max` of them; those whose key `filter` (if any) rejects are skipped. Returns the offset after
  // the last record looked at (`offset` when there was none).
  Result<int64_t> read(const TopicPartition& tp, int64_t offset, int64_t end, size_t max,
                       std::vector<Record>& out, const KeyFilter* filter = nullptr) const;
  // A consumer's wait slot: consumers sleep on their own condition variable and are woken only
  // by commits that wrote one of their topics (or by wakeup()), not by every commit.
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> topics;
    KeyFilter filter;  // Consumer::set_key_filter; guarded by the log's waiter list lock
  };
  void add_waiter(Waiter* w);
  void remove_waiter(Waiter* w);
  void set_waiter_filter(Waiter* w, KeyFilter filter);
  // Wakes `w` without losing a wakeup that races with its predicate check.
  static void wake(Waiter* w) {
    { std::lock_guard lock(w->mu); }
    w->cv.notify_all();
  }
  Result<int64_t> committed(const std::string& group, const TopicPartition& tp) const override;
  int add_append_listener(std::string_view topic, std::function<void()> fn) override;
  void remove_append_listener(int id) override;
  Status trim(const TopicPartition& tp, int64_t offset) override;
  // Compaction of a keyed topic (attune.definitions): deletes every record of `tp` that a later
  // record with the same key supersedes, keeping the newest record per key (tombstones included,
  // so a reader that applied an old upsert still sees its delete). Offsets of the kept records do
  // not change; readers skip the gaps. Returns how many records were dropped. Safe to run while
  // producers and readers are active (a record produced meanwhile is newer than any it drops).
  // Incremental: each call reads only the records appended since the previous one (the first
  // after opening reads them all) and deletes in small batches, so a busy datastore's log is
  // compacted without a full scan or one huge write per pass.
  Result<int64_t> compact(const TopicPartition& tp);

  static std::string log_key(const TopicPartition& tp, int64_t offset);

 private:
  EmbeddedLog(state::Db& db, state::Store* log, state::Store* offsets, state::Store* meta);
  struct Pending {
    Transaction* txn;
    std::vector<RecordPosition> positions;
    Status status;
    bool done = false;
    // commit_async only: the pending owns its transaction and is deleted after `callback`.
    Transaction owned;
    CommitCallback callback;
  };
  Status validate(const Transaction& txn) const;
  // Writes the queued group. With `hand_off`, wakes the async leader when commit_async calls
  // queued meanwhile wait; without, the caller writes them itself or wakes it.
  void lead(std::unique_lock<std::mutex>& lock, bool hand_off = true);
  static constexpr int kInlineGroups = 4;
  void async_leader_loop();
  // Drops the in-memory window of `tp` below `below`, or all of it.
  void forget_recent(const TopicPartition& tp, std::optional<int64_t> below);

  state::Db& db_;
  state::Store* log_;
  state::Store* offsets_;
  state::Store* meta_;
  std::map<std::string, TopicConfig, std::less<>> topics_;

  // Group commit.
  std::mutex commit_mu_;
  std::condition_variable commit_cv_;
  std::deque<Pending*> queue_;
  bool leading_ = false;
  size_t async_queued_ = 0;    // commit_async pendings in queue_
  std::condition_variable async_cv_;  // the async leader's: woken only when it has work
  bool stopping_ = false;
  std::thread async_leader_;  // started by the first commit_async that finds a leader busy
  std::map<TopicPartition, int64_t> next_offset_;  // guarded by commit_mu_ (leader only writes)

  // Published end offsets, read by consumers without the commit lock.
  mutable std::mutex end_mu_;
  std::map<TopicPartition, int64_t> end_offset_;

  // compact() is incremental: what it has read of each partition, and the newest offset of each
  // record key there.
  struct Compaction {
    int64_t scanned = 0;
    std::unordered_map<std::string, int64_t, TextHash, std::equal_to<>> newest;
  };
  std::mutex compact_mu_;
  std::map<TopicPartition, Compaction> compaction_;  // guarded by compact_mu_

  std::mutex waiters_mu_;
  std::vector<Waiter*> waiters_;
  // The topics some waiter with a key filter reads; guarded by waiters_mu_.
  std::vector<std::string_view> filtered_topics_;
  void note_filtered_topics();  // recomputes it; with waiters_mu_ held

  struct Listener {
    int id;
    std::string topic;
    std::function<void()> fn;
  };
  std::shared_mutex listeners_mu_;  // shared while the leader calls them
  std::vector<Listener> listeners_;
  int next_listener_id_ = 0;

  // The most recent records of each partition, in memory: consumers that keep up (every stage,
  // most of the time) read them without a RocksDB iterator, and records produced with their
  // parsed Envelope (OutRecord::parsed) are handed over parsed (Record::parsed). Offsets in a
  // partition's window are contiguous: every appended record enters it, in order.
  struct Recent {
    int64_t offset;
    int64_t timestamp_ms;
    std::string key;
    std::string value;
    std::shared_ptr<const Envelope> parsed;
  };
  struct Window {
    std::deque<Recent> items;
    size_t bytes = 0;  // keys + values (a value with its parsed envelope counted 3×)
  };
  // Bounds per partition: at most this many records, and this many bytes.
  static constexpr size_t kRecentRecords = 512;
  static constexpr size_t kRecentBytes = 4 * 1024 * 1024;
  static size_t weight(const Recent& r) {
    return r.key.size() + r.value.size() * (r.parsed ? 3 : 1);
  }
  mutable std::mutex recent_mu_;
  std::map<TopicPartition, Window> recent_;
};

}  // namespace attune
