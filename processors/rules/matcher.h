// Rule matching (API.md §10): which rules an event selects, whether their conditions hold, and
// the enforcement + execution request each match produces. Pure functions over JSON; the rules
// stage (rules_processor.h) is the I/O shell around them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "processors/expr/condition.h"
#include "processors/expr/expr.h"
#include "processors/keystore/cipher.h"
#include "processors/keystore/keys.h"
#include "topology/definitions_table.h"

namespace attune::rules {

// Looks a definition up by kind and ref; nullptr when absent. Stage code binds it to the
// DefinitionsTable, tests to a map.
using DefinitionLookup = std::function<JsonPtr(std::string_view kind, std::string_view ref)>;

// A validated `event.created` record.
struct EventInput {
  int64_t id = 0;
  std::string trigger_ref;
  std::string rule_ref;     // empty: every rule on the trigger
  int64_t defs_offset = 0;  // end offset of attune.definitions when the event was produced
  Json event;               // the Event object (API shape)
};

// Validates an `event.created` envelope. Errors are reasons for the dead letter topic.
// The rvalue form moves the payload instead of copying it (the rules stage's hot path).
Result<EventInput> parse_event(const Envelope& envelope);
Result<EventInput> parse_event(Envelope&& envelope);

// Rules an event selects (API.md §10.1): only `rule_ref` when set, else every rule on the
// trigger. Disabled and deleted rules are included/absent as they are; decide() filters.
std::vector<JsonPtr> candidate_rules(const EventInput& event, const DefinitionLookup& lookup,
                                     const DefinitionsTable* table);

// Compiled conditions and action_params per rule version. A version is one immutable snapshot
// from the DefinitionsTable (a JsonPtr): every upsert makes a new one, so an update takes effect
// for the very next event even within the same millisecond. Lookups hash the pointer (no string
// work on the hot path). One per stage instance; not thread-safe.
class RuleCache {
 public:
  struct Compiled {
    Result<expr::Condition> condition;
    Result<expr::CompiledParams> params;
    // Read once per version so the per-event loop does no JSON member lookups.
    std::string ref;
    std::string trigger_ref;
    std::string pack_ref;
    bool enabled = true;
    Json id;
    // Whether the conditions mention `system` at all: only then is `system.rule` set before
    // they are evaluated (a root name can only be reached through its identifier).
    bool conditions_use_system = false;
    // Whether conditions or action_params mention `keystore`: only then are keys read.
    bool uses_keystore = false;
  };
  const Compiled& get(const JsonPtr& rule);
  // Drops versions no longer held by anyone else (replaced or deleted rules). Call when the
  // definitions change; cheap when nothing changed.
  void prune();
  size_t size() const { return by_version_.size(); }

 private:
  struct Entry {
    JsonPtr rule;  // keeps the address unique while cached
    std::unique_ptr<const Compiled> compiled;
  };
  std::unordered_map<const Json*, Entry> by_version_;
};

// Datastore access for templates and secret sealing (API.md §10.2, §11.4, §14). With `cipher`
// set, a match's rendered parameters that the action's schema marks secret, or that contain a
// decrypted key value, are sealed out of the stored config (processors/keystore/sealed.h).
struct SecretContext {
  const keystore::Cipher* cipher = nullptr;
  // The `keystore` root for a rule (its pack's keys, its owner's, system keys). May be empty.
  std::function<keystore::TemplateKeys(const Json& rule)> keys;
};

// One matching rule's output: the Enforcement and the Execution request (API shapes).
struct Match {
  std::string rule_ref;
  Json enforcement;
  Json execution;
};

struct Decision {
  std::vector<Match> matches;
  std::vector<std::string> skipped;  // "<rule>: <why>" for disabled and already enforced rules
  std::vector<std::string> errors;   // "<rule>: <evaluation error>" (counted as no match)
  size_t not_matched = 0;            // enabled rules whose conditions were false
};

// Decides what an event yields. `already_enforced(rule_ref)` says whether this (event, rule)
// pair was handled before (a redelivered event); it is asked only for rules that match.
// `next_id` gives new ids (enforcement, then execution, per match). Conditions null/{}/[] always
// match; an evaluation or render error is no match and is reported in `errors`.
//
// Expression context (API.md §10.1–10.2), the same for conditions and action_params:
//   event    the Event {id, trigger, trigger_ref, payload, config, created, ...}
//   trigger  alias of event (`trigger.payload.level`)
//   config   the rule's pack config ({} when none); pack = the rule's Pack (`pack.config.*`)
//   system   {timestamp (RFC 3339 now), rule {id, ref}, event {id}, enforcement {id}} — the
//            enforcement id is bound only while action_params are rendered
//   keystore the rule's keys (SecretContext::keys), bound only when the rule mentions it
Decision decide(const EventInput& event, std::span<const JsonPtr> candidates,
                const std::function<bool(std::string_view rule_ref)>& already_enforced,
                RuleCache& cache, const DefinitionLookup& lookup,
                const std::function<int64_t()>& next_id, int64_t now_ms,
                const SecretContext* secrets = nullptr);

// The records of one match: `enforcement.created` on attune.enforcements (key rule ref) and
// `execution.requested` on attune.commands (key execution id), per processors/RECORDS.md.
// `defs_offset` (> 0): the definitions the match saw (the event's), carried by the request so
// the executor decides with at least those (e.g. a policy created just before).
std::vector<OutRecord> match_records(const Match& match, int64_t now_ms, int64_t defs_offset = 0);

// Store key that dedupes (event, rule) pairs.
std::string dedupe_key(int64_t event_id, std::string_view rule_ref);

}  // namespace attune::rules
