// A million executions (tests/bench/README.md, "A million executions"; driven by million_bench.py).
//
//   bench_million seed <data dir> <executions> <admin id> <pack,...> [partitions=4] [days=30]
//   bench_million lists <data dir> <admin id> <pack,...> [reps=30] [only cases containing]
//
// `seed` writes into a stopped `attune serve` data directory the records the running system writes
// for N executions — event.created, enforcement.created and execution.updated (requested, then the
// final state) on the embedded log's topics — so that the next `attune serve` on that directory
// applies them through its own stages (rules evaluates the events, the "api" projection stage
// writes rows, indexes and counters). Used by million_bench.py (tests/bench/README.md, "A million
// executions"); it never writes a projection store itself.
//
// `lists` opens the data directory (server stopped) the way serve does and times
// Projections::list_* for the queries million_bench.py sends over HTTP, with the admin's scopes
// ("p:core", "p:<pack>"..., "i:<admin>"): the server side of those requests, without HTTP.
//
// Shape (i = 0..N-1, created spread evenly over the last `days` days, oldest first):
//   75 %  rule runs: an event of trigger <pack>.t<k>, an enforcement of rule <pack>.r<k>
//         (processed), an execution of <pack>.a<k> with enforcement/rule/trigger links
//   15 %  manual runs of a pack action (executor = the admin)
//    5 %  manual runs of core.echo / core.local (executor = the admin: scope i:<admin>)
//    5 %  workflow children (parent = an earlier rule run)
// Statuses: 70 % completed, 15 % failed, 5 % timeout, 3 % cancelled, 2 % abandoned, 2 % running,
// 1 % scheduled, 1 % requested, 1 % scheduling.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "api/projections/projections.h"
#include "state/db.h"
#include "topology/core/time.h"
#include "topology/embedded_log.h"

namespace {

using namespace attune;

constexpr int64_t kEpoch2025Ms = 1735689600000;  // 2025-01-01, DESIGN.md §7
constexpr int kNode = 15;                      // never used by a serve process here

const char* status_of(int64_t i) {
  const int64_t k = (i * 7919) % 100;  // spread, not in runs
  if (k < 70) return "completed";
  if (k < 85) return "failed";
  if (k < 90) return "timeout";
  if (k < 93) return "cancelled";
  if (k < 95) return "abandoned";
  if (k < 97) return "running";
  if (k < 98) return "scheduled";
  if (k < 99) return "requested";
  return "scheduling";
}

bool terminal(std::string_view s) {
  return s == "completed" || s == "failed" || s == "timeout" || s == "cancelled" ||
         s == "abandoned";
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const auto comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string envelope(const char* type, int64_t id, const std::string& key, int64_t ts,
                     const char* source, const Json& payload) {
  return Envelope{type, id, key, ts, source, payload}.dump();
}

}  // namespace

int seed(int argc, char** argv) {
  const std::string data_dir = argv[0];
  const int64_t n = std::atoll(argv[1]);
  const int64_t admin = std::atoll(argv[2]);
  const std::vector<std::string> packs = split(argv[3]);
  const int partitions = argc > 4 ? std::atoi(argv[4]) : 4;
  const int64_t days = argc > 5 ? std::atoll(argv[5]) : 30;

  state::DbOptions db_options;
  db_options.append_stores = {std::string(EmbeddedLog::kLogStore)};
  auto db = state::Db::open(data_dir + "/db", db_options);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.error().message.c_str());
    return 1;
  }
  auto log = EmbeddedLog::open(**db, default_topics(partitions));
  if (!log.ok()) {
    std::fprintf(stderr, "%s\n", log.error().message.c_str());
    return 1;
  }
  Log& l = **log;

  const auto t0 = std::chrono::steady_clock::now();
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t span = days * 86400000LL;
  const int64_t start = now - span - 3600000;
  // Ids: ms since 2025 | node | sequence; 4 ids per execution (event, enforcement, execution,
  // spare) from the execution's created ms, so they are unique and ordered like real ones.
  auto id_at = [](int64_t ms, int seq) { return ((ms - kEpoch2025Ms) << 12) | (kNode << 8) | seq; };

  std::vector<OutRecord> batch;
  int64_t records = 0;
  int64_t last_rule_run = 0;
  auto flush = [&]() -> bool {
    if (batch.empty()) return true;
    records += static_cast<int64_t>(batch.size());
    auto pos = l.produce(std::move(batch));
    batch.clear();
    if (!pos.ok()) {
      std::fprintf(stderr, "produce: %s\n", pos.error().message.c_str());
      return false;
    }
    return true;
  };
  for (int64_t i = 0; i < n; ++i) {
    const int64_t created = start + span * i / n;
    const std::string created_s = format_rfc3339_ms(created);
    const int64_t kind = (i * 31) % 100;
    const std::string& pack = packs[static_cast<size_t>(i) % packs.size()];
    const int pi = static_cast<int>(static_cast<size_t>(i) % packs.size());
    const int k = static_cast<int>((i / static_cast<int64_t>(packs.size())) % 4);
    const int64_t exec_id = id_at(created, 2);
    const char* status = status_of(i);
    Json ex = {{"id", exec_id},
               {"action", 1000 + 4 * pi + k},
               {"action_ref", pack + ".a" + std::to_string(k)},
               {"pack_ref", pack},
               {"config", {{"n", i}, {"target", "host-" + std::to_string(i % 997)}}},
               {"env_vars", Json::object()},
               {"parent", nullptr},
               {"enforcement", nullptr},
               {"rule", nullptr},
               {"rule_ref", nullptr},
               {"trigger_ref", nullptr},
               {"executor", nullptr},
               {"worker", nullptr},
               {"permission_set_refs", Json::array()},
               {"status", "requested"},
               {"timeout_seconds", 300},
               {"result", nullptr},
               {"retry_count", 0},
               {"max_retries", 0},
               {"retry_reason", nullptr},
               {"original_execution", nullptr},
               {"started_at", nullptr},
               {"workflow_task", nullptr},
               {"attempt", 1},
               {"created", created_s},
               {"updated", created_s}};
    if (kind < 75) {
      const int64_t event_id = id_at(created, 0);
      const int64_t enf_id = id_at(created, 1);
      const std::string trigger = pack + ".t" + std::to_string(k % 2);
      const std::string rule = pack + ".r" + std::to_string(k);
      const Json payload = {{"host", "host-" + std::to_string(i % 997)}, {"seq", i}};
      Json event = {{"id", event_id},          {"trigger", 2000 + 2 * pi + k % 2},
                    {"trigger_ref", trigger},  {"config", {{"source", "webhook"}}},
                    {"payload", payload},      {"source", nullptr},
                    {"source_ref", "webhook"}, {"rule", nullptr},
                    {"rule_ref", nullptr},     {"created", created_s},
                    {"updated", created_s}};
      batch.push_back({std::string(topics::kEvents), trigger,
                       envelope("event.created", event_id, "event:" + std::to_string(event_id),
                                created, "api", event)});
      const std::string resolved = format_rfc3339_ms(created + 2);
      Json enf = {{"id", enf_id},
                  {"rule", 3000 + 4 * pi + k},
                  {"rule_ref", rule},
                  {"trigger_ref", trigger},
                  {"event", event_id},
                  {"status", "processed"},
                  {"config", ex["config"]},
                  {"payload", payload},
                  {"condition", "all"},
                  {"conditions", Json::array()},
                  {"resolved_at", resolved},
                  {"created", format_rfc3339_ms(created + 1)},
                  {"updated", resolved}};
      batch.push_back({std::string(topics::kEnforcements), rule,
                       envelope("enforcement.created", enf_id,
                                std::to_string(event_id) + "/" + rule, created + 1, "rules", enf)});
      ex["enforcement"] = enf_id;
      ex["rule"] = 3000 + 4 * pi + k;
      ex["rule_ref"] = rule;
      ex["trigger_ref"] = trigger;
      last_rule_run = exec_id;
    } else if (kind < 90) {
      ex["executor"] = admin;
    } else if (kind < 95) {
      ex["action"] = 10 + k % 2;
      ex["action_ref"] = k % 2 ? "core.local" : "core.echo";
      ex["pack_ref"] = "core";
      ex["executor"] = admin;
    } else if (last_rule_run != 0) {
      ex["parent"] = last_rule_run;
      ex["workflow_task"] = {{"workflow_execution", last_rule_run},
                             {"task_name", "step" + std::to_string(k)},
                             {"task_index", k}};
    }
    const int64_t root = ex["parent"].is_null() ? exec_id : ex["parent"].get<int64_t>();
    const std::string key = std::to_string(root);
    Json first = ex;
    first["old_status"] = nullptr;
    batch.push_back({std::string(topics::kExecutions), key,
                     envelope("execution.updated", exec_id, "execution:" + std::to_string(exec_id),
                              created, "executor", first)});
    if (std::string_view(status) != "requested") {
      const int64_t updated = created + 40 + i % 500;
      ex["status"] = status;
      ex["updated"] = format_rfc3339_ms(updated);
      ex["worker"] = 1;
      if (std::string_view(status) != "scheduling" && std::string_view(status) != "scheduled") {
        ex["started_at"] = format_rfc3339_ms(created + 20);
      }
      if (terminal(status)) {
        const int code = std::string_view(status) == "completed" ? 0 : 1;
        ex["result"] = {{"stdout", "ok " + std::to_string(i % 1000) + "\n"},
                        {"stderr", code ? "error\n" : ""},
                        {"exit_code", code},
                        {"duration_ms", 20 + i % 480}};
      }
      ex["old_status"] = "requested";
      batch.push_back({std::string(topics::kExecutions), key,
                       envelope("execution.updated", exec_id,
                                "execution:" + std::to_string(exec_id), updated, "executor", ex)});
    }
    if (batch.size() >= 4096 && !flush()) return 1;
  }
  if (!flush()) return 1;
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("seeded %lld executions: %lld records in %.0f ms\n", static_cast<long long>(n),
              static_cast<long long>(records), ms);
  return 0;
}

namespace {

using Steady = std::chrono::steady_clock;

struct Timing {
  double p50_us = 0, p99_us = 0;
  int64_t total = 0;
  bool exact = true;
};

Timing time_it(int reps, const std::function<projections::ListResult()>& fn) {
  std::vector<double> us;
  Timing t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Steady::now();
    projections::ListResult res = fn();
    us.push_back(std::chrono::duration<double, std::micro>(Steady::now() - t0).count());
    t.total = res.total;
    t.exact = res.total_exact;
  }
  std::sort(us.begin(), us.end());
  t.p50_us = us[us.size() / 2];
  t.p99_us = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  return t;
}

}  // namespace

int lists(int argc, char** argv) {
  using namespace attune::projections;
  const std::string data_dir = argv[0];
  const int64_t admin = std::atoll(argv[1]);
  const std::vector<std::string> packs = split(argv[2]);
  const int reps = argc > 3 ? std::atoi(argv[3]) : 30;
  const std::string only = argc > 4 ? argv[4] : "";  // only the cases whose name contains this
  state::DbOptions db_options;
  db_options.append_stores = {std::string(EmbeddedLog::kLogStore)};
  const auto t_open = Steady::now();
  auto db = state::Db::open(data_dir + "/db", db_options);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.error().message.c_str());
    return 1;
  }
  auto log = EmbeddedLog::open(**db, default_topics(4));
  if (!log.ok()) return 1;
  AppliedOffsets applied;
  auto views = Projections::open(**log, applied);
  if (!views.ok()) {
    std::fprintf(stderr, "%s\n", views.error().message.c_str());
    return 1;
  }
  std::printf("opened in %.0f ms\n",
              std::chrono::duration<double, std::milli>(Steady::now() - t_open).count());
  Projections& p = **views;
  std::vector<std::string> scopes = {"p:core", "i:" + std::to_string(admin)};
  for (const auto& pk : packs) scopes.push_back("p:" + pk);
  // Ids to filter by, from the newest rows.
  auto first = p.list_executions({.rule_ref = packs[0] + ".r0", .scopes = scopes}, {0, 1, true});
  auto child = p.list_executions({.scopes = scopes}, {0, 100, true});
  int64_t enforcement = 0, parent = 0, event = 0, newest = 0;
  if (first.ok() && !first->items.empty()) {
    enforcement = first->items[0].value("enforcement", int64_t{0});
    newest = created_ms(first->items[0]);
  }
  if (child.ok()) {
    for (const auto& r : child->items) {
      if (r["parent"].is_number_integer()) parent = r["parent"].get<int64_t>();
    }
  }
  if (auto e = p.get_enforcement(enforcement); e.ok() && e->has_value()) {
    event = (**e).value("event", int64_t{0});
  }
  const int64_t day = 86400000;
  const std::string a0 = packs[0] + ".a0";
  struct Case {
    std::string name;
    std::function<ListResult()> fn;
  };
  auto ex = [&](ExecutionFilter f, Page page = {0, 50, true}) {
    f.scopes = scopes;
    return [&p, f, page] { return *p.list_executions(f, page); };
  };
  auto ev = [&](EventFilter f) {
    f.scopes = scopes;
    return [&p, f] { return *p.list_events(f, {0, 50, true}); };
  };
  auto en = [&](EnforcementFilter f) {
    f.scopes = scopes;
    return [&p, f] { return *p.list_enforcements(f, {0, 50, true}); };
  };
  std::vector<Case> cases = {
      {"executions", ex({})},
      {"executions order=asc", ex({}, {0, 50, false})},
      {"executions page=101 (offset 5000)", ex({}, {5000, 50, true})},
      {"status=completed", ex({.statuses = {"completed"}})},
      {"status=running", ex({.statuses = {"running"}})},
      {"status=failed,timeout", ex({.statuses = {"failed", "timeout"}})},
      {"action_ref", ex({.action_ref = a0})},
      {"pack_ref", ex({.pack_ref = packs[1]})},
      {"rule_ref", ex({.rule_ref = packs[2] + ".r1"})},
      {"rule (id)", ex({.rule = 3001})},
      {"trigger_ref", ex({.trigger_ref = packs[0] + ".t0"})},
      {"enforcement", ex({.enforcement = enforcement})},
      {"parent", ex({.parent = parent})},
      {"status=completed&action_ref", ex({.action_ref = a0, .statuses = {"completed"}})},
      {"status=running&action_ref", ex({.action_ref = a0, .statuses = {"running"}})},
      {"status=requested&action_ref",
       ex({.action_ref = packs[3] + ".a2", .statuses = {"requested"}})},
      {"status=failed&action_ref=core.echo",
       ex({.action_ref = "core.echo", .statuses = {"failed"}})},
      {"status=completed&pack_ref", ex({.pack_ref = packs[1], .statuses = {"completed"}})},
      {"status=failed&rule_ref", ex({.statuses = {"failed"}, .rule_ref = packs[2] + ".r1"})},
      {"status=completed&trigger_ref",
       ex({.statuses = {"completed"}, .trigger_ref = packs[0] + ".t0"})},
      {"action_ref&rule_ref", ex({.action_ref = a0, .rule_ref = packs[0] + ".r0"})},
      {"pack_ref&action_ref", ex({.action_ref = a0, .pack_ref = packs[0]})},
      {"status=completed&action_ref&pack_ref",
       ex({.action_ref = a0, .pack_ref = packs[0], .statuses = {"completed"}})},
      {"created_after (last day)", ex({.created_after = newest - day})},
      {"created_after+before (1 h, 10 days ago)",
       ex({.created_after = newest - 10 * day, .created_before = newest - 10 * day + 3600000})},
      {"created_after (last 20 days)", ex({.created_after = newest - 20 * day})},
      {"status=completed&created_after (day)",
       ex({.statuses = {"completed"}, .created_after = newest - day})},
      {"action_ref&created_after (day)", ex({.action_ref = a0, .created_after = newest - day})},
      {"events", ev({})},
      {"events trigger_ref", ev({.trigger_ref = packs[0] + ".t0"})},
      {"events trigger (id)", ev({.trigger = 2001})},
      {"events source=webhook", ev({.source = "webhook"})},
      {"events created_after (day)", ev({.created_after = newest - day})},
      {"enforcements", en({})},
      {"enforcements rule_ref", en({.rule_ref = packs[1] + ".r2"})},
      {"enforcements rule (id)", en({.rule = 3002})},
      {"enforcements status=processed", en({.status = "processed"})},
      {"enforcements trigger_ref", en({.trigger_ref = packs[0] + ".t1"})},
      {"enforcements event", en({.event = event})},
      {"enforcements rule_ref&status", en({.rule_ref = packs[1] + ".r2", .status = "processed"})},
      {"enforcements created_after (day)", en({.created_after = newest - day})},
  };
  std::printf("%-44s %10s %10s %10s\n", "query (page of 50, admin scopes)", "p50 ms", "p99 ms",
              "total");
  for (const auto& c : cases) {
    if (!only.empty() && c.name.find(only) == std::string::npos) continue;
    const Timing t = time_it(reps, c.fn);
    std::printf("%-44s %10.2f %10.2f %10lld%s\n", c.name.c_str(), t.p50_us / 1000, t.p99_us / 1000,
                static_cast<long long>(t.total), t.exact ? "" : " (estimate)");
  }
  return 0;
}

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "seed" && argc >= 6) return seed(argc - 2, argv + 2);
  if (cmd == "lists" && argc >= 5) return lists(argc - 2, argv + 2);
  std::fprintf(stderr,
               "usage: %s seed <data dir> <executions> <admin id> <pack,...> [partitions] [days]\n"
               "       %s lists <data dir> <admin id> <pack,...> [reps]\n",
               argv[0], argv[0]);
  return 2;
}
