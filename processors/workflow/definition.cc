// Workflow definitions (API.md §12.2): validation, legacy-key conversion and template compilation.
#include <algorithm>
#include <set>

#include "processors/workflow/compiled.h"
#include "processors/workflow/workflow.h"

namespace attune::workflow {
namespace {

Error bad(std::string msg) { return make_error(Errc::kBadRequest, std::move(msg)); }

std::string task_label(std::string_view name) { return "task '" + std::string(name) + "'"; }

bool ignored_key(const std::string& k) { return k.rfind("__", 0) == 0; }

// "{{ x }}" → "x"; anything else unchanged (for composing decision defaults).
std::string strip_braces(std::string s) {
  auto trim = [](std::string& t) {
    size_t b = t.find_first_not_of(" \t\r\n");
    size_t e = t.find_last_not_of(" \t\r\n");
    t = b == std::string::npos ? "" : t.substr(b, e - b + 1);
  };
  trim(s);
  if (s.size() >= 4 && s.compare(0, 2, "{{") == 0 && s.compare(s.size() - 2, 2, "}}") == 0) {
    s = s.substr(2, s.size() - 4);
    trim(s);
  }
  return s;
}

Result<expr::Expression> compile_expr(const Json& j, const std::string& where) {
  if (!j.is_string()) return bad(where + ": must be a string expression");
  auto e = expr::Expression::compile(j.get<std::string>());
  if (!e.ok()) return bad(where + ": " + e.error().message);
  return std::move(e).value();
}

Result<expr::CompiledParams> compile_params(const Json& j, const std::string& prefix,
                                            std::string_view root) {
  auto p = expr::CompiledParams::compile(j, root);
  if (!p.ok()) return bad(prefix + p.error().message);
  return std::move(p).value();
}

// A string or a list of strings (task names).
Result<std::vector<std::string>> names_of(const Json& j, const std::string& where) {
  std::vector<std::string> out;
  if (j.is_null()) return out;
  if (j.is_string()) {  // "a" or "a, b" (Orquesta's comma-separated form)
    std::string text = j.get<std::string>();
    size_t from = 0;
    while (from <= text.size()) {
      size_t comma = std::min(text.find(',', from), text.size());
      std::string name = text.substr(from, comma - from);
      size_t b = name.find_first_not_of(" \t");
      size_t e = name.find_last_not_of(" \t");
      if (b == std::string::npos) return bad(where + ": empty task name");
      out.push_back(name.substr(b, e - b + 1));
      from = comma + 1;
    }
    return out;
  }
  if (j.is_array()) {
    for (const Json& e : j) {
      if (!e.is_string()) return bad(where + ": task names must be strings");
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  return bad(where + ": must be a task name or a list of task names");
}

Result<std::optional<double>> seconds_of(const Json& t, const char* key, const std::string& who,
                                         bool positive) {
  auto it = t.find(key);
  if (it == t.end() || it->is_null()) return std::optional<double>();
  if (!it->is_number()) return bad(who + ": " + key + ": must be a number of seconds");
  double v = it->get<double>();
  if (v < 0 || (positive && v == 0)) {
    return bad(who + ": " + key + (positive ? ": must be > 0" : ": must be >= 0"));
  }
  return std::optional<double>(v);
}

Result<int64_t> int_in(const Json& j, const std::string& where, int64_t lo, int64_t hi) {
  if (!j.is_number_integer()) return bad(where + ": must be an integer");
  int64_t v = j.get<int64_t>();
  if (v < lo || v > hi) {
    return bad(where + ": must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  }
  return v;
}

// publish: [{var: template}] | ["var"] | {var: template}.
Status parse_publish(const Json& j, const std::string& where, Transition* t,
                     CompiledTransition* c) {
  auto add = [&](const std::string& name, const Json* value) -> Status {
    if (name.empty()) return bad(where + ": empty variable name");
    t->publish.push_back(name);
    if (value == nullptr) {
      c->publish.emplace_back(name, std::nullopt);
      return {};
    }
    auto p = compile_params(*value, where + ": ", name);
    if (!p.ok()) return p.error();
    c->publish.emplace_back(name, std::move(p).value());
    return {};
  };
  auto add_object = [&](const Json& o) -> Status {
    for (auto it = o.begin(); it != o.end(); ++it) {
      if (Status s = add(it.key(), &it.value()); !s.ok()) return s;
    }
    return {};
  };
  if (j.is_null()) return {};
  if (j.is_object()) return add_object(j);
  if (!j.is_array()) return bad(where + ": must be a list of {var: template} or variable names");
  for (const Json& e : j) {
    if (e.is_string()) {
      if (Status s = add(e.get<std::string>(), nullptr); !s.ok()) return s;
    } else if (e.is_object()) {
      if (Status s = add_object(e); !s.ok()) return s;
    } else {
      return bad(where + ": entries must be {var: template} or a variable name");
    }
  }
  return {};
}

struct Builder {
  std::vector<Task> tasks;
  Compiled compiled;
  std::set<std::string> names;
  // Tasks are parsed into `pending` per level, then appended, so top-level tasks come first.

  Status add_transition(Task* task, CompiledTask* ct, const std::string& label,
                        const Json* when_src, std::optional<std::string> when_text,
                        const Json* publish, const Json* targets) {
    Transition t;
    CompiledTransition c;
    t.label = label;
    std::string who = task_label(task->name) + ": " + label;
    if (when_src != nullptr && !when_src->is_null()) {
      auto e = compile_expr(*when_src, who + ".when");
      if (!e.ok()) return e.error();
      c.when = std::move(e).value();
      t.has_when = true;
    } else if (when_text) {
      auto e = expr::Expression::compile(*when_text);
      if (!e.ok()) return bad(who + ": " + e.error().message);
      c.when = std::move(e).value();
      t.has_when = true;
    }
    if (publish != nullptr) {
      if (Status s = parse_publish(*publish, who + (label.rfind("next", 0) == 0 ? ".publish" : ""),
                                   &t, &c);
          !s.ok()) {
        return s;
      }
    }
    if (targets != nullptr) {
      auto n = names_of(*targets, who + (label.rfind("next", 0) == 0 ? ".do" : ""));
      if (!n.ok()) return n.error();
      t.targets = std::move(n).value();
    }
    task->next.push_back(std::move(t));
    ct->next.push_back(std::move(c));
    return {};
  }

  Status parse_task(const Json& j, size_t position, const std::string& group,
                    std::vector<std::pair<Task, CompiledTask>>* level,
                    std::vector<std::pair<Task, CompiledTask>>* nested) {
    if (!j.is_object()) return bad("tasks[" + std::to_string(position) + "]: must be an object");
    auto nit = j.find("name");
    if (nit == j.end() || !nit->is_string() || nit->get<std::string>().empty()) {
      return bad("tasks[" + std::to_string(position) + "]: name: required");
    }
    Task task;
    CompiledTask ct;
    task.name = nit->get<std::string>();
    task.group = group;
    std::string who = task_label(task.name);
    if (!names.insert(task.name).second) return bad("duplicate task name '" + task.name + "'");

    static const std::set<std::string> kKnown = {"name",        "type",
                                                 "action",      "input",
                                                 "next",        "when",
                                                 "with_items",  "batch_size",
                                                 "concurrency", "retry",
                                                 "timeout",     "delay",
                                                 "join",        "permission_set_refs",
                                                 "wait_for",    "tasks",
                                                 "on_success",  "on_failure",
                                                 "on_timeout",  "on_complete",
                                                 "decision",    "publish",
                                                 "description", "label"};
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!ignored_key(it.key()) && !kKnown.contains(it.key())) {
        return bad(who + ": unknown field '" + it.key() + "'");
      }
    }

    if (j.contains("type") && !j["type"].is_string()) return bad(who + ": type: must be a string");
    std::string type = j.value("type", std::string("action"));
    if (type == "action") {
      task.type = TaskType::kAction;
    } else if (type == "parallel") {
      task.type = TaskType::kParallel;
    } else if (type == "workflow") {
      task.type = TaskType::kWorkflow;
    } else {
      return bad(who + ": type: must be action, parallel or workflow (got '" + type + "')");
    }

    if (task.type == TaskType::kParallel) {
      if (j.contains("action")) return bad(who + ": action: not allowed on a parallel task");
      auto tit = j.find("tasks");
      if (tit == j.end() || !tit->is_array() || tit->empty()) {
        return bad(who + ": tasks: a parallel task needs a non-empty list of tasks");
      }
      std::vector<std::pair<Task, CompiledTask>> inner;
      for (size_t i = 0; i < tit->size(); ++i) {
        if (Status s = parse_task((*tit)[i], i, task.name, &inner, nested); !s.ok()) {
          return bad(who + ": " + s.error().message);
        }
      }
      for (auto& [t, c] : inner) task.subtasks.push_back(t.name);
      for (auto& p : inner) nested->push_back(std::move(p));
    } else {
      if (j.contains("tasks")) return bad(who + ": tasks: only a parallel task has nested tasks");
      auto ait = j.find("action");
      if (ait == j.end() || !ait->is_string() || ait->get<std::string>().empty()) {
        return bad(who + ": action: required");
      }
      task.action = ait->get<std::string>();
      if (auto it = j.find("input"); it != j.end() && !it->is_null()) {
        if (!it->is_object()) return bad(who + ": input: must be an object");
        auto p = compile_params(*it, who + ": ", "input");
        if (!p.ok()) return p.error();
        ct.input = std::move(p).value();
      }
    }

    if (auto it = j.find("when"); it != j.end() && !it->is_null()) {
      auto e = compile_expr(*it, who + ": when");
      if (!e.ok()) return e.error();
      ct.when = std::move(e).value();
      task.has_when = true;
    }

    if (auto it = j.find("with_items"); it != j.end() && !it->is_null()) {
      if (task.type == TaskType::kParallel)
        return bad(who + ": with_items: not allowed on a parallel task");
      if (!it->is_string() && !it->is_array()) {
        return bad(who + ": with_items: must be a template or a list");
      }
      auto p = compile_params(*it, who + ": ", "with_items");
      if (!p.ok()) return p.error();
      ct.with_items = std::move(p).value();
      task.has_with_items = true;
    }
    for (const char* key : {"batch_size", "concurrency"}) {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) continue;
      if (!task.has_with_items) return bad(who + ": " + key + ": needs with_items");
      auto v = int_in(*it, who + ": " + key, 1, 1000000);
      if (!v.ok()) return v.error();
      (std::string_view(key) == "batch_size" ? task.batch_size : task.concurrency) = *v;
    }

    if (auto it = j.find("retry"); it != j.end() && !it->is_null()) {
      if (!it->is_object()) return bad(who + ": retry: must be an object");
      for (auto k = it->begin(); k != it->end(); ++k) {
        static const std::set<std::string> kRetry = {"count", "delay", "backoff", "max_delay",
                                                     "on_error"};
        if (!ignored_key(k.key()) && !kRetry.contains(k.key())) {
          return bad(who + ": retry: unknown field '" + k.key() + "'");
        }
      }
      Retry r;
      if (!it->contains("count")) return bad(who + ": retry.count: required");
      auto count = int_in((*it)["count"], who + ": retry.count", 1, 100);
      if (!count.ok()) return count.error();
      r.count = *count;
      auto delay = seconds_of(*it, "delay", who + ": retry", false);
      if (!delay.ok()) return delay.error();
      r.delay = delay->value_or(0);
      auto max_delay = seconds_of(*it, "max_delay", who + ": retry", false);
      if (!max_delay.ok()) return max_delay.error();
      r.max_delay = *max_delay;
      if (auto b = it->find("backoff"); b != it->end() && !b->is_null()) {
        std::string s = b->is_string() ? b->get<std::string>() : "";
        if (s == "constant") {
          r.backoff = Backoff::kConstant;
        } else if (s == "linear") {
          r.backoff = Backoff::kLinear;
        } else if (s == "exponential") {
          r.backoff = Backoff::kExponential;
        } else {
          return bad(who + ": retry.backoff: must be constant, linear or exponential");
        }
      }
      if (auto e = it->find("on_error"); e != it->end() && !e->is_null()) {
        auto c = compile_expr(*e, who + ": retry.on_error");
        if (!c.ok()) return c.error();
        ct.on_error = std::move(c).value();
        r.has_on_error = true;
      }
      task.retry = r;
    }

    auto timeout = seconds_of(j, "timeout", who, true);
    if (!timeout.ok()) return timeout.error();
    task.timeout = *timeout;
    auto delay = seconds_of(j, "delay", who, false);
    if (!delay.ok()) return delay.error();
    task.delay = delay->value_or(0);

    if (auto it = j.find("join"); it != j.end() && !it->is_null()) {
      if ((it->is_string() && it->get<std::string>() == "all") ||
          (it->is_boolean() && it->get<bool>())) {
        task.join = -1;  // resolved to the number of inbound transitions once all tasks are known
      } else if (it->is_boolean()) {
        task.join = 0;
      } else {
        auto v = int_in(*it, who + ": join", 1, 1000000);
        if (!v.ok()) return v.error();
        task.join = *v;
      }
    }

    if (auto it = j.find("permission_set_refs"); it != j.end() && !it->is_null()) {
      bool ok = it->is_string();
      if (it->is_array()) {
        ok = true;
        for (const Json& e : *it) ok = ok && e.is_string();
      }
      if (!ok)
        return bad(who +
                   ": permission_set_refs: must be a string, a list of strings or a template");
      auto p = compile_params(*it, who + ": ", "permission_set_refs");
      if (!p.ok()) return p.error();
      ct.permission_set_refs = std::move(p).value();
    }

    if (auto it = j.find("wait_for"); it != j.end() && !it->is_null()) {
      if (!it->is_object()) return bad(who + ": wait_for: must be an object {inquiry: template}");
      for (auto k = it->begin(); k != it->end(); ++k) {
        if (!ignored_key(k.key()) && k.key() != "inquiry") {
          return bad(who + ": wait_for: unknown field '" + k.key() + "'");
        }
      }
      auto q = it->find("inquiry");
      if (q == it->end() || q->is_null()) return bad(who + ": wait_for.inquiry: required");
      auto p = compile_params(*q, who + ": ", "wait_for.inquiry");
      if (!p.ok()) return p.error();
      ct.wait_for = std::move(p).value();
      task.has_wait_for = true;
    }

    // Transitions: `next` first, then the legacy keys in a fixed order.
    if (auto it = j.find("next"); it != j.end() && !it->is_null()) {
      if (!it->is_array()) return bad(who + ": next: must be a list of transitions");
      for (size_t i = 0; i < it->size(); ++i) {
        const Json& t = (*it)[i];
        std::string label = "next[" + std::to_string(i) + "]";
        if (!t.is_object()) return bad(who + ": " + label + ": must be an object");
        for (auto k = t.begin(); k != t.end(); ++k) {
          if (!ignored_key(k.key()) && k.key() != "when" && k.key() != "publish" &&
              k.key() != "do") {
            return bad(who + ": " + label + ": unknown field '" + k.key() + "'");
          }
        }
        auto w = t.find("when");
        auto p = t.find("publish");
        auto d = t.find("do");
        if (Status s = add_transition(&task, &ct, label, w == t.end() ? nullptr : &*w, std::nullopt,
                                      p == t.end() ? nullptr : &*p, d == t.end() ? nullptr : &*d);
            !s.ok()) {
          return s;
        }
      }
    }
    if (auto it = j.find("publish"); it != j.end() && !it->is_null()) {
      if (Status s = add_transition(&task, &ct, "publish", nullptr, "succeeded()", &*it, nullptr);
          !s.ok()) {
        return s;
      }
    }
    const std::pair<const char*, std::optional<std::string>> kLegacy[] = {
        {"on_success", "succeeded()"},
        {"on_failure", "failed()"},
        {"on_timeout", "timed_out()"},
        {"on_complete", std::nullopt}};
    for (const auto& [key, cond] : kLegacy) {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) continue;
      if (Status s = add_transition(&task, &ct, key, nullptr, cond, nullptr, &*it); !s.ok()) {
        return s;
      }
    }
    if (auto it = j.find("decision"); it != j.end() && !it->is_null()) {
      // [{when, do|next}, ..., {default: task}]: one transition per branch; `default` fires when
      // no other branch's condition holds.
      if (!it->is_array()) return bad(who + ": decision: must be a list of branches");
      std::vector<std::string> conditions;
      for (size_t i = 0; i < it->size(); ++i) {
        const Json& b = (*it)[i];
        std::string label = "decision[" + std::to_string(i) + "]";
        if (!b.is_object()) return bad(who + ": " + label + ": must be an object");
        if (auto d = b.find("default"); d != b.end()) {
          std::string cond;
          for (const std::string& c : conditions) {
            cond += (cond.empty() ? "" : " and ") + ("not (" + c + ")");
          }
          if (Status s =
                  add_transition(&task, &ct, label, nullptr,
                                 cond.empty() ? std::nullopt : std::optional(cond), nullptr, &*d);
              !s.ok()) {
            return s;
          }
          continue;
        }
        auto w = b.find("when");
        if (w == b.end() || !w->is_string()) return bad(who + ": " + label + ".when: required");
        auto d = b.find("do");
        if (d == b.end()) d = b.find("next");
        if (d == b.end()) return bad(who + ": " + label + ".do: required");
        conditions.push_back(strip_braces(w->get<std::string>()));
        if (Status s = add_transition(&task, &ct, label, &*w, std::nullopt, nullptr, &*d);
            !s.ok()) {
          return s;
        }
      }
    }
    level->emplace_back(std::move(task), std::move(ct));
    return {};
  }
};

}  // namespace

const Task* Definition::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tasks_[it->second];
}

Result<Definition> parse(const Json& def) {
  if (!def.is_object()) return bad("definition: must be an object");
  auto vit = def.find("version");
  if (vit == def.end() || vit->is_null() || (vit->is_string() && vit->get<std::string>().empty())) {
    return bad("version: required");
  }
  if (!vit->is_string() && !vit->is_number()) return bad("version: must be a string or a number");
  auto tit = def.find("tasks");
  if (tit == def.end() || !tit->is_array() || tit->empty()) {
    return bad("tasks: at least one task is required");
  }

  Builder b;
  std::vector<std::pair<Task, CompiledTask>> top;
  std::vector<std::pair<Task, CompiledTask>> nested;
  for (size_t i = 0; i < tit->size(); ++i) {
    if (Status s = b.parse_task((*tit)[i], i, "", &top, &nested); !s.ok()) return s.error();
  }
  Definition d;
  auto compiled = std::make_shared<Compiled>();
  for (auto* level : {&top, &nested}) {
    for (auto& [t, c] : *level) {
      d.index_.emplace(t.name, d.tasks_.size());
      d.tasks_.push_back(std::move(t));
      compiled->tasks.push_back(std::move(c));
    }
  }

  // Targets must exist and stay on their task's level (top level, or the same parallel task).
  std::map<std::string, int64_t> inbound;
  for (const Task& t : d.tasks_) {
    for (const Transition& tr : t.next) {
      for (const std::string& target : tr.targets) {
        std::string where =
            task_label(t.name) + ": " + tr.label +
            (tr.label.rfind("next", 0) == 0 || tr.label.rfind("decision", 0) == 0 ? ".do" : "");
        const Task* to = d.find(target);
        if (to == nullptr) return bad(where + ": unknown task '" + target + "'");
        if (to->group != t.group) {
          return bad(where + ": task '" + target + "' is not " +
                     (t.group.empty() ? std::string("a top-level task")
                                      : "in parallel task '" + t.group + "'"));
        }
        ++inbound[target];
      }
    }
  }
  for (Task& t : d.tasks_) {
    if (t.join == -1) t.join = std::max<int64_t>(1, inbound[t.name]);
    if (t.group.empty() && !inbound.contains(t.name)) d.entries_.push_back(t.name);
  }
  if (d.entries_.empty()) d.entries_.push_back(d.tasks_.front().name);
  for (Task& t : d.tasks_) {
    for (const std::string& sub : t.subtasks) {
      if (!inbound.contains(sub)) t.sub_entries.push_back(sub);
    }
    if (t.sub_entries.empty() && !t.subtasks.empty()) t.sub_entries.push_back(t.subtasks.front());
  }

  if (auto it = def.find("vars"); it != def.end() && !it->is_null()) {
    Json vars = Json::object();
    if (it->is_object()) {
      vars = *it;
    } else if (it->is_array()) {  // [{name: value}, ...]
      for (const Json& e : *it) {
        if (!e.is_object()) return bad("vars: must be an object or a list of {name: value}");
        for (auto k = e.begin(); k != e.end(); ++k) vars[k.key()] = k.value();
      }
    } else {
      return bad("vars: must be an object");
    }
    auto p = compile_params(vars, "", "vars");
    if (!p.ok()) return p.error();
    compiled->vars = std::move(p).value();
  }
  if (auto it = def.find("output_map"); it != def.end() && !it->is_null()) {
    if (!it->is_object()) return bad("output_map: must be an object of name → template");
    auto p = compile_params(*it, "", "output_map");
    if (!p.ok()) return p.error();
    compiled->output_map = std::move(p).value();
  }
  if (auto it = def.find("cancellation_policy"); it != def.end() && !it->is_null()) {
    std::string s = it->is_string() ? it->get<std::string>() : "";
    if (s == "allow_finish") {
      d.policy_ = CancellationPolicy::kAllowFinish;
    } else if (s == "cancel_running") {
      d.policy_ = CancellationPolicy::kCancelRunning;
    } else {
      return bad("cancellation_policy: must be allow_finish or cancel_running");
    }
  }
  d.version_ = *vit;
  d.compiled_ = std::move(compiled);
  return d;
}

}  // namespace attune::workflow
