// The "api" projection stage: rows, index entries and counters from event, enforcement and
// execution records.
#include "api/projections/projection_processor.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "topology/store_expiry.h"

#include "topology/core/time.h"

namespace attune::projections {
namespace {

int64_t entity_id(const Envelope& env) {
  if (!env.payload.is_object()) throw ProcessingError(env.type + ": payload is not an object");
  auto it = env.payload.find("id");
  const int64_t id = (it != env.payload.end() && it->is_number_integer()) ? it->get<int64_t>()
                                                                        : env.id;
  if (id <= 0) throw ProcessingError(env.type + ": no positive id");
  return id;
}

int64_t updated_ms(const Json& row) {
  auto it = row.find("updated");
  if (it == row.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) return parse_rfc3339_ms(it->get_ref<const std::string&>()).value_or(0);
  return 0;
}

std::string status_text(const Json& row) {
  auto it = row.find("status");
  return it != row.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// True when `incoming` is an older state of the execution than `stored` (a replay).
bool is_stale_execution(const Json& incoming, const Json& stored) {
  const int64_t in_ms = updated_ms(incoming);
  const int64_t st_ms = updated_ms(stored);
  if (in_ms != st_ms) return in_ms < st_ms;
  return execution_status_rank(status_text(incoming)) < execution_status_rank(status_text(stored));
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// A pruned row's marker: "t/<BE64 id>" (expired by a store_expiry entry).
std::string tombstone_key(int64_t id) {
  return "t/" + state::encode_be64(static_cast<uint64_t>(id));
}

std::string index_scan_prefix(std::string_view index, std::string_view raw_value) {
  return "i/" + index_prefix(index, raw_value);
}

}  // namespace

Result<int64_t> backfill_scope_index(state::Db& db, state::Store& store, Entity entity,
                                     size_t batch_rows, size_t max_batches) {
  auto marker = store.get(kScopeIndexMarker);
  if (!marker.ok()) return marker.error();
  if (marker->has_value() && **marker == kScopeIndexVersion) return int64_t{0};
  std::vector<const IndexDef*> defs;
  for (std::string_view name : {kByScope, kByStatusScope}) {
    if (const IndexDef* d = find_index(entity, name)) defs.push_back(d);
  }
  std::map<std::string, int64_t> counters;  // prefix → committed value of kBackfillInstance
  int64_t added = 0;
  std::string resume = "r/";
  bool skip_resume = false;
  for (;;) {
    std::vector<std::pair<std::string, std::string>> rows;
    auto st = store.scan(
        "r/",
        [&](std::string_view k, std::string_view v) {
          if (skip_resume && k == resume) return true;
          rows.emplace_back(std::string(k), std::string(v));
          return rows.size() < batch_rows;
        },
        false, resume);
    if (!st.ok()) return st.error();
    if (rows.empty()) break;
    state::WriteBatch batch;
    std::vector<std::string> touched;
    for (const auto& [key, value] : rows) {
      const Json row = Json::parse(value, nullptr, false);
      if (row.is_discarded()) return make_error(Errc::kInternal, "corrupt row in " + store.name());
      const int64_t id = static_cast<int64_t>(state::decode_be64(std::string_view(key).substr(2)));
      const int64_t created = created_ms(row);
      const std::string entry_value = index_entry_value(entity, row);
      for (const IndexDef* d : defs) {
        const auto v = d->extract(row);
        if (!v) continue;
        const std::string prefix = index_prefix(d->name, *v);
        std::string ikey = index_key(prefix, created, id);
        auto existing = store.get(ikey);
        if (!existing.ok()) return existing.error();
        if (existing->has_value()) continue;
        batch.put(store, std::move(ikey), entry_value);
        auto [it, inserted] = counters.try_emplace(prefix, 0);
        if (inserted) {
          auto c = store.get(counter_key(prefix, kBackfillInstance));
          if (!c.ok()) return c.error();
          if (c->has_value()) it->second = static_cast<int64_t>(state::decode_be64(**c));
        }
        ++it->second;
        if (!contains(touched, prefix)) touched.push_back(prefix);
        ++added;
      }
    }
    for (const auto& p : touched) {
      batch.put(store, counter_key(p, kBackfillInstance),
                state::encode_be64(static_cast<uint64_t>(counters[p])));
    }
    if (!batch.empty()) {
      if (auto w = db.write(batch); !w.ok()) return w.error();
    }
    resume = rows.back().first;
    skip_resume = true;
    if (--max_batches == 0) return added;
  }
  state::WriteBatch done;
  done.put(store, std::string(kScopeIndexMarker), std::string(kScopeIndexVersion));
  if (auto w = db.write(done); !w.ok()) return w.error();
  return added;
}

Result<int64_t> backfill_facets(state::Db& db, state::Store& store, Entity entity,
                                size_t batch_keys) {
  auto marker = store.get(kFacetMarker);
  if (!marker.ok()) return marker.error();
  if (marker->has_value() && **marker == kFacetVersion) return int64_t{0};
  // The whole count first (absolute values, so a rerun after an interruption writes the same).
  std::map<std::string, int64_t> counts;  // facet key of kBackfillInstance → rows
  int64_t rows = 0;
  auto st = store.scan("r/", [&](std::string_view, std::string_view v) {
    const Json row = Json::parse(v, nullptr, false);
    if (row.is_discarded()) return true;  // a list reading it reports the corruption
    ++rows;
    const std::string value = index_entry_value(entity, row);
    for (const auto& d : index_defs(entity)) {
      if (!faceted_index(d.name)) continue;
      if (auto iv = d.extract(row)) {
        ++counts[facet_key(index_prefix(d.name, *iv), value, kBackfillInstance)];
      }
    }
    return true;
  });
  if (!st.ok()) return st.error();
  state::WriteBatch batch;
  for (const auto& [key, n] : counts) {
    batch.put(store, key, state::encode_be64(static_cast<uint64_t>(n)));
    if (batch.size() >= batch_keys) {
      if (auto w = db.write(batch); !w.ok()) return w.error();
      batch = state::WriteBatch();
    }
  }
  batch.put(store, std::string(kFacetMarker), std::string(kFacetVersion));
  if (auto w = db.write(batch); !w.ok()) return w.error();
  return rows;
}

ProjectionProcessor::ProjectionProcessor(std::shared_ptr<ChangeFeed> feed,
                                         RetentionOptions retention)
    : feed_(std::move(feed)), retention_(retention) {}

void ProjectionProcessor::init(ProcessorContext& ctx) {
  events_ = &ctx.store(kEventsStore);
  enforcements_ = &ctx.store(kEnforcementsStore);
  executions_ = &ctx.store(kExecutionsStore);
  inquiries_ = &ctx.store(kInquiriesStore);
}

state::Store& ProjectionProcessor::store_of(Entity entity) {
  switch (entity) {
    case Entity::kEvent:
      return *events_;
    case Entity::kEnforcement:
      return *enforcements_;
    case Entity::kExecution:
      return *executions_;
    case Entity::kInquiry:
      return *inquiries_;
  }
  return *events_;
}

void ProjectionProcessor::process(const Record& record, ProcessorContext& ctx) {
  Envelope env;
  std::string error;
  if (!envelope_of(record, env, error)) throw ProcessingError(error);

  if (record.topic == topics::kEvents && env.type == "event.created") {
    const int64_t id = entity_id(env);
    if (load(ctx, *events_, id)) return;  // events are immutable: a repeat changes nothing
    if (tombstoned(ctx, Entity::kEvent, id)) return;  // pruned: a repeat does not revive it
    Json row = std::move(env.payload);
    row.erase("defs_offset");
    apply(ctx, Entity::kEvent, id, std::nullopt, std::move(row));
  } else if (record.topic == topics::kEnforcements && env.type == "enforcement.created") {
    const int64_t id = entity_id(env);
    if (load(ctx, *enforcements_, id)) return;
    if (tombstoned(ctx, Entity::kEnforcement, id)) return;
    apply(ctx, Entity::kEnforcement, id, std::nullopt, std::move(env.payload));
  } else if (record.topic == topics::kEnforcements && env.type == "enforcement.updated") {
    const int64_t id = entity_id(env);
    auto old_row = load(ctx, *enforcements_, id);
    if (!old_row) {
      if (tombstoned(ctx, Entity::kEnforcement, id)) return;
      throw ProcessingError("enforcement.updated for unknown enforcement " + std::to_string(id));
    }
    Json row = *old_row;
    for (auto& [field, value] : env.payload.items()) row[field] = value;
    if (row == *old_row) return;
    apply(ctx, Entity::kEnforcement, id, std::move(old_row), std::move(row));
  } else if (record.topic == topics::kExecutions && env.type == "execution.updated") {
    const int64_t id = entity_id(env);
    Json row = std::move(env.payload);
    row.erase("old_status");
    auto old_row = load(ctx, *executions_, id);
    if (old_row && (*old_row == row || is_stale_execution(row, *old_row))) return;
    if (!old_row && tombstoned(ctx, Entity::kExecution, id)) return;
    apply(ctx, Entity::kExecution, id, std::move(old_row), std::move(row));
  } else if (record.topic == topics::kExecutions && env.type.rfind("inquiry.", 0) == 0) {
    process_inquiry(env, ctx);
  } else if (record.topic == topics::kExecutions && env.type == "queue.stats") {
    // The admission stage's latest statistics of one action replace the previous ones; records
    // of one action share a partition (keyed by its ref), so the last applied is the newest.
    const Json& p = env.payload;
    if (!p.is_object() || !p.value("action_ref", Json()).is_string() ||
        p["action_ref"].get<std::string>().empty()) {
      throw ProcessingError("queue.stats: payload needs an action_ref");
    }
    ctx.put(*executions_, queue_stats_key(p["action_ref"].get<std::string>()), p.dump());
    return;  // nothing to notify
  } else {
    return;  // not a projected record type
  }

  // One after-commit callback per transaction publishes every change of it, in order. It is
  // registered only once this record can no longer fail, so a rolled-back record leaves neither
  // a change nor a callback behind.
  if (!publish_pending_ && (!pending_.empty() || wake_)) {
    publish_pending_ = true;
    ctx.after_commit([this] {
      std::vector<Change> changes = std::move(pending_);
      pending_.clear();
      wake_ = false;
      publish_pending_ = false;
      feed_->publish(changes);
    });
  }
}

void ProjectionProcessor::put_outcome(ProcessorContext& ctx, const Json& request, int64_t id,
                                      int code, const std::string& message) {
  if (!request.is_number_integer()) return;
  std::string key = inquiry_outcome_key(request.get<int64_t>());
  expiry::schedule(ctx, *inquiries_, key,
                   ctx.clock().now_ms() + kInquiryOutcomeRetention.count());
  ctx.put(*inquiries_, std::move(key),
          Json{{"code", code}, {"id", id}, {"message", message}}.dump());
  wake_ = true;
}

void ProjectionProcessor::process_inquiry(const Envelope& env, ProcessorContext& ctx) {
  const Json& p = env.payload;
  if (!p.is_object()) throw ProcessingError(env.type + ": payload is not an object");
  const Json request = p.value("request", Json(nullptr));
  if (env.type == "inquiry.updated") {
    auto it = p.find("inquiry");
    if (it == p.end() || !it->is_object()) throw ProcessingError("inquiry.updated: no inquiry");
    Json row = *it;
    const int64_t id = row.value("id", int64_t{0});
    if (id <= 0) throw ProcessingError("inquiry.updated: no positive id");
    auto old_row = load(ctx, *inquiries_, id);
    if (!old_row || old_row->value("rev", int64_t{0}) < row.value("rev", int64_t{0})) {
      apply(ctx, Entity::kInquiry, id, std::move(old_row), std::move(row));
    }
    put_outcome(ctx, request, id, p.value("code", 200), "");
  } else if (env.type == "inquiry.deleted") {
    const int64_t id = entity_id(env);
    if (auto old_row = load(ctx, *inquiries_, id)) unindex(ctx, Entity::kInquiry, id, *old_row);
    put_outcome(ctx, request, id, 200, "");
  } else if (env.type == "inquiry.outcome") {
    put_outcome(ctx, request, p.value("id", int64_t{0}), p.value("code", 500),
                p.value("message", ""));
  }
}

std::optional<Json> ProjectionProcessor::load(ProcessorContext& ctx, state::Store& store,
                                              int64_t id) {
  auto v = ctx.get(store, row_key(id));
  if (!v.ok()) throw std::runtime_error("projections: " + v.error().message);
  if (!v->has_value()) return std::nullopt;
  Json row = Json::parse(**v, nullptr, false);
  if (row.is_discarded()) throw std::runtime_error("projections: corrupt row " + store.name());
  return row;
}

void ProjectionProcessor::apply(ProcessorContext& ctx, Entity entity, int64_t id,
                                std::optional<Json> old_row, Json row) {
  state::Store& store = store_of(entity);
  const std::vector<std::string> old_prefixes =
      old_row ? row_prefixes(entity, *old_row) : std::vector<std::string>{};
  const std::vector<std::string> new_prefixes = row_prefixes(entity, row);
  const int64_t old_created = old_row ? created_ms(*old_row) : 0;
  const int64_t new_created = created_ms(row);
  const std::string old_value = old_row ? index_entry_value(entity, *old_row) : std::string();
  const std::string new_value = index_entry_value(entity, row);
  const bool same_created = old_row && old_created == new_created;

  for (const auto& p : old_prefixes) {
    const bool kept = contains(new_prefixes, p);
    if (!kept || !same_created) ctx.del(store, index_key(p, old_created, id));
    if (!kept) bump(ctx, store, p, -1);
    if (faceted_prefix(p) && (!kept || old_value != new_value)) {
      bump_key(ctx, store, facet_key(p, old_value, ctx.instance()), -1);
    }
  }
  for (const auto& p : new_prefixes) {
    const bool had = contains(old_prefixes, p);
    if (!had || !same_created || old_value != new_value) {
      ctx.put(store, index_key(p, new_created, id), new_value);
    }
    if (!had) bump(ctx, store, p, +1);
    if (faceted_prefix(p) && (!had || old_value != new_value)) {
      bump_key(ctx, store, facet_key(p, new_value, ctx.instance()), +1);
    }
  }
  ctx.put(store, row_key(id), row.dump());

  // The old row goes to the change feed as is (moved, not copied: a row per status change).
  Change change{entity_name(entity), id, old_row ? std::move(*old_row) : Json(nullptr),
                std::move(row)};
  pending_.push_back(std::move(change));
}

void ProjectionProcessor::bump(ProcessorContext& ctx, state::Store& store,
                               const std::string& prefix, int64_t delta) {
  bump_key(ctx, store, counter_key(prefix, ctx.instance()), delta);
}

void ProjectionProcessor::unindex(ProcessorContext& ctx, Entity entity, int64_t id,
                                  const Json& row) {
  state::Store& store = store_of(entity);
  const int64_t created = created_ms(row);
  const std::string value = index_entry_value(entity, row);
  for (const auto& p : row_prefixes(entity, row)) {
    ctx.del(store, index_key(p, created, id));
    bump(ctx, store, p, -1);
    if (faceted_prefix(p)) bump_key(ctx, store, facet_key(p, value, ctx.instance()), -1);
  }
  ctx.del(store, row_key(id));
}

void ProjectionProcessor::bump_key(ProcessorContext& ctx, state::Store& store,
                                   const std::string& key, int64_t delta) {
  auto v = ctx.get(store, key);
  if (!v.ok()) throw std::runtime_error("projections: " + v.error().message);
  const int64_t n = v->has_value() ? static_cast<int64_t>(state::decode_be64(**v)) : 0;
  ctx.put(store, key, state::encode_be64(static_cast<uint64_t>(n + delta)));
}

// --- History retention --------------------------------------------------------------------

std::optional<SystemTime> ProjectionProcessor::punctuate(SystemTime now, ProcessorContext& ctx) {
  if (ctx.instance() != 0) return std::nullopt;
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  // Inquiry command outcomes expire whether or not history is bounded.
  bool outcomes_left = false;
  if (now >= next_outcome_expiry_) {
    outcomes_left = expiry::expire_due(ctx, *inquiries_, now_ms, 4096).more;
    next_outcome_expiry_ = now + (outcomes_left ? std::chrono::milliseconds(10)
                                                : std::chrono::milliseconds(60000));
  }
  if (!retention_.keep.enabled()) return next_outcome_expiry_;
  // Executions first: their removal is what frees enforcements, whose removal frees events.
  bool more = prune_executions(ctx, now_ms);
  if (!retention_.references_applied || retention_.references_applied()) {
    more = prune_enforcements(ctx, now_ms) || more;
    more = prune_events(ctx, now_ms) || more;
  }
  for (state::Store* store : {executions_, enforcements_, events_}) {
    more = expiry::expire_due(ctx, *store, now_ms, retention_.budget).more || more;
  }
  return std::min(next_outcome_expiry_,
                  now + (more ? std::chrono::milliseconds(10) : retention_.interval));
}

bool ProjectionProcessor::prune_executions(ProcessorContext& ctx, int64_t now_ms) {
  const HistoryKeep& keep = retention_.keep;
  const std::optional<int64_t> cutoff = age_cutoff_ms(keep, now_ms);
  std::vector<std::string> prefixes;
  for (std::string_view status : kExecutionStatuses) {
    if (execution_prunable(status)) prefixes.push_back(index_scan_prefix("by_status", status));
  }
  size_t want = retention_.budget;
  bool more = false;
  if (keep.mode == HistoryKeep::Mode::kCount) {
    int64_t total = 0;
    for (const auto& p : prefixes) total += counter_sum(ctx, *executions_, p.substr(2));
    const int64_t excess = excess_over(total, keep);
    if (excess == 0) return false;
    more = excess > static_cast<int64_t>(want);
    want = std::min<size_t>(want, static_cast<size_t>(excess));
  }
  // The `want` oldest terminal executions: each status index is ordered by (created, id), so
  // the oldest of the union are among the first `want` of each.
  std::vector<std::pair<std::string, int64_t>> oldest;  // (created ‖ id as BE64s, id)
  for (const auto& p : prefixes) {
    size_t taken = 0;
    auto st = ctx.scan(*executions_, p, [&](std::string_view key, std::string_view) {
      if (cutoff && index_key_created(key) >= *cutoff) return false;
      if (taken == want) {
        more = more || cutoff.has_value();
        return false;
      }
      ++taken;
      oldest.emplace_back(std::string(key.substr(key.size() - 16)), index_key_id(key));
      return true;
    });
    if (!st.ok()) throw std::runtime_error("projections: " + st.error().message);
  }
  std::sort(oldest.begin(), oldest.end());
  if (oldest.size() > want) {
    oldest.resize(want);
    more = true;
  }
  for (const auto& [order, id] : oldest) remove(ctx, Entity::kExecution, id, now_ms);
  return more;
}

bool ProjectionProcessor::prune_referenced(
    ProcessorContext& ctx, Entity entity, int64_t now_ms,
    const std::function<bool(int64_t id, std::string_view status, int64_t created)>& prunable) {
  const HistoryKeep& keep = retention_.keep;
  const std::optional<int64_t> cutoff = age_cutoff_ms(keep, now_ms);
  state::Store& store = store_of(entity);
  size_t want = retention_.budget;
  int64_t excess = 0;
  if (keep.mode == HistoryKeep::Mode::kCount) {
    excess = excess_over(counter_sum(ctx, store, std::string(kByCreated)), keep);
    if (excess == 0) return false;
    want = std::min<size_t>(want, static_cast<size_t>(excess));
  }
  // Oldest first; entries still referenced are passed over (at most 4 × budget per pass: with
  // more old rows than that still referenced, e.g. that many old running executions, the rows
  // behind them wait until they are released).
  std::vector<int64_t> victims;
  size_t scanned = 0;
  bool more = false;
  auto st = ctx.scan(store, "i/" + std::string(kByCreated),
                     [&](std::string_view key, std::string_view status) {
                       const int64_t created = index_key_created(key);
                       if (cutoff && created >= *cutoff) return false;
                       if (created > now_ms - retention_.settle.count()) return false;
                       // Past this many, wait for the next regular pass (no prompt re-pass that
                       // would find the same ones).
                       if (++scanned > 4 * retention_.budget) return false;
                       const int64_t id = index_key_id(key);
                       if (prunable(id, entry_status(status), created)) victims.push_back(id);
                       if (victims.size() == want) {
                         more = cutoff.has_value() || excess > static_cast<int64_t>(want);
                         return false;
                       }
                       return true;
                     });
  if (!st.ok()) throw std::runtime_error("projections: " + st.error().message);
  for (int64_t id : victims) remove(ctx, entity, id, now_ms);
  return more;
}

bool ProjectionProcessor::prune_enforcements(ProcessorContext& ctx, int64_t now_ms) {
  return prune_referenced(ctx, Entity::kEnforcement, now_ms,
                          [&](int64_t id, std::string_view status, int64_t created) {
                            const bool left = has_index_entry(
                                ctx, *executions_,
                                index_scan_prefix("by_enforcement", std::to_string(id)));
                            return enforcement_prunable(status, left, created, now_ms,
                                                        retention_.settle);
                          });
}

bool ProjectionProcessor::prune_events(ProcessorContext& ctx, int64_t now_ms) {
  return prune_referenced(ctx, Entity::kEvent, now_ms,
                          [&](int64_t id, std::string_view, int64_t created) {
                            const bool left = has_index_entry(
                                ctx, *enforcements_,
                                index_scan_prefix("by_event", std::to_string(id)));
                            return event_prunable(left, created, now_ms, retention_.settle);
                          });
}

void ProjectionProcessor::remove(ProcessorContext& ctx, Entity entity, int64_t id,
                                 int64_t now_ms) {
  state::Store& store = store_of(entity);
  const auto row = load(ctx, store, id);
  if (!row) return;
  unindex(ctx, entity, id, *row);
  std::string tombstone = tombstone_key(id);
  expiry::schedule(ctx, store, tombstone, now_ms + retention_.tombstone_retention.count());
  ctx.put(store, std::move(tombstone), std::string());
  ++pruned_;
}

bool ProjectionProcessor::tombstoned(ProcessorContext& ctx, Entity entity, int64_t id) {
  if (!retention_.keep.enabled()) return false;  // nothing is pruned, so nothing to revive
  auto v = ctx.get(store_of(entity), tombstone_key(id));
  if (!v.ok()) throw std::runtime_error("projections: " + v.error().message);
  return v->has_value();
}

int64_t ProjectionProcessor::counter_sum(ProcessorContext& ctx, state::Store& store,
                                         const std::string& prefix) {
  int64_t total = 0;
  auto st = ctx.scan(store, counter_prefix(prefix), [&](std::string_view, std::string_view v) {
    total += static_cast<int64_t>(state::decode_be64(v));
    return true;
  });
  if (!st.ok()) throw std::runtime_error("projections: " + st.error().message);
  return total;
}

bool ProjectionProcessor::has_index_entry(ProcessorContext& ctx, state::Store& store,
                                          const std::string& prefix) {
  bool found = false;
  auto st = ctx.scan(store, prefix, [&](std::string_view, std::string_view) {
    found = true;
    return false;
  });
  if (!st.ok()) throw std::runtime_error("projections: " + st.error().message);
  return found;
}

}  // namespace attune::projections
