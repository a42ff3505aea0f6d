// The admission stage (DESIGN.md §2, §9): all executions of one action in one place. It consumes
// attune.admission, keyed by action ref (the executor's repartition of the executions an
// admission policy applies to), and answers the executor on attune.commands (keyed by the
// execution's root) — in the same transaction as its queues, counters and input offsets, so after
// a crash the queue order, the running counts and the statistics are exactly as committed.
//
// Records in (attune.admission, key = action ref):
//   admission.request {id, root, action_ref, group, at}  an execution asks to start
//   admission.release {id, action_ref}                    it ended (or was cancelled while queued)
//   admission.adopt   {id, root, action_ref, group}      one already running when the policy came
//                                                         (it counts as admitted; its end releases)
//   admission.pump    {action_ref}                        look at the queue again (a policy changed,
//                                                         the rate window moved, a restart)
// Records out:
//   admission.granted {id} / admission.rejected {id, error}   attune.commands, key = root
//   queue.stats {action_ref, active_count, max_concurrent, queue_length, total_enqueued,
//                total_completed, oldest_enqueued_at, last_updated}
//                                                        attune.executions, key = action ref;
//                once per changed action per batch (from punctuate), and for every action
//                after a restart
//
// Store "queues" (processors/RECORDS.md):
//   a:<action>                      the action's Counters, next sequence number, waiting groups
//   g:<action>\0<group>             a group: active, queued, head/tail sequence, head's time
//   q:<action>\0<group>\0<BE64 n>   a queued execution {id, root, at, seq}
//   e:<id>                          an execution's place: {action, group, state: active|queued
//                                   |released, n?}; "released" is kept (expiring) so a repeated
//                                   request or release changes nothing
//   w:<action>                      index of actions with executions waiting
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>

#include "processors/admission/admission.h"
#include "processors/admission/policy.h"
#include "topology/definitions_table.h"
#include "topology/store_expiry.h"
#include "topology/topology.h"

namespace attune::admission {

inline constexpr std::string_view kStage = "admission";
inline constexpr std::string_view kQueuesStore = "queues";
inline constexpr std::string_view kReject = "Concurrency limit reached";

struct AdmissionOptions {
  // How long a released execution's marker stays (against repeats of its records on Kafka).
  std::chrono::milliseconds retention{std::chrono::hours(1)};
  expiry::PruneSchedule prune;
};

class AdmissionProcessor final : public Processor {
 public:
  AdmissionProcessor(const DefinitionsTable& table, AdmissionOptions options = {});

  void init(ProcessorContext& ctx) override;
  void process(const Record& record, ProcessorContext& ctx) override;
  std::optional<SystemTime> punctuate(SystemTime now, ProcessorContext& ctx) override;
  void assigned(const std::vector<TopicPartition>& owned, ProcessorContext& ctx) override;

 private:
  struct Action;  // admission_processor.cc
  Action load_action(ProcessorContext& ctx, const std::string& ref);
  void store_action(ProcessorContext& ctx, Action& a);
  void on_request(ProcessorContext& ctx, const Json& p);
  void on_release(ProcessorContext& ctx, const Json& p);
  void on_adopt(ProcessorContext& ctx, const Json& p);
  // Starts what the limits allow now; remembers when the rate window frees the next start.
  // `only`: the group a record changed (without a rate limit only it can move).
  void pump(ProcessorContext& ctx, Action& a, const Limits& l, const std::string* only = nullptr);
  void publish_stats(ProcessorContext& ctx, Action& a, const Limits& l);
  // Publishes the action's queue.stats once the current batch is done (punctuate).
  void stats_due(ProcessorContext& ctx, const std::string& ref);

  const DefinitionsTable& table_;
  const AdmissionOptions options_;
  Resolver resolver_;
  state::Store* store_ = nullptr;
  expiry::Pruner pruner_;
  // Rate-window wake-ups by action (in memory: a restart pumps every waiting action anyway).
  std::map<std::string, int64_t, std::less<>> wakes_;
  uint64_t version_seen_ = 0;  // of the definitions table, to notice policy changes
  bool pump_all_ = true;
  bool stats_all_ = true;
  std::set<std::string> stats_due_;
};

}  // namespace attune::admission
