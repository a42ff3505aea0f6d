// TimerScheduler: the decision logic of the timer half of the sensor stage — which ticks are due,
// which fire and which are skipped — as a pure state machine over injected times (no clock, no
// I/O), so it is tested with a ManualClock including restarts at every point between ticks.
//
// Per rule it keeps a TimerState (persisted by the stage in the same commit as the events it
// fires). A tick is the pair (rule, scheduled time); `last_ms` is the scheduled time of the last
// tick fired or skipped, so a restarted scheduler never repeats one.
//
// Missed ticks: a due tick is *missed* when it was scheduled before the scheduler started
// (`boot_ms`, i.e. while the stage was down) or is more than `misfire_grace_ms` overdue (the
// clock jumped, the machine slept). A run of consecutive missed ticks follows the rule's
// catch_up: `all` fires each of them, `last` (default) fires only the latest, `none` fires none.
// Ticks that are due but not missed always fire, late if need be, each exactly once.
//
// Not thread-safe: owned by the stage thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "processors/sensor/schedule.h"

namespace attune::sensor {

struct TimerState {
  int64_t rule_id = 0;
  std::string rule_ref, trigger_ref;
  int64_t trigger_id = 0;
  Json params = Json::object();
  bool enabled = true;
  int64_t since_ms = 0;              // registration of this version of the schedule
  std::optional<int64_t> last_ms;    // scheduled time of the last tick fired or skipped
  int64_t fired = 0;                 // ticks fired so far (all versions)
  int64_t slot = -1;                 // event-id slot (see timer_event_id)

  Json to_json() const;
  static std::optional<TimerState> from_json(const Json& j);
};

struct Tick {
  int64_t rule_id = 0;
  int64_t scheduled_ms = 0;
  bool caught_up = false;  // a missed tick fired by catch_up
};

class TimerScheduler {
 public:
  TimerScheduler(int64_t boot_ms, int64_t misfire_grace_ms = 60'000);

  // Adds or replaces the timer of an enabled rule. Errc::kValidation if its params are bad (the
  // rule then has no timer).
  Status upsert(const TimerState& state);
  void remove(int64_t rule_id);
  bool contains(int64_t rule_id) const { return entries_.count(rule_id) > 0; }
  const TimerState* state(int64_t rule_id) const;
  size_t size() const { return entries_.size(); }

  // Fires what is due at `now_ms`, at most `max_ticks` ticks (the rest stays due). Updates the
  // states of the rules it touched (last_ms, fired); their ids are appended to `touched` so the
  // caller persists them together with the events of the returned ticks.
  std::vector<Tick> due(int64_t now_ms, size_t max_ticks, std::vector<int64_t>& touched);

  // When the earliest pending tick is due; nullopt if none.
  std::optional<int64_t> next_due() const;
  std::optional<int64_t> next_of(int64_t rule_id) const;

 private:
  struct Entry {
    TimerState state;
    std::unique_ptr<Schedule> schedule;
    std::optional<int64_t> next;
  };
  void enqueue(int64_t rule_id, Entry& e);
  bool missed(int64_t scheduled, int64_t now) const {
    return scheduled < boot_ms_ || now - scheduled > grace_ms_;
  }

  const int64_t boot_ms_;
  const int64_t grace_ms_;
  std::unordered_map<int64_t, Entry> entries_;
  std::set<std::pair<int64_t, int64_t>> queue_;  // (next tick, rule id)
};

// The event id of a tick, derived from (rule slot, scheduled second): a natural id
// (topology/core/ids.h: bit 52 set, bit 51 clear), then the scheduled second since 2025-01-01
// (31 bits) and the rule's slot (20 bits, unique among the stage's timers). Two ticks of one
// rule are ≥ 1 s apart, so ids never repeat. nullopt if the time is outside 2025..2093.
std::optional<int64_t> timer_event_id(int64_t slot, int64_t scheduled_ms);
inline constexpr int64_t kMaxTimerSlots = int64_t{1} << 20;

}  // namespace attune::sensor
