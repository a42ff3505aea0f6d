// The "api" projection stage: rows, index entries and counters from event, enforcement and
// execution records.
#include "api/projections/projection_processor.h"

#include <algorithm>

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

}  // namespace

ProjectionProcessor::ProjectionProcessor(std::shared_ptr<ChangeFeed> feed)
    : feed_(std::move(feed)) {}

void ProjectionProcessor::init(ProcessorContext& ctx) {
  events_ = &ctx.store(kEventsStore);
  enforcements_ = &ctx.store(kEnforcementsStore);
  executions_ = &ctx.store(kExecutionsStore);
}

state::Store& ProjectionProcessor::store_of(Entity entity) {
  switch (entity) {
    case Entity::kEvent:
      return *events_;
    case Entity::kEnforcement:
      return *enforcements_;
    case Entity::kExecution:
      return *executions_;
  }
  return *events_;
}

void ProjectionProcessor::process(const Record& record, ProcessorContext& ctx) {
  Envelope env;
  std::string error;
  if (!envelope_of(record, env, error)) throw ProcessingError(error);
  const size_t pending_before = pending_.size();

  if (record.topic == topics::kEvents && env.type == "event.created") {
    const int64_t id = entity_id(env);
    if (load(ctx, *events_, id)) return;  // events are immutable: a repeat changes nothing
    Json row = std::move(env.payload);
    row.erase("defs_offset");
    apply(ctx, Entity::kEvent, id, std::nullopt, std::move(row));
  } else if (record.topic == topics::kEnforcements && env.type == "enforcement.created") {
    const int64_t id = entity_id(env);
    if (load(ctx, *enforcements_, id)) return;
    apply(ctx, Entity::kEnforcement, id, std::nullopt, std::move(env.payload));
  } else if (record.topic == topics::kEnforcements && env.type == "enforcement.updated") {
    const int64_t id = entity_id(env);
    auto old_row = load(ctx, *enforcements_, id);
    if (!old_row) {
      throw ProcessingError("enforcement.updated for unknown enforcement " + std::to_string(id));
    }
    Json row = *old_row;
    for (auto& [field, value] : env.payload.items()) row[field] = value;
    if (row == *old_row) return;
    apply(ctx, Entity::kEnforcement, id, old_row, std::move(row));
  } else if (record.topic == topics::kExecutions && env.type == "execution.updated") {
    const int64_t id = entity_id(env);
    Json row = std::move(env.payload);
    row.erase("old_status");
    auto old_row = load(ctx, *executions_, id);
    if (old_row && (*old_row == row || is_stale_execution(row, *old_row))) return;
    apply(ctx, Entity::kExecution, id, old_row, std::move(row));
  } else {
    return;  // not a projected record type
  }

  // One after-commit callback per transaction publishes every change of it, in order. It is
  // registered only once this record can no longer fail, so a rolled-back record leaves neither
  // a change nor a callback behind.
  if (pending_before == 0 && !pending_.empty()) {
    ctx.after_commit([this] {
      std::vector<Change> changes = std::move(pending_);
      pending_.clear();
      feed_->publish(changes);
    });
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
                                const std::optional<Json>& old_row, Json row) {
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
  }
  for (const auto& p : new_prefixes) {
    const bool had = contains(old_prefixes, p);
    if (!had || !same_created || old_value != new_value) {
      ctx.put(store, index_key(p, new_created, id), new_value);
    }
    if (!had) bump(ctx, store, p, +1);
  }
  ctx.put(store, row_key(id), row.dump());

  Change change{entity_name(entity), id, old_row ? *old_row : Json(nullptr), std::move(row)};
  pending_.push_back(std::move(change));
}

void ProjectionProcessor::bump(ProcessorContext& ctx, state::Store& store,
                               const std::string& prefix, int64_t delta) {
  const std::string key = counter_key(prefix, ctx.instance());
  auto v = ctx.get(store, key);
  if (!v.ok()) throw std::runtime_error("projections: " + v.error().message);
  const int64_t n = v->has_value() ? static_cast<int64_t>(state::decode_be64(**v)) : 0;
  ctx.put(store, key, state::encode_be64(static_cast<uint64_t>(n + delta)));
}

}  // namespace attune::projections
