// The rules stage (DESIGN.md §3): consumes attune.events, produces one enforcement and one
// execution request per (event, matching enabled rule), deduped in its store.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "processors/rules/matcher.h"
#include "topology/store_expiry.h"
#include "topology/topology.h"

namespace attune::rules {

struct RulesOptions {
  // How long to wait for the DefinitionsTable to catch up with an event's defs_offset before
  // evaluating anyway (with a warning).
  std::chrono::milliseconds definitions_wait{10000};
  // Called once per rule whose conditions or action_params failed to evaluate for an event
  // (counted as no match), from the stage thread; e.g. the /metrics counter. May be empty.
  std::function<void()> on_evaluation_error;
  // Datastore encryption: enables `keystore.*` in templates and sealing of secret parameters.
  std::shared_ptr<const keystore::Cipher> cipher;
  // Bounded dedupe store (issue 13). An (event, rule) entry matters only while the same event
  // can reach the stage again: a record redelivered after a crash (Kafka: from the group's last
  // committed offset; the embedded log never redelivers a committed record) or an event id that
  // an upstream replay produces again (timer ticks, Kafka ingress). Both happen within moments of
  // the first delivery, right after a restart, so an entry is deleted this long after it was
  // written — by the stage's punctuate(), in its own transaction (topology/store_expiry.h).
  std::chrono::milliseconds dedupe_retention{std::chrono::hours(1)};
  expiry::PruneSchedule prune;
};

// The due time of a dedupe entry written by a build without expiry entries: its value is the
// enforcement id, minted when the entry was written.
std::optional<int64_t> legacy_dedupe_due(std::string_view value, std::chrono::milliseconds retention);

// Store names the stage needs (StageSpec::stores).
inline constexpr std::string_view kDedupeStore = "dedupe";

// Thin I/O shell around decide(): waits for definitions, reads/writes the dedupe store, forwards
// the match records. `table` is shared, must outlive the processor and be started. A malformed
// event is dead-lettered (ProcessingError). Counters are per instance, for tests and logs.
// The rules of a trigger are fetched from the table once per definitions version and the
// dedupe store is read only for matching rules, so an event costs little more than evaluating
// its rules' conditions.
class RulesProcessor final : public Processor {
 public:
  RulesProcessor(const DefinitionsTable& table, RulesOptions options = {});

  void init(ProcessorContext& ctx) override;
  void process(const Record& record, ProcessorContext& ctx) override;
  std::optional<SystemTime> punctuate(SystemTime now, ProcessorContext& ctx) override;

  uint64_t evaluation_errors() const { return evaluation_errors_; }

 private:
  // The event's candidate rules; per trigger, valid while the table's version is unchanged.
  const std::vector<JsonPtr>& candidates(const EventInput& event);

  const DefinitionsTable& table_;
  const RulesOptions options_;
  state::Store* dedupe_ = nullptr;
  RuleCache cache_;
  uint64_t candidates_version_ = 0;
  std::map<std::string, std::vector<JsonPtr>, std::less<>> candidates_by_trigger_;
  std::vector<JsonPtr> targeted_;  // the event.rule_ref case (not cached)
  uint64_t evaluation_errors_ = 0;
  expiry::Pruner pruner_;
};

}  // namespace attune::rules
