// Policies (API.md §15): the stored policy object, what applies to one action (resolution), and
// the retry backoff. Pure functions; the admission stage, the executor and the API share them.
//
// Stored object (definitions kind "policy", ref "<pack>.<name>"), API field names (API.md §7):
//   {id, ref, pack_ref, name, label?, description, enabled, priority,
//    scope: {type: "global"|"pack"|"action", pack_ref?, action_ref?},
//    concurrency: {limit ≥ 1, method: "enqueue"|"cancel", parameters: [names]} | null,
//    rate_limit: {max_executions ≥ 1, window_seconds ≥ 1} | null,
//    quotas: [{quota_type: "running_executions"|"executions_total", limit ≥ 0}],
//    retry: {max_retries, on, backoff, delay_seconds, max_delay_seconds} | null,
//    tags, created, updated}
// normalize_policy() (policy_def.h) turns an API body or a pack file into this shape.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "topology/core/result.h"
#include "topology/definitions_table.h"

namespace attune::admission {

inline constexpr std::string_view kPolicyKind = "policy";

enum class Backoff { kConstant, kLinear, kExponential };

// A retry policy (API.md §15): on which ending statuses, how many times, how long between.
struct RetrySpec {
  int64_t max_retries = 0;  // 0..100
  bool on_failed = true;
  bool on_timeout = true;
  Backoff backoff = Backoff::kExponential;
  double delay_seconds = 1;
  double max_delay_seconds = 300;

  Json to_json() const;  // the normalised object: every field present
};
inline constexpr int64_t kMaxRetryCount = 100;

// Parses a retry object ({max_retries 0–100, on: ["failed","timeout"], backoff, delay_seconds
// ≥ 0, max_delay_seconds ≥ 0}); absent fields take their defaults. The error message names the
// field as `<field>.<name>` (e.g. "retry.backoff: must be one of constant, linear, exponential").
Result<RetrySpec> parse_retry(const Json& j, std::string_view field = "retry");
// The delay before attempt n (n ≥ 1 retries so far): constant d, linear d·n, exponential
// d·2^(n−1), capped at max_delay_seconds; in milliseconds.
int64_t backoff_delay_ms(const RetrySpec& r, int64_t n);
// Whether an attempt that ended with `status` ("failed", "timeout", ...) is retried (retries
// left aside).
bool retries_on(const RetrySpec& r, std::string_view status);

struct ConcurrencySpec {
  int64_t limit = 1;
  bool cancel = false;                  // method "cancel"; else "enqueue"
  std::vector<std::string> parameters;  // group by these parameters' values
};

struct RateSpec {
  int64_t max_executions = 1;
  int64_t window_seconds = 1;
};

// What applies to one action: per aspect (concurrency, rate limit, retry, each quota type) the
// most specific enabled policy that sets it (action scope beats pack beats global, then higher
// priority, then the smaller ref), so a global rate limit and an action's concurrency both apply.
// A `running_executions` quota is a concurrency limit (method enqueue): the smaller of the two
// limits counts.
struct Effective {
  std::optional<ConcurrencySpec> concurrency;
  std::optional<RateSpec> rate_limit;
  std::optional<RetrySpec> retry;
  struct Total {
    int64_t limit = 0;
    std::string scope_type;  // "global", "pack", "action"
    std::string scope_ref;   // the pack or action ref ("" for global)
    std::string policy_ref;  // the policy that sets it
  };
  std::optional<Total> executions_total;
  std::vector<std::string> policy_refs;  // the policies that contributed

  // Executions of this action go through the admission stage.
  bool admits() const { return concurrency.has_value() || rate_limit.has_value(); }
};

// Resolution over `policies` (stored objects; disabled ones and ones for other actions ignored).
Effective resolve(const std::vector<JsonPtr>& policies, std::string_view action_ref,
                  std::string_view pack_ref);

// The admission group of an execution: "" without grouping parameters, else the compact JSON
// array of those parameters' values in `config` (absent ⇒ null).
std::string group_key(const ConcurrencySpec& c, const Json& config);

// resolve() over a DefinitionsTable, cached per action until the table's version changes. Not
// thread-safe: one per stage instance (or behind the caller's lock).
class Resolver {
 public:
  explicit Resolver(const DefinitionsTable& table) : table_(table) {}
  const Effective& of(std::string_view action_ref);

 private:
  const DefinitionsTable& table_;
  uint64_t version_ = ~uint64_t{0};
  std::vector<JsonPtr> policies_;
  std::unordered_map<std::string, Effective> cache_;
};

}  // namespace attune::admission
