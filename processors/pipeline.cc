// Wiring of the core stages.
#include "processors/pipeline.h"

#include <algorithm>
#include <stdexcept>

#include "processors/admission/admission_processor.h"
#include "processors/executor/executor_processor.h"
#include "processors/rules/rules_processor.h"
#include "processors/worker/worker_processor.h"

namespace attune {

void add_core_stages(Topology& topology, const PipelineOptions& options) {
  if (options.definitions == nullptr) {
    throw std::invalid_argument("add_core_stages: PipelineOptions::definitions is required");
  }
  DefinitionsTable* table = options.definitions;
  auto wanted = [&](std::string_view stage) {
    return options.stages.empty() ||
           std::find(options.stages.begin(), options.stages.end(), stage) != options.stages.end();
  };
  rules::RulesOptions rules_options;
  rules_options.on_evaluation_error = options.on_rule_evaluation_error;
  rules_options.cipher = options.cipher;
  rules_options.dedupe_retention = options.state_retention;
  rules_options.prune = options.prune;
  if (wanted("rules")) {
    StageSpec rules_stage{"rules",
                          {std::string(topics::kEvents)},
                          {std::string(rules::kDedupeStore)},
                          1,
                          512,
                          [table, rules_options](int) {
                            return std::make_unique<rules::RulesProcessor>(*table, rules_options);
                          }};
    rules_stage.hold = options.hold_rules;
    topology.add(std::move(rules_stage));
  }
  executor::ExecutorOptions exec_options{options.on_execution_terminal};
  exec_options.terminal_retention = options.state_retention;
  exec_options.prune = options.prune;
  exec_options.cipher = options.cipher;
  if (wanted("executor")) topology.add({"executor",
                {std::string(topics::kCommands), std::string(topics::kResults)},
                {std::string(executor::kExecutionsStore)},
                2,
                512,
                [table, exec_options](int) {
                  return std::make_unique<executor::ExecutorProcessor>(*table, exec_options);
                }});
  // Admission (policies): all executions of one action in one place, keyed by action ref; it runs
  // wherever the executor does.
  admission::AdmissionOptions admission_options;
  admission_options.retention = options.state_retention;
  admission_options.prune = options.prune;
  if (wanted("executor")) topology.add({std::string(admission::kStage),
                {std::string(topics::kAdmission)},
                {std::string(admission::kQueuesStore)},
                1,
                512,
                [table, admission_options](int) {
                  return std::make_unique<admission::AdmissionProcessor>(*table,
                                                                         admission_options);
                }});
  worker::WorkerOptions worker_options;
  worker_options.name = options.worker_name;
  worker_options.api_url = options.api_url;
  worker_options.clock = options.clock;
  worker_options.definitions = table;
  worker_options.cipher = options.cipher;
  worker_options.mint_token = options.mint_token;
  worker_options.max_running = options.worker_max_running;
  worker_options.default_timeout_seconds = options.default_timeout_seconds;
  worker_options.supervisor.cancel_step = options.cancel_grace;
  worker_options.runners = options.runners;
  worker_options.seen_retention = options.state_retention;
  worker_options.prune = options.prune;
  if (wanted("worker")) topology.add({"worker",
                {std::string(topics::kDispatch)},
                {std::string(worker::kInFlightStore), std::string(worker::kSeenStore)},
                1,
                512,
                [worker_options](int) {
                  return std::make_unique<worker::WorkerProcessor>(worker_options);
                }});
}

}  // namespace attune
