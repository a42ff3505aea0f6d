// Workflow State, events and commands: names and their JSON forms (the State is what the executor
// stores, so from_json(to_json(s)) == s exactly).
#include "processors/workflow/workflow.h"

#include <algorithm>

namespace attune::workflow {
namespace {

template <class E, size_t N>
std::optional<E> enum_from(std::string_view s, const E (&all)[N]) {
  for (E e : all) {
    if (s == name_of(e)) return e;
  }
  return std::nullopt;
}

constexpr WorkflowStatus kWorkflowStatuses[] = {
    WorkflowStatus::kPending,   WorkflowStatus::kRunning, WorkflowStatus::kCanceling,
    WorkflowStatus::kCompleted, WorkflowStatus::kFailed,  WorkflowStatus::kCancelled};
constexpr TaskStatus kTaskStatuses[] = {
    TaskStatus::kIdle,     TaskStatus::kDelayed,   TaskStatus::kWaiting,
    TaskStatus::kRunning,  TaskStatus::kSucceeded, TaskStatus::kFailed,
    TaskStatus::kTimedOut, TaskStatus::kCancelled, TaskStatus::kSkipped};
constexpr SlotStatus kSlotStatuses[] = {
    SlotStatus::kHeld,   SlotStatus::kRunning,  SlotStatus::kRetryWait, SlotStatus::kCompleted,
    SlotStatus::kFailed, SlotStatus::kTimedOut, SlotStatus::kCancelled};
constexpr ChildStatus kChildStatuses[] = {ChildStatus::kCompleted, ChildStatus::kFailed,
                                          ChildStatus::kTimeout, ChildStatus::kCancelled,
                                          ChildStatus::kAbandoned};

Error bad_state(const std::string& what) {
  return make_error(Errc::kInternal, "workflow state: " + what);
}

Json get_or_null(const Json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? Json() : *it;
}

// The counters of a TaskState from its inline slots (the layout of earlier builds, where held
// slots are always a suffix: they were created last and released in item order).
void derive_counters(TaskState* t) {
  t->slot_count = static_cast<int64_t>(t->slots.size());
  t->released = t->slot_count;
  t->busy.clear();
  t->first_bad = -1;
  t->any_cancelled = false;
  for (int64_t i = 0; i < t->slot_count; ++i) {
    const SlotStatus st = t->slots[static_cast<size_t>(i)].status;
    switch (st) {
      case SlotStatus::kHeld:
        t->released = std::min(t->released, i);
        break;
      case SlotStatus::kRunning:
      case SlotStatus::kRetryWait:
        t->busy.push_back(i);
        break;
      case SlotStatus::kFailed:
      case SlotStatus::kTimedOut:
        if (t->first_bad < 0) {
          t->first_bad = i;
          t->first_bad_status = st;
        }
        break;
      case SlotStatus::kCancelled:
        t->any_cancelled = true;
        break;
      case SlotStatus::kCompleted:
        break;
    }
  }
}

}  // namespace

const char* name_of(WorkflowStatus s) {
  switch (s) {
    case WorkflowStatus::kPending:
      return "pending";
    case WorkflowStatus::kRunning:
      return "running";
    case WorkflowStatus::kCanceling:
      return "canceling";
    case WorkflowStatus::kCompleted:
      return "completed";
    case WorkflowStatus::kFailed:
      return "failed";
    case WorkflowStatus::kCancelled:
      return "cancelled";
  }
  return "?";
}

const char* name_of(TaskStatus s) {
  switch (s) {
    case TaskStatus::kIdle:
      return "idle";
    case TaskStatus::kDelayed:
      return "delayed";
    case TaskStatus::kWaiting:
      return "waiting";
    case TaskStatus::kRunning:
      return "running";
    case TaskStatus::kSucceeded:
      return "succeeded";
    case TaskStatus::kFailed:
      return "failed";
    case TaskStatus::kTimedOut:
      return "timed_out";
    case TaskStatus::kCancelled:
      return "cancelled";
    case TaskStatus::kSkipped:
      return "skipped";
  }
  return "?";
}

const char* name_of(SlotStatus s) {
  switch (s) {
    case SlotStatus::kHeld:
      return "held";
    case SlotStatus::kRunning:
      return "running";
    case SlotStatus::kRetryWait:
      return "retry_wait";
    case SlotStatus::kCompleted:
      return "completed";
    case SlotStatus::kFailed:
      return "failed";
    case SlotStatus::kTimedOut:
      return "timed_out";
    case SlotStatus::kCancelled:
      return "cancelled";
  }
  return "?";
}

const char* name_of(ChildStatus s) {
  switch (s) {
    case ChildStatus::kCompleted:
      return "completed";
    case ChildStatus::kFailed:
      return "failed";
    case ChildStatus::kTimeout:
      return "timeout";
    case ChildStatus::kCancelled:
      return "cancelled";
    case ChildStatus::kAbandoned:
      return "abandoned";
  }
  return "?";
}

const char* name_of(CommandKind k) {
  switch (k) {
    case CommandKind::kCreateChild:
      return "create_child";
    case CommandKind::kReleaseChild:
      return "release_child";
    case CommandKind::kStartTimer:
      return "start_timer";
    case CommandKind::kAwaitInquiry:
      return "await_inquiry";
    case CommandKind::kCancelChildren:
      return "cancel_children";
    case CommandKind::kFinishWorkflow:
      return "finish_workflow";
  }
  return "?";
}

std::optional<ChildStatus> child_status_from(std::string_view s) {
  return enum_from(s, kChildStatuses);
}

Json ChildKey::to_json() const {
  return Json{{"task_name", task},
              {"run", run},
              {"task_index", index < 0 ? Json() : Json(index)},
              {"attempt", attempt}};
}

std::optional<ChildKey> ChildKey::from_json(const Json& j) {
  if (!j.is_object()) return std::nullopt;
  auto name = j.find("task_name");
  auto run = j.find("run");
  auto attempt = j.find("attempt");
  if (name == j.end() || !name->is_string() || run == j.end() || !run->is_number_integer() ||
      attempt == j.end() || !attempt->is_number_integer()) {
    return std::nullopt;
  }
  ChildKey k{name->get<std::string>(), run->get<int64_t>(), -1, attempt->get<int64_t>()};
  if (auto i = j.find("task_index"); i != j.end() && i->is_number_integer())
    k.index = i->get<int64_t>();
  return k;
}

Json Slot::to_json() const {
  return Json{{"status", name_of(status)},
              {"attempt", attempt},
              {"input", input},
              {"item", item},
              {"result", result}};
}

std::optional<Slot> Slot::from_json(const Json& j) {
  if (!j.is_object()) return std::nullopt;
  auto st = j.find("status");
  auto attempt = j.find("attempt");
  if (st == j.end() || !st->is_string()) return std::nullopt;
  auto status = enum_from(st->get<std::string>(), kSlotStatuses);
  if (!status) return std::nullopt;
  Slot s;
  s.status = *status;
  s.attempt = attempt != j.end() && attempt->is_number_integer() ? attempt->get<int64_t>() : 1;
  s.input = get_or_null(j, "input");
  s.item = get_or_null(j, "item");
  s.result = get_or_null(j, "result");
  return s;
}

std::optional<Slot> MemorySlotStore::get(const std::string& task, int64_t run, int64_t index) {
  auto it = slots_.find({task, run, index});
  if (it == slots_.end()) return std::nullopt;
  return it->second;
}

void MemorySlotStore::put(const std::string& task, int64_t run, int64_t index, const Slot& slot) {
  slots_[{task, run, index}] = slot;
}

Json State::to_json() const {
  Json tasks_json = Json::object();
  for (const auto& [name, t] : tasks) {
    Json tj{{"status", name_of(t.status)},
            {"run", t.run},
            {"queued", t.queued},
            {"inbound", t.inbound},
            {"triggered_by", t.triggered_by},
            {"slot_count", t.slot_count},
            {"released", t.released},
            {"busy", t.busy},
            {"first_bad", t.first_bad},
            {"first_bad_status", name_of(t.first_bad_status)},
            {"any_cancelled", t.any_cancelled},
            {"group_failed", t.group_failed},
            {"inquiry_response", t.inquiry_response},
            {"permission_set_refs", t.permission_set_refs},
            {"result", t.result}};
    if (!t.slots.empty()) {
      Json slots = Json::array();
      for (const Slot& s : t.slots) slots.push_back(s.to_json());
      tj["slots"] = std::move(slots);
    }
    tasks_json[name] = std::move(tj);
  }
  return Json{{"status", name_of(status)},      {"parameters", parameters}, {"vars", vars},
              {"tasks", std::move(tasks_json)}, {"result", result},         {"error", error}};
}

Result<State> State::from_json(const Json& j) {
  if (!j.is_object()) return bad_state("not an object");
  try {
    return from_json_unchecked(j);
  } catch (const Json::exception& e) {  // a field of the wrong type
    return bad_state(e.what());
  }
}

Result<State> State::from_json_unchecked(const Json& j) {
  State s;
  auto st = enum_from(j.value("status", std::string()), kWorkflowStatuses);
  if (!st) return bad_state("bad status");
  s.status = *st;
  s.parameters = get_or_null(j, "parameters");
  s.vars = get_or_null(j, "vars");
  s.result = get_or_null(j, "result");
  s.error = j.value("error", std::string());
  auto tasks = j.find("tasks");
  if (tasks == j.end() || !tasks->is_object()) return bad_state("tasks: not an object");
  for (auto it = tasks->begin(); it != tasks->end(); ++it) {
    const Json& tj = it.value();
    if (!tj.is_object()) return bad_state("task " + it.key() + ": not an object");
    TaskState t;
    auto ts = enum_from(tj.value("status", std::string()), kTaskStatuses);
    if (!ts) return bad_state("task " + it.key() + ": bad status");
    t.status = *ts;
    t.run = tj.value("run", int64_t{0});
    if (auto q = tj.find("queued"); q != tj.end() && q->is_array()) {
      for (const Json& by : *q) t.queued.push_back(by.is_string() ? by.get<std::string>() : "");
    }
    t.inbound = tj.value("inbound", int64_t{0});
    t.triggered_by = tj.value("triggered_by", std::string());
    t.group_failed = tj.value("group_failed", false);
    t.inquiry_response = get_or_null(tj, "inquiry_response");
    t.permission_set_refs = get_or_null(tj, "permission_set_refs");
    t.result = get_or_null(tj, "result");
    if (auto slots = tj.find("slots"); slots != tj.end() && slots->is_array()) {
      for (const Json& sj : *slots) {
        auto slot = Slot::from_json(sj);
        if (!slot) return bad_state("task " + it.key() + ": bad slot");
        t.slots.push_back(std::move(*slot));
      }
    }
    if (tj.contains("slot_count")) {
      t.slot_count = tj.at("slot_count").get<int64_t>();
      t.released = tj.value("released", int64_t{0});
      t.busy = tj.value("busy", std::vector<int64_t>());
      t.first_bad = tj.value("first_bad", int64_t{-1});
      auto fb = enum_from(tj.value("first_bad_status", std::string()), kSlotStatuses);
      if (!fb) return bad_state("task " + it.key() + ": bad first_bad_status");
      t.first_bad_status = *fb;
      t.any_cancelled = tj.value("any_cancelled", false);
    } else {
      derive_counters(&t);  // stored by a build that kept every slot in the State
    }
    s.tasks.emplace(it.key(), std::move(t));
  }
  return s;
}

Result<State> State::parse(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad_state("not JSON");
  return from_json(j);
}

Event Event::start(Json parameters) {
  Event e;
  e.kind = EventKind::kStart;
  e.parameters = std::move(parameters);
  return e;
}

Event Event::child_finished(ChildKey key, ChildStatus status, Json result) {
  Event e;
  e.kind = EventKind::kChildFinished;
  e.child = std::move(key);
  e.status = status;
  e.result = std::move(result);
  return e;
}

Event Event::inquiry_resolved(std::string task, int64_t run, InquiryOutcome outcome,
                              Json response) {
  Event e;
  e.kind = EventKind::kInquiryResolved;
  e.child.task = std::move(task);
  e.child.run = run;
  e.inquiry = outcome;
  e.response = std::move(response);
  return e;
}

Event Event::timer_fired(ChildKey key) {
  Event e;
  e.kind = EventKind::kTimerFired;
  e.child = std::move(key);
  return e;
}

Event Event::cancel(bool kill_running) {
  Event e;
  e.kind = EventKind::kCancel;
  e.kill_running = kill_running;
  return e;
}

Json Command::to_json() const {
  Json j{{"kind", name_of(kind)}};
  switch (kind) {
    case CommandKind::kCreateChild:
      j["child"] = child.to_json();
      j["action_ref"] = action_ref;
      j["input"] = input;
      j["timeout"] = timeout ? Json(*timeout) : Json();
      j["permission_set_refs"] = permission_set_refs;
      j["held"] = held;
      j["workflow_task"] = workflow_task;
      break;
    case CommandKind::kReleaseChild:
      j["child"] = child.to_json();
      break;
    case CommandKind::kStartTimer:
      j["child"] = child.to_json();
      j["at_ms"] = at_ms;
      break;
    case CommandKind::kAwaitInquiry:
      j["task_name"] = child.task;
      j["run"] = child.run;
      j["inquiry_id"] = inquiry_id;
      break;
    case CommandKind::kCancelChildren: {
      Json list = Json::array();
      for (const ChildKey& k : children) list.push_back(k.to_json());
      j["children"] = std::move(list);
      break;
    }
    case CommandKind::kFinishWorkflow:
      j["status"] = name_of(status);
      j["result"] = result;
      break;
  }
  return j;
}

}  // namespace attune::workflow
