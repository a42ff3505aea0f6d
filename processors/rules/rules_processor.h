// The rules stage (DESIGN.md §3): consumes attune.events, produces one enforcement and one
// execution request per (event, matching enabled rule), deduped in its store.
#pragma once

#include <chrono>
#include <cstdint>

#include "processors/rules/matcher.h"
#include "topology/topology.h"

namespace attune::rules {

struct RulesOptions {
  // How long to wait for the DefinitionsTable to catch up with an event's defs_offset before
  // evaluating anyway (with a warning).
  std::chrono::milliseconds definitions_wait{10000};
};

// Store names the stage needs (StageSpec::stores).
inline constexpr std::string_view kDedupeStore = "dedupe";

// Thin I/O shell around decide(): waits for definitions, reads/writes the dedupe store, forwards
// the match records. `table` is shared, must outlive the processor and be started. A malformed
// event is dead-lettered (ProcessingError). Counters are per instance, for tests and logs.
class RulesProcessor final : public Processor {
 public:
  RulesProcessor(const DefinitionsTable& table, RulesOptions options = {});

  void init(ProcessorContext& ctx) override;
  void process(const Record& record, ProcessorContext& ctx) override;

  uint64_t evaluation_errors() const { return evaluation_errors_; }

 private:
  const DefinitionsTable& table_;
  const RulesOptions options_;
  state::Store* dedupe_ = nullptr;
  RuleCache cache_;
  uint64_t evaluation_errors_ = 0;
};

}  // namespace attune::rules
