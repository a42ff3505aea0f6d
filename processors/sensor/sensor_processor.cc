// The sensor stage: timers fired exactly once per tick, custom sensor processes reconciled.
#include "processors/sensor/sensor_processor.h"

#include <spdlog/spdlog.h>

#include "processors/sensor/sensor_manager.h"
#include "processors/sensor/sensor_status.h"
#include "topology/core/time.h"

namespace attune::sensor {

namespace {

constexpr std::string_view kTimerPrefix = "timer/";
constexpr std::string_view kNextSlotKey = "meta/next_slot";
constexpr std::string_view kFreeSlotPrefix = "slotfree/";

std::string timer_key(int64_t rule_id) { return std::string(kTimerPrefix) + std::to_string(rule_id); }

std::string free_slot_key(int64_t slot) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%08lld", kFreeSlotPrefix.data(), static_cast<long long>(slot));
  return buf;
}

}  // namespace

SensorProcessor::SensorProcessor(SensorStageOptions options) : options_(options) {
  if (options_.definitions == nullptr) {
    throw std::invalid_argument("SensorProcessor needs a DefinitionsTable");
  }
}

void SensorProcessor::init(ProcessorContext& ctx) {
  store_ = &ctx.store(kTimersStore);
  scheduler_ = std::make_unique<TimerScheduler>(ctx.clock().now_ms(), options_.misfire_grace_ms);
  if (options_.sensors) options_.sensors->attach(ctx.mailbox());
  if (!ctx.log().balances_groups()) {
    take_over(ctx, false);
    return;
  }
  spdlog::info("sensor: standby until this process is assigned {}", topics::kDefinitions);
}

void SensorProcessor::assigned(const std::vector<TopicPartition>& owned, ProcessorContext& ctx) {
  bool owns = false;
  for (const auto& tp : owned) owns = owns || tp.topic == topics::kDefinitions;
  if (owns && !owner_) {
    take_over(ctx, true);
  } else if (!owns && owner_) {
    give_up();
  }
}

void SensorProcessor::give_up() {
  owner_ = false;
  scheduler_ = std::make_unique<TimerScheduler>(0, options_.misfire_grace_ms);
  if (options_.sensors) options_.sensors->release();
  if (options_.publisher) options_.publisher->set_owner(false);
  spdlog::info("sensor: {} revoked: timers and custom sensors stopped here", topics::kDefinitions);
}

void SensorProcessor::take_over(ProcessorContext& ctx, bool handover) {
  const int64_t now = ctx.clock().now_ms();
  scheduler_ = std::make_unique<TimerScheduler>(handover ? now - options_.misfire_grace_ms : now,
                                                options_.misfire_grace_ms);
  owner_ = true;
  size_t loaded = 0, bad = 0;
  std::vector<TimerState> states;
  auto st = ctx.scan(*store_, kTimerPrefix, [&](std::string_view, std::string_view value) {
    auto j = Json::parse(value, nullptr, false);
    auto s = TimerState::from_json(j);
    if (s) {
      states.push_back(std::move(*s));
    } else {
      ++bad;
    }
    return true;
  });
  if (!st.ok()) throw std::runtime_error("sensor: cannot read timers: " + st.error().message);
  for (const auto& s : states) {
    if (!s.enabled) continue;
    if (auto r = scheduler_->upsert(s); !r.ok()) {
      spdlog::warn("sensor: rule {} has unusable timer params: {}", s.rule_ref, r.error().message);
      continue;
    }
    ++loaded;
  }
  spdlog::info("sensor: {} timers {} ({} unreadable)", loaded, handover ? "taken over" : "restored",
               bad);
  if (options_.publisher) options_.publisher->set_owner(true);
  if (options_.sensors) options_.sensors->reconcile(ctx.clock().now_ms());
  want_punctuate(ctx);
  // At once: ticks missed during a handover are due now.
  if (handover) ctx.request_punctuate(from_ms(now));
}

void SensorProcessor::close() {
  if (options_.sensors) options_.sensors->stop_all();
}

void SensorProcessor::want_punctuate(ProcessorContext& ctx) {
  if (auto next = scheduler_->next_due()) ctx.request_punctuate(from_ms(*next));
}

Result<int64_t> SensorProcessor::allocate_slot(ProcessorContext& ctx) {
  auto next = ctx.get(*store_, kNextSlotKey);
  if (!next.ok()) return next.error();
  int64_t n = next->has_value() ? std::stoll(**next) : 0;
  if (n < kMaxTimerSlots) {
    ctx.put(*store_, std::string(kNextSlotKey), std::to_string(n + 1));
    return n;
  }
  // All slots handed out once: reuse the oldest freed one.
  std::optional<int64_t> freed;
  auto st = ctx.scan(*store_, kFreeSlotPrefix, [&](std::string_view key, std::string_view) {
    freed = std::stoll(std::string(key.substr(kFreeSlotPrefix.size())));
    return false;
  });
  if (!st.ok()) return st.error();
  if (!freed) return make_error(Errc::kUnavailable, "no timer slot left (1,048,576 timers)");
  ctx.del(*store_, free_slot_key(*freed));
  return *freed;
}

void SensorProcessor::free_slot(int64_t slot, ProcessorContext& ctx) {
  if (slot >= 0) ctx.put(*store_, free_slot_key(slot), "");
}

void SensorProcessor::save(const TimerState& s, ProcessorContext& ctx) {
  ctx.put(*store_, timer_key(s.rule_id), s.to_json().dump());
}

std::optional<TimerState> SensorProcessor::load(int64_t rule_id, ProcessorContext& ctx) {
  auto v = ctx.get(*store_, timer_key(rule_id));
  if (!v.ok()) throw ProcessingError("sensor: timers store read failed: " + v.error().message);
  if (!v->has_value()) return std::nullopt;
  return TimerState::from_json(Json::parse(**v, nullptr, false));
}

bool SensorProcessor::wants(std::string_view key) {
  // Only these kinds matter here; others (e.g. datastore keys, written at API rates) are
  // skipped by the consumer.
  const std::string_view kind = key.substr(0, key.find(':'));
  return kind == "rule" || kind == "sensor" || kind == "trigger" || kind == "pack";
}

void SensorProcessor::process(const Record& record, ProcessorContext& ctx) {
  if (!owner_) return;  // not reached: records come from owned partitions only
  const std::string_view key = record.key;
  const std::string_view kind = key.substr(0, key.find(':'));
  if (!wants(key)) return;
  Envelope e;
  std::string error;
  if (!envelope_of(record, e, error)) throw ProcessingError(error);
  const bool deleted = e.type == kDefinitionDelete;
  if (!deleted && e.type != kDefinitionUpsert) return;
  if (kind == "rule") on_rule(e, deleted, ctx);
  if (options_.sensors && (kind == "rule" || kind == "sensor" || kind == "trigger" ||
                           kind == "pack")) {
    // The table may trail this consumer: reconcile once it has applied this record.
    options_.definitions->wait_applied(record.offset, std::chrono::milliseconds(5000));
    options_.sensors->reconcile(ctx.clock().now_ms());
  }
}

void SensorProcessor::on_rule(const Envelope& e, bool deleted, ProcessorContext& ctx) {
  const Json& rule = e.payload;
  const int64_t rule_id = rule.value("id", int64_t{0});
  if (rule_id == 0) throw ProcessingError("sensor: rule record without id");
  auto existing = load(rule_id, ctx);
  const std::string trigger_ref = rule.value("trigger_ref", Json("")).is_string()
                                      ? rule.value("trigger_ref", std::string())
                                      : std::string();
  if (deleted || !is_timer_trigger(trigger_ref)) {
    if (existing) {
      scheduler_->remove(rule_id);
      ctx.del(*store_, timer_key(rule_id));
      free_slot(existing->slot, ctx);
      spdlog::info("sensor: timer of rule {} removed", existing->rule_ref);
    }
    return;
  }
  TimerState s = existing.value_or(TimerState{});
  const bool enabled = rule.value("enabled", true);
  const Json params = rule.value("trigger_params", Json::object());
  // A new schedule version (anchor, rrule start) when the timer starts or its params change.
  const bool restart = !existing || existing->trigger_ref != trigger_ref ||
                       existing->params != params || (enabled && !existing->enabled);
  s.rule_id = rule_id;
  s.rule_ref = rule.value("ref", "");
  s.trigger_ref = trigger_ref;
  s.trigger_id = rule.value("trigger", Json(0)).is_number() ? rule.value("trigger", int64_t{0}) : 0;
  s.params = params;
  s.enabled = enabled;
  if (restart) s.since_ms = e.ts > 0 ? e.ts : ctx.clock().now_ms();
  if (s.slot < 0) {
    auto slot = allocate_slot(ctx);
    if (!slot.ok()) throw ProcessingError("sensor: " + slot.error().message);
    s.slot = *slot;
  }
  save(s, ctx);
  if (!enabled) {
    scheduler_->remove(rule_id);
    spdlog::info("sensor: timer of rule {} stopped (rule disabled)", s.rule_ref);
    return;
  }
  if (!restart && scheduler_->contains(rule_id)) return;  // e.g. a label change
  if (auto st = scheduler_->upsert(s); !st.ok()) {
    spdlog::warn("sensor: rule {} has no timer: {}", s.rule_ref, st.error().message);
    return;
  }
  const auto next = scheduler_->next_of(rule_id);
  spdlog::info("sensor: timer of rule {} scheduled, next tick {}", s.rule_ref,
               next ? format_rfc3339_ms(*next) : std::string("never"));
  want_punctuate(ctx);
}

void SensorProcessor::emit(const Tick& tick, const TimerState& s, int64_t now_ms,
                           ProcessorContext& ctx) {
  const auto id_or = timer_event_id(s.slot, tick.scheduled_ms);
  const int64_t id = id_or ? *id_or : ctx.ids().next();
  const std::string now = format_rfc3339_ms(now_ms);
  Json payload = s.params.is_object() ? s.params : Json::object();
  auto schedule_kind = TimerKind::kInterval;
  if (s.trigger_ref == kCronTimer) schedule_kind = TimerKind::kCron;
  if (s.trigger_ref == kDateTimer) schedule_kind = TimerKind::kDate;
  if (s.trigger_ref == kRruleTimer) schedule_kind = TimerKind::kRrule;
  payload["type"] = timer_type_name(schedule_kind);
  payload["fired_at"] = now;
  payload["scheduled_at"] = format_rfc3339_ms(tick.scheduled_ms);
  payload["delay_ms"] = now_ms - tick.scheduled_ms;
  payload["rule_ref"] = s.rule_ref;
  payload["rule_id"] = s.rule_id;
  payload["tick"] = s.fired;
  payload["caught_up"] = tick.caught_up;
  JsonPtr sensor = options_.definitions->get("sensor", kTimerSensorRef);
  Json event = {{"id", id},
                {"trigger", s.trigger_id},
                {"trigger_ref", s.trigger_ref},
                {"config", s.params},
                {"payload", std::move(payload)},
                {"source", sensor ? (*sensor)["id"] : Json(nullptr)},
                {"source_ref", kTimerSensorRef},
                {"rule", s.rule_id},
                {"rule_ref", s.rule_ref},
                {"created", now},
                {"updated", now},
                {"defs_offset", ctx.log().end_offset({std::string(topics::kDefinitions), 0})}};
  Envelope env{"event.created", id,
               "timer:" + std::to_string(s.rule_id) + ":" + std::to_string(tick.scheduled_ms),
               now_ms, "sensor", std::move(event)};
  ctx.forward(topics::kEvents, s.trigger_ref, env.dump());
}

std::optional<SystemTime> SensorProcessor::punctuate(SystemTime now, ProcessorContext& ctx) {
  const int64_t now_ms = to_ms(now);
  std::vector<int64_t> touched;
  const auto ticks = scheduler_->due(now_ms, options_.max_ticks_per_commit, touched);
  for (const Tick& t : ticks) {
    const TimerState* s = scheduler_->state(t.rule_id);
    if (s == nullptr) continue;
    JsonPtr trigger = options_.definitions->get("trigger", s->trigger_ref);
    if (trigger && !trigger->value("enabled", true)) continue;  // a disabled trigger fires nothing
    emit(t, *s, now_ms, ctx);
  }
  for (int64_t rule_id : touched) {
    if (const TimerState* s = scheduler_->state(rule_id)) save(*s, ctx);
  }
  std::optional<int64_t> next = scheduler_->next_due();
  if (options_.sensors) {
    if (auto n = options_.sensors->on_punctuate(now_ms)) next = next ? std::min(*next, *n) : *n;
  }
  // Timers still due (batch limit) come back at once; otherwise sleep until the next tick, at
  // most a minute (a safety net: records that schedule earlier ticks ask for it themselves).
  const int64_t cap = now_ms + 60'000;
  return from_ms(next ? std::min(*next, cap) : cap);
}

void add_sensor_stage(Topology& topology, const SensorStageOptions& options) {
  topology.add({"sensor",
                {std::string(topics::kDefinitions)},
                {std::string(kTimersStore)},
                1,
                512,
                [options](int) { return std::make_unique<SensorProcessor>(options); },
                // Most definitions (datastore keys above all) are skipped without a wake-up.
                std::chrono::milliseconds(200),
                [](std::string_view key) { return SensorProcessor::wants(key); }});
}

}  // namespace attune::sensor
