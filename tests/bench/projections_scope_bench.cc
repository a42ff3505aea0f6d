// Scoped lists benchmark (API.md §16.3 visibility): 100k executions over 100 scopes on an
// EmbeddedLog; the same queries with and without a 3-scope restriction, timed side by side
// (interleaved), with their ratio; then the one-time scope index backfill of the same store.
// Usage: bench_projections_scope [executions=100000] [reps=300]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "api/projections/projection_processor.h"
#include "api/projections/projections.h"
#include "topology/core/time.h"
#include "topology/embedded_log.h"

namespace {

using namespace attune;
using namespace attune::projections;
using Steady = std::chrono::steady_clock;
constexpr int64_t kT0 = 1767225600000;

// Scope of row i is one of 100 (1000 rows each at 100k), interleaved in creation order:
//   i % 100 == 0       core.echo, no rule, no executor      p:core
//   i % 100 in 1..59   rule tenant<s>.r                      p:tenant<s>
//   i % 100 in 60..89  core.echo run by identity s - 18      i:42 .. i:71
//   i % 100 in 90..99  action pack<s>.act, no rule           p:pack<s>
// Statuses by (i / 100) % 10, so every scope has the global mix: 70% completed, 20% failed,
// 10% running.
std::string execution_record(int64_t id, int i, const char* status, int64_t updated) {
  const int s = i % 100;
  Json rule_ref = nullptr;
  Json executor = nullptr;
  std::string action = "core.echo";
  if (s >= 1 && s < 60) rule_ref = "tenant" + std::to_string(s) + ".r";
  if (s >= 60 && s < 90) executor = s - 18;
  if (s >= 90) action = "pack" + std::to_string(s) + ".act";
  Json row = {{"id", id},
              {"action", 10 + s},
              {"action_ref", action},
              {"pack_ref", action.substr(0, action.find('.'))},
              {"config", {{"n", i}}},
              {"env_vars", Json::object()},
              {"parent", nullptr},
              {"enforcement", rule_ref.is_null() ? Json(nullptr) : Json(500000 + i / 4)},
              {"rule", rule_ref.is_null() ? Json(nullptr) : Json(70 + s)},
              {"rule_ref", rule_ref},
              {"trigger_ref", rule_ref.is_null() ? Json(nullptr) : Json("core.timer")},
              {"executor", executor},
              {"status", status},
              {"result", std::string(status) == "completed"
                             ? Json{{"stdout", "ok " + std::to_string(i % 100)}}
                             : Json(nullptr)},
              {"attempt", 1},
              {"created", format_rfc3339_ms(kT0 + i)},
              {"updated", format_rfc3339_ms(updated)},
              {"old_status", nullptr}};
  return Envelope{"execution.updated", id, "execution:" + std::to_string(id), updated,
                  "executor",          row}
      .dump();
}

double us_since(Steady::time_point t) {
  return std::chrono::duration<double, std::micro>(Steady::now() - t).count();
}

double p50(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Times `unscoped` and `scoped` alternately `reps` times; prints both p50s and their ratio.
void side_by_side(const char* name, int reps, const std::function<int64_t()>& unscoped,
                  const std::function<int64_t()>& scoped) {
  std::vector<double> a, b;
  int64_t total_a = 0, total_b = 0;
  for (int r = 0; r < reps; ++r) {
    auto t = Steady::now();
    total_a = unscoped();
    a.push_back(us_since(t));
    t = Steady::now();
    total_b = scoped();
    b.push_back(us_since(t));
  }
  const double pa = p50(a), pb = p50(b);
  std::printf("  %-34s %9.1f us (total %6lld)  %9.1f us (total %5lld)  %5.2fx\n", name, pa,
              static_cast<long long>(total_a), pb, static_cast<long long>(total_b), pb / pa);
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 300;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("attune-bench-scope-" + std::to_string(std::random_device{}()));
  int rc = 0;
  {
    auto db = state::Db::open(dir.string());
    if (!db.ok()) return 1;
    auto log = EmbeddedLog::open(**db, default_topics(3));
    if (!log.ok()) return 1;
    Log& l = **log;

    std::vector<int64_t> last(3, 0);
    for (int phase = 0; phase < 2; ++phase) {
      for (int base = 0; base < n; base += 1000) {
        std::vector<OutRecord> batch;
        for (int i = base; i < std::min(n, base + 1000); ++i) {
          const int64_t id = 1000000 + i;
          const int k = (i / 100) % 10;
          const char* status = phase == 0 ? "requested"
                                          : (k < 7   ? "completed"
                                             : k < 9 ? "failed"
                                                     : "running");
          batch.push_back({std::string(topics::kExecutions), std::to_string(id),
                           execution_record(id, i, status, kT0 + i + phase * 1000000)});
        }
        auto pos = l.produce(std::move(batch));
        if (!pos.ok()) return 1;
        for (const auto& p : *pos) last[p.tp.partition] = std::max(last[p.tp.partition], p.offset);
      }
    }

    {
      Topology topology;
      IdGenerator ids(0, SystemClock::instance());
      RuntimeOptions opts;
      opts.ids = &ids;
      Runtime runtime(l, topology, opts);
      auto stage = make_projection_stage(l, runtime.applied());
      if (!stage.ok()) return 1;
      topology.add(std::move(stage->spec));
      auto& proj = *stage->projections;
      const auto ta = Steady::now();
      if (!runtime.start().ok()) return 1;
      for (int p = 0; p < 3; ++p) {
        if (!proj.wait_applied({std::string(topics::kExecutions), p}, last[p],
                               std::chrono::minutes(10))) {
          return 1;
        }
      }
      std::printf("applied %d records (%d executions over 100 scopes) in %.0f ms\n", 2 * n, n,
                  us_since(ta) / 1000);

      const std::vector<std::string> three = {"p:core", "p:tenant42", "i:42"};
      auto list = [&proj](ExecutionFilter f, Page page) {
        return [&proj, f, page]() -> int64_t {
          auto r = proj.list_executions(f, page);
          return r.ok() && r->items.size() == std::min<size_t>(page.limit, r->total) ? r->total
                                                                                     : -1;
        };
      };
      auto stats = [&proj](ExecutionFilter f) {
        return [&proj, f]() -> int64_t {
          auto r = proj.execution_stats(f);
          return r.ok() ? r->total : -1;
        };
      };
      std::printf("p50 over %d reps; unscoped vs scopes {p:core, p:tenant42, i:42} (3%%):\n", reps);
      std::printf("  %-34s %30s  %29s  %6s\n", "query", "unscoped", "scoped", "ratio");
      side_by_side("first page (50), desc", reps, list({}, {0, 50, true}),
                   list({.scopes = three}, {0, 50, true}));
      side_by_side("first page (50), asc", reps, list({}, {0, 50, false}),
                   list({.scopes = three}, {0, 50, false}));
      side_by_side("status=failed, first page", reps, list({.statuses = {"failed"}}, {0, 50, true}),
                   list({.statuses = {"failed"}, .scopes = three}, {0, 50, true}));
      side_by_side("status in (failed, running)", reps,
                   list({.statuses = {"failed", "running"}}, {0, 50, true}),
                   list({.statuses = {"failed", "running"}, .scopes = three}, {0, 50, true}));
      side_by_side("offset 500, desc", reps / 3, list({}, {500, 50, true}),
                   list({.scopes = three}, {500, 50, true}));
      side_by_side("stats", reps, stats({}), stats({.scopes = three}));
      side_by_side("stats status=failed", reps, stats({.statuses = {"failed"}}),
                   stats({.statuses = {"failed"}, .scopes = three}));
      std::printf("other index chosen, scope checked on rows (informational):\n");
      side_by_side("enforcement (3 rows)", reps, list({.enforcement = 510000}, {0, 50, true}),
                   list({.enforcement = 510000, .scopes = three}, {0, 50, true}));
      side_by_side("action_ref core.echo (90%)", reps / 10,
                   list({.action_ref = "core.echo"}, {0, 50, true}),
                   list({.action_ref = "core.echo", .scopes = three}, {0, 50, true}));
      std::printf("many scopes (kMaxScopePrefixes = %zu):\n", kMaxScopePrefixes);
      std::vector<std::string> many;  // 59 of them have rows: narrowed, merged
      for (int s = 1; s <= 80; ++s) many.push_back("p:tenant" + std::to_string(s));
      side_by_side("80 scopes, 59 with rows (merge)", 20, list({}, {0, 50, true}),
                   list({.scopes = many}, {0, 50, true}));
      std::vector<std::string> all = many;  // 89 with rows
      for (int s = 42; s <= 71; ++s) all.push_back("i:" + std::to_string(s));
      side_by_side("110 scopes, 89 with rows (merge)", 3, list({}, {0, 50, true}),
                   list({.scopes = all}, {0, 50, true}));
      std::vector<std::string> huge = all;  // more than kMaxScopeLookups: not narrowed, row scan
      for (size_t s = 0; s < kMaxScopeLookups; ++s) huge.push_back("i:" + std::to_string(1000 + s));
      side_by_side("4206 scopes, 89 with rows (row scan)", 3, list({}, {0, 50, true}),
                   list({.scopes = huge}, {0, 50, true}));
      runtime.stop();
    }

    // The one-time backfill of a store written before the scope indexes: drop them, rebuild.
    auto store = (*db)->store(std::string(kStage) + "." + std::string(kExecutionsStore));
    if (!store.ok()) return 1;
    state::WriteBatch drop;
    for (std::string_view p :
         {"i/by_scope/", "i/by_status_scope/", "c/by_scope/", "c/by_status_scope/"}) {
      drop.del_range(**store, std::string(p), state::prefix_successor(p));
    }
    drop.del(**store, std::string(kScopeIndexMarker));
    if (!(*db)->write(drop).ok()) return 1;
    const auto tb = Steady::now();
    auto added = backfill_scope_index(**db, **store, Entity::kExecution);
    if (!added.ok()) return 1;
    std::printf("backfill of %d executions: %lld index entries in %.0f ms\n", n,
                static_cast<long long>(*added), us_since(tb) / 1000);
  }
  std::filesystem::remove_all(dir);
  return rc;
}
