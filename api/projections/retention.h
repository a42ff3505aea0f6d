// Execution history retention (issue 13): what `--history-keep` means and the pure decisions the
// "api" projection stage takes when it prunes its rows (projection_processor.cc does the I/O).
//
// What is kept:
//   executions    every non-terminal execution, always; of the terminal ones (completed, failed,
//                 timeout, cancelled, abandoned) the newest N by (created, id) — or those created
//                 within the age
//   enforcements  pruned once outside the same bound (the newest N enforcements / created within
//                 the age), resolved (`processed` or `disabled`; a `created` one is still waiting
//                 for the executor) and no execution of it is left in the projection
//   events        pruned once outside the bound (the newest N events / created within the age)
//                 and no enforcement of it is left
// Enforcements and events are pruned only while the projection has applied every enforcement and
// execution record produced so far (RetentionOptions::references_applied) — their references
// arrive on other topics, possibly later (an API instance replaying the topics from the start
// reads the events before the enforcements) — and never before they are `settle` old, for the
// references not produced yet (the rules stage turns an event into an enforcement a moment later).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "topology/core/result.h"

namespace attune::projections {

struct HistoryKeep {
  enum class Mode { kAll, kCount, kAge };
  Mode mode = Mode::kAll;
  int64_t count = 0;              // kCount: newest terminal executions kept (≥ 1)
  std::chrono::milliseconds age{0};  // kAge: kept while created within this (≥ 1 s)
  bool enabled() const { return mode != Mode::kAll; }
  std::string describe() const;  // "all", "1000 newest", "7d"
};

// `--history-keep` / ATTUNE_HISTORY_KEEP / history_keep: "all" (the default: keep everything),
// a count "N" (1 ≤ N ≤ 2^40), or an age "<N>s", "<N>m", "<N>h", "<N>d" (1 s up to 100 years).
// Anything else is an error whose message names the accepted forms.
Result<HistoryKeep> parse_history_keep(std::string_view text);

struct RetentionOptions {
  HistoryKeep keep;
  std::chrono::milliseconds interval{2000};  // between passes ("checked every few seconds")
  std::chrono::milliseconds settle{10000};   // see the header comment
  // A pruned row leaves a tombstone this long, so a redelivered record of it (Kafka) does not
  // bring it back; the embedded log never redelivers a committed record.
  std::chrono::milliseconds tombstone_retention{std::chrono::minutes(10)};
  size_t budget = 2000;  // rows pruned per entity per pass; a full pass is followed at once
  // True when the stage has applied every record of attune.enforcements and attune.executions
  // produced so far (from the Runtime's lag; no I/O). Empty: always true.
  std::function<bool()> references_applied;
};

// How many rows past the bound in count mode (total − N, at least 0).
int64_t excess_over(int64_t total, const HistoryKeep& keep);
// Age mode: rows created before this (epoch ms) are outside the bound; nullopt otherwise.
std::optional<int64_t> age_cutoff_ms(const HistoryKeep& keep, int64_t now_ms);

bool execution_prunable(std::string_view status);
// `status` is the enforcement's; `executions_left`: some execution row still references it.
bool enforcement_prunable(std::string_view status, bool executions_left, int64_t created_ms,
                          int64_t now_ms, std::chrono::milliseconds settle);
bool event_prunable(bool enforcements_left, int64_t created_ms, int64_t now_ms,
                    std::chrono::milliseconds settle);

}  // namespace attune::projections
