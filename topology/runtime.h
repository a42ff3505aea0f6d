// Runtime: runs every stage instance of a Topology on its own thread — consume, process,
// commit — and reports how far each stage has applied each partition (for read-your-writes).
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "topology/topology.h"

namespace attune {

// How far stages have durably applied each partition. Thread-safe; waits use a condition
// variable (no polling).
class AppliedOffsets {
 public:
  void advance(const std::string& stage, const TopicPartition& tp, int64_t next_offset);
  // Waits until `stage` has applied `offset` of `tp`. False on timeout.
  bool wait(const std::string& stage, const TopicPartition& tp, int64_t offset,
            std::chrono::milliseconds timeout);
  int64_t applied(const std::string& stage, const TopicPartition& tp) const;
  // Durable and readable in the stage's stores, before the commit's hooks ran and advance()
  // released the waiters: what a reader of the stores can see (consistency tokens). No wakeups.
  void committed(const std::string& stage, const TopicPartition& tp, int64_t next_offset);
  // Every partition `stage` has committed something of, with its next offset (one lock).
  std::vector<std::pair<TopicPartition, int64_t>> of(const std::string& stage) const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::pair<std::string, TopicPartition>, int64_t> next_;
  std::map<std::pair<std::string, TopicPartition>, int64_t> committed_;
};

struct RuntimeOptions {
  const Clock* clock = &SystemClock::instance();
  IdGenerator* ids = nullptr;  // required
  // Called for every dead-lettered record (metrics, logs); may be empty.
  std::function<void(const std::string& stage, const Record&, const std::string& reason)>
      on_dead_letter;
};

class Runtime {
 public:
  Runtime(Log& log, const Topology& topology, RuntimeOptions options);
  ~Runtime();
  // Opens stores and consumers and starts every stage instance. Fails without starting any
  // thread if a store or consumer cannot be opened.
  Status start();
  // Asks every instance to finish its current transaction, closes processors, joins threads.
  void stop();
  AppliedOffsets& applied() { return applied_; }
  // Retention: drops records of the consumed, non-compacted topics that every stage reading
  // them has committed past, keeping the newest `keep` records of each partition for
  // inspection. Topics nobody in this topology consumes are left alone. Returns how many
  // records were dropped. Call from one thread at a time.
  Result<int64_t> trim_consumed(int64_t keep);
  // Per stage: records of its topics (all partitions) that it has not applied yet — what a flood
  // leaves to do. Thread-safe; from offsets kept in memory.
  std::vector<std::pair<std::string, int64_t>> backlog() const;
  // One stage's, in all its topics or in `topic` only; 0 if unknown.
  int64_t backlog(const std::string& stage, std::string_view topic = {}) const;
  // Consumer lag of one stage in one topic, over the partitions this process consumes
  // (Log::cached_end_offset: on Kafka, the partitions its consumers own).
  //   records  end offset − applied offset, summed over the partitions
  //   seconds  over the partitions that are behind, the largest (now − timestamp of the last
  //            record the stage applied there) — how old the records it is working on are; while
  //            a partition that is behind has had nothing applied since start, the time since
  //            the start. 0 when caught up.
  struct Lag {
    std::string stage;
    std::string topic;
    int64_t records = 0;
    double seconds = 0;
  };
  // Every stage × topic. Thread-safe; no I/O (offsets and timestamps kept in memory).
  std::vector<Lag> lag() const;
  // Set when a stage hit a fatal error (a commit failed) and stopped.
  bool failed() const { return failed_.load(); }

 private:
  class Instance;
  Log& log_;
  const Topology& topology_;
  RuntimeOptions options_;
  AppliedOffsets applied_;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::atomic<bool> failed_{false};
  std::atomic<bool> started_{false};
  std::map<TopicPartition, int64_t> trimmed_;  // below this offset already dropped
  // Timestamp of the last record each stage applied per partition (Lag::seconds).
  void note_applied_ts(const std::string& stage, const TopicPartition& tp, int64_t ts_ms);
  mutable std::mutex applied_ts_mu_;
  std::map<std::pair<std::string, TopicPartition>, int64_t> applied_ts_;
  int64_t started_ms_ = 0;
};

}  // namespace attune
