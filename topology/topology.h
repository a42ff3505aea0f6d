// Topology: named stages (Processors) wired to the topics they consume and the stores they own.
// The framework (Runtime), not the processor, owns consumers, stores, commits and threads.
//
// A stage instance is single-threaded: process(), punctuate() and mailbox tasks all run on its
// own thread, inside a transaction that commits the instance's store writes, its produced
// records and its consumed offsets together (DESIGN.md §3, §4).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "state/db.h"
#include "topology/core/clock.h"
#include "topology/core/ids.h"
#include "topology/core/record.h"
#include "topology/log.h"

namespace attune {

class ProcessorContext;

// Something a stage instance should do on its own thread, e.g. report a finished process.
using Task = std::function<void(ProcessorContext&)>;

// Thread-safe handle to post Tasks to a stage instance; wakes its loop at once.
class Mailbox {
 public:
  virtual ~Mailbox() = default;
  virtual void post(Task task) = 0;
};

// Raised by a processor for a record it cannot process; the record goes to the dead letter
// topic with `what()` as the reason and the stage continues. Any other std::exception is
// treated the same way.
class ProcessingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ProcessorContext {
 public:
  virtual ~ProcessorContext() = default;
  // A store of this stage. Reads through the context see this transaction's own writes.
  virtual state::Store& store(std::string_view name) = 0;
  virtual Result<std::optional<std::string>> get(state::Store& s, std::string_view key) = 0;
  virtual void put(state::Store& s, std::string key, std::string value) = 0;
  virtual void del(state::Store& s, std::string key) = 0;
  virtual Status scan(state::Store& s, std::string_view prefix, const state::ScanFn& fn,
                      bool reverse = false) = 0;
  // Produces a record as part of this transaction.
  virtual void forward(OutRecord record) = 0;
  void forward(std::string_view topic, std::string key, std::string value) {
    forward(OutRecord{std::string(topic), std::move(key), std::move(value)});
  }
  // Runs after this transaction is durable (e.g. start a process only once `running` is
  // recorded). Not run if the commit fails.
  virtual void after_commit(std::function<void()> fn) = 0;
  virtual const Clock& clock() const = 0;
  virtual IdGenerator& ids() = 0;
  virtual Mailbox& mailbox() = 0;
  virtual Log& log() = 0;
  virtual const std::string& stage() const = 0;
  virtual int instance() const = 0;
  // Asks for punctuate() no later than `at`, overriding a later time punctuate() returned (e.g.
  // a record just scheduled an earlier timer). Takes effect when the current batch is done.
  virtual void request_punctuate(SystemTime at) = 0;
  // Backpressure: while paused the stage reads no records (they wait, durable, in the log) but
  // still runs mailbox tasks and punctuation — a worker with every slot taken stops taking work
  // until a process ends. Takes effect from the next poll.
  virtual void pause_input(bool paused) = 0;
};

class Processor {
 public:
  virtual ~Processor() = default;
  virtual void init(ProcessorContext& /*ctx*/) {}
  // Handles one record. Throwing dead-letters the record (its effects are rolled back).
  virtual void process(const Record& record, ProcessorContext& ctx) = 0;
  // Called when the time it last asked for has come; returns the next time it wants, if any.
  virtual std::optional<SystemTime> punctuate(SystemTime /*now*/, ProcessorContext& /*ctx*/) {
    return std::nullopt;
  }
  virtual void close() {}
  // Logs that balance groups (Kafka): the partitions this instance owns changed — called on the
  // stage thread after the poll() that moved them, before any record of a new partition is
  // processed, with the stage's stores already restored from their changelogs; `owned` is all
  // it owns now (empty once everything was revoked). Never called on logs with a fixed
  // assignment (the embedded log), where an instance owns its partitions from init().
  virtual void assigned(const std::vector<TopicPartition>& /*owned*/, ProcessorContext& /*ctx*/) {}
};

struct StageSpec {
  std::string name;                 // also the consumer group and the store name prefix
  std::vector<std::string> topics;  // consumed
  std::vector<std::string> stores;  // owned; CF "<name>.<store>"
  int instances = 1;                // threads; partitions are split among them
  size_t max_batch = 512;           // records per transaction, at most
  std::function<std::unique_ptr<Processor>(int instance)> factory;
  // When > 0: a batch that wrote no state and produced no record commits its offsets up to this
  // much later (with the stage's next commit, or when the time is up) instead of at once. Only for
  // stages that skip most records (the sensor stage reads every definition but acts on few) and
  // for which processing such a record again after a crash does nothing.
  std::chrono::milliseconds lazy_offsets{0};
  // When set, the stage's consumer skips the records whose key this rejects
  // (Consumer::set_key_filter): process() never sees them and, on the embedded log, commits that
  // wrote only such records do not wake the stage.
  KeyFilter key_filter;
  // Latency bound: how many records a transaction takes adapts so that processing them takes
  // about this long — halved after a slower batch, doubled after a full one that took less than
  // half of it, between kMinBatch and max_batch (a commit's own cost, e.g. an fsync, is not
  // counted). Under a flood a stage then commits (and its changes become visible to readers and
  // notified) every few milliseconds rather than once per max_batch records; a stage that keeps
  // up is unaffected. Zero: always max_batch.
  std::chrono::microseconds batch_time{10'000};
  static constexpr size_t kMinBatch = 16;
  // Admission control: while this returns true the stage reads nothing (its input waits, durable,
  // in the log) and looks again every kHoldRecheck; mailbox tasks and punctuation still run. The
  // rules stage holds while the stages after it are far behind, so that under a flood the backlog
  // stays one event per webhook in attune.events instead of becoming executions that all wait.
  std::function<bool()> hold;
  static constexpr std::chrono::milliseconds kHoldRecheck{20};
};

class Topology {
 public:
  Topology& add(StageSpec spec) {
    stages_.push_back(std::move(spec));
    return *this;
  }
  const std::vector<StageSpec>& stages() const { return stages_; }

 private:
  std::vector<StageSpec> stages_;
};

}  // namespace attune
