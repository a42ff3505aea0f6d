// The Log: partitioned topics of records, consumer groups with committed offsets, and atomic
// stage transactions (state writes + produced records + consumed offsets).
//
// Two implementations share this interface (DESIGN.md §1): EmbeddedLog (RocksDB, default) and
// KafkaLog (librdkafka, distributed). Stage code sees only this header.
#pragma once

#include <chrono>
#include <compare>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "state/db.h"
#include "topology/core/record.h"
#include "topology/core/result.h"

namespace attune {

// The topics of DESIGN.md §2.
namespace topics {
inline constexpr std::string_view kDefinitions = "attune.definitions";
inline constexpr std::string_view kWebhooks = "attune.webhooks";
inline constexpr std::string_view kEvents = "attune.events";
inline constexpr std::string_view kEnforcements = "attune.enforcements";
inline constexpr std::string_view kCommands = "attune.commands";
inline constexpr std::string_view kExecutions = "attune.executions";
inline constexpr std::string_view kDispatch = "attune.dispatch";
inline constexpr std::string_view kResults = "attune.results";
inline constexpr std::string_view kDeadletter = "attune.deadletter";
// The admission stage's input, keyed by action ref (DESIGN.md §2: the repartition for policies).
inline constexpr std::string_view kAdmission = "attune.admission";
// Extensions: raw events from Kafka producers (API.md §18) and worker heartbeats (compacted).
inline constexpr std::string_view kEventsIngress = "attune.events.ingress";
inline constexpr std::string_view kWorkers = "attune.workers";
}  // namespace topics

struct TopicConfig {
  std::string name;
  int32_t partitions = 1;
  bool compacted = false;
};

// The default topic set; `partitions` applies to the keyed work topics. Definitions have one
// partition so that every reader sees one total order of changes.
std::vector<TopicConfig> default_topics(int32_t partitions);

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

struct OffsetCommit {
  std::string group;
  TopicPartition tp;
  int64_t next_offset = 0;  // the first offset NOT yet processed
};

// Where a produced record landed.
struct RecordPosition {
  TopicPartition tp;
  int64_t offset = 0;
};

// What a stage commits at once. On the embedded log all three parts are one atomic write.
struct Transaction {
  state::WriteBatch state;
  std::vector<OutRecord> records;
  std::vector<OffsetCommit> offsets;
  bool empty() const { return state.empty() && records.empty() && offsets.empty(); }
};

// Which records a consumer wants, by record key.
using KeyFilter = std::function<bool(std::string_view key)>;

class Consumer {
 public:
  virtual ~Consumer() = default;
  // Returns up to `max_records` records past the current position, waiting up to `timeout`
  // when none is available. Advances the position past what it returns. Returns early, maybe
  // empty, after wakeup().
  virtual std::vector<Record> poll(size_t max_records, std::chrono::milliseconds timeout) = 0;
  // Makes a blocked or the next poll() return at once. Thread-safe.
  virtual void wakeup() = 0;
  // Current positions (next offset to read) of every assigned partition, as offsets to commit.
  virtual std::vector<OffsetCommit> positions() const = 0;
  virtual const std::string& group() const = 0;
  // From now on, poll() skips the records whose key `filter` rejects: it never returns them, but
  // moves the positions past them (so committing positions() commits them as done). A log that
  // can (EmbeddedLog) also stops waking this consumer for commits that wrote only such records;
  // they are skipped when it next polls. For consumers that act on a few kinds of records of a
  // busy topic (the sensor stage on attune.definitions, where datastore keys are written at API
  // rates). Call before polling; an empty filter takes every record.
  virtual void set_key_filter(KeyFilter filter) = 0;
  // Called instead of poll() while the stage reads nothing (Processor pause_input, admission
  // hold), at least every second: a group member keeps its membership without taking records
  // (KafkaLog pauses its partitions and serves the group protocol; a member that does not poll
  // within max.poll.interval.ms would be expelled). The next poll() resumes. Default: nothing.
  virtual void keep_alive() {}
  // Logs that balance groups (Log::balances_groups) move partitions between processes: a
  // counter that changes whenever this consumer's assignment changed (during a poll()), and the
  // partitions it owns now. Consumers with a fixed assignment keep generation 0.
  virtual uint64_t assignment_generation() const { return 0; }
  virtual std::vector<TopicPartition> assignment() const { return {}; }
  // With `on`, a poll() during which the assignment changed returns at once (maybe empty), so
  // that the caller acts on the new assignment without waiting out its timeout. Off by default.
  virtual void set_return_on_rebalance(bool /*on*/) {}
};

class Log {
 public:
  virtual ~Log() = default;
  virtual int32_t partitions(std::string_view topic) const = 0;
  // Commits a transaction atomically and returns the positions of its records, in order.
  // Thread-safe; concurrent commits are grouped into one write.
  virtual Result<std::vector<RecordPosition>> commit(Transaction txn) = 0;
  Result<std::vector<RecordPosition>> produce(std::vector<OutRecord> records) {
    Transaction txn;
    txn.records = std::move(records);
    return commit(std::move(txn));
  }
  using CommitCallback = std::function<void(Result<std::vector<RecordPosition>>)>;
  // commit() without holding the caller: `done` runs exactly once, when the transaction is
  // durable or has failed — on any thread, possibly before commit_async returns. It must be
  // quick and must not block on the log. By default: commit(), then done().
  virtual void commit_async(Transaction txn, CommitCallback done) {
    done(commit(std::move(txn)));
  }
  void produce_async(std::vector<OutRecord> records, CommitCallback done) {
    Transaction txn;
    txn.records = std::move(records);
    commit_async(std::move(txn), std::move(done));
  }
  // A consumer in `group` over `topics`. `partitions` restricts the assignment (same indexes for
  // every topic, taken modulo each topic's count); empty means all. Starts at the group's
  // committed offsets, or at `from_beginning` ? 0 : end when the group has none.
  virtual Result<std::unique_ptr<Consumer>> subscribe(std::string group,
                                                      std::vector<std::string> topic_names,
                                                      std::vector<int32_t> partitions = {},
                                                      bool from_beginning = true) = 0;
  // A consumer with no group: reads from offset 0, commits nothing (global tables).
  virtual Result<std::unique_ptr<Consumer>> reader(std::vector<std::string> topic_names) = 0;
  // The offset the next record produced to this partition will get.
  virtual int64_t end_offset(const TopicPartition& tp) const = 0;
  // The end offset of `tp` as far as this process knows it without asking anybody — for metrics
  // (consumer lag), read at every scrape. nullopt when `group` (a stage's consumer group) has no
  // consumer of `tp` in this process: on Kafka another member owns it and the lag is that
  // member's to report. By default end_offset(), which the embedded log keeps in memory.
  virtual std::optional<int64_t> cached_end_offset(const std::string& /*group*/,
                                                   const TopicPartition& tp) const {
    return end_offset(tp);
  }
  // The local state database (stage stores live here).
  virtual state::Db& db() = 0;
  // The committed position of `group` in `tp`, or -1 when it has none.
  virtual Result<int64_t> committed(const std::string& group, const TopicPartition& tp) const = 0;
  // Drops the records of `tp` below `offset` (retention). Logs with their own retention (Kafka)
  // may ignore it. Offsets of later records do not change.
  virtual Status trim(const TopicPartition& tp, int64_t offset) = 0;
  // The stores a stage (consumer group `group`) owns, by full name. KafkaLog keeps a compacted
  // changelog topic per store and restores the stores before the group's consumers process a
  // newly assigned partition. Logs whose state is local and atomic (EmbeddedLog) ignore it.
  virtual Status attach_stores(const std::string& /*group*/,
                               const std::vector<std::string>& /*stores*/) {
    return {};
  }
  // True when the log itself balances a group's partitions among the group's consumers (Kafka
  // consumer groups, across processes); the Runtime then lets every instance subscribe to every
  // partition instead of splitting them.
  virtual bool balances_groups() const { return false; }

  // Append listeners (optional): `fn` runs on the committing thread after every commit that
  // appended records to `topic`, once they are readable (end_offset() includes them), before that
  // commit's callbacks (commit_async) run and before the next commit is written — so calls are
  // serial, in offset order, and a reader of `topic` that catches up inside `fn` has seen every
  // record of the commit by the time its producer learns that it is durable. `fn` must be quick
  // and must not commit to the log. Returns an id for remove_append_listener(), or -1 when the log
  // has no listeners (KafkaLog: records may come from other processes) — follow the topic with a
  // consumer instead.
  virtual int add_append_listener(std::string_view /*topic*/, std::function<void()> /*fn*/) {
    return -1;
  }
  // Removes a listener; returns once no call of it is running. Not from inside the listener.
  virtual void remove_append_listener(int /*id*/) {}
};

}  // namespace attune
