#include "processors/monitor/monitor_processor.h"

#include <spdlog/spdlog.h>

#include "processors/worker/invocation.h"

namespace attune::monitor {

namespace {
// "<worker>\0<execution id>/<attempt>" → {"id", "attempt", "root"}
std::string running_key(const std::string& worker, int64_t id, int64_t attempt) {
  std::string k = worker;
  k.push_back('\0');
  k += worker::attempt_key(id, attempt);
  return k;
}
}  // namespace

void MonitorProcessor::init(ProcessorContext& ctx) { running_ = &ctx.store(kRunningStore); }

void MonitorProcessor::process(const Record& record, ProcessorContext& ctx) {
  Envelope e;
  std::string error;
  if (!envelope_of(record, e, error)) return;  // the executor dead-letters it
  if (e.type != "result.running" && e.type != "result.finished") return;
  const Json& p = e.payload;
  if (!p.is_object() || !p.contains("worker") || !p["worker"].is_string()) return;
  const std::string w = p["worker"];
  const int64_t id = p.value("id", int64_t{0});
  const int64_t attempt = p.value("attempt", int64_t{0});
  if (e.type == "result.running") {
    int64_t root = 0;
    try {
      root = std::stoll(record.key);
    } catch (const std::exception&) {
      return;
    }
    // `ts`: when the worker reported it (WorkersView::dead() weighs its stop records against it).
    ctx.put(*running_, running_key(w, id, attempt),
            Json{{"id", id}, {"attempt", attempt}, {"root", root}, {"ts", e.ts}}.dump());
  } else {
    ctx.del(*running_, running_key(w, id, attempt));
  }
}

std::optional<SystemTime> MonitorProcessor::punctuate(SystemTime now, ProcessorContext& ctx) {
  std::vector<std::pair<std::string, Json>> lost;
  auto st = ctx.scan(*running_, "", [&](std::string_view key, std::string_view value) {
    const auto nul = key.find('\0');
    if (nul == std::string_view::npos) return true;
    const std::string w(key.substr(0, nul));
    Json v = Json::parse(value, nullptr, false);
    if (!v.is_object()) return true;
    const Json& ts = v.contains("ts") ? v["ts"] : Json(0);
    if (options_.workers->dead(w, ts.is_number_integer() ? ts.get<int64_t>() : 0)) {
      lost.emplace_back(std::string(key), std::move(v));
    }
    return true;
  });
  if (!st.ok()) spdlog::warn("monitor: scan failed: {}", st.error().message);
  for (auto& [key, v] : lost) {
    const std::string w = key.substr(0, key.find('\0'));
    const int64_t id = v.value("id", int64_t{0});
    spdlog::warn("monitor: worker {} is gone; execution {} (attempt {}) abandoned", w, id,
                 v.value("attempt", int64_t{0}));
    auto rec = worker::finished_record(
        id, v.value("attempt", int64_t{0}), v.value("root", id), w, "abandoned",
        Json{{"error", "worker '" + w + "' stopped heartbeating; execution abandoned"},
             {"abandoned_by", "monitor"}},
        ctx.clock().now_ms());
    ctx.forward(std::move(rec));
    ctx.del(*running_, key);
  }
  for (const auto& name : options_.workers->forgettable(options_.forget_after)) {
    if (forgotten_.count(name) > 0) continue;  // written already; the view has yet to apply it
    forgotten_.insert(name);
    const int64_t ms = ctx.clock().now_ms();
    Envelope e{std::string(kForgotten), worker_id(name), name, ms, "monitor",
               Json{{"name", name}}};
    ctx.forward(OutRecord{std::string(topics::kWorkers), name, e.dump()});
  }
  return now + options_.check_interval;
}

void add_monitor_stage(Topology& topology, const MonitorOptions& options) {
  topology.add({"monitor",
                {std::string(topics::kResults)},
                {std::string(kRunningStore)},
                1,
                512,
                [options](int) { return std::make_unique<MonitorProcessor>(options); }});
}

}  // namespace attune::monitor
