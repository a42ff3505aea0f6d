// The rules stage: I/O around the pure matcher.
#include "processors/rules/rules_processor.h"

#include <spdlog/spdlog.h>

#include <charconv>

namespace attune::rules {

std::optional<int64_t> legacy_dedupe_due(std::string_view value,
                                         std::chrono::milliseconds retention) {
  int64_t id = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), id);
  // Unreadable: nothing can use it, so it is due at once.
  const int64_t written = (ec == std::errc() && id > 0) ? IdGenerator::timestamp_ms(id) : 0;
  return written + retention.count();
}

RulesProcessor::RulesProcessor(const DefinitionsTable& table, RulesOptions options)
    : table_(table),
      options_(options),
      pruner_(options_.prune, [retention = options_.dedupe_retention](std::string_view,
                                                                       std::string_view value) {
        return legacy_dedupe_due(value, retention);
      }) {}

void RulesProcessor::init(ProcessorContext& ctx) {
  dedupe_ = &ctx.store(kDedupeStore);
  pruner_.start(ctx);
}

std::optional<SystemTime> RulesProcessor::punctuate(SystemTime now, ProcessorContext& ctx) {
  return pruner_.run(ctx, *dedupe_, now);
}

const std::vector<JsonPtr>& RulesProcessor::candidates(const EventInput& event) {
  const DefinitionLookup lookup = [this](std::string_view kind, std::string_view ref) {
    return table_.get(kind, ref);
  };
  // Read the version before the rules: a change in between makes the next event refetch.
  const uint64_t version = table_.version();
  if (version != candidates_version_) {
    candidates_by_trigger_.clear();
    targeted_.clear();
    cache_.prune();  // after dropping our own references to replaced versions
    candidates_version_ = version;
  }
  if (!event.rule_ref.empty()) {
    targeted_ = candidate_rules(event, lookup, &table_);
    return targeted_;
  }
  auto it = candidates_by_trigger_.find(event.trigger_ref);
  if (it == candidates_by_trigger_.end()) {
    it = candidates_by_trigger_
             .emplace(event.trigger_ref, candidate_rules(event, lookup, &table_))
             .first;
  }
  return it->second;
}

void RulesProcessor::process(const Record& record, ProcessorContext& ctx) {
  Envelope envelope;
  std::string error;
  if (!envelope_of(record, envelope, error)) throw ProcessingError(error);
  if (envelope.type != "event.created") {
    spdlog::debug("rules: ignoring record type {} at {}@{}", envelope.type, record.topic,
                  record.offset);
    return;
  }
  auto event = parse_event(std::move(envelope));
  if (!event.ok()) throw ProcessingError(event.error().message);

  if (event->defs_offset > 0 &&
      !table_.wait_applied(event->defs_offset - 1, options_.definitions_wait)) {
    spdlog::warn(
        "rules: definitions not caught up to offset {} after {} ms for event {}; "
        "evaluating with what is applied ({})",
        event->defs_offset, options_.definitions_wait.count(), event->id, table_.applied());
  }

  const DefinitionLookup lookup = [this](std::string_view kind, std::string_view ref) {
    return table_.get(kind, ref);
  };
  const std::vector<JsonPtr>& rules = candidates(*event);
  const auto already_enforced = [&](std::string_view rule_ref) {
    auto v = ctx.get(*dedupe_, dedupe_key(event->id, rule_ref));
    if (!v.ok()) throw ProcessingError("rules: dedupe store read failed: " + v.error().message);
    return v->has_value();
  };
  const int64_t now = ctx.clock().now_ms();
  SecretContext secrets;
  if (options_.cipher) {
    secrets.cipher = options_.cipher.get();
    secrets.keys = [this, now](const Json& rule) {
      std::string login;
      const Json owner = rule.value("owner_identity", Json());
      if (owner.is_number_integer()) {
        if (auto identity = table_.get_by_id("identity", owner.get<int64_t>())) {
          login = identity->value("login", "");
        }
      }
      return keystore::template_context(table_, rule.value("pack_ref", ""), login, now,
                                        *options_.cipher);
    };
  }
  Decision d = decide(*event, rules, already_enforced, cache_, lookup,
                      [&] { return ctx.ids().next(); }, now, &secrets);

  for (const auto& e : d.errors) {
    ++evaluation_errors_;
    if (options_.on_evaluation_error) options_.on_evaluation_error();
    spdlog::warn("rules: event {}: rule {} (counted as no match)", event->id, e);
  }
  for (const auto& s : d.skipped) spdlog::debug("rules: event {}: rule {}", event->id, s);
  if (d.not_matched > 0) {
    spdlog::debug("rules: event {}: {} rule(s) did not match", event->id, d.not_matched);
  }
  for (const Match& m : d.matches) {
    std::string key = dedupe_key(event->id, m.rule_ref);
    expiry::schedule(ctx, *dedupe_, key, now + options_.dedupe_retention.count());
    ctx.put(*dedupe_, std::move(key), m.enforcement["id"].dump());
    for (auto& r : match_records(m, now, event->defs_offset)) ctx.forward(std::move(r));
  }
}

}  // namespace attune::rules
