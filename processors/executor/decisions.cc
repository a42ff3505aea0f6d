// The executor's pure decision functions.
#include "processors/executor/decisions.h"

#include <algorithm>

#include "topology/core/time.h"

namespace attune::executor {
namespace {

constexpr std::string_view kSource = "executor";

std::string str(const Json& o, const char* name) {
  auto it = o.find(name);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t int_field(const Json& o, const char* name) {
  auto it = o.find(name);
  return it != o.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

Error bad(std::string message) { return make_error(Errc::kValidation, std::move(message)); }

OutRecord execution_updated(const ExecutionState& st, std::optional<ExecutionStatus> old,
                            int64_t now_ms) {
  const int64_t id = st.execution["id"].get<int64_t>();
  Json payload = st.execution;
  payload["old_status"] = old ? Json(to_string(*old)) : Json(nullptr);
  Envelope e{
      "execution.updated", id, "execution:" + std::to_string(id), now_ms, std::string(kSource),
      std::move(payload)};
  return make_record(topics::kExecutions, std::to_string(st.root), std::move(e));
}

OutRecord enforcement_updated(const Json& execution, std::string_view status, int64_t now_ms) {
  const int64_t id = execution["enforcement"].get<int64_t>();
  const std::string now = format_rfc3339_ms(now_ms);
  Envelope e{"enforcement.updated",
             id,
             "enforcement:" + std::to_string(id),
             now_ms,
             std::string(kSource),
             Json{{"id", id}, {"status", status}, {"resolved_at", now}, {"updated", now}}};
  return make_record(topics::kEnforcements, str(execution, "rule_ref"), std::move(e));
}

// Applies `input` to the state: sets the status, bumps `updated` and emits the record. Returns
// false (state untouched) when the transition table says the input does not apply.
// A workflow child's `workflow_task` (API.md §7) follows its execution: started_at once running;
// completed_at, duration_ms and timed_out once it ends.
void track_workflow_task(Json& ex, ExecutionStatus next, int64_t now_ms) {
  auto wt = ex.find("workflow_task");
  if (wt == ex.end() || !wt->is_object()) return;
  for (const char* f : {"started_at", "completed_at", "duration_ms", "next_retry_at"}) {
    if (!wt->contains(f)) (*wt)[f] = nullptr;
  }
  if (!wt->contains("timed_out")) (*wt)["timed_out"] = false;
  if (next == ExecutionStatus::kRunning && ex.value("started_at", Json()).is_string()) {
    (*wt)["started_at"] = ex["started_at"];
  }
  if (is_terminal(next)) {
    (*wt)["completed_at"] = format_rfc3339_ms(now_ms);
    (*wt)["timed_out"] = next == ExecutionStatus::kTimeout;
    const Json& started = (*wt)["started_at"];
    if (started.is_string()) {
      if (auto at = parse_rfc3339_ms(started.get<std::string>())) {
        (*wt)["duration_ms"] = std::max<int64_t>(0, now_ms - *at);
      }
    }
  }
}

bool step(ExecutionState& st, ExecutionInput input, int64_t now_ms, Outcome& out) {
  const ExecutionStatus old = st.status();
  const auto next = transition(old, input);
  if (!next) return false;
  st.execution["status"] = to_string(*next);
  st.execution["updated"] = format_rfc3339_ms(now_ms);
  track_workflow_task(st.execution, *next, now_ms);
  out.records.push_back(execution_updated(st, old, now_ms));
  if (is_terminal(*next)) out.terminal.push_back(*next);
  return true;
}

std::string ignored(const ExecutionState& st, ExecutionInput input) {
  return "execution " + st.execution["id"].dump() + " is " + std::string(to_string(st.status())) +
         "; " + std::string(to_string(input)) + " does not apply";
}

OutRecord dispatch_record(const ExecutionState& st, const Json& action, int64_t now_ms) {
  const int64_t id = st.execution["id"].get<int64_t>();
  const int64_t attempt = st.attempt();
  Envelope d{"execution.dispatch",
             id,
             "dispatch:" + std::to_string(id) + ":" + std::to_string(attempt),
             now_ms,
             std::string(kSource),
             Json{{"execution", st.execution},
                  {"attempt", attempt},
                  {"action", action},
                  {"root", st.root}}};
  return make_record(topics::kDispatch, std::to_string(id), std::move(d));
}

}  // namespace

int64_t max_retries_of(const Json& action) {
  auto it = action.find("max_retries");
  if (it == action.end() || !it->is_number_integer()) return 0;
  return std::clamp<int64_t>(it->get<int64_t>(), 0, kMaxRetries);
}

std::string ExecutionState::dump() const {
  Json j = {{"execution", execution}, {"root", root}};
  if (skipped) j["skipped"] = true;
  if (!admission.is_null()) j["admission"] = admission;
  return j.dump();
}

std::optional<ExecutionState> ExecutionState::parse(std::string_view text) {
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  ExecutionState st;
  st.execution = j.value("execution", Json::object());
  st.root = j.value("root", int64_t{0});
  st.skipped = j.value("skipped", false);
  st.admission = j.value("admission", Json(nullptr));
  return st;
}

ExecutionStatus ExecutionState::status() const {
  return parse_status(str(execution, "status")).value_or(ExecutionStatus::kRequested);
}

int64_t ExecutionState::attempt() const { return int_field(execution, "attempt"); }

std::string pack_of(std::string_view action_ref) {
  const auto dot = action_ref.find('.');
  return std::string(dot == std::string_view::npos ? action_ref : action_ref.substr(0, dot));
}

Result<Outcome> on_requested(const std::optional<ExecutionState>& state, const Json& request,
                             int64_t root, const DefinitionLookup& lookup, int64_t now_ms,
                             std::string_view refuse, const admission::Effective* policy) {
  if (!request.is_object()) return bad("execution.requested has no execution object");
  const int64_t id = int_field(request, "id");
  if (id <= 0) return bad("execution.requested: execution has no positive id");
  const std::string action_ref = str(request, "action_ref");
  if (action_ref.empty()) return bad("execution.requested: execution has no action_ref");
  const bool for_rule =
      request.contains("enforcement") && request["enforcement"].is_number_integer();

  Outcome out;
  if (state) {
    out.ignored = "execution " + std::to_string(id) + " already requested";
    return out;
  }
  if (root <= 0) root = id;

  if (for_rule) {
    const std::string rule_ref = str(request, "rule_ref");
    JsonPtr rule = rule_ref.empty() ? nullptr : lookup("rule", rule_ref);
    if (!rule || !rule->value("enabled", true)) {
      ExecutionState skip{Json{{"id", id}}, root, true};
      out.records.push_back(enforcement_updated(request, "disabled", now_ms));
      out.state = std::move(skip);
      out.ignored = "rule " + rule_ref + (rule ? " is disabled" : " was deleted") +
                    "; enforcement disabled, no execution";
      return out;
    }
  }

  const std::string now = format_rfc3339_ms(now_ms);
  ExecutionState st;
  st.root = root;
  st.execution = request;
  Json& ex = st.execution;
  for (const char* f :
       {"action", "parent", "enforcement", "executor", "worker", "rule", "timeout_seconds",
        "result", "retry_reason", "original_execution", "started_at", "workflow_task"}) {
    if (!ex.contains(f)) ex[f] = nullptr;
  }
  if (!ex.contains("config") || ex["config"].is_null()) ex["config"] = Json::object();
  if (!ex.contains("env_vars") || ex["env_vars"].is_null()) ex["env_vars"] = Json::object();
  if (!ex.contains("permission_set_refs")) ex["permission_set_refs"] = Json::array();
  if (!ex.contains("rule_ref")) ex["rule_ref"] = nullptr;
  if (!ex.contains("trigger_ref")) ex["trigger_ref"] = nullptr;
  if (!ex.contains("created")) ex["created"] = now;
  ex["pack_ref"] = pack_of(action_ref);
  const int64_t retry_count = int_field(request, "retry_count");
  ex["retry_count"] = std::clamp<int64_t>(retry_count, 0, kMaxRetries);
  ex["max_retries"] = 0;
  ex["attempt"] = 1;
  ex["status"] = to_string(ExecutionStatus::kRequested);
  ex["updated"] = now;
  out.records.push_back(execution_updated(st, std::nullopt, now_ms));
  step(st, ExecutionInput::kSchedule, now_ms, out);

  JsonPtr action = lookup("action", action_ref);
  if (!action || !action->value("enabled", true) || !refuse.empty()) {
    if (action && !refuse.empty() && ex["action"].is_null() && action->contains("id")) {
      ex["action"] = (*action)["id"];
    }
    ex["result"] = {{"error", !action ? "Action '" + action_ref + "' not found"
                              : !action->value("enabled", true)
                                  ? "Action '" + action_ref + "' is disabled"
                                  : std::string(refuse)}};
    step(st, ExecutionInput::kDispatchFailed, now_ms, out);
  } else {
    if (ex["action"].is_null() && action->contains("id")) ex["action"] = (*action)["id"];
    const auto own = request.find("retry");
    ex["max_retries"] = own != request.end() && own->is_object()
                            ? std::clamp<int64_t>(int_field(*own, "max_retries"), 0, kMaxRetries)
                        : policy && policy->retry ? policy->retry->max_retries
                                                  : max_retries_of(*action);
    if (policy && policy->admits()) {
      // Held in `scheduling` until the admission stage grants it a start.
      const std::string group =
          policy->concurrency ? admission::group_key(*policy->concurrency, ex["config"]) : "";
      st.admission = Json{{"action", action_ref}, {"group", group}, {"granted", false}};
      Envelope a{"admission.request",
                 id,
                 "admission-request:" + std::to_string(id),
                 now_ms,
                 std::string(kSource),
                 Json{{"id", id},
                      {"root", root},
                      {"action_ref", action_ref},
                      {"group", group},
                      {"at", now_ms}}};
      out.records.push_back(
          OutRecord{std::string(topics::kAdmission), action_ref, a.dump()});
    } else {
      step(st, ExecutionInput::kHandOff, now_ms, out);
      out.records.push_back(dispatch_record(st, *action, now_ms));
    }
  }
  if (for_rule) out.records.push_back(enforcement_updated(ex, "processed", now_ms));
  out.state = std::move(st);
  return out;
}

Result<Outcome> on_admission(const std::optional<ExecutionState>& state, bool granted,
                             const Json& payload, const DefinitionLookup& lookup, int64_t now_ms) {
  Outcome out;
  const int64_t id = int_field(payload, "id");
  if (id <= 0) return bad("admission answer has no positive id");
  if (!state || state->skipped || !state->admission.is_object() ||
      state->admission.value("granted", false) ||
      state->status() != ExecutionStatus::kScheduling) {
    out.ignored = "admission answer for execution " + std::to_string(id) + " that is not held";
    return out;
  }
  ExecutionState st = *state;
  st.admission["granted"] = true;
  Json& ex = st.execution;
  if (!granted) {
    ex["result"] = {{"error", payload.value("error", std::string("Concurrency limit reached"))}};
    step(st, ExecutionInput::kCancel, now_ms, out);
    out.state = std::move(st);
    return out;
  }
  const std::string action_ref = str(ex, "action_ref");
  JsonPtr action = lookup("action", action_ref);
  if (!action || !action->value("enabled", true)) {
    ex["result"] = {{"error", "Action '" + action_ref + "' " +
                                  (action ? "is disabled" : "not found")}};
    step(st, ExecutionInput::kDispatchFailed, now_ms, out);
  } else {
    step(st, ExecutionInput::kHandOff, now_ms, out);
    out.records.push_back(dispatch_record(st, *action, now_ms));
  }
  out.state = std::move(st);
  return out;
}

std::optional<OutRecord> admission_release(const ExecutionState& st, int64_t now_ms) {
  if (!st.admission.is_object()) return std::nullopt;
  const int64_t id = int_field(st.execution, "id");
  const std::string action_ref = str(st.admission, "action");
  Envelope e{"admission.release", id, "admission-release:" + std::to_string(id), now_ms,
             std::string(kSource), Json{{"id", id}, {"action_ref", action_ref}}};
  return OutRecord{std::string(topics::kAdmission), action_ref, e.dump()};
}

std::optional<RetryPlan> plan_retry(const ExecutionState& ended, std::string_view status,
                                    const admission::Effective* policy) {
  const Json& ex = ended.execution;
  // A workflow's children are retried by their task's `retry` (API.md §12.2).
  if (ex.contains("parent") && !ex["parent"].is_null()) return std::nullopt;
  std::optional<admission::RetrySpec> spec;
  if (auto own = ex.find("retry"); own != ex.end() && own->is_object()) {
    auto parsed = admission::parse_retry(*own);
    if (parsed.ok()) spec = *parsed;
  } else if (policy && policy->retry) {
    spec = policy->retry;
  }
  if (!spec || !admission::retries_on(*spec, status)) return std::nullopt;
  const int64_t done = int_field(ex, "retry_count");
  if (done >= spec->max_retries) return std::nullopt;
  RetryPlan plan;
  plan.delay_ms = admission::backoff_delay_ms(*spec, done + 1);
  Json next = ex;
  for (const char* f : {"result", "worker", "started_at", "attempt", "status", "updated",
                        "created", "old_status"}) {
    next.erase(f);
  }
  const int64_t original = int_field(ex, "original_execution");
  next["original_execution"] = original > 0 ? original : int_field(ex, "id");
  next["retry_count"] = done + 1;
  next["retry_reason"] = std::string(status);
  plan.request = std::move(next);
  return plan;
}

Result<Outcome> on_running(const std::optional<ExecutionState>& state, const Json& report,
                           int64_t now_ms) {
  if (!report.is_object() || int_field(report, "id") <= 0) {
    return bad("result.running has no positive id");
  }
  Outcome out;
  if (!state || state->skipped) {
    out.ignored = "result.running for unknown execution " + report["id"].dump();
    return out;
  }
  if (int_field(report, "attempt") != state->attempt()) {
    out.ignored = "result.running of stale attempt " + report.value("attempt", Json()).dump();
    return out;
  }
  ExecutionState st = *state;
  st.execution["worker"] = report.value("worker", Json(nullptr));
  st.execution["started_at"] = report.contains("started_at") && report["started_at"].is_string()
                                   ? report["started_at"]
                                   : Json(format_rfc3339_ms(now_ms));
  if (!step(st, ExecutionInput::kRunning, now_ms, out)) {
    out.ignored = ignored(*state, ExecutionInput::kRunning);
    return out;
  }
  out.state = std::move(st);
  return out;
}

Result<Outcome> on_finished(const std::optional<ExecutionState>& state, const Json& report,
                            const DefinitionLookup& lookup, int64_t now_ms) {
  if (!report.is_object() || int_field(report, "id") <= 0) {
    return bad("result.finished has no positive id");
  }
  const auto input = parse_finished_status(str(report, "status"));
  if (!input)
    return bad("result.finished has unknown status " + report.value("status", Json()).dump());
  Outcome out;
  if (!state || state->skipped) {
    out.ignored = "result.finished for unknown execution " + report["id"].dump();
    return out;
  }
  if (int_field(report, "attempt") != state->attempt()) {
    out.ignored = "result.finished of stale attempt " + report.value("attempt", Json()).dump();
    return out;
  }
  ExecutionState st = *state;
  const int64_t retries = int_field(st.execution, "retry_count");
  if (*input == ExecutionInput::kAbandoned && retries < int_field(st.execution, "max_retries") &&
      transition(st.status(), ExecutionInput::kRetry)) {
    const JsonPtr action = lookup("action", str(st.execution, "action_ref"));
    if (action && action->value("enabled", true)) {
      const Json result = report.value("result", Json(nullptr));
      const std::string why = result.is_object() && result.contains("error") &&
                                      result["error"].is_string()
                                  ? result["error"].get<std::string>()
                                  : "worker lost";
      st.execution["retry_count"] = retries + 1;
      st.execution["retry_reason"] = "attempt " + std::to_string(st.attempt()) +
                                     " abandoned: " + why;
      st.execution["attempt"] = st.attempt() + 1;
      st.execution["worker"] = nullptr;
      st.execution["started_at"] = nullptr;
      st.execution["result"] = nullptr;
      step(st, ExecutionInput::kRetry, now_ms, out);
      out.records.push_back(dispatch_record(st, *action, now_ms));
      out.state = std::move(st);
      return out;
    }
  }
  st.execution["result"] = report.value("result", Json(nullptr));
  if (report.contains("worker") && !report["worker"].is_null()) {
    st.execution["worker"] = report["worker"];
  }
  if (!step(st, *input, now_ms, out)) {
    out.ignored = ignored(*state, *input);
    return out;
  }
  out.state = std::move(st);
  return out;
}

Result<Outcome> on_cancel(const std::optional<ExecutionState>& state, int64_t id, int64_t now_ms) {
  if (id <= 0) return bad("execution.cancel has no positive id");
  Outcome out;
  if (!state || state->skipped) {
    out.ignored = "cancel for unknown execution " + std::to_string(id);
    return out;
  }
  ExecutionState st = *state;
  const bool handed_off = is_handed_off(st.status());
  if (!step(st, ExecutionInput::kCancel, now_ms, out)) {
    out.ignored = ignored(*state, ExecutionInput::kCancel);
    return out;
  }
  if (handed_off) {
    Envelope c{"execution.cancel",
               id,
               "cancel:" + std::to_string(id) + ":" + std::to_string(st.attempt()),
               now_ms,
               std::string(kSource),
               Json{{"id", id}, {"attempt", st.attempt()}}};
    out.records.push_back(make_record(topics::kDispatch, std::to_string(id), std::move(c)));
  }
  out.state = std::move(st);
  return out;
}

}  // namespace attune::executor
