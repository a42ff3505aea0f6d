// Rule matching: pure decision logic of the rules stage.
#include "processors/rules/matcher.h"

#include "processors/keystore/sealed.h"

#include "topology/core/time.h"

namespace attune::rules {
namespace {

std::string str(const Json& o, const char* name) {
  auto it = o.find(name);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// An evaluation error may quote a value; decrypted keys must not reach the logs through it.
std::string without_secrets(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    if (secret.size() < 4) continue;
    for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos)) {
      text.replace(pos, secret.size(), "***");
    }
  }
  return text;
}

Json field_or_null(const Json& o, const char* name) {
  auto it = o.find(name);
  return it != o.end() ? *it : Json(nullptr);
}

const Json& empty_object() {
  static const Json kEmpty = Json::object();
  return kEmpty;
}

// Bound as `pack` when the rule's pack is unknown, so `pack.config.x` is undefined, not an error.
const Json& no_pack() {
  static const Json kNoPack = {{"config", Json::object()}};
  return kNoPack;
}

}  // namespace

Result<EventInput> parse_event(const Envelope& envelope) {
  Envelope copy = envelope;
  return parse_event(std::move(copy));
}

Result<EventInput> parse_event(Envelope&& envelope) {
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
  in.event = std::move(envelope.payload);
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

const RuleCache::Compiled& RuleCache::get(const JsonPtr& rule) {
  auto it = by_version_.find(rule.get());
  if (it != by_version_.end()) return *it->second.compiled;
  const Json conditions = field_or_null(*rule, "conditions");
  Json params = field_or_null(*rule, "action_params");
  if (params.is_null()) params = Json::object();
  auto compiled = std::make_unique<Compiled>(
      Compiled{expr::Condition::compile(conditions), expr::CompiledParams::compile(params)});
  compiled->ref = str(*rule, "ref");
  compiled->trigger_ref = str(*rule, "trigger_ref");
  compiled->pack_ref = str(*rule, "pack_ref");
  compiled->enabled = rule->value("enabled", true);
  compiled->id = field_or_null(*rule, "id");
  compiled->conditions_use_system = conditions.dump().find("system") != std::string::npos;
  compiled->uses_keystore = conditions.dump().find("keystore") != std::string::npos ||
                            params.dump().find("keystore") != std::string::npos;
  Entry& entry = by_version_[rule.get()];
  entry.rule = rule;
  entry.compiled = std::move(compiled);
  return *entry.compiled;
}

void RuleCache::prune() {
  std::erase_if(by_version_, [](const auto& kv) { return kv.second.rule.use_count() <= 1; });
}

Decision decide(const EventInput& event, std::span<const JsonPtr> candidates,
                const std::function<bool(std::string_view rule_ref)>& already_enforced,
                RuleCache& cache, const DefinitionLookup& lookup,
                const std::function<int64_t()>& next_id, int64_t now_ms,
                const SecretContext* secrets) {
  Decision d;
  keystore::TemplateKeys keys;  // bound as `keystore` for rules that mention it
  // Built on first use: most events match no rule and are evaluated by conditions that never
  // read `system`, so neither the timestamp text nor the object is made for them.
  std::optional<std::string> now_text_cache;
  const auto now_text = [&]() -> const std::string& {
    if (!now_text_cache) now_text_cache = format_rfc3339_ms(now_ms);
    return *now_text_cache;
  };

  // One scope per event. Per rule only `config`/`pack` (when the pack differs), `keystore` (for
  // rules that read it) and `system.rule` (when the conditions mention `system`, and before
  // rendering a match) change, so the loop over many non-matching rules does no allocation and
  // no JSON member lookup of its own.
  Json system;
  expr::Scope scope;
  scope.bind("event", &event.event);
  scope.bind("trigger", &event.event);
  scope.bind("system", &system);
  const Json* keystore_bound = nullptr;
  JsonPtr pack;
  std::string bound_pack_ref;
  bool pack_bound = false;

  for (const JsonPtr& rule_ptr : candidates) {
    if (!rule_ptr || !rule_ptr->is_object()) continue;
    const Json& rule = *rule_ptr;
    const RuleCache::Compiled& compiled = cache.get(rule_ptr);
    const std::string_view ref = compiled.ref;
    if (ref.empty()) continue;
    if (!event.rule_ref.empty() && ref != event.rule_ref) continue;
    if (event.rule_ref.empty() && compiled.trigger_ref != event.trigger_ref) continue;
    if (!compiled.enabled) {
      d.skipped.push_back(std::string(ref) + ": disabled");
      continue;
    }
    if (!compiled.condition.ok()) {
      d.errors.push_back(std::string(ref) + ": conditions: " + compiled.condition.error().message);
      continue;
    }

    if (!pack_bound || compiled.pack_ref != bound_pack_ref) {
      pack = lookup("pack", compiled.pack_ref);
      const Json* config = &empty_object();
      if (pack) {
        auto it = pack->find("config");
        if (it != pack->end() && !it->is_null()) config = &*it;
      }
      scope.bind("config", config);
      scope.bind("pack", pack ? pack.get() : &no_pack());
      bound_pack_ref = compiled.pack_ref;
      pack_bound = true;
    }
    bool system_set = false;
    const auto set_system = [&] {
      if (system.is_null()) {
        system = {{"timestamp", now_text()},
                  {"rule", {{"id", nullptr}, {"ref", ""}}},
                  {"event", {{"id", event.id}}}};
      }
      Json& rule_of_system = system["rule"];
      rule_of_system["id"] = compiled.id;
      rule_of_system["ref"] = compiled.ref;
      system.erase("enforcement");
      system_set = true;
    };
    if (compiled.conditions_use_system) set_system();
    // Keys are read (and decrypted) only for rules that mention them.
    keys.secrets.clear();
    if (compiled.uses_keystore && secrets != nullptr && secrets->keys) {
      keys = secrets->keys(rule);
      scope.bind("keystore", &keys.root);
      keystore_bound = &keys.root;
    } else if (keystore_bound != &empty_object()) {
      scope.bind("keystore", &empty_object());
      keystore_bound = &empty_object();
    }

    if (!compiled.condition->always()) {
      auto matched = compiled.condition->matches(scope);
      if (!matched.ok()) {
        d.errors.push_back(std::string(ref) + ": conditions: " +
                           without_secrets(matched.error().message, keys.secrets));
        continue;
      }
      if (!*matched) {
        ++d.not_matched;
        continue;
      }
    }
    if (already_enforced(ref)) {
      d.skipped.push_back(std::string(ref) + ": already enforced for this event");
      continue;
    }
    if (!compiled.params.ok()) {
      d.errors.push_back(std::string(ref) + ": " + compiled.params.error().message);
      continue;
    }
    if (!system_set) set_system();
    const int64_t enforcement_id = next_id();
    system["enforcement"] = {{"id", enforcement_id}};
    auto config = compiled.params->render(scope);
    if (!config.ok()) {
      d.errors.push_back(std::string(ref) + ": " +
                         without_secrets(config.error().message, keys.secrets));
      continue;
    }
    const int64_t execution_id = next_id();
    const std::string action_ref = str(rule, "action_ref");
    JsonPtr action = lookup("action", action_ref);

    // Secret parameters never sit in plaintext in stored records: seal them (one seal per
    // record, each bound to its own id).
    Json enforcement_config = *config;
    std::optional<std::string> execution_sealed, enforcement_sealed;
    if (secrets != nullptr && secrets->cipher != nullptr) {
      const auto names = action ? keystore::secret_fields(action->value("param_schema", Json()))
                                : std::set<std::string>();
      auto ex = keystore::seal_config(*config, names, keys.secrets, *secrets->cipher,
                                      keystore::sealed_aad("execution", execution_id));
      auto en = keystore::seal_config(*config, names, keys.secrets, *secrets->cipher,
                                      keystore::sealed_aad("enforcement", enforcement_id));
      *config = std::move(ex.config);
      execution_sealed = std::move(ex.sealed);
      enforcement_config = std::move(en.config);
      enforcement_sealed = std::move(en.sealed);
    }

    Match m;
    m.rule_ref = ref;
    m.enforcement = {
        {"id", enforcement_id},
        {"rule", field_or_null(rule, "id")},
        {"rule_ref", ref},
        {"trigger_ref", event.trigger_ref.empty() ? str(rule, "trigger_ref") : event.trigger_ref},
        {"event", event.id},
        {"status", "created"},
        {"config", std::move(enforcement_config)},
        {"payload", field_or_null(event.event, "payload")},
        {"condition", "all"},
        {"conditions", field_or_null(rule, "conditions")},
        {"resolved_at", nullptr},
        {"created", now_text()},
        {"updated", now_text()}};
    Json action_id = field_or_null(rule, "action");
    if (action_id.is_null() && action) action_id = field_or_null(*action, "id");
    Json permission_sets = field_or_null(rule, "permission_set_refs");
    if (!permission_sets.is_array()) permission_sets = Json::array();
    m.execution = {{"id", execution_id},
                   {"action", action_id},
                   {"action_ref", action_ref},
                   {"config", std::move(config).value()},
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
                   {"created", now_text()},
                   {"updated", now_text()}};
    if (enforcement_sealed) m.enforcement[keystore::kSecretConfigField] = *enforcement_sealed;
    if (execution_sealed) m.execution[keystore::kSecretConfigField] = *execution_sealed;
    d.matches.push_back(std::move(m));
  }
  return d;
}

std::vector<OutRecord> match_records(const Match& match, int64_t now_ms, int64_t defs_offset) {
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
  if (defs_offset > 0) request.payload["defs_offset"] = defs_offset;
  return {make_record(topics::kEnforcements, match.rule_ref, std::move(enforcement)),
          make_record(topics::kCommands, std::to_string(execution_id), std::move(request))};
}

std::string dedupe_key(int64_t event_id, std::string_view rule_ref) {
  return "event:" + std::to_string(event_id) + ":" + std::string(rule_ref);
}

}  // namespace attune::rules
