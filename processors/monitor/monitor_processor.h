// The "monitor" stage: keeps, per worker, the attempts it reported `running` (from
// attune.results) and, when the WorkersView says the worker is gone (no heartbeat within the
// timeout, or stopped), reports each of those attempts `result.finished` with status
// `abandoned` on attune.results — so the executor ends them instead of leaving them `running`
// (DESIGN.md §4). A late real result of such an attempt is recorded, not applied, by the
// executor. Reports are idempotent (same natural key per attempt), so two monitors reporting
// the same attempt change nothing twice.
#pragma once

#include <chrono>
#include <set>
#include <string>

#include "processors/monitor/workers.h"
#include "topology/topology.h"

namespace attune::monitor {

inline constexpr std::string_view kRunningStore = "running";

struct MonitorOptions {
  const WorkersView* workers = nullptr;  // required; started; outlives the stage
  std::chrono::milliseconds check_interval{500};
  // A worker inactive this long leaves GET /workers (a `worker.forgotten` record), so the list
  // and the compacted attune.workers topic do not grow with every restart of a worker.
  std::chrono::milliseconds forget_after{std::chrono::hours(24)};
};

class MonitorProcessor final : public Processor {
 public:
  explicit MonitorProcessor(MonitorOptions options) : options_(options) {}
  void init(ProcessorContext& ctx) override;
  void process(const Record& record, ProcessorContext& ctx) override;
  std::optional<SystemTime> punctuate(SystemTime now, ProcessorContext& ctx) override;

 private:
  const MonitorOptions options_;
  state::Store* running_ = nullptr;
  std::set<std::string> forgotten_;  // workers this instance wrote worker.forgotten for
};

// Adds the "monitor" stage (1 instance, store "running") to a topology.
void add_monitor_stage(Topology& topology, const MonitorOptions& options);

}  // namespace attune::monitor
