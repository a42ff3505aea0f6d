// ProjectionProcessor: the "api" stage that folds attune.events, attune.enforcements and
// attune.executions into query rows with secondary indexes and counters (DESIGN.md §5).
#pragma once

#include <functional>

#include <memory>
#include <optional>
#include <vector>

#include "api/projections/change_feed.h"
#include "api/projections/retention.h"
#include "api/projections/schema.h"
#include "topology/topology.h"

namespace attune::projections {

// Applies records (processors/RECORDS.md) to the stores "events", "enforcements" and
// "executions" of its stage. Every row write moves its index entries, counters and facet counters
// (schema.h) in the same stage transaction, so rows, indexes, counters and consumed offsets
// commit atomically.
//
//   event.created        insert; a repeat of an existing id is ignored
//   enforcement.created  insert; a repeat is ignored
//   enforcement.updated  partial object merged into the row; unknown id → dead letter
//   execution.updated    upsert of the full object (without `old_status`); an identical row,
//                        or one older than the stored row (by `updated`, then status order),
//                        is ignored, so redelivered or replayed records change nothing
//   inquiry.updated      upsert of `inquiry` unless the stored row has the same or a later
//                        `rev`; with a `request`, also the command's outcome (see below)
//   inquiry.deleted      removes the row; its outcome
//   inquiry.outcome      a refused (or deduplicated) command: only its outcome
//
// Outcomes ("o/<request>" in the inquiries store, {code, id, message}) are what the API waits
// for after sending an inquiry command (Projections::wait_for_inquiry_outcome); each expires
// kInquiryOutcomeRetention after it was written (instance 0's punctuate()). A transaction that
// wrote only an outcome still advances the change feed's generation, which wakes the waiters.
//
// Other record types on these topics are skipped. Changes are published to the ChangeFeed
// after commit, in record order. Single-threaded, like every Processor.
//
// History retention (retention.h, `--history-keep`): instance 0 prunes the rows outside the
// bound from punctuate() every `retention.interval` — the row, all its index entries and its
// counters in one stage transaction, so lists, filters and totals never disagree. The instances
// share the stores; one pruning is enough, and it counts its deletions on its own counters, so
// the sums stay exact. A pruned row leaves a tombstone (t/<BE64 id>, expiring after
// `retention.tombstone_retention`) so that a redelivered record of it is ignored instead of
// bringing it back; pruned rows are not notified.
// Scope index backfill. Stores written before by_scope/by_status_scope existed have rows without
// those entries and counters; backfill_scope_index() adds them for every row of `store`, in
// batches of `batch_rows` rows, each one atomic write of the entries and the counters, which are
// kept under the reserved instance kBackfillInstance (readers sum every instance). A row whose
// entry exists already is skipped (its writer counted it), so an interrupted backfill (kill -9)
// simply runs again from the start at the next open and ends exact. Once done it writes the
// marker kScopeIndexMarker = kScopeIndexVersion and later opens return at once. It must run before
// the stage processes records or prunes (an update or pruning of a row without its entries would
// move counters it never added): Projections::open() runs it, and make_projection_stage() opens
// the stores before the Runtime starts. Not thread-safe against writers of the same store.
inline constexpr std::string_view kScopeIndexMarker = "m/scope_index";
inline constexpr std::string_view kScopeIndexVersion = "1";
inline constexpr int kBackfillInstance = 0x7fffffff;
// Returns the index entries it added (tests, logs). `max_batches` stops it after that many
// batches without the marker: tests use it to leave the state of an interrupted backfill.
Result<int64_t> backfill_scope_index(state::Db& db, state::Store& store, Entity entity,
                                     size_t batch_rows = 1024,
                                     size_t max_batches = static_cast<size_t>(-1));

// Facet counter backfill (schema.h, "Facet counters"). Stores written before the facet counters
// existed get them from one scan of their rows, counted in memory and written as absolute values
// of kBackfillInstance (in batches of `batch_keys` keys), then the marker kFacetMarker: an
// interrupted run writes the same values again at the next open. Stores with the marker return at
// once; a new store gets the marker at its first open (no rows), and from then on the stage keeps
// the counters with every row write. Same contract as backfill_scope_index(): it must run before
// the stage processes records (Projections::open() runs it). Returns the rows it counted.
Result<int64_t> backfill_facets(state::Db& db, state::Store& store, Entity entity,
                                size_t batch_keys = 65536);

inline constexpr std::chrono::milliseconds kInquiryOutcomeRetention{std::chrono::minutes(10)};

class ProjectionProcessor final : public Processor {
 public:
  explicit ProjectionProcessor(std::shared_ptr<ChangeFeed> feed, RetentionOptions retention = {});
  void init(ProcessorContext& ctx) override;
  void process(const Record& record, ProcessorContext& ctx) override;
  std::optional<SystemTime> punctuate(SystemTime now, ProcessorContext& ctx) override;
  // Rows pruned by this instance since it started (tests, logs).
  uint64_t pruned() const { return pruned_; }

 private:
  std::optional<Json> load(ProcessorContext& ctx, state::Store& store, int64_t id);
  // Writes `row` (replacing `old_row`, if any) with its index entries and counters.
  void apply(ProcessorContext& ctx, Entity entity, int64_t id, std::optional<Json> old_row,
             Json row);
  void bump(ProcessorContext& ctx, state::Store& store, const std::string& prefix, int64_t delta);
  void bump_key(ProcessorContext& ctx, state::Store& store, const std::string& key, int64_t delta);
  // Deletes a row, its index entries, and moves its counters and facet counters.
  void unindex(ProcessorContext& ctx, Entity entity, int64_t id, const Json& row);
  state::Store& store_of(Entity entity);
  // History retention (see the class comment). Each returns true when its budget stopped it.
  bool prune_executions(ProcessorContext& ctx, int64_t now_ms);
  // Removes the oldest rows of `entity` beyond the history bound that `prunable` accepts (the
  // status is the by_created index entry's value); true when more may be due.
  bool prune_referenced(
      ProcessorContext& ctx, Entity entity, int64_t now_ms,
      const std::function<bool(int64_t id, std::string_view status, int64_t created)>& prunable);
  bool prune_enforcements(ProcessorContext& ctx, int64_t now_ms);
  bool prune_events(ProcessorContext& ctx, int64_t now_ms);
  // Removes a row, its index entries and counters, and leaves its tombstone.
  void remove(ProcessorContext& ctx, Entity entity, int64_t id, int64_t now_ms);
  bool tombstoned(ProcessorContext& ctx, Entity entity, int64_t id);
  int64_t counter_sum(ProcessorContext& ctx, state::Store& store, const std::string& prefix);
  bool has_index_entry(ProcessorContext& ctx, state::Store& store, const std::string& prefix);

  std::shared_ptr<ChangeFeed> feed_;
  const RetentionOptions retention_;
  uint64_t pruned_ = 0;
  state::Store* events_ = nullptr;
  state::Store* enforcements_ = nullptr;
  state::Store* executions_ = nullptr;
  state::Store* inquiries_ = nullptr;
  // Inquiry records (see the class comment).
  void process_inquiry(const Envelope& env, ProcessorContext& ctx);
  void put_outcome(ProcessorContext& ctx, const Json& request, int64_t id, int code,
                   const std::string& message);
  SystemTime next_outcome_expiry_{};
  bool wake_ = false;            // the open transaction wrote an outcome
  bool publish_pending_ = false;  // the after-commit publish of the open transaction is set
  std::vector<Change> pending_;  // changes of the open transaction, published after commit
};

}  // namespace attune::projections
