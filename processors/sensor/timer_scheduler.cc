// Timer scheduling decisions (see timer_scheduler.h).
#include "processors/sensor/timer_scheduler.h"

#include "topology/core/ids.h"

namespace attune::sensor {

Json TimerState::to_json() const {
  return Json{{"rule_id", rule_id},     {"rule_ref", rule_ref}, {"trigger_ref", trigger_ref},
              {"trigger_id", trigger_id}, {"params", params},   {"enabled", enabled},
              {"since_ms", since_ms},   {"last_ms", last_ms ? Json(*last_ms) : Json(nullptr)},
              {"fired", fired},         {"slot", slot}};
}

std::optional<TimerState> TimerState::from_json(const Json& j) {
  if (!j.is_object() || !j.contains("rule_id")) return std::nullopt;
  TimerState s;
  try {
    s.rule_id = j.at("rule_id").get<int64_t>();
    s.rule_ref = j.value("rule_ref", "");
    s.trigger_ref = j.value("trigger_ref", "");
    s.trigger_id = j.value("trigger_id", int64_t{0});
    s.params = j.value("params", Json::object());
    s.enabled = j.value("enabled", true);
    s.since_ms = j.value("since_ms", int64_t{0});
    if (j.contains("last_ms") && j["last_ms"].is_number()) s.last_ms = j["last_ms"].get<int64_t>();
    s.fired = j.value("fired", int64_t{0});
    s.slot = j.value("slot", int64_t{-1});
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return s;
}

TimerScheduler::TimerScheduler(int64_t boot_ms, int64_t misfire_grace_ms)
    : boot_ms_(boot_ms), grace_ms_(misfire_grace_ms) {}

Status TimerScheduler::upsert(const TimerState& state) {
  remove(state.rule_id);
  auto schedule = make_schedule(state.trigger_ref, state.params, state.since_ms);
  if (!schedule.ok()) return schedule.error();
  Entry e{state, std::move(*schedule), std::nullopt};
  // The first tick of this version, skipping what was already fired or skipped.
  auto next = e.schedule->first(state.since_ms);
  if (next && state.last_ms && *next <= *state.last_ms) {
    next = e.schedule->next_after(std::max(*state.last_ms, state.since_ms));
  }
  e.next = next;
  auto [it, inserted] = entries_.emplace(state.rule_id, std::move(e));
  enqueue(state.rule_id, it->second);
  return {};
}

void TimerScheduler::enqueue(int64_t rule_id, Entry& e) {
  if (e.next) queue_.emplace(*e.next, rule_id);
}

void TimerScheduler::remove(int64_t rule_id) {
  auto it = entries_.find(rule_id);
  if (it == entries_.end()) return;
  if (it->second.next) queue_.erase({*it->second.next, rule_id});
  entries_.erase(it);
}

const TimerState* TimerScheduler::state(int64_t rule_id) const {
  auto it = entries_.find(rule_id);
  return it == entries_.end() ? nullptr : &it->second.state;
}

std::optional<int64_t> TimerScheduler::next_due() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.begin()->first;
}

std::optional<int64_t> TimerScheduler::next_of(int64_t rule_id) const {
  auto it = entries_.find(rule_id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.next;
}

std::vector<Tick> TimerScheduler::due(int64_t now, size_t max_ticks,
                                      std::vector<int64_t>& touched) {
  std::vector<Tick> out;
  while (!queue_.empty() && queue_.begin()->first <= now && out.size() < max_ticks) {
    const auto [tick, rule_id] = *queue_.begin();
    queue_.erase(queue_.begin());
    Entry& e = entries_.at(rule_id);
    Schedule& s = *e.schedule;
    // A date timer registered just after its fire_at fires at once whatever catch_up says.
    const bool registration_fire = tick <= e.state.since_ms;
    std::optional<int64_t> fire;  // the tick to fire now, if any
    bool caught_up = false;
    int64_t last = tick;
    if (registration_fire || !missed(tick, now)) {
      fire = tick;
    } else {
      switch (s.catch_up()) {
        case CatchUp::kAll:
          fire = tick;
          caught_up = true;
          break;
        case CatchUp::kLast:
        case CatchUp::kNone: {
          // Walk the run of missed ticks to its end.
          for (int guard = 0; guard < 10'000'000; ++guard) {
            auto n = s.next_after(last);
            if (!n || *n > now || !missed(*n, now)) break;
            last = *n;
          }
          if (s.catch_up() == CatchUp::kLast) {
            fire = last;
            caught_up = true;
          }
          break;
        }
      }
    }
    e.state.last_ms = last;
    if (fire) {
      ++e.state.fired;
      out.push_back(Tick{rule_id, *fire, caught_up});
    }
    touched.push_back(rule_id);
    e.next = s.next_after(last);
    enqueue(rule_id, e);
  }
  return out;
}

std::optional<int64_t> timer_event_id(int64_t slot, int64_t scheduled_ms) {
  if (slot < 0 || slot >= kMaxTimerSlots) return std::nullopt;
  const int64_t ms = scheduled_ms - kIdEpochMs;
  if (ms < 0) return std::nullopt;
  const int64_t second = ms / 1000;
  if (second >= (int64_t{1} << 31)) return std::nullopt;  // bit 51 is the ingress ids' (ids.h)
  return kNaturalIdBit | (second << 20) | slot;
}

}  // namespace attune::sensor
