// The first automation loop as one call: the rules, executor and worker stages wired into a
// Topology (for `attune serve` and tests).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "processors/keystore/cipher.h"
#include "runners/runner.h"
#include "topology/definitions_table.h"
#include "topology/store_expiry.h"
#include "topology/topology.h"

namespace attune {

struct PipelineOptions {
  DefinitionsTable* definitions = nullptr;  // required; started by the caller, outlives the run
  std::string api_url;                      // ATTUNE_API_URL for actions (without /api/v1)
  std::string worker_name;                  // empty ⇒ the host name
  size_t worker_max_running = 64;           // WorkerOptions::max_running
  int64_t default_timeout_seconds = 300;    // WorkerOptions::default_timeout_seconds
  std::chrono::milliseconds cancel_grace{5000};  // SIGINT → SIGTERM → SIGKILL spacing
  // The worker's runners by runtime (WorkerOptions::runners); null ⇒ core.shell only.
  std::shared_ptr<const runners::RunnerSet> runners;
  // Called once per execution reaching a terminal status, after it is durable (metrics).
  std::function<void(std::string_view status)> on_execution_terminal;
  // Called once per (event, rule) whose conditions or action_params failed to evaluate, which
  // counts as no match (metrics: attune_rule_evaluation_errors_total). Rules stage thread.
  std::function<void()> on_rule_evaluation_error;
  const Clock* clock = &SystemClock::instance();  // process durations in the worker
  // Datastore encryption (keystore templates, sealed secrets, key injection); may be null.
  std::shared_ptr<const keystore::Cipher> cipher;
  // Mints the ATTUNE_API_TOKEN of an execution (worker thread); may be empty.
  std::function<std::optional<std::string>(const Json& execution, const Json& action)> mint_token;
  // StageSpec::hold of the rules stage (admission control); may be empty.
  std::function<bool()> hold_rules;
  // Bounded stores (issue 13): how long the rules stage's dedupe entries, the worker's `seen`
  // entries and the executor's state of ended executions are kept once written (ended) — the
  // time within which a repeat of their input could still arrive (see each stage's options).
  std::chrono::milliseconds state_retention{std::chrono::hours(1)};
  expiry::PruneSchedule prune;  // when those stages prune (tests make it aggressive)
  // Which of "rules", "executor", "worker" to add (distributed roles); empty ⇒ all three.
  std::vector<std::string> stages;
};

// Adds stages "rules" (1 instance, store dedupe), "executor" (2 instances, store executions),
// "admission" (1 instance, store queues; with the executor) and "worker" (1 instance, stores
// inflight + seen). Their clocks and ids come from the
// Runtime; `options.definitions` must be non-null.
void add_core_stages(Topology& topology, const PipelineOptions& options);

}  // namespace attune
