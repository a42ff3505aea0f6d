// Sensor failover pieces that need no broker: the timer handover rule (a member taking over fires
// the ticks of the gap late, each once) and the attune.sensors view every API instance keeps
// (liveness derived at read time).
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <thread>

#include "processors/sensor/sensor_status.h"
#include "processors/sensor/timer_scheduler.h"
#include "topology/core/clock.h"
#include "topology/core/time.h"
#include "topology/embedded_log.h"

namespace attune::sensor {
namespace {

constexpr int64_t kGrace = 60'000;

TimerState every_second(int64_t since, const char* catch_up) {
  TimerState s;
  s.rule_id = 7;
  s.rule_ref = "p.r";
  s.trigger_ref = std::string(kIntervalTimer);
  s.params = Json{{"unit", "seconds"}, {"interval", 1}, {"catch_up", catch_up}};
  s.since_ms = since;
  s.slot = 3;
  return s;
}

// The predecessor fired up to t0 + 5 s and died; the survivor takes over at t0 + 12.3 s with the
// state restored from the changelog. As a handover (boot = now - grace) every tick of the gap
// fires, not caught up, whatever catch_up says; as a restart (boot = now) only catch_up's.
TEST(TimerHandoverTest, TicksOfTheGapFireLateEachOnce) {
  const int64_t t0 = 1767225600000;
  for (const char* catch_up : {"last", "none", "all"}) {
    TimerState s = every_second(t0, catch_up);
    s.last_ms = t0 + 5000;
    s.fired = 5;
    const int64_t now = t0 + 12'300;
    TimerScheduler handover(now - kGrace, kGrace);
    ASSERT_TRUE(handover.upsert(s).ok());
    std::vector<int64_t> touched;
    const auto ticks = handover.due(now, 1000, touched);
    ASSERT_EQ(ticks.size(), 7u) << catch_up;  // t0+6 s .. t0+12 s
    for (size_t i = 0; i < ticks.size(); ++i) {
      EXPECT_EQ(ticks[i].scheduled_ms, t0 + 6000 + 1000 * static_cast<int64_t>(i));
      EXPECT_FALSE(ticks[i].caught_up);
    }
    EXPECT_EQ(handover.state(7)->last_ms, t0 + 12'000);
    EXPECT_EQ(handover.next_due(), t0 + 13'000);

    TimerScheduler restart(now, kGrace);
    ASSERT_TRUE(restart.upsert(s).ok());
    touched.clear();
    const auto after_restart = restart.due(now, 1000, touched);
    const size_t expected = std::string(catch_up) == "all" ? 7 : std::string(catch_up) == "last";
    EXPECT_EQ(after_restart.size(), expected) << catch_up;
  }
}

// Ticks more than the grace overdue at a handover (the stage was down long) follow catch_up.
TEST(TimerHandoverTest, BeyondTheGraceCatchUpApplies) {
  const int64_t t0 = 1767225600000;
  TimerState s = every_second(t0, "last");
  s.last_ms = t0 + 5000;
  const int64_t now = t0 + 5000 + 90'000;
  TimerScheduler handover(now - kGrace, kGrace);
  ASSERT_TRUE(handover.upsert(s).ok());
  std::vector<int64_t> touched;
  const auto ticks = handover.due(now, 1000, touched);
  ASSERT_EQ(ticks.size(), 1u + 61u);  // the latest of the run beyond the grace, then each one
  EXPECT_TRUE(ticks[0].caught_up);
  EXPECT_EQ(ticks[0].scheduled_ms, now - kGrace - 1000);
  for (size_t i = 1; i < ticks.size(); ++i) EXPECT_FALSE(ticks[i].caught_up);
  EXPECT_EQ(ticks.back().scheduled_ms, now);
}

OutRecord record(std::string key, std::string type, Json payload, int64_t ts) {
  Envelope e{std::move(type), 0, key, ts, "sensor", std::move(payload)};
  return OutRecord{std::string(kSensorsTopic), std::move(key), e.dump()};
}

class SensorStatusViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attune-sensor-status-" + std::to_string(std::random_device{}()));
    auto db = state::Db::open(dir_.string(), state::DbOptions{});
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_ = std::move(*db);
    auto log = EmbeddedLog::open(*db_, {sensors_topic()});
    ASSERT_TRUE(log.ok()) << log.error().message;
    log_ = std::move(*log);
  }
  void TearDown() override {
    log_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Produces and waits until the view has applied it (status(ref) passes `ready`).
  template <class Pred>
  bool publish_and_wait(std::vector<OutRecord> records, SensorStatusView& view,
                        const std::string& ref, Pred ready) {
    EXPECT_TRUE(log_->produce(std::move(records)).ok());
    for (int i = 0; i < 500; ++i) {
      if (ready(view.status(ref))) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // test only: the view's thread
    }
    return false;
  }
  std::filesystem::path dir_;
  std::unique_ptr<state::Db> db_;
  std::unique_ptr<Log> log_;
};

TEST_F(SensorStatusViewTest, StatusAndLogsWithLivenessAtReadTime) {
  ManualClock clock;
  SensorStatusView view(*log_, clock, std::chrono::milliseconds(5000));
  ASSERT_TRUE(view.start().ok());
  EXPECT_EQ(view.status("p.s")["state"], "stopped");
  EXPECT_EQ(view.status("p.s")["reason"], "not started yet");
  EXPECT_FALSE(view.log("p.s", 0).has_value());

  const int64_t t = clock.now_ms();
  Json proc = {{"name", "h-1-10"}, {"host", "h"}, {"pid", 10}, {"owner", true}, {"stopped", false}};
  Json running = {{"ref", "p.s"}, {"process", "h-1-10"},
                  {"status", {{"state", "running"}, {"pid", 77}, {"restarts", 0}}},
                  {"stdout", "out\n"}, {"stderr", "err \xe2\x82\xac\n"}};
  ASSERT_TRUE(publish_and_wait(
      {record("process:h-1-10", "sensor.process", proc, t),
       record("sensor:p.s", "sensor.status", running, t)},
      view, "p.s", [](const Json& s) { return s["state"] == "running"; }));
  Json s = view.status("p.s");
  EXPECT_EQ(s["pid"], 77);
  EXPECT_EQ(s["process"]["name"], "h-1-10");
  EXPECT_EQ(s["process"]["pid"], 10);
  EXPECT_EQ(view.log("p.s", 0), "out\n");
  EXPECT_EQ(view.log("p.s", 1), "err \xe2\x82\xac\n");

  // Its process silent for longer than the timeout (kill -9): not running any more.
  clock.advance(Millis(5001));
  s = view.status("p.s");
  EXPECT_EQ(s["state"], "unknown");
  EXPECT_TRUE(s["pid"].is_null());
  EXPECT_NE(s["reason"].get<std::string>().find("h-1-10"), std::string::npos);

  // A live heartbeat again, but it gave the sensor stage up (revocation): stopped.
  proc["owner"] = false;
  ASSERT_TRUE(publish_and_wait({record("process:h-1-10", "sensor.process", proc, clock.now_ms())},
                               view, "p.s",
                               [](const Json& st) { return st["state"] == "stopped"; }));

  // The survivor publishes its own status: that one counts.
  Json other = {{"name", "h-2-11"}, {"host", "h"}, {"pid", 11}, {"owner", true}};
  running["process"] = "h-2-11";
  running["status"]["pid"] = 78;
  ASSERT_TRUE(publish_and_wait(
      {record("process:h-2-11", "sensor.process", other, clock.now_ms()),
       record("sensor:p.s", "sensor.status", running, clock.now_ms())},
      view, "p.s", [](const Json& st) { return st["state"] == "running" && st["pid"] == 78; }));
  EXPECT_EQ(view.status("p.s")["process"]["name"], "h-2-11");

  // Malformed records are skipped.
  ASSERT_TRUE(log_->produce({OutRecord{std::string(kSensorsTopic), "sensor:p.s", "{not json"}}).ok());
  view.stop();
  EXPECT_EQ(view.status("p.s")["pid"], 78);
}

}  // namespace
}  // namespace attune::sensor
