// The sensor stage (DESIGN.md §3): consumes attune.definitions and produces attune.events.
//
//  * Timers: every enabled rule on a core timer trigger owns a timer (API.md §9.4). The stage
//    keeps each rule's TimerState in its store "timers"; the events of the ticks it fires and the
//    new states are committed in ONE transaction together with its definitions offset, so a tick
//    fires exactly once across crashes and restarts (the event id also derives from (rule,
//    scheduled time), see timer_event_id). Definitions are consumed as a stage topic, so the
//    store always matches the rules as of the committed offset.
//  * Custom sensors: when a definitions record touches rules, sensors or triggers, the stage asks
//    its SensorManager (if any) to reconcile the set of running sensor processes; events those
//    processes print on stdout come back through the stage's mailbox and are produced here.
//
// One instance (attune.definitions has one partition). Stage thread only.
//
// Ownership. On one machine the instance owns the timers and the sensors from init(). On Kafka
// every sensor process runs an instance in the consumer group "sensor", and only the member that
// is assigned attune.definitions (one partition) owns them: it loads the timers from its store
// (restored from the changelog before the assignment) when it is assigned the partition, and
// starts the custom sensors; a member losing the partition drops its timers and stops its sensors
// at once. A member taking over after its predecessor died fires every tick that came due in
// the gap (at most misfire_grace_ms overdue, late, each once: the predecessor committed the
// ticks it fired with its timer states); older ones follow the rule's catch_up. A tick whose
// commit the predecessor did not finish is fired again with the same event id (derived from
// rule slot and scheduled time), which the projections and the rules stage ignore.
//
//   init ──(embedded log)──────────────► owner
//   init ──(Kafka)──► standby ──assigned(definitions)──► owner ──revoked/lost──► standby
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "processors/sensor/timer_scheduler.h"
#include "topology/definitions_table.h"
#include "topology/topology.h"

namespace attune::sensor {

class SensorManager;
class SensorStatusPublisher;

inline constexpr std::string_view kTimersStore = "timers";

struct SensorStageOptions {
  const DefinitionsTable* definitions = nullptr;  // required; started, outlives the stage
  SensorManager* sensors = nullptr;               // custom sensors; null = timers only
  SensorStatusPublisher* publisher = nullptr;     // Kafka: told when ownership changes; may be null
  int64_t misfire_grace_ms = 60'000;              // see timer_scheduler.h
  size_t max_ticks_per_commit = 2048;
};

class SensorProcessor final : public Processor {
 public:
  explicit SensorProcessor(SensorStageOptions options);

  void init(ProcessorContext& ctx) override;
  // The definitions this stage acts on, by record key ("<kind>:<ref>"): its consumer's filter.
  static bool wants(std::string_view key);
  void process(const Record& record, ProcessorContext& ctx) override;
  std::optional<SystemTime> punctuate(SystemTime now, ProcessorContext& ctx) override;
  void close() override;
  void assigned(const std::vector<TopicPartition>& owned, ProcessorContext& ctx) override;

  const TimerScheduler& scheduler() const { return *scheduler_; }
  bool owner() const { return owner_; }

 private:
  // Loads the timers from the store and starts the custom sensors. `handover`: the stage ran
  // elsewhere until now, so ticks within the misfire grace are late, not missed.
  void take_over(ProcessorContext& ctx, bool handover);
  void give_up();
  void on_rule(const Envelope& e, bool deleted, ProcessorContext& ctx);
  Result<int64_t> allocate_slot(ProcessorContext& ctx);
  void free_slot(int64_t slot, ProcessorContext& ctx);
  void save(const TimerState& s, ProcessorContext& ctx);
  std::optional<TimerState> load(int64_t rule_id, ProcessorContext& ctx);
  void emit(const Tick& tick, const TimerState& s, int64_t now_ms, ProcessorContext& ctx);
  void want_punctuate(ProcessorContext& ctx);

  const SensorStageOptions options_;
  state::Store* store_ = nullptr;
  std::unique_ptr<TimerScheduler> scheduler_;
  bool owner_ = false;
};

// Adds the stage "sensor" (1 instance, consumes attune.definitions, store "timers").
void add_sensor_stage(Topology& topology, const SensorStageOptions& options);

}  // namespace attune::sensor
