// The worker stage: fenced process starts, result reports, abandoned attempts after restarts.
#include "processors/worker/worker_processor.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <mutex>
#include <vector>

#include "processors/keystore/keys.h"
#include "processors/keystore/sealed.h"

namespace attune::worker {
namespace {

constexpr std::string_view kAbandonedError = "worker restarted while the action was running";

}  // namespace

Status add_secrets(runners::ActionInvocation& inv, const Dispatch& d, const WorkerOptions& options,
                   int64_t now_ms) {
  const auto names =
      keystore::secret_fields(d.action.value("param_schema", Json::object()));
  if (!inv.parameters.is_object()) inv.parameters = Json::object();
  auto sealed = d.execution.find(keystore::kSecretConfigField);
  if (sealed != d.execution.end() && sealed->is_string()) {
    if (!options.cipher) {
      return make_error(Errc::kUnavailable,
                        "secret parameters are sealed but this worker has no encryption key");
    }
    auto open = keystore::unseal_config(inv.parameters, sealed->get<std::string>(),
                                        *options.cipher, keystore::sealed_aad("execution", d.id));
    if (!open.ok()) {
      return make_error(Errc::kInternal,
                        "cannot open the execution's secret parameters: " + open.error().message);
    }
    // Everything that was sealed is secret, whatever the schema says.
    for (const auto& [k, v] : open->items()) {
      if (keystore::is_marker(inv.parameters.value(k, Json()))) {
        inv.secret_values.push_back(keystore::secret_text(v));
      }
    }
    inv.parameters = std::move(*open);
  }
  for (const auto& n : names) {
    if (auto it = inv.parameters.find(n); it != inv.parameters.end() && !it->is_null()) {
      inv.secret_values.push_back(keystore::secret_text(*it));
    }
  }
  // The pack's config (API.md §8), delivered as a file at launch; its secret fields (conf_schema
  // `secret: true`) are redacted from the output like other secrets.
  if (options.definitions != nullptr && !inv.pack_ref.empty()) {
    if (JsonPtr pack = options.definitions->get("pack", inv.pack_ref)) {
      const Json config = pack->value("config", Json::object());
      if (config.is_object() && !config.empty()) {
        for (const auto& n : keystore::secret_fields(pack->value("conf_schema", Json::object()))) {
          if (auto it = config.find(n); it != config.end() && !it->is_null()) {
            inv.secret_values.push_back(keystore::secret_text(*it));
          }
        }
        inv.pack_config = config;
      }
    }
  }
  if (options.definitions != nullptr && options.cipher) {
    auto keys = keystore::keys_for_action(*options.definitions, inv.pack_ref, inv.action_ref,
                                          now_ms, *options.cipher);
    for (const auto& e : keys.errors) {
      spdlog::error("worker: execution {}: key not injected: {}", d.id, e);
    }
    for (auto& [k, v] : keys.values.items()) {
      if (!inv.parameters.contains(k)) inv.parameters[k] = std::move(v);
    }
    for (auto& s : keys.secrets) inv.secret_values.push_back(std::move(s));
  }
  return {};
}

std::string default_worker_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "worker";
  return buf;
}

std::optional<int64_t> legacy_seen_due(std::string_view key, std::chrono::milliseconds retention) {
  int64_t id = 0;
  std::from_chars(key.data(), key.data() + key.size(), id);
  return (id > 0 ? IdGenerator::timestamp_ms(id) : 0) + retention.count();
}

WorkerProcessor::WorkerProcessor(WorkerOptions options)
    : options_(std::move(options)),
      name_(options_.name.empty() ? default_worker_name() : options_.name),
      runners_(options_.runners ? options_.runners : [&] {
        auto set = std::make_shared<runners::RunnerSet>();
        set->add("core.shell", std::make_shared<runners::ShellRunner>(options_.temp_dir));
        return std::shared_ptr<const runners::RunnerSet>(std::move(set));
      }()),
      pruner_(options_.prune, [retention = options_.seen_retention](std::string_view key,
                                                                     std::string_view) {
        return legacy_seen_due(key, retention);
      }) {}

std::optional<SystemTime> WorkerProcessor::punctuate(SystemTime now, ProcessorContext& ctx) {
  save_pids(ctx, now);
  // The pruner on its own schedule only: pid saves punctuate after every start.
  if (!prune_at_ || now >= *prune_at_) prune_at_ = pruner_.run(ctx, *seen_, now);
  std::optional<SystemTime> next = prune_at_;
  if (!unsaved_pids_.empty() && (!next || unsaved_pids_.front().first < *next)) {
    next = unsaved_pids_.front().first;
  }
  return next;
}

void WorkerProcessor::save_pids(ProcessorContext& ctx, SystemTime now) {
  while (!unsaved_pids_.empty() && unsaved_pids_.front().first <= now) {
    const std::string key = std::move(unsaved_pids_.front().second);
    unsaved_pids_.pop_front();
    auto pid = pids_.find(key);
    if (pid == pids_.end()) continue;  // finished meanwhile: its in-flight record is gone
    auto f = load(ctx, key);
    if (!f) continue;
    f->pid = pid->second;
    ctx.put(*inflight_, key, f->dump());
  }
}

WorkerProcessor::~WorkerProcessor() { close(); }

std::optional<InFlight> WorkerProcessor::load(ProcessorContext& ctx, const std::string& key) {
  auto v = ctx.get(*inflight_, key);
  if (!v.ok()) throw ProcessingError("worker: store read failed: " + v.error().message);
  if (!v->has_value()) return std::nullopt;
  return InFlight::parse(**v);
}

void WorkerProcessor::init(ProcessorContext& ctx) {
  inflight_ = &ctx.store(kInFlightStore);
  seen_ = &ctx.store(kSeenStore);
  pruner_.start(ctx);
  mailbox_ = &ctx.mailbox();
  ctx_ = &ctx;

  std::vector<std::pair<std::string, InFlight>> leftovers;
  auto st = ctx.scan(*inflight_, "", [&](std::string_view key, std::string_view value) {
    if (auto f = InFlight::parse(value)) leftovers.emplace_back(std::string(key), *f);
    return true;
  });
  if (!st.ok())
    throw std::runtime_error("worker: cannot scan in-flight attempts: " + st.error().message);
  const int64_t now = ctx.clock().now_ms();
  for (const auto& [key, f] : leftovers) {
    // The child led its own process group; a group still alive is ours to end.
    if (f.pid > 0 && ::kill(-f.pid, 0) == 0) ::kill(-f.pid, SIGKILL);
    spdlog::warn(
        "worker {}: execution {} attempt {} was running when the worker stopped; "
        "reporting it abandoned",
        name_, f.id, f.attempt);
    ctx.forward(finished_record(f.id, f.attempt, f.root, name_, "abandoned",
                                Json{{"error", kAbandonedError}}, now));
    ctx.del(*inflight_, key);
  }
  supervisor_ = std::make_unique<runners::ProcessSupervisor>(*options_.clock, options_.supervisor);
}

void WorkerProcessor::close() {
  supervisor_.reset();  // kills and reaps children; their callbacks are not invoked
  pids_.clear();
}

void WorkerProcessor::process(const Record& record, ProcessorContext& ctx) {
  Envelope e;
  std::string error;
  if (!envelope_of(record, e, error)) throw ProcessingError(error);
  if (e.type == "execution.dispatch") {
    on_dispatch(e, ctx);
  } else if (e.type == "execution.cancel") {
    on_cancel(e, ctx);
  } else {
    spdlog::debug("worker: ignoring record type {}", e.type);
  }
}

void WorkerProcessor::on_dispatch(const Envelope& e, ProcessorContext& ctx) {
  auto d = parse_dispatch(e.payload, e.id);
  if (!d.ok()) throw ProcessingError(d.error().message);
  const std::string key = attempt_key(d->id, d->attempt);
  auto seen = ctx.get(*seen_, key);
  if (!seen.ok()) throw ProcessingError("worker: store read failed: " + seen.error().message);
  if (seen->has_value()) {
    spdlog::info("worker: ignoring repeated dispatch of execution {} attempt {}", d->id,
                 d->attempt);
    return;
  }
  const int64_t now = ctx.clock().now_ms();
  expiry::schedule(ctx, *seen_, key, now + options_.seen_retention.count());
  ctx.put(*seen_, key, "1");
  runners::ActionInvocation inv = build_invocation(*d, options_.api_url, options_.default_timeout_seconds);
  if (runners_->find(inv.runtime_ref) == nullptr) {
    ctx.forward(finished_record(
        d->id, d->attempt, d->root, name_, "failed",
        Json{{"error", "runtime " + inv.runtime_ref + " is not supported by this worker"}}, now));
    return;
  }
  inv.runtime_ref = runners::canonical_runtime(inv.runtime_ref);
  if (options_.definitions != nullptr && !inv.pack_ref.empty()) {
    // Pack files run from the pack's installed directory (API.md §8).
    if (JsonPtr pack = options_.definitions->get("pack", inv.pack_ref)) {
      if (auto sp = pack->find("storage_path"); sp != pack->end() && sp->is_string()) {
        inv.pack_dir = sp->get<std::string>();
        std::error_code ec;
        if (!std::filesystem::is_directory(inv.pack_dir, ec)) {
          ctx.forward(finished_record(
              d->id, d->attempt, d->root, name_, "failed",
              Json{{"error", "the files of pack '" + inv.pack_ref + "' are not at " + inv.pack_dir +
                                 " on worker " + name_ +
                                 " (distributed mode: API and worker hosts share the pack files "
                                 "directory, --pack-files-dir)"}},
              now));
          return;
        }
      }
    }
  }
  if (auto st = add_secrets(inv, *d, options_, now); !st.ok()) {
    ctx.forward(finished_record(d->id, d->attempt, d->root, name_, "failed",
                                Json{{"error", st.error().message}}, now));
    return;
  }
  if (options_.mint_token) inv.api_token = options_.mint_token(d->execution, d->action);
  InFlight f{d->id, d->attempt, d->root, now, 0, false};
  ctx.put(*inflight_, key, f.dump());
  ctx.forward(running_record(f, name_, now));
  ctx.after_commit([this, key, inv = std::move(inv)]() mutable { admit(key, std::move(inv)); });
}

void WorkerProcessor::admit(const std::string& key, runners::ActionInvocation inv) {
  if (running_ < std::max<size_t>(1, options_.max_running) && waiting_.empty()) {
    start(key, inv);
    return;
  }
  waiting_.emplace_back(key, std::move(inv));
  if (waiting_.size() >= options_.max_waiting) ctx_->pause_input(true);
}

void WorkerProcessor::on_cancel(const Envelope& e, ProcessorContext& ctx) {
  const Json& p = e.payload;
  if (!p.is_object() || !p.value("id", Json()).is_number_integer() ||
      !p.value("attempt", Json()).is_number_integer()) {
    throw ProcessingError("execution.cancel needs integer id and attempt");
  }
  const std::string key = attempt_key(p["id"].get<int64_t>(), p["attempt"].get<int64_t>());
  auto f = load(ctx, key);
  if (!f) {
    spdlog::info("worker: cancel of {} ignored: not in flight here", key);
    return;
  }
  // Still waiting for a slot: it never starts, and its end is reported now.
  const auto waiting = std::find_if(waiting_.begin(), waiting_.end(),
                                    [&](const auto& w) { return w.first == key; });
  if (waiting != waiting_.end()) {
    waiting_.erase(waiting);
    ctx.forward(finished_record(f->id, f->attempt, f->root, name_, "cancelled",
                                Json{{"error", "Execution was cancelled before it started"}},
                                ctx.clock().now_ms()));
    ctx.del(*inflight_, key);
    if (waiting_.size() < options_.max_waiting) ctx.pause_input(false);
    return;
  }
  f->cancel_requested = true;
  ctx.put(*inflight_, key, f->dump());
  if (auto it = pids_.find(key); it != pids_.end()) {
    supervisor_->cancel(it->second);
  } else {
    cancel_before_start_.insert(key);  // the start hook has not run yet
  }
}

void WorkerProcessor::start(const std::string& key, const runners::ActionInvocation& inv) {
  if (!supervisor_) return;  // closed: the in-flight record is reported abandoned next start
  Mailbox* mailbox = mailbox_;
  ++running_;  // every path of launch() ends in exactly one finish()
  // A runner that is ready at once (shell, native, ...) launches on this thread; one that answers
  // later (an environment being built) launches from the mailbox.
  struct Gate {
    std::mutex mu;
    bool returned = false;
    std::optional<Status> early;
  };
  auto gate = std::make_shared<Gate>();
  runners_->find(inv.runtime_ref)->when_ready(inv, [this, mailbox, key, inv, gate](Status ready) {
    {
      std::lock_guard lock(gate->mu);
      if (!gate->returned) {
        gate->early = std::move(ready);
        return;
      }
    }
    mailbox->post([this, key, inv, ready = std::move(ready)](ProcessorContext&) {
      launch(key, inv, ready);
    });
  });
  std::optional<Status> early;
  {
    std::lock_guard lock(gate->mu);
    gate->returned = true;
    early = std::move(gate->early);
  }
  if (early) launch(key, inv, *early);
}

void WorkerProcessor::launch(const std::string& key, const runners::ActionInvocation& inv,
                             const Status& ready) {
  Mailbox* mailbox = mailbox_;
  auto report = [this, mailbox, key](std::string status, Json result) {
    mailbox->post([this, key, status = std::move(status),
                   result = std::move(result)](ProcessorContext& ctx) mutable {
      finish(ctx, key, std::move(status), std::move(result));
    });
  };
  if (!supervisor_) return;  // closed: the in-flight record is reported abandoned next start
  if (cancel_before_start_.erase(key) > 0) {
    report("cancelled", Json{{"error", "Execution was cancelled before it started"}});
    return;
  }
  const runners::Runner* runner = runners_->find(inv.runtime_ref);
  auto launch_failed = [&](const std::string& message) {
    runners::ProcessResult failed;
    failed.launch_error = message;
    auto outcome = runner->finish(inv, failed);
    report(std::move(outcome.status), std::move(outcome.result));
  };
  if (!ready.ok()) {
    launch_failed(ready.error().message);
    return;
  }
  auto spec = runner->prepare(inv);
  if (spec.ok() && inv.pack_config.is_object()) {
    auto file = runners::write_private_file(
        options_.temp_dir.empty() ? std::filesystem::temp_directory_path().string()
                                  : options_.temp_dir,
        "attune-pack-config-" + std::to_string(inv.execution_id), inv.pack_config.dump() + "\n");
    if (!file.ok()) {
      for (const auto& p : spec->cleanup_paths) ::unlink(p.c_str());
      spec = file.error();
    } else {
      spec->cleanup_paths.push_back(*file);
      spec->env.push_back("ATTUNE_PACK_CONFIG_FILE=" + *file);
    }
  }
  if (!spec.ok()) {
    launch_failed(spec.error().message);
    return;
  }
  auto pid = supervisor_->spawn(std::move(*spec), [report, runner, inv](runners::ProcessResult pr) {
    auto outcome = runner->finish(inv, pr);
    report(std::move(outcome.status), std::move(outcome.result));
  });
  if (!pid.ok()) {
    launch_failed(pid.error().message);
    return;
  }
  pids_[key] = *pid;
  // The pid goes into the in-flight record (a restart kills the process group) once the process
  // has run for kPidSaveDelay: most actions end before, and their end is then the only write
  // after the start (a process that ended before a restart needs no kill).
  const SystemTime due = ctx_->clock().now() + kPidSaveDelay;
  unsaved_pids_.emplace_back(due, key);
  ctx_->request_punctuate(due);
}

void WorkerProcessor::finish(ProcessorContext& ctx, const std::string& key, std::string status,
                             Json result) {
  pids_.erase(key);
  if (running_ > 0) --running_;
  auto f = load(ctx, key);  // may throw: nothing below has happened then
  if (!f) {
    spdlog::warn("worker: finished report for {} has no in-flight record; dropped", key);
  } else {
    ctx.forward(finished_record(f->id, f->attempt, f->root, name_, status, std::move(result),
                                ctx.clock().now_ms()));
    ctx.del(*inflight_, key);
  }
  // A slot is free: the oldest waiting attempt starts (after this transaction, like any start).
  if (!waiting_.empty()) {
    auto next = std::move(waiting_.front());
    waiting_.pop_front();
    ctx.after_commit([this, next = std::move(next)]() mutable {
      start(next.first, next.second);
      if (waiting_.size() < options_.max_waiting) ctx_->pause_input(false);
    });
  }
}

}  // namespace attune::worker
