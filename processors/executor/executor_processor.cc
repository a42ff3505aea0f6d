// The executor stage: I/O around the pure decisions.
#include "processors/executor/executor_processor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "topology/core/time.h"

namespace attune::executor {
namespace {

std::string state_key(int64_t id) { return "x:" + std::to_string(id); }

int64_t payload_id(const Envelope& e, const Json& object) {
  auto it = object.is_object() ? object.find("id") : object.end();
  if (object.is_object() && it != object.end() && it->is_number_integer()) {
    return it->get<int64_t>();
  }
  return e.id;
}

// The root execution id of a commands/results record key (decimal), 0 if it is not one.
int64_t root_of(const std::string& key) {
  if (key.empty() || key.size() > 16 ||
      !std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return 0;
  }
  return std::stoll(key);
}

}  // namespace

std::optional<int64_t> legacy_state_due(std::string_view key, std::string_view value,
                                        std::chrono::milliseconds retention) {
  auto st = ExecutionState::parse(value);
  if (!st) return 0;  // unreadable: nothing can use it
  if (st->skipped) {
    int64_t id = 0;
    if (key.size() > 2) std::from_chars(key.data() + 2, key.data() + key.size(), id);
    return (id > 0 ? IdGenerator::timestamp_ms(id) : 0) + retention.count();
  }
  if (!is_terminal(st->status())) return std::nullopt;
  const Json& updated = st->execution.contains("updated") ? st->execution["updated"] : Json();
  const int64_t ended =
      updated.is_string() ? parse_rfc3339_ms(updated.get<std::string>()).value_or(0) : 0;
  return ended + retention.count();
}

ExecutorProcessor::ExecutorProcessor(const DefinitionsTable& table, ExecutorOptions options)
    : table_(table),
      options_(std::move(options)),
      pruner_(options_.prune, [retention = options_.terminal_retention](std::string_view key,
                                                                         std::string_view value) {
        return legacy_state_due(key, value, retention);
      }) {}

void ExecutorProcessor::init(ProcessorContext& ctx) {
  store_ = &ctx.store(kExecutionsStore);
  pruner_.start(ctx);
  ctx.request_punctuate(ctx.clock().now());  // workflow timers due while stopped fire now
}

std::optional<SystemTime> ExecutorProcessor::punctuate(SystemTime now, ProcessorContext& ctx) {
  // The instances share one store: one of them prunes it.
  // Workflow timers (workflows.cc): whichever instance set one is woken for it; firing one twice
  // only yields a stale event.
  std::optional<SystemTime> next = fire_timers(now, ctx);
  if (ctx.instance() != 0) return next;
  std::optional<SystemTime> prune = pruner_.run(ctx, *store_, now);
  if (!next || (prune && *prune < *next)) return prune;
  return next;
}

std::optional<ExecutionState> ExecutorProcessor::load(ProcessorContext& ctx, int64_t id) {
  auto v = ctx.get(*store_, state_key(id));
  if (!v.ok()) throw ProcessingError("executor: store read failed: " + v.error().message);
  if (!v->has_value()) return std::nullopt;
  auto st = ExecutionState::parse(**v);
  if (!st) throw std::logic_error("executor: corrupt state for execution " + std::to_string(id));
  return st;
}

void ExecutorProcessor::apply(ProcessorContext& ctx, int64_t id, Result<Outcome> outcome) {
  if (!outcome.ok()) throw ProcessingError(outcome.error().message);
  if (!outcome->ignored.empty()) spdlog::info("executor: {}", outcome->ignored);
  if (outcome->state) {
    // Ended (or skipped) now: from here on only a repeated request could need the entry, and
    // every later input reads no more than its status and attempt (a result or cancel is then
    // ignored; a repeated request sees that it exists) — so what stays until it expires is that.
    if (!outcome->terminal.empty() || outcome->state->skipped) {
      expiry::schedule(ctx, *store_, state_key(id),
                       ctx.clock().now_ms() + options_.terminal_retention.count());
    }
    if (!outcome->terminal.empty()) {
      ExecutionState ended = *outcome->state;
      Json marker = Json::object();
      for (const char* f : {"id", "status", "attempt", "updated"}) {
        if (ended.execution.contains(f)) marker[f] = ended.execution[f];
      }
      ended.execution = std::move(marker);
      ctx.put(*store_, state_key(id), ended.dump());
    } else {
      ctx.put(*store_, state_key(id), outcome->state->dump());
    }
  }
  for (auto& r : outcome->records) ctx.forward(std::move(r));
  if (options_.on_terminal && !outcome->terminal.empty()) {
    ctx.after_commit([cb = options_.on_terminal, terminal = std::move(outcome->terminal)] {
      for (ExecutionStatus s : terminal) cb(to_string(s));
    });
  }
}

void ExecutorProcessor::process(const Record& record, ProcessorContext& ctx) {
  wf_queue_.clear();  // left over only by a record that failed (its effects were rolled back)
  Envelope e;
  std::string error;
  if (!envelope_of(record, e, error)) throw ProcessingError(error);
  const int64_t now = ctx.clock().now_ms();
  if (e.type == "execution.requested") {
    if (!e.payload.is_object() || !e.payload.contains("execution")) {
      throw ProcessingError("execution.requested has no execution object");
    }
    const Json& req = e.payload["execution"];
    const int64_t id = payload_id(e, req);
    if (id <= 0) throw ProcessingError("execution.requested: execution has no positive id");
    request(ctx, req, root_of(record.key), false);
  } else if (e.type == "execution.cancel") {
    const int64_t id = payload_id(e, e.payload);
    if (id <= 0) throw ProcessingError("execution.cancel has no positive id");
    if (!cancel_workflow(ctx, id)) apply_hooked(ctx, id, on_cancel(load(ctx, id), id, now));
  } else if (e.type == "result.running" || e.type == "result.finished") {
    const int64_t id = payload_id(e, e.payload);
    if (id <= 0) throw ProcessingError(e.type + " has no positive id");
    auto state = load(ctx, id);
    const DefinitionLookup lookup = [this](std::string_view kind, std::string_view ref) {
      return table_.get(kind, ref);
    };
    apply_hooked(ctx, id,
                 e.type == "result.running" ? on_running(state, e.payload, now)
                                            : on_finished(state, e.payload, lookup, now));
  } else if (e.type == "workflow.timer") {
    on_workflow_timer(e.payload);
  } else {
    spdlog::debug("executor: ignoring record type {} on {}", e.type, record.topic);
  }
  drain_workflows(ctx);
}

}  // namespace attune::executor
