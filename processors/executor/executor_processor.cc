// The executor stage: I/O around the pure decisions.
#include "processors/executor/executor_processor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "processors/executor/inquiry.h"
#include "topology/core/time.h"

namespace attune::executor {
namespace {

std::string state_key(int64_t id) { return "x:" + std::to_string(id); }
std::string inquiry_key(int64_t id) { return "q:" + std::to_string(id); }
std::string creator_prefix(int64_t execution) { return "qe:" + std::to_string(execution) + ":"; }
std::string waiter_prefix(int64_t inquiry) { return "wq:" + std::to_string(inquiry) + ":"; }
std::string deadline_key(int64_t due_ms, int64_t id) {
  std::string k(kInquiryDeadlines);
  k += state::encode_be64(static_cast<uint64_t>(std::max<int64_t>(due_ms, 0)));
  k += state::encode_be64(static_cast<uint64_t>(id));
  return k;
}
constexpr size_t kDeadlineBudget = 1024;  // deadlines fired per punctuation
constexpr std::chrono::milliseconds kDefinitionsWait{5000};

int64_t int_of(const Json& o, const char* name) {
  auto it = o.is_object() ? o.find(name) : o.end();
  return o.is_object() && it != o.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

int64_t to_ms(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

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
  // Only execution states predate expiry entries; inquiries, workflow runs, timers and waiters
  // expire (or are deleted) when they end.
  if (key.rfind("x:", 0) != 0) return std::nullopt;
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
    : resolver_(table),
      table_(table),
      options_(std::move(options)),
      pruner_(options_.prune, [retention = options_.terminal_retention](std::string_view key,
                                                                         std::string_view value) {
        return legacy_state_due(key, value, retention);
      }) {}

void ExecutorProcessor::init(ProcessorContext& ctx) {
  store_ = &ctx.store(kExecutionsStore);
  pruner_.start(ctx);
  policies_version_ = table_.version();
  policies_seen_ = table_.list(admission::kPolicyKind);
  ctx.request_punctuate(ctx.clock().now());  // workflow timers due while stopped fire now
}

std::optional<SystemTime> ExecutorProcessor::punctuate(SystemTime now, ProcessorContext& ctx) {
  // Any instance fires the due deadlines (the one that stored a deadline asked for this time)
  // and then waits for the earliest one left, whoever stored it; firing twice is harmless (the
  // owner ignores a timeout that no longer applies).
  adopt_running(ctx);
  const auto next_deadline = fire_deadlines(ctx, to_ms(now));
  std::optional<SystemTime> next;
  if (next_deadline) next = SystemTime(std::chrono::milliseconds(*next_deadline));
  // The instances share one store: one of them prunes it.
  // Workflow timers (workflows.cc): whichever instance set one is woken for it; firing one twice
  // only yields a stale event.
  if (auto timers = fire_timers(now, ctx); timers && (!next || *timers < *next)) next = timers;
  if (ctx.instance() != 0) return next;
  const SystemTime prune = pruner_.run(ctx, *store_, now);
  return next ? std::min(*next, prune) : prune;
}

std::optional<int64_t> ExecutorProcessor::fire_deadlines(ProcessorContext& ctx, int64_t now_ms) {
  struct Due {
    std::string key;
    int64_t due, id;
    std::string root;
  };
  std::vector<Due> due;
  std::optional<int64_t> next;
  const size_t header = kInquiryDeadlines.size();
  auto st = ctx.scan(*store_, kInquiryDeadlines, [&](std::string_view key, std::string_view value) {
    if (key.size() != header + 16) return true;  // not a deadline; cannot happen
    const auto at = static_cast<int64_t>(state::decode_be64(key.substr(header, 8)));
    if (at > now_ms || due.size() >= kDeadlineBudget) {
      next = at;
      return false;
    }
    due.push_back(Due{std::string(key), at,
                      static_cast<int64_t>(state::decode_be64(key.substr(header + 8, 8))),
                      std::string(value)});
    return true;
  });
  if (!st.ok()) throw std::runtime_error("executor: deadline scan: " + st.error().message);
  for (auto& d : due) {
    ctx.del(*store_, d.key);
    Envelope c{"inquiry.timeout",
               d.id,
               "inquiry-timeout:" + std::to_string(d.id) + ":" + std::to_string(d.due),
               now_ms,
               "executor",
               Json{{"id", d.id}, {"timeout_at", d.due}}};
    ctx.forward(topics::kCommands, d.root, c.dump());
  }
  return next;
}

void ExecutorProcessor::store_inquiry(ProcessorContext& ctx, const std::optional<Json>& old,
                                      const Json& inquiry, int64_t root,
                                      const std::string& change, const Json& request, int code) {
  const int64_t id = int_of(inquiry, "id");
  const auto old_due = old ? inquiry_deadline(*old) : std::nullopt;
  const auto new_due = inquiry_deadline(inquiry);
  if (old_due != new_due) {
    if (old_due) ctx.del(*store_, deadline_key(*old_due, id));
    if (new_due) {
      ctx.put(*store_, deadline_key(*new_due, id), std::to_string(root));
      ctx.request_punctuate(SystemTime(std::chrono::milliseconds(*new_due)));
    }
  }
  ctx.put(*store_, inquiry_key(id), Json{{"inquiry", inquiry}, {"root", root}}.dump());
  if (old && old->value("status", "") == "pending" && inquiry.value("status", "") != "pending") {
    wake_waiters(ctx, id, &inquiry);
  }
  const int64_t creator = int_of(inquiry, "created_by_execution");
  if (!old && creator > 0) {
    ctx.put(*store_, creator_prefix(creator) + std::to_string(id), std::string());
  }
  if (!new_due && inquiry.value("status", "") != "pending") {
    // Ended: kept against repeats (an identical create, a late respond) for the retention time.
    const int64_t at =
        ctx.clock().now_ms() + std::max(options_.terminal_retention, kInquiryRetention).count();
    expiry::schedule(ctx, *store_, inquiry_key(id), at);
    if (creator > 0) expiry::schedule(ctx, *store_, creator_prefix(creator) + std::to_string(id), at);
  }
  Envelope u{"inquiry.updated",
             id,
             "inquiry:" + std::to_string(id) + ":" + std::to_string(inquiry.value("rev", 0)),
             ctx.clock().now_ms(),
             "executor",
             Json{{"inquiry", inquiry}, {"change", change}, {"request", request}, {"code", code}}};
  ctx.forward(topics::kExecutions, std::to_string(root), u.dump());
}

void ExecutorProcessor::process_inquiry(const Envelope& e, int64_t root, ProcessorContext& ctx) {
  const Json& p = e.payload;
  if (!p.is_object()) throw ProcessingError(e.type + ": payload is not an object");
  if (root <= 0) throw ProcessingError(e.type + ": record key is not a root execution id");
  const int64_t now = ctx.clock().now_ms();
  const Json request = p.value("request", Json(nullptr));
  // The answer to the API call that sent the command (timeouts answer nobody).
  auto outcome = [&](int64_t id, int code, const std::string& message) {
    if (request.is_null()) return;
    Envelope o{"inquiry.outcome", id, "inquiry-outcome:" + request.dump(), now, "executor",
               Json{{"request", request}, {"id", id}, {"code", code}, {"message", message}}};
    ctx.forward(topics::kExecutions, std::to_string(root), o.dump());
  };
  auto load_inquiry = [&](int64_t id) { return this->load_inquiry(ctx, id); };

  if (e.type == "inquiry.create") {
    const Json q = p.value("inquiry", Json());
    const int64_t id = int_of(q, "id");
    if (id <= 0) throw ProcessingError("inquiry.create has no inquiry with a positive id");
    if (load_inquiry(id)) return;  // a redelivered command: applied (and answered) already
    std::vector<Json> same;
    const int64_t creator = int_of(q, "created_by_execution");
    if (creator > 0) {
      std::vector<int64_t> ids;
      const std::string prefix = creator_prefix(creator);
      auto st = ctx.scan(*store_, prefix, [&](std::string_view key, std::string_view) {
        ids.push_back(std::stoll(std::string(key.substr(prefix.size()))));
        return true;
      });
      if (!st.ok()) throw ProcessingError("executor: store scan failed: " + st.error().message);
      for (int64_t other : ids) {
        if (auto o = load_inquiry(other)) same.push_back(std::move(*o));
      }
    }
    auto d = decide_create(q, same, now);
    if (d.inquiry) {
      store_inquiry(ctx, std::nullopt, *d.inquiry, root, d.change, request, d.code);
    } else {
      outcome(d.existing > 0 ? d.existing : id, d.code, d.message);
    }
    return;
  }
  const int64_t id = int_of(p, "id");
  if (id <= 0) throw ProcessingError(e.type + " has no positive id");
  const auto current = load_inquiry(id);
  if (e.type == "inquiry.timeout") {
    if (!current) return;
    auto d = decide_timeout(*current, int_of(p, "timeout_at"), now);
    if (d.inquiry) store_inquiry(ctx, current, *d.inquiry, root, d.change, request, 200);
    return;
  }
  if (e.type == "inquiry.delete") {
    // Also for an inquiry this store no longer keeps (ended long ago): readers drop their row.
    if (current) {
      if (current->value("status", "") == "pending") wake_waiters(ctx, id, nullptr);
      if (auto due = inquiry_deadline(*current)) ctx.del(*store_, deadline_key(*due, id));
      ctx.del(*store_, inquiry_key(id));
      if (const int64_t creator = int_of(*current, "created_by_execution"); creator > 0) {
        ctx.del(*store_, creator_prefix(creator) + std::to_string(id));
      }
    }
    Envelope del{"inquiry.deleted", id, "inquiry-deleted:" + std::to_string(id), now, "executor",
                 Json{{"id", id}, {"request", request}, {"code", 200}}};
    ctx.forward(topics::kExecutions, std::to_string(root), del.dump());
    return;
  }
  if (!current) {
    outcome(id, 404, "Inquiry " + std::to_string(id) + " not found");
    return;
  }
  InquiryDecision d;
  if (e.type == "inquiry.respond") {
    const Json who = p.value("responder", Json::object());
    Responder r{int_of(who, "id"), who.value("login", ""), who.value("unrestricted", false)};
    d = decide_respond(*current, p.value("response", Json(nullptr)), r, now);
  } else if (e.type == "inquiry.update") {
    d = decide_update(*current, p.value("changes", Json::object()), now);
  } else {
    spdlog::debug("executor: ignoring record type {}", e.type);
    return;
  }
  if (d.inquiry) {
    store_inquiry(ctx, current, *d.inquiry, root, d.change, request, d.code);
  } else {
    outcome(id, d.code, d.message);
  }
}

namespace {

workflow::Event resolution(const std::string& task, int64_t run, const Json* inquiry) {
  using workflow::InquiryOutcome;
  const std::string status = inquiry ? inquiry->value("status", "") : "cancelled";
  const InquiryOutcome outcome = status == "responded" ? InquiryOutcome::kResponded
                                 : status == "timeout" ? InquiryOutcome::kTimeout
                                                       : InquiryOutcome::kCancelled;
  Json response = outcome == InquiryOutcome::kResponded && inquiry
                      ? inquiry->value("response", Json(nullptr))
                      : Json(nullptr);
  return workflow::Event::inquiry_resolved(task, run, outcome, std::move(response));
}

}  // namespace

void ExecutorProcessor::await_inquiry(ProcessorContext& ctx, int64_t wf, const std::string& task,
                                      int64_t run, const Json& inquiry) {
  int64_t id = 0;
  if (inquiry.is_number_integer()) {
    id = inquiry.get<int64_t>();
  } else if (inquiry.is_string()) {
    const std::string& text = inquiry.get_ref<const std::string&>();
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc() || end != text.data() + text.size()) id = 0;
  }
  const std::optional<Json> current = id > 0 ? load_inquiry(ctx, id) : std::nullopt;
  if (!current) {
    spdlog::warn("executor: workflow {} task '{}' waits for inquiry {}, which this executor does "
                 "not hold: treated as cancelled",
                 wf, task, inquiry.dump());
    wf_queue_.push_back({wf, resolution(task, run, nullptr)});
    return;
  }
  if (current->value("status", "") != "pending") {
    wf_queue_.push_back({wf, resolution(task, run, &*current)});
    return;
  }
  ctx.put(*store_, waiter_prefix(id) + std::to_string(wf) + ":" + std::to_string(ctx.ids().next()),
          Json{{"workflow", wf}, {"task", task}, {"run", run}}.dump());
}

void ExecutorProcessor::wake_waiters(ProcessorContext& ctx, int64_t inquiry, const Json* ended) {
  std::vector<std::pair<std::string, Json>> waiters;
  const std::string prefix = waiter_prefix(inquiry);
  auto st = ctx.scan(*store_, prefix, [&](std::string_view key, std::string_view value) {
    waiters.emplace_back(std::string(key), Json::parse(value, nullptr, false));
    return true;
  });
  if (!st.ok()) throw ProcessingError("executor: store scan failed: " + st.error().message);
  for (auto& [key, w] : waiters) {
    ctx.del(*store_, key);
    if (!w.is_object() || !w.contains("workflow") || !w["workflow"].is_number_integer()) continue;
    wf_queue_.push_back({w["workflow"].get<int64_t>(),
                         resolution(w.value("task", ""), w.value("run", int64_t{0}), ended)});
  }
}

std::optional<Json> ExecutorProcessor::load_inquiry(ProcessorContext& ctx, int64_t id) {
  auto v = ctx.get(*store_, inquiry_key(id));
  if (!v.ok()) throw ProcessingError("executor: store read failed: " + v.error().message);
  if (!v->has_value()) return std::nullopt;
  Json j = Json::parse(**v, nullptr, false);
  if (j.is_discarded() || !j.contains("inquiry")) {
    throw std::logic_error("executor: corrupt state for inquiry " + std::to_string(id));
  }
  return j["inquiry"];
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
  if (outcome->state && !outcome->terminal.empty()) {
    const int64_t now = ctx.clock().now_ms();
    // Its admission slot (or queue place) goes to the next in line. One not held counts too when
    // a policy now applies (it may have been adopted: adopt_running); a release of an execution
    // the stage does not know is ignored.
    ExecutionState& ended = *outcome->state;
    if (ended.admission.is_null()) {
      const std::string ref = ended.execution.value("action_ref", "");
      if (!ref.empty() && resolver_.of(ref).admits()) {
        ended.admission = Json{{"action", ref}, {"group", ""}, {"granted", true}};
      }
    }
    if (auto release = admission_release(ended, now)) ctx.forward(std::move(*release));
    // The next attempt, after its backoff, from a stored timer (a restart fires what is due).
    const std::string_view status = to_string(outcome->terminal.back());
    if (status == "failed" || status == "timeout") {
      const Json& ex = outcome->state->execution;
      const std::string action_ref = ex.value("action_ref", "");
      const admission::Effective* policy = action_ref.empty() ? nullptr : &resolver_.of(action_ref);
      if (auto plan = plan_retry(*outcome->state, status, policy)) {
        const int64_t next_id = ctx.ids().next();
        plan->request["id"] = next_id;
        start_timer(ctx, now + plan->delay_ms,
                    Json{{"workflow", id}, {"root", next_id}, {"retry", std::move(plan->request)}});
      }
    }
  }
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

void ExecutorProcessor::adopt_running(ProcessorContext& ctx) {
  const uint64_t version = table_.version();
  if (version == policies_version_) return;
  policies_version_ = version;
  std::vector<JsonPtr> policies = table_.list(admission::kPolicyKind);
  if (policies == policies_seen_) return;
  policies_seen_ = std::move(policies);
  const int64_t now = ctx.clock().now_ms();
  size_t adopted = 0;
  auto st = ctx.scan(*store_, "x:", [&](std::string_view, std::string_view value) {
    auto state = ExecutionState::parse(value);
    if (!state || state->skipped || !state->admission.is_null()) return true;
    const ExecutionStatus status = state->status();
    if (status != ExecutionStatus::kScheduled && status != ExecutionStatus::kRunning &&
        status != ExecutionStatus::kCanceling) {
      return true;
    }
    const Json& ex = state->execution;
    const std::string ref = ex.value("action_ref", "");
    const admission::Effective& policy = resolver_.of(ref);
    if (ref.empty() || !policy.admits()) return true;
    const int64_t id = ex.value("id", int64_t{0});
    const std::string group =
        policy.concurrency ? admission::group_key(*policy.concurrency, ex.value("config", Json()))
                           : "";
    Envelope a{"admission.adopt", id, "admission-adopt:" + std::to_string(id), now, "executor",
               Json{{"id", id}, {"root", state->root}, {"action_ref", ref}, {"group", group}}};
    ctx.forward(topics::kAdmission, ref, a.dump());
    ++adopted;
    return true;
  });
  if (!st.ok()) throw ProcessingError("executor: store scan failed: " + st.error().message);
  if (adopted > 0) spdlog::info("executor: {} running executions now count against policies", adopted);
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
    // Decide with at least the definitions the requester saw (DefinitionsTable follows the log
    // on its own thread on Kafka): a policy created right before must hold this execution.
    if (auto at = e.payload.find("defs_offset");
        at != e.payload.end() && at->is_number_integer() && at->get<int64_t>() > 0 &&
        !table_.wait_applied(at->get<int64_t>() - 1, kDefinitionsWait)) {
      spdlog::warn("executor: definitions not caught up to offset {} for execution {}",
                   at->get<int64_t>(), payload_id(e, req));
    }
    const int64_t id = payload_id(e, req);
    if (id <= 0) throw ProcessingError("execution.requested: execution has no positive id");
    adopt_running(ctx);
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
  } else if (e.type == "admission.granted" || e.type == "admission.rejected") {
    on_admission_answer(ctx, e);
  } else if (e.type.rfind("inquiry.", 0) == 0) {
    process_inquiry(e, root_of(record.key), ctx);
  } else if (e.type == "workflow.timer") {
    on_workflow_timer(ctx, e.payload);
  } else {
    spdlog::debug("executor: ignoring record type {} on {}", e.type, record.topic);
  }
  drain_workflows(ctx);
}

}  // namespace attune::executor
