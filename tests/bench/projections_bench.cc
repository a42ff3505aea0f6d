// Projections benchmark: apply rate of the "api" stage and list/stats latency over 100k
// executions on an EmbeddedLog. Usage: bench_projections [executions=100000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "api/projections/projections.h"
#include "topology/core/time.h"
#include "topology/embedded_log.h"

namespace {

using namespace attune;
using namespace attune::projections;
using Steady = std::chrono::steady_clock;
constexpr int64_t kT0 = 1767225600000;

std::string execution_record(int64_t id, int i, const char* status, int64_t updated) {
  static const char* kActions[] = {"core.echo", "core.http", "ops.deploy", "ops.backup",
                                   "web.check", "web.purge", "db.vacuum", "db.dump"};
  const std::string action = kActions[i % 8];
  Json row = {{"id", id},
              {"action", 10 + i % 8},
              {"action_ref", action},
              {"pack_ref", action.substr(0, action.find('.'))},
              {"config", {{"n", i}}},
              {"env_vars", Json::object()},
              {"parent", nullptr},
              {"enforcement", 500000 + i / 4},
              {"rule", 70 + i % 16},
              {"rule_ref", "core.rule" + std::to_string(i % 16)},
              {"trigger_ref", "core.timer"},
              {"executor", nullptr},
              {"status", status},
              {"result", std::string(status) == "completed"
                             ? Json{{"stdout", "ok " + std::to_string(i % 100)}}
                             : Json(nullptr)},
              {"attempt", 1},
              {"created", format_rfc3339_ms(kT0 + i)},
              {"updated", format_rfc3339_ms(updated)},
              {"old_status", nullptr}};
  return Envelope{"execution.updated", id, "execution:" + std::to_string(id), updated, "executor",
                  row}
      .dump();
}

double ms_since(Steady::time_point t) {
  return std::chrono::duration<double, std::milli>(Steady::now() - t).count();
}

void latency(const char* name, int reps, const std::function<int64_t()>& fn) {
  std::vector<double> us;
  int64_t total = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t = Steady::now();
    total = fn();
    us.push_back(ms_since(t) * 1000);
  }
  std::sort(us.begin(), us.end());
  std::printf("  %-44s p50 %8.1f us  p99 %8.1f us  (total %lld)\n", name, us[us.size() / 2],
              us[us.size() * 99 / 100], static_cast<long long>(total));
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("attune-bench-proj-" + std::to_string(std::random_device{}()));
  int rc = 0;
  {
    auto db = state::Db::open(dir.string());
    auto log = EmbeddedLog::open(**db, default_topics(3));
    if (!db.ok() || !log.ok()) return 1;
    Log& l = **log;

    // Pre-produce: n creations (requested), then n updates (completed / failed / running).
    const auto tp0 = Steady::now();
    std::vector<int64_t> last(3, 0);
    for (int phase = 0; phase < 2; ++phase) {
      for (int base = 0; base < n; base += 1000) {
        std::vector<OutRecord> batch;
        for (int i = base; i < std::min(n, base + 1000); ++i) {
          const int64_t id = 1000000 + i;
          const char* status =
              phase == 0 ? "requested" : (i % 10 < 7 ? "completed" : i % 10 < 9 ? "failed" : "running");
          batch.push_back({std::string(topics::kExecutions), std::to_string(id),
                           execution_record(id, i, status, kT0 + i + phase * 1000000)});
        }
        auto pos = l.produce(std::move(batch));
        if (!pos.ok()) return 1;
        for (const auto& p : *pos) last[p.tp.partition] = std::max(last[p.tp.partition], p.offset);
      }
    }
    std::printf("produced %d records in %.0f ms\n", 2 * n, ms_since(tp0));

    Topology topology;
    IdGenerator ids(0, SystemClock::instance());
    RuntimeOptions opts;
    opts.ids = &ids;
    Runtime runtime(l, topology, opts);
    auto stage = make_projection_stage(l, runtime.applied());
    if (!stage.ok()) return 1;
    topology.add(std::move(stage->spec));
    auto& proj = *stage->projections;
    int64_t hook_calls = 0;
    proj.add_change_hook([&](const Change&) { ++hook_calls; });

    const auto ta = Steady::now();
    if (!runtime.start().ok()) return 1;
    for (int p = 0; p < 3; ++p) {
      if (!proj.wait_applied({std::string(topics::kExecutions), p}, last[p],
                             std::chrono::minutes(10))) {
        return 1;
      }
    }
    const double apply_ms = ms_since(ta);
    std::printf("applied %d records (%d creations + %d status updates) in %.0f ms: %.0f records/s"
                " (hooks %lld)\n",
                2 * n, n, n, apply_ms, 2 * n / (apply_ms / 1000),
                static_cast<long long>(hook_calls));

    auto list = [&](ExecutionFilter f, Page page) {
      return [&proj, f, page]() -> int64_t {
        auto r = proj.list_executions(f, page);
        return r.ok() ? r->total : -1;
      };
    };
    auto stats = [&](ExecutionFilter f) {
      return [&proj, f]() -> int64_t {
        auto r = proj.execution_stats(f);
        return r.ok() ? r->total : -1;
      };
    };
    std::printf("list latency over %d executions (page of 50 unless noted):\n", n);
    latency("unfiltered, desc", 200, list({}, {0, 50, true}));
    latency("unfiltered, asc", 200, list({}, {0, 50, false}));
    latency("unfiltered, offset 5000", 50, list({}, {5000, 50, true}));
    latency("status=running (10%)", 200, list({.statuses = {"running"}}, {0, 50, true}));
    latency("status in (running, failed)", 200,
            list({.statuses = {"running", "failed"}}, {0, 50, true}));
    latency("action_ref (12.5%)", 200, list({.action_ref = "core.echo"}, {0, 50, true}));
    latency("enforcement (4 rows)", 200, list({.enforcement = 510000}, {0, 50, true}));
    latency("action_ref + status (counted by scan)", 20,
            list({.action_ref = "core.echo", .statuses = {"failed"}}, {0, 50, true}));
    latency("rule_ref + pack_ref (row predicate, scan)", 20,
            list({.pack_ref = "core", .rule_ref = "core.rule3"}, {0, 50, true}));
    latency("created_after last 1000", 100, list({.created_after = kT0 + n - 1000}, {0, 50, true}));
    latency("result_contains (full scan of rows)", 5, list({.result_contains = "ok 42"}, {0, 50, true}));
    latency("get_execution", 1000, [&]() -> int64_t {
      return proj.get_execution(1000000 + n / 2).ok() ? 1 : 0;
    });
    latency("stats unfiltered (counters)", 200, stats({}));
    latency("stats action_ref (index scan)", 20, stats({.action_ref = "core.echo"}));
    runtime.stop();
  }
  std::filesystem::remove_all(dir);
  return rc;
}
