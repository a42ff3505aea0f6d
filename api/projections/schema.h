// Key layout of the projection stores, shared by the writer (ProjectionProcessor) and the
// readers (Projections): rows, secondary indexes and per-index-prefix counters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "topology/core/record.h"

namespace attune::projections {

// The stage that maintains the projections, and its stores (column families "api.<store>").
inline constexpr std::string_view kStage = "api";
inline constexpr std::string_view kEventsStore = "events";
inline constexpr std::string_view kEnforcementsStore = "enforcements";
inline constexpr std::string_view kExecutionsStore = "executions";
inline constexpr std::string_view kInquiriesStore = "inquiries";

enum class Entity { kEvent, kEnforcement, kExecution, kInquiry };

const char* entity_name(Entity e);  // "event" | "enforcement" | "execution" | "inquiry"
// The entity an entity name (or notification entity type) stands for: an execution for anything
// but "event", "enforcement" and "inquiry" (e.g. "workflow_execution").
Entity entity_of(std::string_view name);
// Its RBAC resource (API.md §16.1): "events" | "enforcements" | "executions" | "inquiries".
const char* entity_resource(Entity e);

// The four inquiry statuses of API.md §13.
inline constexpr std::string_view kInquiryStatuses[] = {"pending", "responded", "timeout",
                                                        "cancelled"};

// The ten execution statuses of API.md §11.1, in lifecycle order.
inline constexpr std::string_view kExecutionStatuses[] = {
    "requested", "scheduling", "scheduled", "running",   "canceling",
    "completed", "failed",     "timeout",   "cancelled", "abandoned"};
bool is_terminal_execution_status(std::string_view status);
// Position in kExecutionStatuses; unknown statuses rank before every known one.
int execution_status_rank(std::string_view status);

// Layout of one entity store (every key is printable up to the fixed-width binary suffixes):
//
//   r/<BE64 id>                                      the row (API object, compact JSON)
//   i/<index>/<value>/<BE64 created_ms><BE64 id>     index entry; value: the row's status
//   i/by_created/<BE64 created_ms><BE64 id>           (executions, enforcements) or empty
//   c/<index>/<value>/<BE32 instance>                 entries under that index prefix written
//   c/by_created/<BE32 instance>                      by one stage instance (signed BE64)
//   m/scope_index                                     scope indexes built ("1"; see
//                                                     backfill_scope_index())
//   f/<index>/<value>/<entry value>/<BE32 instance>   facet counter: entries under that index
//                                                     prefix whose entry value (status:scope,
//                                                     index_entry_value) is <entry value>
//                                                     (escaped), for faceted indexes only
//   m/facets                                          facet counters built ("1"; see
//                                                     backfill_facets())
//
// "Index prefix" below means "<index>/<value>/" (or "by_created/"): the unit of both a prefix
// scan and a counter. Values are escaped so that '/' cannot occur inside them. Every index sorts
// by (created, id) within its prefix, so each filter is one ordered range scan.
inline constexpr std::string_view kByCreated = "by_created/";

// One secondary index: its name and how a row maps to its value (nullopt: not indexed).
struct IndexDef {
  std::string_view name;  // e.g. "by_status"
  std::optional<std::string> (*extract)(const Json& row);
};

// The indexes of an entity (by_created excluded; every row is in it).
const std::vector<IndexDef>& index_defs(Entity e);
const IndexDef* find_index(Entity e, std::string_view name);

std::string escape_value(std::string_view value);
std::string index_prefix(std::string_view index, std::string_view raw_value);  // escapes
std::string row_key(int64_t id);
std::string index_key(std::string_view prefix, int64_t created_ms, int64_t id);
std::string counter_key(std::string_view prefix, int instance);
inline std::string counter_prefix(std::string_view prefix) { return "c/" + std::string(prefix); }
// Parses an index key: the id and created_ms in its 16-byte suffix.
int64_t index_key_id(std::string_view key);
int64_t index_key_created(std::string_view key);

// Epoch ms of the row's `created` (RFC 3339 string or number); 0 when absent or invalid.
int64_t created_ms(const Json& row);
// The value stored in every index entry of this row: status_scope_value(status, scope) (status
// empty for events), so a list checks status and visibility scope on the entry without reading
// the row. Entries written before scopes were added hold the bare status (no ':'): readers then
// take the status from the whole value and read the row for the scope (entry_status/entry_scope).
std::string index_entry_value(Entity e, const Json& row);
// The status and the scope in an index entry's value; no scope in an entry of the older form.
std::string_view entry_status(std::string_view value);
std::optional<std::string_view> entry_scope(std::string_view value);
// Visibility scope of a derived record (API.md §16.3), from the row alone: derived records share
// their pack's visibility ("p:<pack>"), except that a user's own run of a shared `core` action is
// private to that identity ("i:<identity id>"). pack_of(ref) is the text before the first '.'
// ("" when there is none or the ref is not a string).
//
//   execution    rule_ref non-empty → "p:" + pack_of(rule_ref); else ap = pack_of(action_ref):
//                ap == "core" and `executor` an integer > 0 → "i:" + executor; else "p:" + ap
//   enforcement  "p:" + pack_of(rule_ref), or pack_of(trigger_ref) when that is empty
//   event        tp = pack_of(trigger_ref): tp == "core" and rule_ref non-empty →
//                "p:" + pack_of(rule_ref); else "p:" + tp
//   inquiry      its execution's scope, which the API stamps on the inquiry when it asks for it
//                (the internal field `scope`, never shown); "p:" when absent
//
// Every row is in by_scope/<scope>/; executions, enforcements and inquiries with a status are also in
// by_status_scope/<status>:<scope>/ (status first: statuses contain no ':'), so a scoped list
// with a status filter is a merge of exact prefixes and its total a sum of counters.
std::string record_scope(Entity e, const Json& row);
std::string pack_of(const Json& ref);
// The by_status_scope value of (status, scope).
std::string status_scope_value(std::string_view status, std::string_view scope);
inline constexpr std::string_view kByScope = "by_scope";
inline constexpr std::string_view kByStatusScope = "by_status_scope";

// The executor's answer to the inquiry command sent with `request` (inquiries store only):
// "o/<BE64 request>" → {code, id, message}; expires after kInquiryOutcomeRetention.
std::string inquiry_outcome_key(int64_t request);

// The admission stage's latest queue statistics of an action (executions store only):
// "q/<action ref>" → the payload of its last `queue.stats` record (API.md §15).
std::string queue_stats_key(std::string_view action_ref);

// Facet counters. An index is faceted when its values are shared by many rows and it is not
// itself status or scope (by_action, by_pack, by_rule, by_trigger, ...): ids of other records
// (by_enforcement, by_parent, by_event, by_execution, by_created_by_execution) are left out, their
// prefixes hold a handful of entries that a scan counts as fast. With them, a filter on one such
// index plus any statuses and scopes has an exact total from one short counter scan
// (facet_prefix(index prefix)): one counter per (status, scope) present under that value.
bool faceted_index(std::string_view index);
// Whether an index prefix ("<index>/<value>/") belongs to a faceted index.
bool faceted_prefix(std::string_view prefix);
inline std::string facet_prefix(std::string_view prefix) { return "f/" + std::string(prefix); }
std::string facet_key(std::string_view prefix, std::string_view entry_value, int instance);
// The entry value of a facet counter key under facet_prefix(prefix) (unescaped).
std::string facet_entry_value(std::string_view prefix, std::string_view key);
inline constexpr std::string_view kFacetMarker = "m/facets";
inline constexpr std::string_view kFacetVersion = "1";

// Every index prefix the row belongs to, by_created first.
std::vector<std::string> row_prefixes(Entity e, const Json& row);

// An Event as shown in list rows (API.md §7): payload and config replaced by has_payload.
Json event_list_row(const Json& row);

}  // namespace attune::projections
