// The worker stage (DESIGN.md §3, §4): consumes attune.dispatch, runs each attempt through a
// runner under a ProcessSupervisor and reports running/finished on attune.results.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "processors/keystore/cipher.h"
#include "processors/worker/invocation.h"
#include "runners/process_supervisor.h"
#include "runners/shell_runner.h"
#include "topology/definitions_table.h"
#include "topology/store_expiry.h"
#include "topology/topology.h"

namespace attune::worker {

inline constexpr std::string_view kInFlightStore = "inflight";
inline constexpr std::string_view kSeenStore = "seen";

struct WorkerOptions {
  std::string name;                               // reported as `worker`; empty ⇒ the host name
  std::string api_url;                            // ATTUNE_API_URL for actions (without /api/v1)
  const Clock* clock = &SystemClock::instance();  // stamps process durations; must outlive us
  runners::SupervisorOptions supervisor;  // cancel_step: the cancel grace (SIGINT→SIGTERM→SIGKILL)
  // The timeout of an action whose execution and definition set none (API.md §11.5).
  int64_t default_timeout_seconds = kDefaultTimeoutSeconds;
  std::string temp_dir;  // parameter files; empty ⇒ the system temp directory
  // The runners by runtime; null ⇒ core.shell only (a ShellRunner on temp_dir). Dispatches of a
  // runtime without a runner fail at once with "runtime X is not supported by this worker".
  std::shared_ptr<const runners::RunnerSet> runners;
  // Secrets (API.md §11.4). With both set, sealed secret parameters are opened and the keys of
  // the action's pack and of the action are decrypted into the parameter document (a same-named
  // parameter wins); all of them are redacted from the captured output.
  const DefinitionsTable* definitions = nullptr;
  std::shared_ptr<const keystore::Cipher> cipher;
  // The execution token for ATTUNE_API_TOKEN (API.md §11.4, §4.3), or nullopt for none. Called on
  // the stage thread with the execution and the action of a dispatch.
  std::function<std::optional<std::string>(const Json& execution, const Json& action)> mint_token;
  // At most this many action processes at once. Further dispatches wait in order in the worker
  // (already recorded in flight and reported running, so a crash reports them abandoned). Once
  // max_waiting wait, the worker reads no more of its dispatch topic until one starts: a flood of
  // long actions leaves its backlog in the log instead of starting thousands of processes or
  // queueing without bound. (Cancels share that topic: below max_waiting they are read at once.)
  size_t max_running = 64;
  size_t max_waiting = 1024;
  // Bounded `seen` store (issue 13). An (execution, attempt) entry matters only against a repeat
  // of the same dispatch record: one redelivered after a crash (Kafka; the embedded log never
  // redelivers a committed record), which comes right after a restart. A new attempt of the same
  // execution is a new key. So the entry is deleted this long after the dispatch was taken, by
  // the stage's punctuate() in its own transaction. (`inflight` needs no pruning: its entries
  // are deleted when the attempt's end is reported.)
  std::chrono::milliseconds seen_retention{std::chrono::hours(1)};
  expiry::PruneSchedule prune;
};

// The due time of a `seen` entry written by a build without expiry entries: the execution id
// in its key (<id>/<attempt>) was minted just before the dispatch.
std::optional<int64_t> legacy_seen_due(std::string_view key, std::chrono::milliseconds retention);

// Adds what only the worker may know to an invocation: opened sealed parameters, the action's
// keys, the values to redact. An error (a seal that does not open) fails the attempt.
Status add_secrets(runners::ActionInvocation& inv, const Dispatch& d, const WorkerOptions& options,
                   int64_t now_ms);

// The host name, or "worker" when it cannot be read.
std::string default_worker_name();

// Fencing (DESIGN.md §4): a dispatch is recorded in-flight and `result.running` is produced in
// one transaction; the process starts only in ctx.after_commit, once that is durable. The
// process's end is posted to the stage's mailbox, which reports `result.finished` and removes
// the in-flight record in one transaction. At init, in-flight records left by a previous run
// (a crash or close()) are killed if still alive and reported `abandoned`.
//
// Dispatches are deduped by (id, attempt) in the `seen` store. A `execution.cancel` {id, attempt}
// cancels the attempt's process (SIGINT, SIGTERM, SIGKILL); its finished report follows.
// Everything runs on the stage thread except the supervisor's exit callbacks, which only post
// to the mailbox.
class WorkerProcessor final : public Processor {
 public:
  explicit WorkerProcessor(WorkerOptions options);
  ~WorkerProcessor() override;

  void init(ProcessorContext& ctx) override;
  void process(const Record& record, ProcessorContext& ctx) override;
  std::optional<SystemTime> punctuate(SystemTime now, ProcessorContext& ctx) override;
  // Stops the supervisor, killing running children; their in-flight records stay for the next
  // start to report abandoned.
  void close() override;

 private:
  void on_dispatch(const Envelope& e, ProcessorContext& ctx);
  void on_cancel(const Envelope& e, ProcessorContext& ctx);
  // Starts the attempt now if a slot is free, else queues it (and pauses the stage's input).
  void admit(const std::string& key, runners::ActionInvocation inv);
  void start(const std::string& key, const runners::ActionInvocation& inv);
  // Mailbox task: the runner is ready (or failed to get ready); spawn the process.
  void launch(const std::string& key, const runners::ActionInvocation& inv, const Status& ready);
  // Mailbox task: report the end of an attempt and forget it.
  void finish(ProcessorContext& ctx, const std::string& key, std::string status, Json result);
  std::optional<InFlight> load(ProcessorContext& ctx, const std::string& key);

  const WorkerOptions options_;
  const std::string name_;
  const std::shared_ptr<const runners::RunnerSet> runners_;
  std::unique_ptr<runners::ProcessSupervisor> supervisor_;
  Mailbox* mailbox_ = nullptr;
  state::Store* inflight_ = nullptr;
  state::Store* seen_ = nullptr;
  // Stage-thread only: pids of started attempts, and attempts cancelled before their start.
  std::unordered_map<std::string, int> pids_;
  std::set<std::string> cancel_before_start_;
  // Stage-thread only: attempts started and not yet finished, and those waiting for a slot.
  size_t running_ = 0;
  std::deque<std::pair<std::string, runners::ActionInvocation>> waiting_;
  ProcessorContext* ctx_ = nullptr;
  expiry::Pruner pruner_;
  // Stage-thread only: started attempts whose pid is not in their in-flight record yet, with the
  // time it is written if the process still runs then (punctuate), in start order.
  static constexpr std::chrono::milliseconds kPidSaveDelay{20};
  std::deque<std::pair<SystemTime, std::string>> unsaved_pids_;
  void save_pids(ProcessorContext& ctx, SystemTime now);
  std::optional<SystemTime> prune_at_;  // when the pruner asked to run next
};

}  // namespace attune::worker
