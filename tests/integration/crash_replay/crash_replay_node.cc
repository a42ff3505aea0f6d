// crash_replay_node <data-dir> [expected-terminal]: runs the core pipeline (rules, executor,
// worker) over the EmbeddedLog in <data-dir> until SIGTERM, or, with expected-terminal > 0,
// until that many executions are terminal (then prints "settled" and exits 0). The crash-replay
// test SIGKILLs it at random points.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "processors/pipeline.h"
#include "topology/embedded_log.h"
#include "topology/runtime.h"

using namespace attune;

namespace {

bool terminal(const std::string& s) {
  return s == "completed" || s == "failed" || s == "timeout" || s == "cancelled" ||
         s == "abandoned";
}

// Follows attune.executions until `expected` executions are terminal.
bool wait_settled(Log& log, size_t expected) {
  auto reader = log.reader({std::string(topics::kExecutions)});
  if (!reader.ok()) return false;
  std::map<int64_t, std::string> status;
  size_t done = 0;
  while (done < expected) {
    for (const Record& r : (*reader)->poll(1024, std::chrono::milliseconds(1000))) {
      Envelope e;
      std::string error;
      if (!Envelope::parse(r.value, e, error)) continue;
      const std::string s = e.payload.value("status", "");
      std::string& old = status[e.id];
      if (terminal(old)) continue;
      old = s;
      if (terminal(s)) ++done;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: crash_replay_node <data-dir> [expected-terminal]\n");
    return 2;
  }
  const size_t expected = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0;
  spdlog::set_level(spdlog::level::warn);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts

  auto db = state::Db::open(argv[1]);
  if (!db.ok()) {
    std::fprintf(stderr, "db: %s\n", db.error().message.c_str());
    return 1;
  }
  auto log = EmbeddedLog::open(**db, default_topics(4));
  if (!log.ok()) {
    std::fprintf(stderr, "log: %s\n", log.error().message.c_str());
    return 1;
  }
  DefinitionsTable table(**log);
  if (auto st = table.start(); !st.ok()) {
    std::fprintf(stderr, "definitions: %s\n", st.error().message.c_str());
    return 1;
  }
  IdGenerator ids(1, SystemClock::instance());
  Topology topology;
  PipelineOptions options;
  options.definitions = &table;
  options.api_url = "http://127.0.0.1:0";
  options.worker_name = "crash-replay";
  // Bounded stores (issue 13) at their most aggressive: entries go 100 ms after they stop being
  // needed in normal flow, no hold after a start. The embedded log never redelivers a committed
  // record, so the exactly-once checks must hold all the same.
  options.state_retention = std::chrono::milliseconds(100);
  options.prune.hold = std::chrono::milliseconds(0);
  options.prune.interval = std::chrono::milliseconds(50);
  add_core_stages(topology, options);
  RuntimeOptions rt_options;
  rt_options.ids = &ids;
  Runtime runtime(**log, topology, rt_options);
  if (auto st = runtime.start(); !st.ok()) {
    std::fprintf(stderr, "runtime: %s\n", st.error().message.c_str());
    return 1;
  }
  std::printf("started\n");
  std::fflush(stdout);
  if (expected > 0) {
    if (!wait_settled(**log, expected)) return 1;
    std::printf("settled\n");
    std::fflush(stdout);
  } else {
    int sig = 0;
    sigwait(&set, &sig);
  }
  runtime.stop();
  table.stop();
  return runtime.failed() ? 1 : 0;
}
