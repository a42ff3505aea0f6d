// KafkaLog: the Log interface on Apache Kafka through librdkafka (DESIGN.md §1, §4) — the
// distributed mode. This header keeps librdkafka out of everyone else's includes.
//
// Guarantees: at-least-once delivery, exactly-once effect. commit() (1) produces the records
// and one changelog record per state write with the idempotent producer and waits for every
// acknowledgement, (2) applies the state batch to the local RocksDB, (3) then sends the
// consumed offsets to the group coordinator without waiting for the answer (a group member
// here owns the partitions; otherwise it waits; a member waits for them before giving up
// revoked partitions) — so offsets never run ahead of durable state and outputs. A crash between the steps, or an offset commit that never lands, replays records
// whose effects are deduped by natural keys in the consumers' stores.
//
// Consumer groups. A stage's group is a Kafka consumer group with cooperative-sticky
// rebalancing: processes running the same stage share its partitions. Before a consumer starts
// on newly assigned partitions, the stage's stores are restored from their compacted changelog
// topics ("attune.changelog.<stage>.<store>"), from where this process last restored.
// Two kinds of groups are different:
//   - local groups (e.g. the API's projections): every process keeps its own full copy; the
//     consumer is assigned every partition, and offsets are stored in the local database in the
//     same write as the state (exactly-once, like the embedded log);
//   - local-store groups (e.g. the worker): partitions are shared through the group, but the
//     stores describe this process only (its running children) and have no changelog.
// Thread-safety: every public method is thread-safe; a Consumer is used by one thread at a time
// (wakeup() from any thread).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "topology/log.h"

namespace attune {

// Progress of one store restore (logs and /metrics).
struct RestoreProgress {
  std::string store;
  int64_t restored = 0;  // records applied so far in this restore
  int64_t total = 0;     // records to apply (upper bound: compaction may have removed some)
  bool done = false;
};

struct KafkaOptions {
  std::string brokers;  // bootstrap.servers
  // Any librdkafka property, applied to every client after our defaults (SASL, TLS, tuning).
  std::vector<std::pair<std::string, std::string>> config;
  std::vector<TopicConfig> topics;  // created when missing (Admin API) with these counts
  int32_t changelog_partitions = 4;
  int16_t replication_factor = -1;  // -1: the broker's default
  std::set<std::string> local_groups;
  // Stores (full names, "<stage>.<store>") kept without a changelog, local to this process (a
  // worker's own in-flight children; its dispatch dedupe next to them has one, shared by every
  // worker).
  std::set<std::string> local_stores;
  // Per consumer group: librdkafka properties over our defaults for that group's clients (e.g.
  // a shorter session timeout for the sensor stage, whose failover it bounds); `config` still
  // wins.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> group_config;
  std::function<void(const RestoreProgress&)> on_restore;  // may be empty
  std::chrono::milliseconds timeout{15000};  // metadata, acks, offset commits, restores
};

class KafkaLog final : public Log {
 public:
  // Connects, creates missing topics and reads their partition counts. `db` is not owned and
  // must outlive the log.
  static Result<std::unique_ptr<KafkaLog>> open(state::Db& db, KafkaOptions options);
  ~KafkaLog() override;

  int32_t partitions(std::string_view topic) const override;
  Result<std::vector<RecordPosition>> commit(Transaction txn) override;
  Result<std::unique_ptr<Consumer>> subscribe(std::string group, std::vector<std::string> topics,
                                              std::vector<int32_t> partitions = {},
                                              bool from_beginning = true) override;
  Result<std::unique_ptr<Consumer>> reader(std::vector<std::string> topic_names) override;
  int64_t end_offset(const TopicPartition& tp) const override;
  // The high watermark librdkafka cached from the last fetch of the consumer of `group` that owns
  // `tp` (rd_kafka_get_watermark_offsets: no broker round trip), or what this process last
  // produced there if that is newer; nullopt when no consumer of the group here owns `tp`.
  std::optional<int64_t> cached_end_offset(const std::string& group,
                                           const TopicPartition& tp) const override;
  state::Db& db() override { return db_; }
  Result<int64_t> committed(const std::string& group, const TopicPartition& tp) const override;
  // Kafka applies its own retention (retention.ms / compaction); nothing to do here.
  Status trim(const TopicPartition&, int64_t) override { return {}; }
  Status attach_stores(const std::string& group, const std::vector<std::string>& stores) override;
  bool balances_groups() const override { return true; }

  // The changelog topic of a store.
  static std::string changelog_topic(std::string_view store) {
    return "attune.changelog." + std::string(store);
  }
  // Restores the changelogged stores of `group` (called before a consumer of the group starts
  // on new partitions). Exposed for tests.
  Status restore(const std::string& group);
  // Total records restored from changelogs since start (metrics).
  int64_t restored_records() const { return restored_total_.load(); }

  struct Impl;  // librdkafka handles and bookkeeping (kafka_log.cc)

 private:
  KafkaLog(state::Db& db, KafkaOptions options);
  state::Db& db_;
  const KafkaOptions options_;
  std::unique_ptr<Impl> impl_;
  std::atomic<int64_t> restored_total_{0};
};

// Parses "key=value" (the --kafka-config flag).
Result<std::pair<std::string, std::string>> parse_kafka_property(std::string_view text);

}  // namespace attune
