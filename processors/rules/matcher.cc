// Rule matching: pure decision logic of the rules stage.
#include "processors/rules/matcher.h"

#include "topology/core/time.h"

namespace attune::rules {
namespace {

std::string str(const Json& o, const char* name) {
  auto it = o.find(name);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Json field_or_null(const Json& o, const char* name) {
  auto it = o.find(name);
  return it != o.end() ? *it : Json(nullptr);
}

// The `updated` of a rule version as a comparable string (timestamps or numbers).
std::string version_of(const Json& rule) {
  auto it = rule.find("updated");
  if (it == rule.end()) return {};
  return it->is_string() ? it->get<std::string>() : it->dump();
}

}  // namespace

Result<EventInput> parse_event(const Envelope& envelope) {
  const Json& p = envelope.payload;
  if (!p.is_object()) return make_error(Errc::kValidation, "event payload is not an object");
  EventInput in;
  auto id = p.find("id");
  in.id = id != p.end() && id->is_number_integer() ? id->get<int64_t>() : envelope.id;
  if (in.id <= 0) return make_error(Errc::kValidation, "event has no positive id");
  in.trigger_ref = str(p, "trigger_ref");
  in.rule_ref = str(p, "rule_ref");
  if (in.trigger_ref.empty() && in.rule_ref.empty()) {
    return make_error(Errc::kValidation, "event " + std::to_string(in.id) + " has no trigger_ref");
  }
  auto offset = p.find("defs_offset");
  if (offset != p.end() && !offset->is_null()) {
    if (!offset->is_number_integer()) {
      return make_error(Errc::kValidation, "event defs_offset is not an integer");
    }
    in.defs_offset = offset->get<int64_t>();
  }
  in.event = p;
  in.event.erase("defs_offset");
  in.event["id"] = in.id;
  if (!in.event.contains("payload")) in.event["payload"] = nullptr;
  return in;
}

std::vector<JsonPtr> candidate_rules(const EventInput& event, const DefinitionLookup& lookup,
                                     const DefinitionsTable* table) {
  if (!event.rule_ref.empty()) {
    JsonPtr rule = lookup("rule", event.rule_ref);
    if (!rule) return {};
    return {rule};
  }
  if (table == nullptr) return {};
  return table->rules_for_trigger(event.trigger_ref);
}

const RuleCache::Compiled& RuleCache::get(const Json& rule) {
  const std::string ref = str(rule, "ref");
  const std::string updated = version_of(rule);
  auto it = by_ref_.find(ref);
  if (it != by_ref_.end() && it->second->updated == updated) return *it->second;
  const Json conditions = field_or_null(rule, "conditions");
  Json params = field_or_null(rule, "action_params");
  if (params.is_null()) params = Json::object();
  auto compiled = std::make_shared<const Compiled>(Compiled{
      updated, expr::Condition::compile(conditions), expr::CompiledParams::compile(params)});
  auto& slot = by_ref_[ref];
  slot = std::move(compiled);
  return *slot;
}

Decision decide(const EventInput& event, std::span<const JsonPtr> candidates,
                const std::function<bool(std::string_view rule_ref)>& already_enforced,
                RuleCache& cache, const DefinitionLookup& lookup,
                const std::function<int64_t()>& next_id, int64_t now_ms) {
  Decision d;
  const std::string now_text = format_rfc3339_ms(now_ms);
  for (const JsonPtr& rule_ptr : candidates) {
    if (!rule_ptr || !rule_ptr->is_object()) continue;
    const Json& rule = *rule_ptr;
    const std::string ref = str(rule, "ref");
    if (ref.empty()) continue;
    if (!event.rule_ref.empty() && ref != event.rule_ref) continue;
    if (event.rule_ref.empty() && str(rule, "trigger_ref") != event.trigger_ref) continue;
    if (!rule.value("enabled", true)) {
      d.skipped.push_back(ref + ": disabled");
      continue;
    }
    if (already_enforced(ref)) {
      d.skipped.push_back(ref + ": already enforced for this event");
      continue;
    }
    const RuleCache::Compiled& compiled = cache.get(rule);
    if (!compiled.condition.ok()) {
      d.errors.push_back(ref + ": conditions: " + compiled.condition.error().message);
      continue;
    }

    Json pack_config = Json::object();
    if (JsonPtr pack = lookup("pack", str(rule, "pack_ref")); pack && pack->contains("config")) {
      pack_config = (*pack)["config"];
    }
    const Json trigger_payload = field_or_null(event.event, "payload");
    Json system = {{"timestamp", now_text},
                   {"rule", {{"id", field_or_null(rule, "id")}, {"ref", ref}}},
                   {"event", {{"id", event.id}}}};
    Json pack_scope = {{"config", pack_config}};
    expr::Scope scope;
    scope.bind("event", &event.event);
    scope.bind("trigger", &trigger_payload);
    scope.bind("system", &system);
    scope.bind("config", &pack_config);
    scope.bind("pack", &pack_scope);

    if (!compiled.condition->always()) {
      auto matched = compiled.condition->matches(scope);
      if (!matched.ok()) {
        d.errors.push_back(ref + ": conditions: " + matched.error().message);
        continue;
      }
      if (!*matched) {
        d.skipped.push_back(ref + ": conditions do not match");
        continue;
      }
    }
    if (!compiled.params.ok()) {
      d.errors.push_back(ref + ": " + compiled.params.error().message);
      continue;
    }
    const int64_t enforcement_id = next_id();
    system["enforcement"] = {{"id", enforcement_id}};
    auto config = compiled.params->render(scope);
    if (!config.ok()) {
      d.errors.push_back(ref + ": " + config.error().message);
      continue;
    }
    const int64_t execution_id = next_id();

    Json conditions = field_or_null(rule, "conditions");
    Match m;
    m.rule_ref = ref;
    m.enforcement = {
        {"id", enforcement_id},
        {"rule", field_or_null(rule, "id")},
        {"rule_ref", ref},
        {"trigger_ref", event.trigger_ref.empty() ? str(rule, "trigger_ref") : event.trigger_ref},
        {"event", event.id},
        {"status", "created"},
        {"config", *config},
        {"payload", trigger_payload},
        {"condition", "all"},
        {"conditions", conditions},
        {"resolved_at", nullptr},
        {"created", now_text},
        {"updated", now_text}};
    const std::string action_ref = str(rule, "action_ref");
    Json action_id = field_or_null(rule, "action");
    if (action_id.is_null()) {
      if (JsonPtr action = lookup("action", action_ref)) action_id = field_or_null(*action, "id");
    }
    Json permission_sets = field_or_null(rule, "permission_set_refs");
    if (!permission_sets.is_array()) permission_sets = Json::array();
    m.execution = {{"id", execution_id},
                   {"action", action_id},
                   {"action_ref", action_ref},
                   {"config", *config},
                   {"env_vars", Json::object()},
                   {"parent", nullptr},
                   {"enforcement", enforcement_id},
                   {"rule", field_or_null(rule, "id")},
                   {"rule_ref", ref},
                   {"trigger_ref", m.enforcement["trigger_ref"]},
                   {"executor", nullptr},
                   {"permission_set_refs", permission_sets},
                   {"timeout_seconds", nullptr},
                   {"status", "requested"},
                   {"created", now_text},
                   {"updated", now_text}};
    d.matches.push_back(std::move(m));
  }
  return d;
}

std::vector<OutRecord> match_records(const Match& match, int64_t now_ms) {
  const int64_t enforcement_id = match.enforcement["id"].get<int64_t>();
  const int64_t execution_id = match.execution["id"].get<int64_t>();
  const int64_t event_id = match.enforcement["event"].get<int64_t>();

  Envelope enforcement{
      "enforcement.created", enforcement_id, dedupe_key(event_id, match.rule_ref), now_ms, "rules",
      match.enforcement};
  Envelope request{"execution.requested",
                   execution_id,
                   "execution:" + std::to_string(execution_id),
                   now_ms,
                   "rules",
                   Json{{"execution", match.execution}}};
  return {OutRecord{std::string(topics::kEnforcements), match.rule_ref, enforcement.dump()},
          OutRecord{std::string(topics::kCommands), std::to_string(execution_id), request.dump()}};
}

std::string dedupe_key(int64_t event_id, std::string_view rule_ref) {
  return "event:" + std::to_string(event_id) + ":" + std::string(rule_ref);
}

}  // namespace attune::rules
