// TimerScheduler with injected times: absolute schedules, catch_up, and a restart at every point
// between ticks (state persisted as the stage persists it) never repeating or losing a tick.
#include <gtest/gtest.h>

#include <set>

#include "processors/sensor/timer_scheduler.h"
#include "topology/core/clock.h"
#include "topology/core/ids.h"
#include "topology/core/time.h"

namespace attune::sensor {
namespace {

TimerState interval_state(int64_t since, int seconds, const char* catch_up = "last") {
  TimerState s;
  s.rule_id = 42;
  s.rule_ref = "p.r";
  s.trigger_ref = std::string(kIntervalTimer);
  s.params = Json{{"unit", "seconds"}, {"interval", seconds}, {"catch_up", catch_up}};
  s.since_ms = since;
  s.slot = 7;
  return s;
}

// Drives a scheduler from `from` to `to` in `step` increments of a ManualClock, like the stage's
// punctuate loop; returns the fired ticks and leaves the persisted state in `state`.
std::vector<Tick> run(TimerScheduler& sched, ManualClock& clock, int64_t to, int64_t step,
                      TimerState& state) {
  std::vector<Tick> fired;
  while (clock.now_ms() <= to) {
    std::vector<int64_t> touched;
    for (const Tick& t : sched.due(clock.now_ms(), 1000, touched)) fired.push_back(t);
    for (int64_t id : touched) state = *sched.state(id);
    clock.advance(Millis(step));
  }
  return fired;
}

TEST(SchedulerTest, IntervalTicksAreAbsoluteAndNeverDrift) {
  ManualClock clock(1'767'225'600'123);
  const int64_t since = clock.now_ms();
  TimerScheduler sched(since);
  TimerState st = interval_state(since, 1);
  ASSERT_TRUE(sched.upsert(st).ok());
  EXPECT_EQ(*sched.next_due(), since + 1000);  // first tick one interval after registration
  // Fire late every time (punctuate every 370 ms): ticks stay on since + k·1000.
  auto fired = run(sched, clock, since + 3'600'369, 370, st);
  ASSERT_EQ(fired.size(), 3600u);
  for (size_t i = 0; i < fired.size(); ++i) {
    EXPECT_EQ(fired[i].scheduled_ms, since + static_cast<int64_t>(i + 1) * 1000);
    EXPECT_FALSE(fired[i].caught_up);
  }
  EXPECT_EQ(st.fired, 3600);
  EXPECT_EQ(*st.last_ms, since + 3'600'000);
}

// Restart at every 50 ms point across three intervals, down for `down_ms`: with catch_up=all the
// union of ticks before and after the restart is exactly every tick, each once.
TEST(SchedulerTest, RestartAtEveryPointNeverRepeatsOrLosesATick) {
  for (const char* mode : {"all", "last", "none"}) {
    for (int64_t down_ms : {0, 300, 2500}) {
      for (int64_t cut = 0; cut <= 3000; cut += 50) {
        ManualClock clock(1'767'225'600'000);
        const int64_t since = clock.now_ms();
        TimerState st = interval_state(since, 1, mode);
        std::vector<Tick> fired;
        {
          TimerScheduler before(since);
          ASSERT_TRUE(before.upsert(st).ok());
          auto f = run(before, clock, since + cut, 10, st);
          fired.insert(fired.end(), f.begin(), f.end());
        }
        // Crash: `st` is what was committed. Restart after the downtime.
        clock.advance(Millis(down_ms));
        const int64_t boot = clock.now_ms();
        TimerScheduler after(boot);
        ASSERT_TRUE(after.upsert(st).ok());
        auto f = run(after, clock, since + 8000, 10, st);
        fired.insert(fired.end(), f.begin(), f.end());

        std::set<int64_t> seen;
        for (const Tick& t : fired) {
          EXPECT_TRUE(seen.insert(t.scheduled_ms).second)
              << mode << " cut=" << cut << " down=" << down_ms << ": tick repeated";
        }
        // Ticks due while down: [since+1000·k] in (last committed, boot).
        std::set<int64_t> missed;
        for (int64_t k = 1; since + k * 1000 < boot; ++k) {
          if (since + k * 1000 > since + cut) missed.insert(since + k * 1000);
        }
        for (int64_t k = 1; k <= 8; ++k) {
          const int64_t tick = since + k * 1000;
          const bool was_missed = missed.count(tick) > 0;
          bool expect_fired = true;
          if (was_missed && std::string(mode) == "none") expect_fired = false;
          if (was_missed && std::string(mode) == "last") expect_fired = tick == *missed.rbegin();
          EXPECT_EQ(seen.count(tick) > 0, expect_fired)
              << mode << " cut=" << cut << " down=" << down_ms << " tick k=" << k;
        }
      }
    }
  }
}

TEST(SchedulerTest, DateTimerFiresOnceAndHonoursTheRegistrationWindow) {
  ManualClock clock(1'767'225'600'000);
  const int64_t now = clock.now_ms();
  auto date_state = [&](int64_t fire_at, int64_t id) {
    TimerState s;
    s.rule_id = id;
    s.trigger_ref = std::string(kDateTimer);
    s.params = Json{{"fire_at", format_rfc3339_ms(fire_at)}};
    s.since_ms = now;
    s.slot = id;
    return s;
  };
  TimerScheduler sched(now);
  TimerState future = date_state(now + 5000, 1), recent = date_state(now - 30'000, 2),
             old = date_state(now - 90'000, 3);
  for (auto* s : {&future, &recent, &old}) ASSERT_TRUE(sched.upsert(*s).ok());
  std::vector<int64_t> touched;
  auto fired = sched.due(now, 100, touched);
  ASSERT_EQ(fired.size(), 1u);  // 30 s in the past: fires at once; 90 s: never
  EXPECT_EQ(fired[0].rule_id, 2);
  EXPECT_FALSE(sched.due(now + 4999, 100, touched).size());  // far future: not early
  fired = sched.due(now + 5000, 100, touched);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].scheduled_ms, now + 5000);
  EXPECT_FALSE(sched.next_due());  // nothing left, ever
  // After a restart with the committed state it never fires again.
  TimerState committed = *sched.state(1);
  TimerScheduler again(now + 60'000);
  ASSERT_TRUE(again.upsert(committed).ok());
  EXPECT_FALSE(again.next_due());
}

TEST(SchedulerTest, CronScheduleAndEditingParamsReschedules) {
  ManualClock clock(1'767'225'600'500);  // 2026-01-01T00:00:00.500Z
  const int64_t now = clock.now_ms();
  TimerState s;
  s.rule_id = 9;
  s.trigger_ref = std::string(kCronTimer);
  s.params = Json{{"expression", "*/2 * * * * *"}};
  s.since_ms = now;
  s.slot = 9;
  TimerScheduler sched(now);
  ASSERT_TRUE(sched.upsert(s).ok());
  EXPECT_EQ(*sched.next_due(), 1'767'225'602'000);
  std::vector<int64_t> touched;
  ASSERT_EQ(sched.due(1'767'225'602'000, 10, touched).size(), 1u);
  // Edit: every 5 s from now on; the tick already fired stays fired.
  s = *sched.state(9);
  s.params = Json{{"expression", "*/5 * * * * *"}};
  s.since_ms = 1'767'225'602'100;
  ASSERT_TRUE(sched.upsert(s).ok());
  EXPECT_EQ(*sched.next_due(), 1'767'225'605'000);
}

TEST(SchedulerTest, EventIdsDeriveFromSlotAndSecond) {
  const int64_t t = 1'767'225'600'000;
  auto a = timer_event_id(1, t), b = timer_event_id(1, t + 1000), c = timer_event_id(2, t);
  ASSERT_TRUE(a && b && c);
  EXPECT_NE(*a, *b);
  EXPECT_NE(*a, *c);
  EXPECT_EQ(*a, *timer_event_id(1, t + 999));  // same rule, same second: the same tick
  EXPECT_LT(*a, int64_t{1} << 53);
  EXPECT_GE(*a, int64_t{1} << 52);
  // Above every id the IdGenerator makes now.
  ManualClock clock(t);
  IdGenerator ids(15, clock);
  EXPECT_GT(*a, ids.next());
  EXPECT_FALSE(timer_event_id(kMaxTimerSlots, t));
  // Disjoint from the Kafka-ingress ids (topology/core/ids.h): bit 51 stays clear until the
  // last representable second; past it there is no derived id.
  const int64_t last = kIdEpochMs + ((int64_t{1} << 31) - 1) * 1000;
  auto z = timer_event_id(kMaxTimerSlots - 1, last);
  ASSERT_TRUE(z);
  EXPECT_EQ(*z & kIngressIdBit, 0);
  EXPECT_LT(*z, *ingress_event_id(IngressSource::kWebhooks, 0, 0));
  EXPECT_FALSE(timer_event_id(1, last + 1000));
}

}  // namespace
}  // namespace attune::sensor
