// ProjectionProcessor: the "api" stage that folds attune.events, attune.enforcements and
// attune.executions into query rows with secondary indexes and counters (DESIGN.md §5).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "api/projections/change_feed.h"
#include "api/projections/schema.h"
#include "topology/topology.h"

namespace attune::projections {

// Applies records (processors/RECORDS.md) to the stores "events", "enforcements" and
// "executions" of its stage. Every row write moves its index entries and counters in the same
// stage transaction, so rows, indexes, counters and consumed offsets commit atomically.
//
//   event.created        insert; a repeat of an existing id is ignored
//   enforcement.created  insert; a repeat is ignored
//   enforcement.updated  partial object merged into the row; unknown id → dead letter
//   execution.updated    upsert of the full object (without `old_status`); an identical row,
//                        or one older than the stored row (by `updated`, then status order),
//                        is ignored, so redelivered or replayed records change nothing
//
// Other record types on these topics are skipped. Changes are published to the ChangeFeed
// after commit, in record order. Single-threaded, like every Processor.
class ProjectionProcessor final : public Processor {
 public:
  explicit ProjectionProcessor(std::shared_ptr<ChangeFeed> feed);
  void init(ProcessorContext& ctx) override;
  void process(const Record& record, ProcessorContext& ctx) override;

 private:
  std::optional<Json> load(ProcessorContext& ctx, state::Store& store, int64_t id);
  // Writes `row` (replacing `old_row`, if any) with its index entries and counters.
  void apply(ProcessorContext& ctx, Entity entity, int64_t id, const std::optional<Json>& old_row,
             Json row);
  void bump(ProcessorContext& ctx, state::Store& store, const std::string& prefix, int64_t delta);
  state::Store& store_of(Entity entity);

  std::shared_ptr<ChangeFeed> feed_;
  state::Store* events_ = nullptr;
  state::Store* enforcements_ = nullptr;
  state::Store* executions_ = nullptr;
  std::vector<Change> pending_;  // changes of the open transaction, published after commit
};

}  // namespace attune::projections
