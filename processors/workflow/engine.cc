// The workflow engine (API.md §12.3): advance(definition, state, event) → (state, commands).
#include <algorithm>
#include <cmath>
#include <set>

#include "processors/workflow/compiled.h"
#include "processors/workflow/workflow.h"

namespace attune::workflow {
namespace {

// Task runs that may end within one advance() without waiting for anything (a cycle of tasks over
// empty with_items would otherwise never return). Exceeding it fails the workflow.
constexpr int kMaxTaskEndsPerStep = 1000;

bool active(TaskStatus s) {
  switch (s) {
    case TaskStatus::kDelayed:
    case TaskStatus::kWaiting:
    case TaskStatus::kRunning:
      return true;
    case TaskStatus::kIdle:
    case TaskStatus::kSucceeded:
    case TaskStatus::kFailed:
    case TaskStatus::kTimedOut:
    case TaskStatus::kCancelled:
    case TaskStatus::kSkipped:
      return false;
  }
  return false;
}

SlotStatus slot_status_of(ChildStatus s) {
  switch (s) {
    case ChildStatus::kCompleted:
      return SlotStatus::kCompleted;
    case ChildStatus::kFailed:
    case ChildStatus::kAbandoned:
      return SlotStatus::kFailed;
    case ChildStatus::kTimeout:
      return SlotStatus::kTimedOut;
    case ChildStatus::kCancelled:
      return SlotStatus::kCancelled;
  }
  return SlotStatus::kFailed;
}

bool retryable(ChildStatus s) {
  switch (s) {
    case ChildStatus::kFailed:
    case ChildStatus::kTimeout:
    case ChildStatus::kAbandoned:
      return true;
    case ChildStatus::kCompleted:
    case ChildStatus::kCancelled:
      return false;
  }
  return false;
}

bool terminal(WorkflowStatus s) {
  switch (s) {
    case WorkflowStatus::kCompleted:
    case WorkflowStatus::kFailed:
    case WorkflowStatus::kCancelled:
      return true;
    case WorkflowStatus::kPending:
    case WorkflowStatus::kRunning:
    case WorkflowStatus::kCanceling:
      return false;
  }
  return false;
}

// Delay before retry number `n` (1-based), in milliseconds.
int64_t retry_delay_ms(const Retry& r, int64_t n) {
  double d = r.delay;
  switch (r.backoff) {
    case Backoff::kConstant:
      break;
    case Backoff::kLinear:
      d = r.delay * static_cast<double>(n);
      break;
    case Backoff::kExponential:
      d = r.delay * std::pow(2.0, static_cast<double>(std::min<int64_t>(n - 1, 60)));
      break;
  }
  if (r.max_delay) d = std::min(d, *r.max_delay);
  return static_cast<int64_t>(std::llround(d * 1000.0));
}

// The slots kept inline in the State (advance() without a SlotStore): TaskState::slots of the
// current run.
class InlineSlots final : public SlotStore {
 public:
  explicit InlineSlots(State* state) : state_(state) {}
  std::optional<Slot> get(const std::string& task, int64_t run, int64_t index) override {
    auto it = state_->tasks.find(task);
    if (it == state_->tasks.end() || it->second.run != run || index < 0 ||
        index >= static_cast<int64_t>(it->second.slots.size())) {
      return std::nullopt;
    }
    return it->second.slots[static_cast<size_t>(index)];
  }
  void put(const std::string& task, int64_t, int64_t index, const Slot& slot) override {
    std::vector<Slot>& v = state_->tasks[task].slots;
    if (index >= static_cast<int64_t>(v.size())) v.resize(static_cast<size_t>(index) + 1);
    v[static_cast<size_t>(index)] = slot;
  }

 private:
  State* state_;
};

// The template context of one evaluation. Owns the values the Scope points at, so it never moves.
struct Context {
  Json tasks = Json::object();
  Json inquiry = Json::object();
  expr::Scope scope;
};

class Engine {
 public:
  Engine(const Definition& def, State state, const Inputs& inputs, int64_t now_ms,
         SlotStore* slots)
      : def_(def),
        c_(def.compiled()),
        state_(std::move(state)),
        in_(inputs),
        now_(now_ms),
        inline_(&state_),
        slots_(slots != nullptr ? slots : &inline_) {}

  Result<Step> run(const Event& e) {
    switch (e.kind) {
      case EventKind::kStart:
        on_start(e.parameters);
        break;
      case EventKind::kChildFinished:
        if (Status s = on_child_finished(e); !s.ok()) return s.error();
        break;
      case EventKind::kInquiryResolved:
        if (Status s = on_inquiry(e); !s.ok()) return s.error();
        break;
      case EventKind::kTimerFired:
        if (Status s = on_timer(e.child); !s.ok()) return s.error();
        break;
      case EventKind::kCancel:
        on_cancel(e.kill_running);
        break;
    }
    if (ignored_.empty()) check_completion();
    return Step{std::move(state_), std::move(out_), std::move(ignored_)};
  }

 private:
  const Task& task(const std::string& name) const { return *def_.find(name); }
  const CompiledTask& compiled(const std::string& name) const {
    return c_.tasks[static_cast<size_t>(def_.find(name) - def_.tasks().data())];
  }
  bool running() const { return state_.status == WorkflowStatus::kRunning; }

  // Built per evaluation point (not per item: items get a child Scope), so it copies each task's
  // result once.
  std::unique_ptr<Context> context() const {
    auto ctx = std::make_unique<Context>();
    for (const auto& [name, t] : state_.tasks) {
      if (t.run == 0) continue;
      Json entry = t.result.is_object() ? t.result : Json::object();
      entry["result"] = t.result;
      entry["status"] = name_of(t.status);
      ctx->tasks[name] = std::move(entry);
      if (!t.inquiry_response.is_null())
        ctx->inquiry[name] = Json{{"response", t.inquiry_response}};
    }
    expr::Scope& s = ctx->scope;
    s.bind("parameters", in_.parameters ? &*in_.parameters : &state_.parameters);
    s.bind("workflow", &state_.vars);
    s.bind("vars", &state_.vars);
    s.bind("variables", &state_.vars);
    s.bind("task", &ctx->tasks);
    s.bind("tasks", &ctx->tasks);
    s.bind("inquiry", &ctx->inquiry);
    s.bind("config", &in_.config);
    s.bind("keystore", &in_.keystore);
    s.bind("system", &in_.system);
    return ctx;
  }

  // succeeded(), failed(), timed_out(), result() for the task (or child) that just ended.
  static void bind_outcome(expr::Scope* s, TaskStatus outcome, const Json* result) {
    auto is = [outcome](TaskStatus want) {
      return
          [outcome, want](std::span<const Json>) -> Result<Json> { return Json(outcome == want); };
    };
    s->bind_function("succeeded", is(TaskStatus::kSucceeded));
    s->bind_function("failed", [outcome](std::span<const Json>) -> Result<Json> {
      return Json(outcome == TaskStatus::kFailed || outcome == TaskStatus::kCancelled);
    });
    s->bind_function("timed_out", is(TaskStatus::kTimedOut));
    s->bind_function("result", [result](std::span<const Json>) -> Result<Json> { return *result; });
  }

  // ---- events

  void on_start(const Json& parameters) {
    if (state_.status != WorkflowStatus::kPending) {
      ignored_ = "already started";
      return;
    }
    state_.status = WorkflowStatus::kRunning;
    state_.parameters = parameters.is_null() ? Json::object() : parameters;
    state_.vars = Json::object();
    if (c_.vars) {
      auto ctx = context();
      auto vars = c_.vars->render(ctx->scope);
      if (!vars.ok()) {
        fail_workflow(vars.error().message, "", Json());
        return;
      }
      state_.vars = std::move(vars).value();
    }
    for (const std::string& name : def_.entry_tasks()) start_task(name, "");
  }

  Status on_child_finished(const Event& e) {
    const ChildKey& key = e.child;
    if (def_.find(key.task) == nullptr) {
      return make_error(Errc::kBadRequest, "unknown task '" + key.task + "'");
    }
    if (terminal(state_.status)) {
      ignored_ = "workflow already finished";
      return {};
    }
    auto it = state_.tasks.find(key.task);
    if (it == state_.tasks.end() || it->second.run != key.run) {
      ignored_ = "stale run of task '" + key.task + "'";
      return {};
    }
    TaskState& ts = it->second;
    const Task& t = task(key.task);
    std::optional<int64_t> slot_index = slot_of(key, ts);
    if (!slot_index) {
      ignored_ = "no such child of task '" + key.task + "'";
      return {};
    }
    const int64_t i = *slot_index;
    std::optional<Slot> slot = slots_->get(key.task, ts.run, i);
    if (!slot || slot->status != SlotStatus::kRunning || slot->attempt != key.attempt) {
      ignored_ = "stale attempt of task '" + key.task + "'";
      return {};
    }
    if (running() && t.retry && slot->attempt <= t.retry->count && retryable(e.status) &&
        retry_allowed(key.task, e)) {
      ++slot->attempt;
      int64_t delay = retry_delay_ms(*t.retry, slot->attempt - 1);
      if (delay > 0) {
        slot->status = SlotStatus::kRetryWait;
        slots_->put(key.task, ts.run, i, *slot);
        Command c{.kind = CommandKind::kStartTimer};
        c.child = key_of(key.task, ts, i, slot->attempt);
        c.at_ms = now_ + delay;
        out_.push_back(std::move(c));
      } else {
        slots_->put(key.task, ts.run, i, *slot);
        out_.push_back(create(key.task, i, *slot, false));
      }
      return {};
    }
    slot->status = slot_status_of(e.status);
    slot->result = e.result;
    slots_->put(key.task, ts.run, i, *slot);
    slot_ended(&ts, i, slot->status);
    settle(key.task);
    return {};
  }

  bool retry_allowed(const std::string& name, const Event& e) {
    const CompiledTask& ct = compiled(name);
    if (!ct.on_error) return true;
    auto ctx = context();
    TaskStatus outcome =
        e.status == ChildStatus::kTimeout ? TaskStatus::kTimedOut : TaskStatus::kFailed;
    bind_outcome(&ctx->scope, outcome, &e.result);
    auto r = ct.on_error->test(ctx->scope);
    return r.ok() && *r;  // an evaluation error means: do not retry
  }

  Status on_inquiry(const Event& e) {
    const std::string& name = e.child.task;
    if (def_.find(name) == nullptr)
      return make_error(Errc::kBadRequest, "unknown task '" + name + "'");
    auto it = state_.tasks.find(name);
    if (!running() || it == state_.tasks.end() || it->second.run != e.child.run ||
        it->second.status != TaskStatus::kWaiting) {
      ignored_ = "task '" + name + "' is not waiting for an inquiry";
      return {};
    }
    switch (e.inquiry) {
      case InquiryOutcome::kResponded:
        it->second.inquiry_response = e.response.is_null() ? Json::object() : e.response;
        create_children(name);
        break;
      case InquiryOutcome::kTimeout:
      case InquiryOutcome::kCancelled:
        task_end(name, TaskStatus::kTimedOut, Json());
        break;
    }
    return {};
  }

  Status on_timer(const ChildKey& key) {
    if (def_.find(key.task) == nullptr) {
      return make_error(Errc::kBadRequest, "unknown task '" + key.task + "'");
    }
    auto it = state_.tasks.find(key.task);
    if (!running() || it == state_.tasks.end() || it->second.run != key.run) {
      ignored_ = "stale timer of task '" + key.task + "'";
      return {};
    }
    TaskState& ts = it->second;
    if (key.attempt == 0) {  // the task's `delay`
      if (ts.status != TaskStatus::kDelayed) {
        ignored_ = "task '" + key.task + "' is not delayed";
        return {};
      }
      after_delay(key.task);
      return {};
    }
    std::optional<int64_t> slot_index = slot_of(key, ts);
    std::optional<Slot> slot =
        slot_index ? slots_->get(key.task, ts.run, *slot_index) : std::nullopt;
    if (!slot || slot->status != SlotStatus::kRetryWait || slot->attempt != key.attempt) {
      ignored_ = "stale retry timer of task '" + key.task + "'";
      return {};
    }
    slot->status = SlotStatus::kRunning;
    slots_->put(key.task, ts.run, *slot_index, *slot);
    out_.push_back(create(key.task, *slot_index, *slot, false));
    return {};
  }

  void on_cancel(bool kill_running) {
    if (state_.status == WorkflowStatus::kPending) {
      state_.status = WorkflowStatus::kCancelled;
      finish(WorkflowStatus::kCancelled, Json());
      return;
    }
    if (!running()) {
      ignored_ = std::string("workflow is ") + name_of(state_.status);
      return;
    }
    state_.status = WorkflowStatus::kCanceling;
    stop_children(kill_running ||
                  def_.cancellation_policy() == CancellationPolicy::kCancelRunning);
  }

  // ---- task lifecycle

  // A transition (or the workflow start) reaches `name`.
  void start_task(const std::string& name, const std::string& by) {
    if (!running()) return;
    const Task& t = task(name);
    TaskState& ts = state_.tasks[name];
    if (t.join > 0) {
      if (++ts.inbound < t.join) return;
      ts.inbound = 0;
    }
    if (active(ts.status)) {
      ts.queued.push_back(by);
      return;
    }
    begin_run(name, by);
  }

  void begin_run(const std::string& name, const std::string& by) {
    const Task& t = task(name);
    TaskState& ts = state_.tasks[name];
    ++ts.run;
    ts.status = TaskStatus::kIdle;
    ts.triggered_by = by;
    ts.slots.clear();
    ts.slot_count = 0;
    ts.released = 0;
    ts.busy.clear();
    ts.first_bad = -1;
    ts.first_bad_status = SlotStatus::kFailed;
    ts.any_cancelled = false;
    ts.group_failed = false;
    ts.inquiry_response = Json();
    ts.permission_set_refs = Json();
    ts.result = Json();
    if (const auto& when = compiled(name).when) {
      auto ctx = context();
      auto r = when->test(ctx->scope);
      if (!r.ok()) {
        task_end(name, TaskStatus::kFailed, Json{{"error", "when: " + r.error().message}});
        return;
      }
      if (!*r) {
        if (!budget()) return;
        state_.tasks[name].status = TaskStatus::kSkipped;
        after_run(name);
        return;
      }
    }
    if (t.delay > 0) {
      ts.status = TaskStatus::kDelayed;
      Command c{.kind = CommandKind::kStartTimer};
      c.child = ChildKey{name, ts.run, -1, 0};
      c.at_ms = now_ + static_cast<int64_t>(std::llround(t.delay * 1000.0));
      out_.push_back(std::move(c));
      return;
    }
    after_delay(name);
  }

  void after_delay(const std::string& name) {
    TaskState& ts = state_.tasks[name];
    if (const auto& wait = compiled(name).wait_for) {
      auto ctx = context();
      auto id = wait->render(ctx->scope);
      if (!id.ok() || id->is_null() || (id->is_string() && id->get<std::string>().empty())) {
        std::string why = id.ok() ? "rendered empty" : id.error().message;
        task_end(name, TaskStatus::kFailed, Json{{"error", "wait_for.inquiry: " + why}});
        return;
      }
      ts.status = TaskStatus::kWaiting;
      Command c{.kind = CommandKind::kAwaitInquiry};
      c.child = ChildKey{name, ts.run, -1, 0};
      c.inquiry_id = std::move(id).value();
      out_.push_back(std::move(c));
      return;
    }
    create_children(name);
  }

  // Renders the run's inputs and creates its children (or starts a parallel task's tasks).
  void create_children(const std::string& name) {
    const Task& t = task(name);
    const CompiledTask& ct = compiled(name);
    TaskState& ts = state_.tasks[name];
    ts.status = TaskStatus::kRunning;
    if (t.type == TaskType::kParallel) {
      starting_.insert(name);
      for (const std::string& sub : t.sub_entries) start_task(sub, name);
      starting_.erase(name);
      check_group(name);
      return;
    }
    auto fail = [&](const std::string& why) {
      task_end(name, TaskStatus::kFailed, Json{{"error", why}});
    };
    auto ctx = context();
    Json refs = Json::array();
    if (ct.permission_set_refs) {
      auto r = ct.permission_set_refs->render(ctx->scope);
      if (!r.ok()) return fail(r.error().message);
      if (r->is_string()) {
        if (!r->get<std::string>().empty()) refs.push_back(*r);
      } else if (r->is_array() &&
                 std::all_of(r->begin(), r->end(), [](const Json& j) { return j.is_string(); })) {
        refs = *r;
      } else if (!r->is_null()) {
        return fail("permission_set_refs: must render to a string or a list of strings");
      }
    }
    ts.permission_set_refs = refs;

    std::vector<Slot> slots;
    if (t.has_with_items) {
      auto items = ct.with_items->render(ctx->scope);
      if (!items.ok()) return fail(items.error().message);
      if (!items->is_array()) {
        return fail(std::string("with_items: expected a list, got ") + items->type_name());
      }
      std::vector<Json> chunks;
      if (t.batch_size > 0) {
        for (size_t i = 0; i < items->size(); i += static_cast<size_t>(t.batch_size)) {
          Json batch = Json::array();
          for (size_t k = i; k < std::min(items->size(), i + static_cast<size_t>(t.batch_size));
               ++k) {
            batch.push_back((*items)[k]);
          }
          chunks.push_back(std::move(batch));
        }
      } else {
        chunks.assign(items->begin(), items->end());
      }
      for (size_t i = 0; i < chunks.size(); ++i) {
        Slot s;
        s.item = std::move(chunks[i]);
        Json index(static_cast<int64_t>(i));
        expr::Scope item_scope(&ctx->scope);
        item_scope.bind("item", &s.item);
        item_scope.bind("index", &index);
        if (ct.input) {
          auto in = ct.input->render(item_scope);
          if (!in.ok()) return fail(in.error().message);
          s.input = std::move(in).value();
        } else {
          s.input = Json::object();
        }
        slots.push_back(std::move(s));
      }
    } else {
      Slot s;
      if (ct.input) {
        auto in = ct.input->render(ctx->scope);
        if (!in.ok()) return fail(in.error().message);
        s.input = std::move(in).value();
      } else {
        s.input = Json::object();
      }
      slots.push_back(std::move(s));
    }
    if (slots.empty()) {
      task_end(name, TaskStatus::kSucceeded, Json::array());
      return;
    }
    const int64_t limit = t.has_with_items ? t.concurrency : 1;
    ts.slot_count = static_cast<int64_t>(slots.size());
    ts.released = std::min(limit, ts.slot_count);
    for (int64_t i = 0; i < ts.slot_count; ++i) {
      Slot& s = slots[static_cast<size_t>(i)];
      s.status = i < ts.released ? SlotStatus::kRunning : SlotStatus::kHeld;
      if (i < ts.released) ts.busy.push_back(i);
      slots_->put(name, ts.run, i, s);
      out_.push_back(create(name, i, s, s.status == SlotStatus::kHeld));
      s = Slot{};  // the command and the store hold it now
    }
  }

  // A slot's child ended for good (completed, failed, timed out or cancelled).
  static void slot_ended(TaskState* ts, int64_t i, SlotStatus status) {
    std::erase(ts->busy, i);
    if (status == SlotStatus::kFailed || status == SlotStatus::kTimedOut) {
      if (ts->first_bad < 0 || i < ts->first_bad) {
        ts->first_bad = i;
        ts->first_bad_status = status;
      }
    } else if (status == SlotStatus::kCancelled) {
      ts->any_cancelled = true;
    }
  }

  // Cancels the held slots of the current run of `name` (all of [released, slot_count)).
  void cancel_held(const std::string& name, TaskState* ts, Command* cancel) {
    for (int64_t i = ts->released; i < ts->slot_count; ++i) {
      std::optional<Slot> slot = slots_->get(name, ts->run, i);
      if (!slot || slot->status != SlotStatus::kHeld) continue;
      slot->status = SlotStatus::kCancelled;
      slots_->put(name, ts->run, i, *slot);
      cancel->children.push_back(key_of(name, *ts, i, slot->attempt));
      ts->any_cancelled = true;
    }
    ts->released = ts->slot_count;
  }

  // The slot a key names in the current run, if any: its item index with with_items, else the
  // only slot (index -1).
  std::optional<int64_t> slot_of(const ChildKey& key, const TaskState& ts) const {
    const bool items = task(key.task).has_with_items;
    if (items != (key.index >= 0)) return std::nullopt;
    const int64_t i = items ? key.index : 0;
    if (i >= ts.slot_count) return std::nullopt;
    return i;
  }

  ChildKey key_of(const std::string& name, const TaskState& ts, int64_t i, int64_t attempt) const {
    return ChildKey{name, ts.run, task(name).has_with_items ? i : -1, attempt};
  }

  Command create(const std::string& name, int64_t i, const Slot& s, bool held) const {
    const Task& t = task(name);
    const TaskState& ts = state_.tasks.at(name);
    Command c{.kind = CommandKind::kCreateChild};
    c.child = key_of(name, ts, i, s.attempt);
    c.action_ref = t.action;
    c.input = s.input;
    c.timeout = t.timeout;
    for (const Json& r : ts.permission_set_refs)
      c.permission_set_refs.push_back(r.get<std::string>());
    c.held = held;
    c.workflow_task = c.child.to_json();
    c.workflow_task["triggered_by"] = ts.triggered_by.empty() ? Json() : Json(ts.triggered_by);
    c.workflow_task["task_batch"] = t.batch_size > 0 ? Json(i) : Json();
    c.workflow_task["retry_count"] = s.attempt - 1;
    c.workflow_task["max_retries"] = t.retry ? t.retry->count : 0;
    c.workflow_task["timeout_seconds"] = t.timeout ? Json(*t.timeout) : Json();
    return c;
  }

  // After a slot finished: release held children or end the task.
  void settle(const std::string& name) {
    const Task& t = task(name);
    TaskState& ts = state_.tasks[name];
    if (ts.first_bad >= 0 || ts.any_cancelled || !running()) {
      if (!ts.busy.empty()) return;
      Command cancel{.kind = CommandKind::kCancelChildren};
      cancel_held(name, &ts, &cancel);
      if (!cancel.children.empty()) out_.push_back(std::move(cancel));
    } else {
      const int64_t limit = t.has_with_items ? t.concurrency : 1;
      while (ts.released < ts.slot_count && static_cast<int64_t>(ts.busy.size()) < limit) {
        const int64_t i = ts.released++;
        Slot slot = slots_->get(name, ts.run, i).value_or(Slot{});
        if (slot.status != SlotStatus::kHeld) continue;  // cannot happen: held ones are a suffix
        slot.status = SlotStatus::kRunning;
        slots_->put(name, ts.run, i, slot);
        ts.busy.push_back(i);  // above every busy index: stays sorted
        Command c{.kind = CommandKind::kReleaseChild};
        c.child = key_of(name, ts, i, slot.attempt);
        out_.push_back(std::move(c));
      }
      if (!ts.busy.empty()) return;
    }
    // Every slot is final: the outcome is the first failure or timeout in item order. The
    // results are read once, here.
    TaskStatus outcome = TaskStatus::kSucceeded;
    if (ts.first_bad >= 0) {
      outcome = ts.first_bad_status == SlotStatus::kFailed ? TaskStatus::kFailed
                                                           : TaskStatus::kTimedOut;
    } else if (ts.any_cancelled) {
      outcome = TaskStatus::kCancelled;
    }
    Json result;
    if (t.has_with_items) {
      result = Json::array();
      for (int64_t i = 0; i < ts.slot_count; ++i) {
        std::optional<Slot> s = slots_->get(name, ts.run, i);
        result.push_back(s ? std::move(s->result) : Json());
      }
    } else {
      std::optional<Slot> s = slots_->get(name, ts.run, 0);
      result = s ? std::move(s->result) : Json();
    }
    task_end(name, outcome, std::move(result));
  }

  bool budget() {
    if (++task_ends_ <= kMaxTaskEndsPerStep) return true;
    fail_workflow("more than " + std::to_string(kMaxTaskEndsPerStep) +
                      " task runs ended in one step (a cycle that never waits?)",
                  "", Json());
    return false;
  }

  // The run of `name` ended: fire its transitions, then start what they reach.
  void task_end(const std::string& name, TaskStatus outcome, Json result) {
    if (!budget()) return;
    const Task& t = task(name);
    {
      TaskState& ts = state_.tasks[name];
      ts.status = outcome;
      ts.result = std::move(result);
    }
    if (!running()) {
      after_run(name);
      return;
    }
    const CompiledTask& ct = compiled(name);
    Json task_result = state_.tasks[name].result;
    auto ctx = context();
    bind_outcome(&ctx->scope, outcome, &task_result);
    bool matched = false;
    std::vector<std::string> targets;
    for (size_t i = 0; i < t.next.size(); ++i) {
      const Transition& tr = t.next[i];
      const CompiledTransition& ctr = ct.next[i];
      std::string where = "task '" + name + "': " + tr.label;
      if (ctr.when) {
        auto r = ctr.when->test(ctx->scope);
        if (!r.ok()) {
          fail_workflow(where + ".when: " + r.error().message, name, task_result);
          return;
        }
        if (!*r) continue;
      }
      matched = true;
      for (const auto& [var, value] : ctr.publish) {
        if (!value) {
          state_.vars[var] = task_result;
          continue;
        }
        auto v = value->render(ctx->scope);
        if (!v.ok()) {
          fail_workflow(where + ".publish: " + v.error().message, name, task_result);
          return;
        }
        state_.vars[var] = std::move(v).value();
      }
      targets.insert(targets.end(), tr.targets.begin(), tr.targets.end());
    }
    if (outcome != TaskStatus::kSucceeded && !matched) {
      if (!t.group.empty()) {
        state_.tasks[t.group].group_failed = true;
      } else {
        fail_workflow("task '" + name + "' " + name_of(outcome) + " and no transition handles it",
                      name, task_result);
        return;
      }
    }
    for (const std::string& target : targets) start_task(target, name);
    after_run(name);
  }

  // A run is over (ended or skipped): start a queued run, tell the enclosing parallel task.
  void after_run(const std::string& name) {
    TaskState& ts = state_.tasks[name];
    if (running() && !ts.queued.empty() && !active(ts.status)) {
      std::string by = ts.queued.front();
      ts.queued.erase(ts.queued.begin());
      begin_run(name, by);
    }
    const Task& t = task(name);
    if (!t.group.empty()) check_group(t.group);
  }

  // A parallel task ends once none of its nested tasks is active or queued.
  void check_group(const std::string& group) {
    if (starting_.contains(group)) return;
    TaskState& gs = state_.tasks[group];
    if (gs.status != TaskStatus::kRunning) return;
    Json result = Json::object();
    for (const std::string& sub : task(group).subtasks) {
      auto it = state_.tasks.find(sub);
      if (it == state_.tasks.end()) {
        result[sub] = Json();
        continue;
      }
      if (active(it->second.status) || !it->second.queued.empty()) return;
      result[sub] = it->second.result;
    }
    task_end(group, gs.group_failed ? TaskStatus::kFailed : TaskStatus::kSucceeded,
             std::move(result));
  }

  // ---- the workflow's end

  // Stops everything not yet running; cancels running children too when `running_too`.
  void stop_children(bool running_too) {
    Command cancel{.kind = CommandKind::kCancelChildren};
    for (auto& [name, ts] : state_.tasks) {
      ts.queued.clear();
      ts.inbound = 0;
      if (ts.status == TaskStatus::kDelayed || ts.status == TaskStatus::kWaiting) {
        ts.status = TaskStatus::kCancelled;
      }
      // Busy slots (all below `released`) first, then the held ones: item order.
      const std::vector<int64_t> busy = ts.busy;
      for (int64_t i : busy) {
        std::optional<Slot> s = slots_->get(name, ts.run, i);
        if (!s) continue;
        if (s->status == SlotStatus::kRetryWait) {
          s->status = SlotStatus::kCancelled;
          slots_->put(name, ts.run, i, *s);
          slot_ended(&ts, i, SlotStatus::kCancelled);
        } else if (s->status == SlotStatus::kRunning && running_too) {
          cancel.children.push_back(key_of(name, ts, i, s->attempt));
        }
      }
      cancel_held(name, &ts, &cancel);
    }
    if (!cancel.children.empty()) out_.push_back(std::move(cancel));
    // Tasks whose every slot is now final end (without transitions: the workflow is not running).
    for (auto& [name, ts] : state_.tasks) {
      if (ts.status != TaskStatus::kRunning || ts.slot_count == 0) continue;
      if (ts.busy.empty()) ts.status = TaskStatus::kCancelled;
    }
  }

  void fail_workflow(const std::string& reason, const std::string& name, const Json& result) {
    if (terminal(state_.status)) return;
    state_.status = WorkflowStatus::kFailed;
    state_.error = reason;
    stop_children(def_.cancellation_policy() == CancellationPolicy::kCancelRunning);
    Json r{{"error", reason}};
    if (!name.empty()) {
      r["task"] = name;
      r["result"] = result;
    }
    finish(WorkflowStatus::kFailed, std::move(r));
  }

  void finish(WorkflowStatus status, Json result) {
    state_.result = result;
    Command c{.kind = CommandKind::kFinishWorkflow};
    c.status = status;
    c.result = std::move(result);
    out_.push_back(std::move(c));
  }

  void check_completion() {
    if (state_.status == WorkflowStatus::kCanceling) {
      for (const auto& [name, ts] : state_.tasks) {
        if (!ts.busy.empty()) return;
      }
      state_.status = WorkflowStatus::kCancelled;
      finish(WorkflowStatus::kCancelled, Json());
      return;
    }
    if (!running()) return;
    for (const auto& [name, ts] : state_.tasks) {
      if (active(ts.status) || !ts.queued.empty()) return;
    }
    Json result = state_.vars;
    if (c_.output_map) {
      auto ctx = context();
      auto r = c_.output_map->render(ctx->scope);
      if (!r.ok()) {
        fail_workflow(r.error().message, "", Json());
        return;
      }
      result = std::move(r).value();
    }
    state_.status = WorkflowStatus::kCompleted;
    finish(WorkflowStatus::kCompleted, std::move(result));
  }

  const Definition& def_;
  const Compiled& c_;
  State state_;
  const Inputs& in_;
  int64_t now_;
  InlineSlots inline_;
  SlotStore* slots_;
  std::vector<Command> out_;
  std::string ignored_;
  std::set<std::string> starting_;  // parallel tasks whose nested tasks are being started
  int task_ends_ = 0;
};

}  // namespace

Result<Step> advance(const Definition& def, const State& state, const Event& event,
                     const Inputs& inputs, int64_t now_ms, SlotStore& slots) {
  Engine engine(def, state, inputs, now_ms, &slots);
  return engine.run(event);
}

Result<Step> advance(const Definition& def, const State& state, const Event& event,
                     const Inputs& inputs, int64_t now_ms) {
  Engine engine(def, state, inputs, now_ms, nullptr);
  return engine.run(event);
}

}  // namespace attune::workflow
