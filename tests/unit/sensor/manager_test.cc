// SensorManager ownership moves (issue 13): a process that loses the sensor stage releases its
// sensors without waiting and can take them back; on Kafka sensors run behind
// `setpriv --pdeathsig KILL` so they die with their process; a publisher hears of every change.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "processors/sensor/sensor_manager.h"
#include "runners/environments.h"
#include "topology/embedded_log.h"

namespace attune::sensor {
namespace {

namespace fs = std::filesystem;

bool alive(int pid) {
  if (::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(stat)), {});
  const auto paren = s.rfind(") ");
  return paren != std::string::npos && s[paren + 2] != 'Z';
}

std::string cmdline(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline");
  std::string s((std::istreambuf_iterator<char>(f)), {});
  for (char& c : s) c = c == '\0' ? ' ' : c;
  return s;
}

template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // test only
  }
  return false;
}

class SensorManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("attune-sensor-mgr-" + std::to_string(std::random_device{}()));
    auto db = state::Db::open(dir_.string(), state::DbOptions{});
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_ = std::move(*db);
    auto log = EmbeddedLog::open(*db_, default_topics(1));
    ASSERT_TRUE(log.ok()) << log.error().message;
    log_ = std::move(*log);
    const int64_t ts = SystemClock::instance().now_ms();
    ASSERT_TRUE(log_->produce({
        definition_record("trigger", Json{{"id", 1}, {"ref", "p.t"}, {"pack_ref", "p"},
                                          {"enabled", true}}, ts, "test"),
        definition_record("sensor", Json{{"id", 2}, {"ref", "p.s"}, {"pack_ref", "p"},
                                         {"runtime_ref", "core.shell"}, {"enabled", true},
                                         {"entrypoint", "echo up >&2; while true; do sleep 1; done"},
                                         {"trigger_types", {"p.t"}}}, ts, "test"),
        definition_record("rule", Json{{"id", 3}, {"ref", "p.r"}, {"pack_ref", "p"},
                                       {"trigger_ref", "p.t"}, {"enabled", true},
                                       {"trigger_params", Json::object()}}, ts, "test"),
    }).ok());
    defs_ = std::make_unique<DefinitionsTable>(*log_);
    ASSERT_TRUE(defs_->start().ok());
  }
  void TearDown() override {
    defs_->stop();
    defs_.reset();
    log_.reset();
    db_.reset();
    fs::remove_all(dir_);
  }
  fs::path dir_;
  std::unique_ptr<state::Db> db_;
  std::unique_ptr<Log> log_;
  std::unique_ptr<DefinitionsTable> defs_;
};

TEST_F(SensorManagerTest, ReleaseStopsWithoutWaitingAndATakeOverStartsAgain) {
  SensorManagerOptions o;
  o.definitions = defs_.get();
  o.stop_grace = std::chrono::milliseconds(200);
  o.argv_prefix = default_argv_prefix();
  SensorManager m(o);
  std::atomic<int> changes{0};
  m.set_on_change([&] { ++changes; });

  m.reconcile(SystemClock::instance().now_ms());
  Json s = m.status("p.s");
  ASSERT_EQ(s["state"], "running") << s.dump();
  const int pid = s["pid"].get<int>();
  EXPECT_TRUE(alive(pid));
  if (!o.argv_prefix.empty()) {
    // The prefix exec'd the sensor itself: same pid, the sensor's own command line.
    EXPECT_TRUE(eventually([&] { return cmdline(pid).rfind("/bin/sh -c", 0) == 0; }))
        << cmdline(pid);
  }
  EXPECT_GT(changes.load(), 0);
  ASSERT_EQ(m.snapshot().size(), 1u);
  EXPECT_EQ(m.snapshot()[0].ref, "p.s");
  EXPECT_TRUE(eventually([&] { return m.snapshot()[0].err == "up\n"; }));

  // Revocation: returns at once; the process goes (SIGINT first) and the state says why.
  const auto before = std::chrono::steady_clock::now();
  m.release();
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(100));
  ASSERT_TRUE(eventually([&] { return m.status("p.s")["state"] == "stopped"; }))
      << m.status("p.s").dump();
  EXPECT_EQ(m.status("p.s")["reason"], "this process no longer owns the sensor stage");
  EXPECT_TRUE(eventually([&] { return !alive(pid); }));

  // Ownership back: it runs again, a new process.
  m.reconcile(SystemClock::instance().now_ms());
  s = m.status("p.s");
  ASSERT_EQ(s["state"], "running") << s.dump();
  EXPECT_NE(s["pid"].get<int>(), pid);
  const int again = s["pid"].get<int>();

  // No change notification once unregistered.
  m.set_on_change(nullptr);
  const int seen = changes.load();
  m.stop_all();
  EXPECT_FALSE(alive(again));
  EXPECT_EQ(changes.load(), seen);
}

TEST_F(SensorManagerTest, BehindThePrefixAMissingProgramIsALaunchFailure) {
  SensorManagerOptions o;
  o.definitions = defs_.get();
  o.argv_prefix = {"/usr/bin/env", "--"};  // any prefix: the check is ours, not the prefix's
  SensorManager m(o);
  ASSERT_TRUE(log_->produce({definition_record(
                  "sensor", Json{{"id", 2}, {"ref", "p.s"}, {"pack_ref", "p"},
                                 {"runtime_ref", "core.nodejs"}, {"enabled", true},
                                 {"entrypoint", "x"}, {"trigger_types", {"p.t"}}},
                  SystemClock::instance().now_ms(), "test")}).ok());
  ASSERT_TRUE(eventually([&] {
    auto sensor = defs_->get("sensor", "p.s");
    return sensor && sensor->value("runtime_ref", "") == "core.nodejs";
  }));
  const char* path = std::getenv("PATH");
  const std::string saved = path ? path : "";
  ::setenv("PATH", dir_.c_str(), 1);  // no node here
  m.reconcile(SystemClock::instance().now_ms());
  ::setenv("PATH", saved.c_str(), 1);
  const Json s = m.status("p.s");
  EXPECT_EQ(s["state"], "failed") << s.dump();
  EXPECT_EQ(s["last_error"], "cannot start: program 'node' not found in PATH") << s.dump();
  m.stop_all();
}


TEST_F(SensorManagerTest, PythonSensorWaitsForAndRunsWithItsPacksVirtualenv) {
  // A pack with requirements.txt (no packages: a plain virtualenv, built offline) and a python
  // sensor that reports the interpreter it runs under.
  const fs::path pack = dir_ / "pack";
  fs::create_directories(pack / "sensors");
  std::ofstream(pack / "requirements.txt") << "# nothing to install\n";
  std::ofstream(pack / "sensors" / "watch.py")
      << "import sys, time\nprint(sys.prefix, file=sys.stderr, flush=True)\ntime.sleep(60)\n";
  const int64_t ts = SystemClock::instance().now_ms();
  ASSERT_TRUE(log_->produce({
      definition_record("pack", Json{{"id", 9}, {"ref", "p"}, {"storage_path", pack.string()}},
                        ts, "test"),
      definition_record("sensor", Json{{"id", 2}, {"ref", "p.s"}, {"pack_ref", "p"},
                                       {"runtime_ref", "core.python"}, {"enabled", true},
                                       {"entrypoint", "watch.py"}, {"trigger_types", {"p.t"}}},
                        ts, "test")}).ok());
  ASSERT_TRUE(eventually([&] {
    auto sensor = defs_->get("sensor", "p.s");
    return defs_->get("pack", "p") && sensor && sensor->value("runtime_ref", "") == "core.python";
  }));
  runners::EnvironmentOptions eo;
  eo.envs_dir = (dir_ / "envs").string();
  auto envs = std::make_shared<runners::PackEnvironments>(eo);
  SensorManagerOptions o;
  o.definitions = defs_.get();
  o.environments = envs;
  o.environment_retry = std::chrono::milliseconds(100);
  SensorManager m(o);

  // Not built yet: the sensor waits (and its build starts) instead of running without it.
  m.reconcile(SystemClock::instance().now_ms());
  Json s = m.status("p.s");
  EXPECT_EQ(s["state"], "backoff") << s.dump();
  EXPECT_NE(s["last_error"].get<std::string>().find("not built yet"), std::string::npos);
  // Without a mailbox nothing punctuates: drive the retries as the stage would.
  bool running = false;
  for (int i = 0; i < 1200 && !running; ++i) {  // the build takes seconds on a loaded machine
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // test only
    m.on_punctuate(SystemClock::instance().now_ms());
    running = m.status("p.s")["state"] == "running";
  }
  ASSERT_TRUE(running) << m.status("p.s").dump();
  auto env = envs->resolve("p", pack.string(), "core.python");
  ASSERT_TRUE(env.ok()) << env.error().message;
  EXPECT_TRUE(eventually([&] { return m.snapshot()[0].err == env->dir + "\n"; }))
      << m.snapshot()[0].err << " vs " << env->dir;
  m.stop_all();
}

}  // namespace
}  // namespace attune::sensor
