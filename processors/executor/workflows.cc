// The executor's workflow wiring (processors/workflow/workflow.h, DESIGN.md §9 "workflows"): runs
// of workflow actions in the executor's store, the engine's commands turned into records.
#include <spdlog/spdlog.h>

#include <cinttypes>
#include <cstdio>
#include <set>

#include "processors/executor/executor_processor.h"
#include "processors/expr/param_schema.h"
#include "processors/keystore/keys.h"
#include "processors/keystore/sealed.h"
#include "topology/core/time.h"

namespace attune::executor {
namespace {

using workflow::ChildKey;
using workflow::CommandKind;
using workflow::WorkflowStatus;

std::string state_key(int64_t id) { return "x:" + std::to_string(id); }
constexpr std::string_view kTimerPrefix = "t:";

// The run of workflow execution <id> (processors/RECORDS.md, executor store):
//   w:<id>                                     {state, root}: the engine State (counters only),
//                                              without its parameters
//   w:<id>/d                                   the definition it started with
//   w:<id>/p                                   the parameters (State::parameters)
//   w:<id>/s/<task>/<run>/<index>              one slot (workflow::Slot)
//   w:<id>/c/<task>/<run>/<index>/<attempt>    the child execution id (decimal)
// Builds before this layout kept {definition, state with every slot, children map} in w:<id>
// alone; advance_workflow() moves such a run to the keys above the first time it touches it.
std::string run_key(int64_t id) { return "w:" + std::to_string(id); }
std::string run_prefix(int64_t id) { return run_key(id) + "/"; }
std::string def_key(int64_t id) { return run_key(id) + "/d"; }
std::string params_key(int64_t id) { return run_key(id) + "/p"; }
std::string slot_key(int64_t id, const std::string& task, int64_t run, int64_t index) {
  return run_key(id) + "/s/" + task + "/" + std::to_string(run) + "/" + std::to_string(index);
}

std::string child_index(const ChildKey& k) {
  return k.task + "/" + std::to_string(k.run) + "/" + std::to_string(k.index) + "/" +
         std::to_string(k.attempt);
}
std::string child_key(int64_t id, std::string_view index) {
  return run_key(id) + "/c/" + std::string(index);
}

Result<std::optional<std::string>> must(Result<std::optional<std::string>> v) {
  if (!v.ok()) throw ProcessingError("executor: store read failed: " + v.error().message);
  return v;
}

// The child execution a key names, if the run created it.
std::optional<int64_t> child_id(ProcessorContext& ctx, state::Store& store, int64_t wf,
                                const ChildKey& k) {
  auto v = must(ctx.get(store, child_key(wf, child_index(k))));
  if (!v->has_value()) return std::nullopt;
  return std::stoll(**v);
}

// The slots of one workflow run, one store key each, read and written in the transaction of the
// event being processed. A run whose templates saw secrets writes them sealed (the rendered input
// may hold a secret) under the slot's key as AAD; reads open whichever form they find.
class StoreSlots final : public workflow::SlotStore {
 public:
  StoreSlots(ProcessorContext& ctx, state::Store& store, int64_t wf,
             const keystore::Cipher* cipher)
      : ctx_(ctx), store_(store), wf_(wf), cipher_(cipher) {}
  void seal_writes() { seal_ = true; }

  std::optional<workflow::Slot> get(const std::string& task, int64_t run,
                                    int64_t index) override {
    const std::string key = slot_key(wf_, task, run, index);
    auto v = must(ctx_.get(store_, key));
    if (!v->has_value()) return std::nullopt;
    std::string text = std::move(**v);
    if (!text.empty() && text.front() != '{') {
      if (cipher_ == nullptr) {
        throw std::logic_error("executor: workflow slot " + key +
                               " is sealed and no datastore key is configured");
      }
      auto open = cipher_->open(text, key);
      if (!open.ok()) {
        throw std::logic_error("executor: sealed workflow slot " + key +
                               " does not open: " + open.error().message);
      }
      text = std::move(open).value();
    }
    auto slot = workflow::Slot::from_json(Json::parse(text, nullptr, false));
    if (!slot) throw std::logic_error("executor: corrupt workflow slot " + key);
    return slot;
  }
  void put(const std::string& task, int64_t run, int64_t index,
           const workflow::Slot& slot) override {
    std::string key = slot_key(wf_, task, run, index);
    std::string text = slot.to_json().dump();
    if (seal_) text = cipher_->seal(text, key);
    ctx_.put(store_, std::move(key), std::move(text));
  }

 private:
  ProcessorContext& ctx_;
  state::Store& store_;
  const int64_t wf_;
  const keystore::Cipher* cipher_;
  bool seal_ = false;
};

// A run stored by an earlier build ({definition, state with inline slots, children} in w:<id>):
// moves its slots and children to their own keys, in the current transaction (the definition and
// parameters are moved by the caller).
void migrate_legacy_run(ProcessorContext& ctx, state::Store& store, int64_t wf, Json* run,
                        workflow::State* state, workflow::SlotStore* slots) {
  if (auto c = run->find("children"); c != run->end()) {
    if (c->is_object()) {
      for (auto it = c->begin(); it != c->end(); ++it) {
        ctx.put(store, child_key(wf, it.key()), std::to_string(it.value().get<int64_t>()));
      }
    }
    run->erase(c);
  }
  for (auto& [name, ts] : state->tasks) {
    for (size_t i = 0; i < ts.slots.size(); ++i) {
      slots->put(name, ts.run, static_cast<int64_t>(i), ts.slots[i]);
    }
    ts.slots.clear();
  }
}

bool is_workflow_action(const JsonPtr& action) {
  return action && action->is_object() && action->contains("workflow_def") &&
         (*action)["workflow_def"].is_object();
}

void drop_dispatch(Outcome& o) {
  std::erase_if(o.records, [](const OutRecord& r) { return r.topic == topics::kDispatch; });
}

void merge(Outcome& into, Outcome&& from) {
  for (auto& r : from.records) into.records.push_back(std::move(r));
  for (auto t : from.terminal) into.terminal.push_back(t);
  if (from.state) into.state = std::move(from.state);
}

// A child's parameters against its action's param_schema (fields holding the redaction marker of
// a sealed secret are not checked): `config` with defaults filled in, or `refuse` saying why the
// child cannot run.
struct CheckedParams {
  Json config;
  std::string refuse;
};
CheckedParams check_params(const Json& action, const Json& config) {
  Json schema = expr::flat_schema(action.value("param_schema", Json::object()));
  const Json params = config.is_object() ? config : Json::object();
  for (auto it = params.begin(); it != params.end(); ++it) {
    if (keystore::is_marker(it.value())) schema.erase(it.key());
  }
  Json errors = Json::object();
  auto filled = expr::validate_parameters(schema, params, errors);
  if (filled) return {std::move(*filled), {}};
  std::string why = "Invalid parameters for action '" + action.value("ref", "") + "':";
  for (auto it = errors.begin(); it != errors.end(); ++it) {
    why += (it == errors.begin() ? " " : "; ") + it.key() + " " + it.value().get<std::string>();
  }
  return {params, std::move(why)};
}

Json timeout_json(double s) {
  if (s == static_cast<double>(static_cast<int64_t>(s))) return static_cast<int64_t>(s);
  return s;
}

}  // namespace

DefinitionLookup ExecutorProcessor::lookup() const {
  return [this](std::string_view kind, std::string_view ref) { return table_.get(kind, ref); };
}

void ExecutorProcessor::apply_hooked(ProcessorContext& ctx, int64_t id, Result<Outcome> outcome) {
  if (outcome.ok() && outcome->state && !outcome->terminal.empty()) {
    const Json& ex = outcome->state->execution;
    auto wt = ex.find("workflow_task");
    auto parent = ex.find("parent");
    if (wt != ex.end() && wt->is_object() && parent != ex.end() && parent->is_number_integer()) {
      auto key = ChildKey::from_json(*wt);
      auto status = workflow::child_status_from(ex.value("status", std::string()));
      if (key && status) {
        wf_queue_.push_back({parent->get<int64_t>(),
                             workflow::Event::child_finished(*key, *status,
                                                             ex.value("result", Json(nullptr)))});
      }
    }
  }
  apply(ctx, id, std::move(outcome));
}

void ExecutorProcessor::request(ProcessorContext& ctx, const Json& req, int64_t root, bool fresh) {
  const int64_t id = req.value("id", int64_t{0});
  std::optional<ExecutionState> state = fresh ? std::nullopt : load(ctx, id);
  const Json* ex = &req;
  Json child;
  std::string refuse;
  if (!state && req.is_object() && req.contains("action_ref") && req["action_ref"].is_string()) {
    JsonPtr action = table_.get("action", req["action_ref"].get<std::string>());
    auto wt = req.find("workflow_task");
    if (fresh && action && wt != req.end() && wt->is_object()) {
      // A workflow's child: its parameters were rendered by the engine, not checked by the API.
      CheckedParams checked = check_params(*action, req.value("config", Json::object()));
      child = req;
      child["config"] = std::move(checked.config);
      refuse = std::move(checked.refuse);
      ex = &child;
    }
    if (refuse.empty() && is_workflow_action(action) && action->value("enabled", true)) {
      start_workflow(ctx, *ex, root, (*action)["workflow_def"]);
      return;
    }
  }
  const std::string action_ref = req.is_object() ? req.value("action_ref", "") : std::string();
  const admission::Effective* policy = action_ref.empty() ? nullptr : &resolver_.of(action_ref);
  apply_hooked(ctx, id,
               on_requested(state, *ex, root, lookup(), ctx.clock().now_ms(), refuse, policy));
}

void ExecutorProcessor::start_workflow(ProcessorContext& ctx, const Json& req, int64_t root,
                                       const Json& def) {
  const int64_t now = ctx.clock().now_ms();
  const int64_t id = req["id"].get<int64_t>();
  const admission::Effective& policy = resolver_.of(req.value("action_ref", ""));
  run_workflow(ctx, id, root, def,
               on_requested(std::nullopt, req, root, lookup(), now, {}, &policy));
}

void ExecutorProcessor::on_admission_answer(ProcessorContext& ctx, const Envelope& e) {
  const int64_t id = e.payload.value("id", e.id);
  if (id <= 0) throw ProcessingError(e.type + " has no positive id");
  const bool granted = e.type == "admission.granted";
  auto o = on_admission(load(ctx, id), granted, e.payload, lookup(), ctx.clock().now_ms());
  if (granted && o.ok() && o->state && o->state->status() == ExecutionStatus::kScheduled) {
    // A held workflow execution starts its run now.
    JsonPtr action = table_.get("action", o->state->execution.value("action_ref", ""));
    if (is_workflow_action(action)) {
      run_workflow(ctx, id, o->state->root, (*action)["workflow_def"], std::move(o));
      return;
    }
  }
  apply_hooked(ctx, id, std::move(o));
}

void ExecutorProcessor::run_workflow(ProcessorContext& ctx, int64_t id, int64_t root,
                                     const Json& def, Result<Outcome> o) {
  const int64_t now = ctx.clock().now_ms();
  if (!o.ok() || !o->state || o->state->skipped ||
      o->state->status() != ExecutionStatus::kScheduled) {
    // Failed, skipped, malformed, or held by a policy (scheduling): as any execution.
    apply_hooked(ctx, id, std::move(o));
    return;
  }
  drop_dispatch(*o);  // a workflow runs in the executor, not on a worker
  Outcome out = std::move(*o);
  ExecutionState st = *out.state;
  auto running = on_running(st, Json{{"id", id}, {"attempt", st.attempt()}, {"worker", nullptr},
                                     {"started_at", format_rfc3339_ms(now)}},
                            now);
  if (running.ok() && running->state) {
    st = *running->state;
    merge(out, std::move(*running));
  }
  auto parsed = workflow::parse(def);
  if (!parsed.ok()) {
    auto failed = on_finished(
        st,
        Json{{"id", id},
             {"attempt", st.attempt()},
             {"status", "failed"},
             {"result", {{"error", "invalid workflow definition: " + parsed.error().message}}}},
        lookup(), now);
    if (failed.ok()) merge(out, std::move(*failed));
    apply_hooked(ctx, id, std::move(out));
    return;
  }
  Json run = {{"state", workflow::State{}.to_json()}, {"root", st.root}};
  const std::string def_text = def.dump();
  // advance_workflow() builds keystore.* only for runs whose record mentions it.
  if (def_text.find("keystore") != std::string::npos) run["keystore"] = true;
  ctx.put(*store_, def_key(id), def_text);
  ctx.put(*store_, run_key(id), run.dump());
  wf_runs_.erase(id);
  // Its own deadline: the request's timeout_seconds (a task's `timeout` for a nested workflow),
  // else the workflow action's. No server default: a workflow may wait for people for days.
  Json limit = st.execution.value("timeout_seconds", Json(nullptr));
  if (!limit.is_number()) {
    if (JsonPtr action = table_.get("action", st.execution.value("action_ref", ""))) {
      limit = action->value("timeout_seconds", Json(nullptr));
    }
  }
  if (limit.is_number() && limit.get<double>() > 0) {
    const int64_t at = now + static_cast<int64_t>(limit.get<double>() * 1000.0);
    start_timer(ctx, at,
                Json{{"workflow", id}, {"root", root}, {"deadline", true}, {"seconds", limit}});
  }
  const Json params = st.execution.value("config", Json::object());
  wf_queue_.push_back({id, workflow::Event::start(params.is_object() ? params : Json::object())});
  apply_hooked(ctx, id, std::move(out));
}

bool ExecutorProcessor::cancel_workflow(ProcessorContext& ctx, int64_t id) {
  auto run = ctx.get(*store_, run_key(id));
  if (!run.ok() || !run->has_value()) return false;
  auto o = on_cancel(load(ctx, id), id, ctx.clock().now_ms());
  if (o.ok()) drop_dispatch(*o);
  const bool applies = o.ok() && o->state.has_value();
  apply_hooked(ctx, id, std::move(o));
  if (applies) wf_queue_.push_back({id, workflow::Event::cancel()});
  return true;
}

void ExecutorProcessor::start_timer(ProcessorContext& ctx, int64_t at_ms, const Json& timer) {
  char at[32];
  std::snprintf(at, sizeof at, "%015" PRId64, at_ms);
  const std::string key = std::string(kTimerPrefix) + at + ":" +
                          std::to_string(timer["workflow"].get<int64_t>()) + ":" +
                          std::to_string(ctx.ids().next());
  ctx.put(*store_, key, timer.dump());
  ctx.request_punctuate(SystemTime(std::chrono::milliseconds(at_ms)));
}

void ExecutorProcessor::drain_workflows(ProcessorContext& ctx) {
  // Bounded: each event is one engine step; nesting and cascades only add finitely many.
  size_t guard = 0;
  while (!wf_queue_.empty()) {
    WorkflowEvent ev = std::move(wf_queue_.front());
    wf_queue_.pop_front();
    if (++guard > 100000) {
      wf_queue_.clear();
      throw ProcessingError("executor: workflow event cascade did not settle");
    }
    advance_workflow(ctx, ev);
  }
}

void ExecutorProcessor::advance_workflow(ProcessorContext& ctx, const WorkflowEvent& ev) {
  const int64_t wf = ev.workflow;
  const int64_t now = ctx.clock().now_ms();
  auto raw = ctx.get(*store_, run_key(wf));
  if (!raw.ok()) throw ProcessingError("executor: store read failed: " + raw.error().message);
  if (!raw->has_value()) {
    spdlog::debug("executor: workflow event for {} which has no run (finished)", wf);
    return;
  }
  Json run = Json::parse(**raw, nullptr, false);
  if (run.is_discarded() || !run.is_object()) {
    throw std::logic_error("executor: corrupt workflow run " + std::to_string(wf));
  }
  // A run whose templates saw secrets keeps its State and slots sealed (rendered inputs kept for
  // retries may hold them): "state_sealed" instead of "state".
  const std::string state_aad = "workflow:" + std::to_string(wf);
  Json state_json;
  if (auto sealed = run.find("state_sealed"); sealed != run.end() && sealed->is_string()) {
    if (!options_.cipher) {
      throw std::logic_error("executor: workflow run " + std::to_string(wf) +
                             " is sealed and no datastore key is configured");
    }
    auto text = options_.cipher->open(sealed->get<std::string>(), state_aad);
    if (!text.ok()) {
      throw std::logic_error("executor: workflow run " + std::to_string(wf) +
                             " does not open: " + text.error().message);
    }
    state_json = Json::parse(*text, nullptr, false);
  } else {
    state_json = run.value("state", Json());
  }
  if (!state_json.is_object()) {
    throw std::logic_error("executor: unreadable workflow run " + std::to_string(wf));
  }
  // The parameters are in the State before the start event and in runs of earlier builds; they
  // are written apart once (below) and read from the cache or w:<id>/p afterwards.
  const bool params_inline = state_json.contains("parameters");
  if (auto d = run.find("definition"); d != run.end()) {  // an earlier build's run
    const std::string def_text = d->dump();
    if (def_text.find("keystore") != std::string::npos) run["keystore"] = true;
    ctx.put(*store_, def_key(wf), def_text);
    run.erase(d);
    wf_runs_.erase(wf);
  }
  auto cached = wf_runs_.find(wf);
  if (cached == wf_runs_.end()) {
    auto text = must(ctx.get(*store_, def_key(wf)));
    if (!text->has_value()) {
      throw std::logic_error("executor: workflow run " + std::to_string(wf) + " has no definition");
    }
    auto def = workflow::parse(Json::parse(**text, nullptr, false));
    if (!def.ok()) {
      throw std::logic_error("executor: unreadable workflow definition " + std::to_string(wf));
    }
    Json params = Json::object();
    if (!params_inline) {
      auto p = must(ctx.get(*store_, params_key(wf)));
      if (p->has_value()) params = Json::parse(**p, nullptr, false);
    }
    if (wf_runs_.size() >= kRunCacheSize) wf_runs_.clear();
    cached = wf_runs_.emplace(wf, RunConstants{std::move(def).value(), std::move(params)}).first;
  }
  const workflow::Definition& def = cached->second.definition;
  if (!params_inline) state_json["parameters"] = cached->second.parameters;
  auto state = workflow::State::from_json(state_json);
  if (!state.ok()) throw std::logic_error("executor: unreadable workflow run " + std::to_string(wf));
  StoreSlots slots(ctx, *store_, wf, options_.cipher.get());
  if (!cached->second.execution) cached->second.execution = load(ctx, wf);
  const std::optional<ExecutionState>& wf_state = cached->second.execution;
  if (!wf_state) return;
  const int64_t root = run.value("root", wf);

  workflow::Inputs inputs;
  inputs.system = {{"execution", {{"id", wf}}}};
  const Json& wf_ex = wf_state->execution;
  const std::string wf_pack = pack_of(wf_ex.value("action_ref", ""));
  if (JsonPtr pack = table_.get("pack", wf_pack);
      pack && pack->contains("config") && (*pack)["config"].is_object()) {
    inputs.config = (*pack)["config"];
  }
  // Secrets are opened only into this call's inputs, never into the State; the values rendered
  // from them are sealed again in the children's parameters (kCreateChild).
  std::vector<std::string> secrets;
  if (options_.cipher) {
    const Json config = wf_ex.value("config", Json::object());
    if (auto sealed = wf_ex.find(keystore::kSecretConfigField);
        sealed != wf_ex.end() && sealed->is_string()) {
      auto open = keystore::unseal_config(config, sealed->get<std::string>(), *options_.cipher,
                                          keystore::sealed_aad("execution", wf));
      if (open.ok()) {
        for (auto it = config.begin(); it != config.end(); ++it) {
          if (keystore::is_marker(it.value()) && open->contains(it.key())) {
            secrets.push_back(keystore::secret_text((*open)[it.key()]));
          }
        }
        inputs.parameters = std::move(open).value();
      } else {
        spdlog::warn("executor: workflow {}: secret parameters do not open: {}", wf,
                     open.error().message);
      }
    }
    if (run.value("keystore", false)) {
      // Identity keys of whoever started it: the caller, or the owner of the rule that did.
      std::string login;
      auto identity = wf_ex.value("executor", Json(nullptr));
      if (const Json rule_ref = wf_ex.value("rule_ref", Json(nullptr));
          !identity.is_number_integer() && rule_ref.is_string()) {
        if (JsonPtr rule = table_.get("rule", rule_ref.get<std::string>())) {
          identity = rule->value("owner_identity", Json(nullptr));
        }
      }
      if (identity.is_number_integer()) {
        if (JsonPtr who = table_.get_by_id("identity", identity.get<int64_t>())) {
          login = who->value("login", "");
        }
      }
      auto keys = keystore::template_context(table_, wf_pack, login, now, *options_.cipher);
      inputs.keystore = std::move(keys.root);
      for (auto& v : keys.secrets) secrets.push_back(std::move(v));
    }
  }
  // Once sealed, a run stays sealed (its slots and State may hold secrets from earlier events).
  const bool sealed_run = options_.cipher && (!secrets.empty() || run.contains("state_sealed"));
  if (sealed_run) slots.seal_writes();
  migrate_legacy_run(ctx, *store_, wf, &run, &*state, &slots);
  auto step = workflow::advance(def, *state, ev.event, inputs, now, slots);
  if (!step.ok()) {
    spdlog::warn("executor: workflow {}: {}", wf, step.error().message);
    return;
  }
  if (!step->ignored.empty()) spdlog::debug("executor: workflow {}: {}", wf, step->ignored);
  Json state_out = step->state.to_json();
  if (params_inline) {
    ctx.put(*store_, params_key(wf), state_out["parameters"].dump());
    cached->second.parameters = state_out["parameters"];
  }
  state_out.erase("parameters");
  if (sealed_run) {
    run["state_sealed"] = options_.cipher->seal(state_out.dump(), state_aad);
    run.erase("state");
  } else {
    run["state"] = std::move(state_out);
  }
  bool finished = false;

  for (const workflow::Command& c : step->commands) {
    switch (c.kind) {
      case CommandKind::kCreateChild: {
        const int64_t child = ctx.ids().next();
        ctx.put(*store_, child_key(wf, child_index(c.child)), std::to_string(child));
        std::set<std::string> sets;
        const Json& mine = wf_state->execution.value("permission_set_refs", Json::array());
        if (mine.is_array()) {
          for (const Json& s : mine) {
            if (s.is_string()) sets.insert(s.get<std::string>());
          }
        }
        for (const auto& s : c.permission_set_refs) sets.insert(s);
        Json wt = c.workflow_task.is_object() ? c.workflow_task : Json::object();
        wt["workflow_execution"] = wf;
        Json config = c.input.is_object() ? c.input : Json::object();
        std::optional<std::string> sealed;
        if (options_.cipher) {
          JsonPtr action = table_.get("action", c.action_ref);
          const auto names = action ? keystore::secret_fields(action->value("param_schema", Json()))
                                    : std::set<std::string>{};
          if (!names.empty() || !secrets.empty()) {
            auto s = keystore::seal_config(config, names, secrets, *options_.cipher,
                                           keystore::sealed_aad("execution", child));
            config = std::move(s.config);
            sealed = std::move(s.sealed);
          }
        }
        Json req = {{"id", child},
                    {"action_ref", c.action_ref},
                    {"config", std::move(config)},
                    {"parent", wf},
                    {"workflow_task", std::move(wt)},
                    {"timeout_seconds", c.timeout ? timeout_json(*c.timeout) : Json(nullptr)},
                    {"permission_set_refs", Json(std::vector<std::string>(sets.begin(), sets.end()))},
                    {"executor", wf_state->execution.value("executor", Json(nullptr))}};
        if (sealed) req[keystore::kSecretConfigField] = *sealed;
        if (!c.held) {
          request(ctx, req, root, true);
          break;
        }
        // Held: the row exists as `requested`; kReleaseChild dispatches it.
        auto o = on_requested(std::nullopt, req, root, lookup(), now);
        if (!o.ok() || o->records.empty()) throw ProcessingError("executor: bad child request");
        Envelope e;
        std::string error;
        if (!Envelope::parse(o->records.front().value, e, error)) throw ProcessingError(error);
        Json ex = e.payload;
        ex.erase("old_status");
        ctx.put(*store_, state_key(child), ExecutionState{ex, root, false}.dump());
        ctx.forward(std::move(o->records.front()));
        break;
      }
      case CommandKind::kReleaseChild: {
        const auto child = child_id(ctx, *store_, wf, c.child);
        if (!child) break;
        auto held = load(ctx, *child);
        if (!held || held->status() != ExecutionStatus::kRequested) break;
        request(ctx, held->execution, root, true);
        break;
      }
      case CommandKind::kStartTimer:
        start_timer(ctx, c.at_ms, Json{{"workflow", wf}, {"root", root}, {"child", c.child.to_json()}});
        break;
      case CommandKind::kAwaitInquiry:
        await_inquiry(ctx, wf, c.child.task, c.child.run, c.inquiry_id);
        break;
      case CommandKind::kCancelChildren:
        for (const ChildKey& k : c.children) {
          const auto child = child_id(ctx, *store_, wf, k);
          if (!child) continue;
          if (!cancel_workflow(ctx, *child)) {
            apply_hooked(ctx, *child, on_cancel(load(ctx, *child), *child, now));
          }
        }
        break;
      case CommandKind::kFinishWorkflow: {
        finished = true;
        auto cur = load(ctx, wf);
        const char* status = c.status == WorkflowStatus::kCompleted  ? "completed"
                             : c.status == WorkflowStatus::kCancelled ? "cancelled"
                                                                      : "failed";
        // API.md §11: a completed workflow's result is `data` = the rendered output_map (the
        // variables without one), its keys also at the top level — the shape of an action's
        // parsed JSON output, so `task.<sub>.result.x` and `.result.data.x` both work.
        Json result = c.result;
        if (c.status == WorkflowStatus::kCompleted && result.is_object()) {
          result["data"] = c.result;
        }
        if (cur) {
          apply_hooked(ctx, wf,
                       on_finished(cur,
                                   Json{{"id", wf},
                                        {"attempt", cur->attempt()},
                                        {"status", status},
                                        {"result", std::move(result)}},
                                   lookup(), now));
        }
        break;
      }
    }
  }
  if (finished) {
    // The run, its definition, slots and children index go with it (O(items), once).
    std::vector<std::string> keys;
    auto st = ctx.scan(*store_, run_prefix(wf), [&](std::string_view key, std::string_view) {
      keys.emplace_back(key);
      return true;
    });
    if (!st.ok()) throw ProcessingError("executor: store scan failed: " + st.error().message);
    for (std::string& k : keys) ctx.del(*store_, std::move(k));
    ctx.del(*store_, run_key(wf));
    wf_runs_.erase(wf);
  } else {
    ctx.put(*store_, run_key(wf), run.dump());
  }
}

std::optional<SystemTime> ExecutorProcessor::fire_timers(SystemTime now, ProcessorContext& ctx) {
  // A due timer becomes a `workflow.timer` record on attune.commands keyed by the root execution,
  // so the instance owning the workflow's partition advances it (never two threads on one run).
  // Deleting the timer and producing the record commit together; a repeat is a stale event the
  // engine ignores.
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::vector<std::pair<std::string, Json>> due;
  std::optional<int64_t> next;
  auto st = ctx.scan(*store_, kTimerPrefix, [&](std::string_view key, std::string_view value) {
    const int64_t at = std::stoll(std::string(key.substr(kTimerPrefix.size(), 15)));
    if (at > now_ms) {
      next = at;
      return false;
    }
    due.emplace_back(std::string(key), Json::parse(value, nullptr, false));
    return due.size() < 1000;  // the rest at the next punctuation
  });
  if (!st.ok()) spdlog::warn("executor: timer scan failed: {}", st.error().message);
  if (due.size() >= 1000) next = now_ms;
  for (auto& [key, value] : due) {
    ctx.del(*store_, key);
    if (!value.is_object() || !value.contains("workflow") || !value["workflow"].is_number_integer()) {
      continue;
    }
    const int64_t wf = value["workflow"].get<int64_t>();
    const int64_t root = value.value("root", wf);
    if (auto retry = value.find("retry"); retry != value.end() && retry->is_object()) {
      // A retry's backoff is over (executor_processor.cc): the next attempt is requested, keyed
      // by its own id (a top-level execution is its own root); a repeat finds it exists.
      const int64_t next = retry->value("id", int64_t{0});
      Envelope r{"execution.requested", next, "execution:" + std::to_string(next), now_ms,
                 "executor", Json{{"execution", std::move(*retry)}}};
      ctx.forward(OutRecord{std::string(topics::kCommands), std::to_string(next), r.dump()});
      continue;
    }
    Json timer = {{"workflow", wf}, {"child", value.value("child", Json(nullptr))}};
    if (value.value("deadline", false)) {
      timer["deadline"] = true;
      timer["seconds"] = value.value("seconds", Json(nullptr));
    }
    Envelope e{"workflow.timer", wf, key, now_ms, "executor", std::move(timer)};
    ctx.forward(OutRecord{std::string(topics::kCommands), std::to_string(root), e.dump()});
  }
  if (!next) return std::nullopt;
  return SystemTime(std::chrono::milliseconds(*next));
}

void ExecutorProcessor::on_workflow_timer(ProcessorContext& ctx, const Json& payload) {
  if (payload.is_object() && payload.value("deadline", false) && payload.contains("workflow") &&
      payload["workflow"].is_number_integer()) {
    const int64_t wf = payload["workflow"].get<int64_t>();
    auto st = load(ctx, wf);
    if (!st || st->status() != ExecutionStatus::kRunning ||
        !must(ctx.get(*store_, run_key(wf)))->has_value()) {
      return;  // ended (or being cancelled) before its deadline
    }
    const Json limit = payload.value("seconds", Json(nullptr));
    apply_hooked(ctx, wf,
                 on_finished(st,
                             Json{{"id", wf},
                                  {"attempt", st->attempt()},
                                  {"status", "timeout"},
                                  {"result",
                                   {{"error", "workflow timed out after " +
                                                  (limit.is_number() ? limit.dump() : "its") +
                                                  " seconds"}}}},
                             lookup(), ctx.clock().now_ms()));
    wf_queue_.push_back({wf, workflow::Event::cancel(true)});
    return;
  }
  auto child = payload.is_object() && payload.contains("child")
                   ? ChildKey::from_json(payload["child"])
                   : std::nullopt;
  if (!child || !payload.contains("workflow") || !payload["workflow"].is_number_integer()) {
    throw ProcessingError("workflow.timer needs workflow and child");
  }
  wf_queue_.push_back({payload["workflow"].get<int64_t>(), workflow::Event::timer_fired(*child)});
}

}  // namespace attune::executor
