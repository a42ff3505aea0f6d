// Crash-replay: the core pipeline in a child process, SIGKILLed at random points while events
// arrive, then restarted until everything settles. Every event must yield exactly one
// enforcement and exactly one execution, none lost, none doubled, each ending terminal.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "topology/core/clock.h"
#include "topology/core/time.h"
#include "topology/definitions_table.h"
#include "topology/embedded_log.h"

extern char** environ;

namespace attune {
namespace {

using namespace std::chrono_literals;

constexpr int kEvents = 300;
constexpr int kKills = 12;
constexpr int kPartitions = 4;  // must match crash_replay_node

struct Opened {
  std::unique_ptr<state::Db> db;
  std::unique_ptr<EmbeddedLog> log;
};

Opened open_log(const std::string& dir) {
  Opened o;
  auto db = state::Db::open(dir);
  EXPECT_TRUE(db.ok()) << db.error().message;
  o.db = std::move(*db);
  auto log = EmbeddedLog::open(*o.db, default_topics(kPartitions));
  EXPECT_TRUE(log.ok()) << log.error().message;
  o.log = std::move(*log);
  return o;
}

pid_t spawn_node(const std::string& dir, const std::string& expected) {
  std::vector<std::string> args = {CRASH_REPLAY_NODE, dir, expected};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ), 0);
  return pid;
}

// Every record of a topic, all partitions.
std::vector<Envelope> read_all(Log& log, std::string_view topic) {
  int64_t total = 0;
  for (int32_t p = 0; p < log.partitions(topic); ++p) {
    total += log.end_offset({std::string(topic), p});
  }
  auto reader = log.reader({std::string(topic)});
  EXPECT_TRUE(reader.ok());
  std::vector<Envelope> out;
  while (static_cast<int64_t>(out.size()) < total) {
    auto batch = (*reader)->poll(4096, 1000ms);
    if (batch.empty()) break;
    for (const Record& r : batch) {
      Envelope e;
      std::string error;
      EXPECT_TRUE(Envelope::parse(r.value, e, error)) << error;
      out.push_back(std::move(e));
    }
  }
  EXPECT_EQ(static_cast<int64_t>(out.size()), total) << topic;
  return out;
}

void write_definitions(Log& log) {
  const int64_t ts = SystemClock::instance().now_ms();
  const std::string now = format_rfc3339_ms(ts);
  std::vector<OutRecord> defs = {
      definition_record("pack", Json{{"id", 1}, {"ref", "crash"}, {"config", Json::object()}}, ts,
                        "test"),
      definition_record("action",
                        Json{{"id", 2},
                             {"ref", "crash.ok"},
                             {"pack_ref", "crash"},
                             {"runtime_ref", "core.shell"},
                             {"entrypoint", "true"},
                             {"enabled", true}},
                        ts, "test"),
      definition_record("trigger", Json{{"id", 3}, {"ref", "crash.hook"}, {"enabled", true}}, ts,
                        "test"),
      definition_record("rule",
                        Json{{"id", 4},
                             {"ref", "crash.on_hook"},
                             {"pack_ref", "crash"},
                             {"trigger", 3},
                             {"trigger_ref", "crash.hook"},
                             {"action", 2},
                             {"action_ref", "crash.ok"},
                             {"conditions", nullptr},
                             {"action_params", {{"n", "{{ event.payload.n }}"}}},
                             {"enabled", true},
                             {"updated", now}},
                        ts, "test")};
  ASSERT_TRUE(log.produce(std::move(defs)).ok());
}

void produce_events(Log& log, int first, int count) {
  const int64_t defs_offset = log.end_offset({std::string(topics::kDefinitions), 0});
  std::vector<OutRecord> records;
  for (int n = first; n < first + count; ++n) {
    const int64_t id = 1000 + n;
    const int64_t ts = SystemClock::instance().now_ms();
    Envelope e{"event.created",
               id,
               "event:" + std::to_string(id),
               ts,
               "test",
               Json{{"id", id},
                    {"trigger", 3},
                    {"trigger_ref", "crash.hook"},
                    {"config", nullptr},
                    {"payload", {{"n", n}, {"nested", {{"a", {1, 2, 3}}}}}},
                    {"source", nullptr},
                    {"source_ref", "webhook"},
                    {"rule", nullptr},
                    {"rule_ref", nullptr},
                    {"created", format_rfc3339_ms(ts)},
                    {"updated", format_rfc3339_ms(ts)},
                    {"defs_offset", defs_offset}}};
    records.push_back(OutRecord{std::string(topics::kEvents), "crash.hook", e.dump()});
  }
  ASSERT_TRUE(log.produce(std::move(records)).ok());
}

TEST(CrashReplay, EveryEventYieldsExactlyOneEnforcementAndOneTerminalExecution) {
  const unsigned seed = std::random_device{}();
  std::printf("crash_replay seed=%u\n", seed);
  std::mt19937 rng(seed);
  const auto dir =
      std::filesystem::temp_directory_path() / ("attune-crash-replay-" + std::to_string(seed));
  std::filesystem::remove_all(dir);

  {
    auto o = open_log(dir.string());
    write_definitions(*o.log);
  }

  // Rounds: add a batch of events while the node is down, start it, kill it at a random point.
  const int per_round = kEvents / kKills;
  int produced = 0;
  for (int round = 0; round < kKills; ++round) {
    {
      auto o = open_log(dir.string());
      const int count = round == kKills - 1 ? kEvents - produced : per_round;
      produce_events(*o.log, produced, count);
      produced += count;
    }
    const pid_t pid = spawn_node(dir.string(), "0");
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 400)(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
  }
  ASSERT_EQ(produced, kEvents);

  // Final run until every execution is terminal.
  const pid_t pid = spawn_node(dir.string(), std::to_string(kEvents));
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + 40s;
  pid_t done = 0;
  while ((done = waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  if (done == 0) {
    ::kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "pipeline did not settle within 40 s (seed " << seed << ")";
  }
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "node status " << status;

  auto o = open_log(dir.string());
  Log& log = *o.log;

  std::set<int64_t> events;
  for (const auto& e : read_all(log, topics::kEvents)) events.insert(e.id);
  ASSERT_EQ(events.size(), static_cast<size_t>(kEvents));

  std::map<int64_t, int> enforcements_per_event;
  std::map<int64_t, int> processed_per_enforcement;
  std::set<int64_t> enforcement_ids;
  for (const auto& e : read_all(log, topics::kEnforcements)) {
    if (e.type == "enforcement.created") {
      ++enforcements_per_event[e.payload["event"].get<int64_t>()];
      EXPECT_TRUE(enforcement_ids.insert(e.id).second) << "enforcement id reused " << e.id;
      EXPECT_EQ(e.payload["config"]["n"], e.payload["payload"]["n"]);
    } else if (e.type == "enforcement.updated") {
      EXPECT_EQ(e.payload["status"], "processed");
      ++processed_per_enforcement[e.id];
    }
  }
  for (int64_t id : events) EXPECT_EQ(enforcements_per_event[id], 1) << "event " << id;
  EXPECT_EQ(enforcements_per_event.size(), events.size());
  for (int64_t id : enforcement_ids) {
    EXPECT_EQ(processed_per_enforcement[id], 1) << "enforcement " << id;
  }

  std::map<int64_t, int> requests_per_enforcement;
  std::set<int64_t> execution_ids;
  for (const auto& e : read_all(log, topics::kCommands)) {
    ASSERT_EQ(e.type, "execution.requested");
    ++requests_per_enforcement[e.payload["execution"]["enforcement"].get<int64_t>()];
    EXPECT_TRUE(execution_ids.insert(e.id).second) << "execution requested twice " << e.id;
  }
  EXPECT_EQ(requests_per_enforcement.size(), enforcement_ids.size());
  for (int64_t id : enforcement_ids) EXPECT_EQ(requests_per_enforcement[id], 1);

  std::map<int64_t, std::string> final_status;
  std::map<std::pair<int64_t, std::string>, int> steps;
  for (const auto& e : read_all(log, topics::kExecutions)) {
    const std::string s = e.payload["status"].get<std::string>();
    EXPECT_EQ(++steps[std::make_pair(e.id, s)], 1)
        << "execution " << e.id << " entered " << s << " twice";
    final_status[e.id] = s;
  }
  EXPECT_EQ(final_status.size(), execution_ids.size());
  std::map<std::string, int> by_status;
  for (int64_t id : execution_ids) {
    ASSERT_TRUE(final_status.count(id)) << "execution " << id << " lost";
    const std::string& s = final_status[id];
    ++by_status[s];
    EXPECT_TRUE(s == "completed" || s == "abandoned") << "execution " << id << " ended " << s;
  }
  std::printf("crash_replay: %d kills, completed=%d abandoned=%d\n", kKills, by_status["completed"],
              by_status["abandoned"]);
  for (int32_t p = 0; p < log.partitions(topics::kDeadletter); ++p) {
    EXPECT_EQ(log.end_offset({std::string(topics::kDeadletter), p}), 0) << "dead letters";
  }
  o.log.reset();
  o.db.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace attune
