// Projections: the API's read side over the "api" stage's stores — get and list of events,
// enforcements and executions by any filter, execution stats, read-your-writes waits and
// change hooks — and make_projection_stage(), which wires the stage into a Topology.
//
// Wiring (the Runtime reads the Topology only in start(), so the stage can be added after the
// Runtime exists and the read side can take its AppliedOffsets):
//
//   Topology topology;
//   Runtime runtime(log, topology, options);
//   auto stage = projections::make_projection_stage(log, runtime.applied());
//   if (!stage.ok()) return stage.error();
//   topology.add(std::move(stage->spec));
//   std::shared_ptr<projections::Projections> views = stage->projections;
//   views->add_change_hook(...);   // before start() to see every change
//   runtime.start();
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/projections/change_feed.h"
#include "api/projections/retention.h"
#include "api/projections/schema.h"
#include "topology/runtime.h"

namespace attune::projections {

// Filters of API.md §6 and §11.2; absent fields do not filter. Times are epoch ms:
// created_after is inclusive (created >= after), created_before exclusive (created < before).
struct EventFilter {
  std::optional<int64_t> trigger;            // trigger id
  std::optional<std::string> trigger_ref;
  std::optional<std::string> source;         // all digits: sensor id (`source`); else `source_ref`
  std::optional<int64_t> created_after;
  // Visibility (API.md §16.3): only rows whose record_scope() is one of these; nullopt: no
  // restriction; empty: nothing. Lists, totals and stats honour it (see Projections for cost).
  std::optional<std::vector<std::string>> scopes;
};

struct EnforcementFilter {
  std::optional<int64_t> rule;               // rule id
  std::optional<std::string> rule_ref;
  std::optional<int64_t> event;
  std::optional<std::string> status;
  std::optional<std::string> trigger_ref;
  std::optional<int64_t> created_after;
  // Visibility (API.md §16.3): only rows whose record_scope() is one of these; nullopt: no
  // restriction; empty: nothing. Lists, totals and stats honour it (see Projections for cost).
  std::optional<std::vector<std::string>> scopes;
};

struct ExecutionFilter {
  std::optional<std::string> action_ref;
  std::optional<std::string> pack_ref;
  std::vector<std::string> statuses;         // any of; empty: all
  std::optional<int64_t> enforcement;
  std::optional<int64_t> parent;
  std::optional<int64_t> rule;               // rule id
  std::optional<std::string> rule_ref;
  std::optional<std::string> trigger_ref;
  std::optional<int64_t> created_after;
  std::optional<int64_t> created_before;
  std::optional<std::string> result_contains;  // substring of the result's JSON text
  // Visibility (API.md §16.3): only rows whose record_scope() is one of these; nullopt: no
  // restriction; empty: nothing. Lists, totals and stats honour it (see Projections for cost).
  std::optional<std::vector<std::string>> scopes;
};

// Inquiry filters (API.md §13). assigned_to is matched as written (a login or an id's digits).
struct InquiryFilter {
  std::vector<std::string> statuses;  // any of; empty: all
  std::optional<int64_t> execution;
  std::optional<int64_t> created_by_execution;
  std::optional<std::string> assigned_to;
  // Visibility: the scopes of the inquiries' executions (record_scope(kInquiry)); see above.
  std::optional<std::vector<std::string>> scopes;
};

// A page of rows: skip `offset` matches, return at most `limit`. Order is by (created, id),
// newest first unless !descending (API.md §3).
struct Page {
  int64_t offset = 0;
  int64_t limit = 50;
  bool descending = true;
};

struct ListResult {
  Json items = Json::array();  // API objects; event rows are list rows (has_payload)
  int64_t total = 0;           // matches of the filter, regardless of the page
  bool total_exact = true;     // false: `total` is an estimate (see Projections)
};

struct ExecutionStats {
  int64_t total = 0;
  int64_t active = 0;                       // not in a terminal status
  std::map<std::string, int64_t> by_status;  // all ten statuses of API.md §11.1
  Json to_json() const;                     // {total, active, by_status}
};

// Thread-safe; shared by REST handlers on many threads. Reads go straight to the stores (no
// snapshot across one list: a row changing during a list may show its new state or be counted
// by its old one). Cost: a list scans the cheapest index among the filters given — its entries
// (by its counter), times a row read when another filter must be checked on rows — bounded by
// created_after/before; other filters are checked on the index entry (status and visibility
// scope are in every entry's value) or on the row. A page whose total counters know (see Totals
// below) reads only the index entries it needs; otherwise the count reads on, within a budget.
//
// Scopes (filters' `scopes`, up to kMaxScopePrefixes values) are one more index condition: with
// a status filter they select the by_status_scope prefixes of every (status, scope) pair (when
// there are at most kMaxScopePrefixes of them), else the by_scope prefixes, and the most
// selective condition is scanned as above — so a scoped page, alone or with statuses, merges a
// few prefixes in (created, id) order and takes its total from their counters. When another
// filter is more selective (action_ref, enforcement, parent, ...), its index is scanned and the
// scope checked on the row; when the scopes are more selective but another non-status filter is
// given, the scopes' prefixes are scanned and that filter checked on each row, so the total costs
// one row read per row in those scopes. execution_stats with only scopes (and statuses) reads one
// counter per (status, scope). More than kMaxScopePrefixes scopes are first narrowed to those that
// have rows (one counter read per scope, up to kMaxScopeLookups scopes); if more than
// kMaxScopePrefixes remain (or too many were given to look up), no index is used: the scope is
// checked on every row of the scanned range (by_created unless another filter applies) and the
// total counted over it — a full scan of the rows.
//
// Totals (issue 19). `total` is exact and read from counters, whatever the number of rows, when
// the filter is: nothing, statuses, scopes, or statuses + scopes (index counters); or one other
// filter with an index of shared values (action_ref, pack_ref, rule_ref, rule, trigger_ref; for
// events trigger, trigger_ref, source; for enforcements rule, rule_ref, trigger_ref), with any
// statuses and scopes (facet counters, schema.h) — the page then reads only the entries it needs.
// Any other total (two such filters, a created range, result_contains, too many scopes) is
// counted exactly while that takes at most 1024 units of work past the page (an index entry is 1,
// a row read for a predicate 8; projections.cc kCountBudget) — always when the scanned prefixes
// hold at most 512 entries, as for the per-record filters (enforcement, parent, event,
// execution) — and estimated beyond it:
// the matches counted so far plus the entries left in the scanned range times the share of the
// visited entries that matched; without a created range the entries left come from the counters,
// with one they are sampled (8 slices of the rest of the range, the first 16 entries of each give
// its density: a burst inside a slice is under- or over-counted). Never below what was seen + 1;
// `total_exact` is then false. Pages are always exact.
inline constexpr size_t kMaxScopePrefixes = 256;
inline constexpr size_t kMaxScopeLookups = 4096;

class Projections {
 public:
  // Opens the stores of the "api" stage on `log.db()`. `applied` is the Runtime's. Builds the
  // scope indexes and facet counters of rows written before they existed, once
  // (backfill_scope_index(), backfill_facets()), so call it before the Runtime starts the stage.
  static Result<std::shared_ptr<Projections>> open(Log& log, AppliedOffsets& applied);

  Result<std::optional<Json>> get_event(int64_t id) const;
  Result<std::optional<Json>> get_enforcement(int64_t id) const;
  Result<std::optional<Json>> get_execution(int64_t id) const;
  Result<std::optional<Json>> get_inquiry(int64_t id) const;

  Result<ListResult> list_events(const EventFilter& filter, const Page& page) const;
  Result<ListResult> list_enforcements(const EnforcementFilter& filter, const Page& page) const;
  Result<ListResult> list_executions(const ExecutionFilter& filter, const Page& page) const;
  Result<ExecutionStats> execution_stats(const ExecutionFilter& filter) const;
  Result<ListResult> list_inquiries(const InquiryFilter& filter, const Page& page) const;
  // The latest `queue.stats` payload of an action (API.md §15), nullopt before its first one.
  Result<std::optional<Json>> queue_stats(std::string_view action_ref) const;

  // Read-your-writes: true once this stage has applied `offset` of `tp` (a position in a topic
  // it consumes: events, enforcements, executions); false on timeout.
  bool wait_applied(const TopicPartition& tp, int64_t offset,
                    std::chrono::milliseconds timeout) const;
  // What this stage has applied: every partition with its next offset.
  std::vector<std::pair<TopicPartition, int64_t>> applied() const;
  // The execution row once it exists (and satisfies `until`, when given), or nullopt on timeout
  // or storage error. Blocks on the change feed; no polling.
  std::optional<Json> wait_for_execution(int64_t id, std::chrono::milliseconds timeout,
                                         const std::function<bool(const Json&)>& until = {}) const;

  // The executor's answer to an inquiry command sent with `request` (processors/RECORDS.md):
  // {code, id, message} once this stage has applied it (and with it the inquiry row), or nullopt
  // on timeout or storage error. Blocks on the change feed; no polling.
  std::optional<Json> wait_for_inquiry_outcome(int64_t request,
                                               std::chrono::milliseconds timeout) const;

  // Hooks see every change committed after registration (see ChangeFeed for threading).
  ChangeFeed::Handle add_change_hook(ChangeHook hook) { return feed_->add_hook(std::move(hook)); }
  void remove_change_hook(ChangeFeed::Handle handle) { feed_->remove_hook(handle); }

  // The feed the stage's processors publish to (used by make_projection_stage).
  const std::shared_ptr<ChangeFeed>& feed() const { return feed_; }

  Projections(const state::Store& events, const state::Store& enforcements,
              const state::Store& executions, const state::Store& inquiries,
              AppliedOffsets& applied);

 private:
  const state::Store& store_of(Entity e) const;
  Result<std::optional<Json>> get(Entity e, int64_t id) const;

  const state::Store& events_;
  const state::Store& enforcements_;
  const state::Store& executions_;
  const state::Store& inquiries_;
  AppliedOffsets& applied_;
  std::shared_ptr<ChangeFeed> feed_ = std::make_shared<ChangeFeed>();
};

struct ProjectionStageOptions {
  // Stage instances. Counters are kept per instance, so any number is correct; one is plenty
  // for a single API process.
  int instances = 1;
  size_t max_batch = 512;
  // History retention (`--history-keep`); by default everything is kept.
  RetentionOptions retention;
};

// The "api" stage spec (consumes events, enforcements, executions; owns the four stores) and
// the read side over the same stores. Add `spec` to the Topology run by the Runtime whose
// `applied()` was passed in.
struct ProjectionStage {
  StageSpec spec;
  std::shared_ptr<Projections> projections;
};
Result<ProjectionStage> make_projection_stage(Log& log, AppliedOffsets& applied,
                                              const ProjectionStageOptions& options = {});

}  // namespace attune::projections
