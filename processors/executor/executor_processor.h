// The executor stage (DESIGN.md §3): consumes attune.commands and attune.results, keeps the
// state machine of every execution in its store, and is the only writer of attune.executions.
#pragma once

#include <functional>
#include <string_view>

#include "processors/executor/decisions.h"
#include "topology/topology.h"

namespace attune::executor {

inline constexpr std::string_view kExecutionsStore = "executions";

struct ExecutorOptions {
  // Called once per execution that reaches a terminal status, after the change is durable
  // (for `attune_executions_total{status}`). Runs on the stage thread; may be empty.
  std::function<void(std::string_view status)> on_terminal;
};

// Thin I/O shell around decisions.h: loads the execution state, applies the decision, stores
// the new state and forwards its records. `table` is shared, must outlive the processor and be
// started. Unknown record types are ignored; malformed records are dead-lettered.
class ExecutorProcessor final : public Processor {
 public:
  ExecutorProcessor(const DefinitionsTable& table, ExecutorOptions options = {});

  void init(ProcessorContext& ctx) override;
  void process(const Record& record, ProcessorContext& ctx) override;

 private:
  std::optional<ExecutionState> load(ProcessorContext& ctx, int64_t id);
  void apply(ProcessorContext& ctx, int64_t id, Result<Outcome> outcome);

  const DefinitionsTable& table_;
  const ExecutorOptions options_;
  state::Store* store_ = nullptr;
};

}  // namespace attune::executor
