// Custom sensor processes: desired set from the definitions, supervision, backoff, logs, events.
#include "processors/sensor/sensor_manager.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>

#include "runners/environments.h"
#include "runners/process_supervisor.h"
#include "topology/core/time.h"

namespace attune::sensor {

namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxLine = 1 << 20;

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

std::string runtime_of(const Json& sensor) {
  std::string r = sensor.value("runtime_ref", Json("")).is_string()
                      ? sensor.value("runtime_ref", std::string())
                      : std::string();
  if (r.empty() && sensor.value("runner_type", Json("")).is_string()) {
    r = sensor.value("runner_type", std::string());
  }
  if (r == "core.shell" || r == "shell" || r == "sh" || r == "bash" || r.empty()) return "shell";
  if (r == "core.python" || r == "python" || r == "python3") return "python";
  if (r == "core.nodejs" || r == "nodejs" || r == "node") return "nodejs";
  if (r == "core.native" || r == "native") return "native";
  return r;
}

std::string env_key(std::string_view key) {
  std::string out;
  for (char c : key) {
    out += std::isalnum(static_cast<unsigned char>(c))
               ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
               : '_';
  }
  return out;
}

// Whether posix_spawn would find `program` (a path, or a name on this process's PATH).
bool findable(const std::string& program) {
  if (program.find('/') != std::string::npos) return ::access(program.c_str(), X_OK) == 0;
  const std::string path = env_or("PATH", "/usr/local/bin:/usr/bin:/bin");
  size_t start = 0;
  while (start <= path.size()) {
    const size_t colon = std::min(path.find(':', start), path.size());
    const std::string dir = colon > start ? path.substr(start, colon - start) : ".";
    if (::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
    start = colon + 1;
  }
  return false;
}

class Ring {
 public:
  explicit Ring(size_t cap = 0) : cap_(cap) {}
  void append(std::string_view s) {
    total_ += s.size();
    data_.append(s);
    if (data_.size() > cap_ + cap_ / 2) data_.erase(0, data_.size() - cap_);
  }
  std::string tail() const {
    return data_.size() > cap_ ? data_.substr(data_.size() - cap_) : data_;
  }
  size_t total() const { return total_; }

 private:
  size_t cap_;
  size_t total_ = 0;
  std::string data_;
};

}  // namespace

std::string sensor_identity_login(std::string_view sensor_ref) {
  return "sensor:" + std::string(sensor_ref);
}

std::vector<std::string> default_argv_prefix() {
  constexpr const char* kSetpriv = "/usr/bin/setpriv";
  if (::access(kSetpriv, X_OK) != 0) return {};
  return {kSetpriv, "--pdeathsig", "KILL", "--"};
}

bool is_builtin_sensor(const Json& sensor) {
  return sensor.value("builtin", false) || sensor.value("ref", "") == "core.timer_sensor";
}

// One sensor's supervision state. Guarded by SensorManager::mu_.
struct SensorManager::Proc {
  std::string ref;
  Json def;
  Json triggers = Json::array();  // ATTUNE_SENSOR_TRIGGERS
  std::string fingerprint;        // def + triggers: a change restarts the process
  bool desired = false;
  std::string idle_reason;
  std::string state = "stopped";  // stopped | running | stopping | backoff | failed
  int pid = 0;
  uint64_t generation = 0;
  int64_t started_at = 0;
  int64_t next_restart_at = 0;  // 0 = none
  bool restart_now = false;     // restart without backoff once the current process exits
  int restarts = 0;
  int consecutive_failures = 0;
  std::optional<int> last_exit_code;
  int last_signal = 0;
  std::string last_error;
  int64_t events_emitted = 0, events_rejected = 0;
  Ring out, err;
  std::string partial;  // stdout bytes after the last newline
};

runners::SupervisorOptions SensorManager::supervisor_options() const {
  runners::SupervisorOptions sup;
  sup.cancel_step = options_.stop_grace;
  return sup;
}

SensorManager::SensorManager(SensorManagerOptions options) : options_(std::move(options)) {
  if (options_.definitions == nullptr) {
    throw std::invalid_argument("SensorManager needs a DefinitionsTable");
  }
  supervisor_ = std::make_unique<runners::ProcessSupervisor>(*options_.clock, supervisor_options());
}

SensorManager::~SensorManager() { supervisor_.reset(); }

void SensorManager::attach(Mailbox& mailbox) { mailbox_ = &mailbox; }

void SensorManager::reconcile(int64_t now_ms) {
  const DefinitionsTable& table = *options_.definitions;
  std::lock_guard lock(mu_);
  std::set<std::string> seen;
  for (const JsonPtr& sensor : table.list("sensor")) {
    if (is_builtin_sensor(*sensor)) continue;
    const std::string ref = sensor->value("ref", "");
    seen.insert(ref);
    Json triggers = Json::array();
    for (const auto& t : sensor->value("trigger_types", Json::array())) {
      if (!t.is_string()) continue;
      for (const JsonPtr& rule : table.rules_for_trigger(t.get<std::string>())) {
        if (!rule->value("enabled", true)) continue;
        triggers.push_back(Json{{"trigger_ref", t},
                                {"rule_id", (*rule)["id"]},
                                {"rule_ref", (*rule)["ref"]},
                                {"config", rule->value("trigger_params", Json::object())}});
      }
    }
    auto& slot = procs_[ref];
    if (!slot) {
      slot = std::make_shared<Proc>();
      slot->ref = ref;
      slot->out = Ring(options_.log_bytes);
      slot->err = Ring(options_.log_bytes);
    }
    Proc& p = *slot;
    p.def = *sensor;
    const bool enabled = sensor->value("enabled", true);
    p.desired = enabled && !triggers.empty();
    p.idle_reason = !enabled ? "sensor is disabled" : "no enabled rule uses its trigger types";
    const std::string fingerprint = sensor->dump() + triggers.dump();
    const bool changed = fingerprint != p.fingerprint;
    p.triggers = std::move(triggers);
    p.fingerprint = fingerprint;
    if (!p.desired) {
      p.next_restart_at = 0;
      if (p.pid != 0) stop(p);
      if (p.pid == 0) p.state = "stopped";
      continue;
    }
    if (p.pid != 0) {
      if (changed && p.state == "running") {
        spdlog::info("sensor {}: definition or rules changed, restarting", ref);
        p.restart_now = true;
        stop(p);
      }
      continue;
    }
    if (p.next_restart_at == 0 || changed) start(p, now_ms);  // else waiting out a backoff
  }
  for (auto& [ref, p] : procs_) {
    if (seen.count(ref) || !p->desired) continue;
    p->desired = false;  // the sensor was deleted
    p->idle_reason = "sensor deleted";
    p->next_restart_at = 0;
    if (p->pid != 0) stop(*p);
    if (p->pid == 0) p->state = "stopped";
  }
  changed();
}

void SensorManager::start(Proc& p, int64_t now_ms) {
  const DefinitionsTable& table = *options_.definitions;
  p.next_restart_at = 0;
  p.restart_now = false;
  const Json& def = p.def;
  const std::string runtime = runtime_of(def);
  std::string entry = def.value("entrypoint", Json("")).is_string()
                          ? def.value("entrypoint", std::string())
                          : std::string();
  if (entry.empty() && def.value("entry_point", Json("")).is_string()) {
    entry = def.value("entry_point", std::string());
  }
  // A pack file (under the pack's sensors/ directory) or inline code.
  std::string file;
  std::string pack_dir;
  const std::string pack_ref = def.value("pack_ref", "");
  if (JsonPtr pack = table.get("pack", pack_ref)) {
    const Json sp = pack->value("storage_path", Json(nullptr));
    if (sp.is_string()) pack_dir = sp.get<std::string>();
    if (sp.is_string() && !sp.get<std::string>().empty() && entry.find('\n') == std::string::npos) {
      std::error_code ec;
      for (const fs::path& cand : {fs::path(sp.get<std::string>()) / "sensors" / entry,
                                   fs::path(sp.get<std::string>()) / entry}) {
        if (fs::is_regular_file(cand, ec)) {
          file = cand.string();
          break;
        }
      }
    }
  }
  if (file.empty() && !entry.empty() && entry[0] == '/' && entry.find('\n') == std::string::npos) {
    std::error_code ec;
    if (fs::is_regular_file(entry, ec)) file = entry;
  }
  runners::ProcessSpec spec;
  if (entry.empty()) {
    p.last_error = "sensor has no entrypoint";
  } else if (runtime == "shell") {
    spec.argv = file.empty() ? std::vector<std::string>{"/bin/sh", "-c", entry}
                             : std::vector<std::string>{"/bin/sh", file};
  } else if (runtime == "python") {
    spec.argv = file.empty() ? std::vector<std::string>{"python3", "-u", "-c", entry}
                             : std::vector<std::string>{"python3", "-u", file};
  } else if (runtime == "nodejs") {
    spec.argv = file.empty() ? std::vector<std::string>{"node", "-e", entry}
                             : std::vector<std::string>{"node", file};
  } else if (runtime == "native") {
    if (file.empty()) {
      p.last_error = "native sensor entrypoint '" + entry + "' is not an existing file";
    } else {
      spec.argv = {file};
    }
  } else {
    p.last_error = "unsupported sensor runtime '" + runtime + "'";
  }
  // The pack's environment (python virtualenv / node_modules), when it has one.
  std::map<std::string, std::string> pack_env;
  if (options_.environments && !pack_dir.empty() && !spec.argv.empty() &&
      (runtime == "python" || runtime == "nodejs")) {
    const std::string runtime_ref = runtime == "python" ? "core.python" : "core.nodejs";
    auto resolved = options_.environments->resolve(pack_ref, pack_dir, runtime_ref);
    if (!resolved.ok()) {
      p.last_error = resolved.error().message;
      if (resolved.error().code == Errc::kNotFound) {
        // Not built yet: start (or join) the build and look again soon.
        options_.environments->when_ready(pack_ref, pack_dir, runtime_ref, [](Status) {});
        p.state = "backoff";
        p.next_restart_at = now_ms + options_.environment_retry.count();
        if (mailbox_) {
          const int64_t at = p.next_restart_at;
          mailbox_->post([at](ProcessorContext& ctx) { ctx.request_punctuate(from_ms(at)); });
        }
        spdlog::info("sensor {} waits for the environment of pack {}", p.ref, pack_ref);
        changed();
        return;
      }
      spec.argv.clear();
    } else if (runtime == "python" && !resolved->dir.empty()) {
      spec.argv[0] = resolved->python;
      pack_env["VIRTUAL_ENV"] = resolved->dir;
      pack_env["PATH"] = resolved->dir + "/bin:" + env_or("PATH", "/usr/local/bin:/usr/bin:/bin");
    } else if (runtime == "nodejs" && !resolved->node_modules.empty()) {
      pack_env["NODE_PATH"] = resolved->node_modules;
    }
  }
  if (spec.argv.empty()) {
    p.state = "failed";
    spdlog::warn("sensor {} cannot start: {}", p.ref, p.last_error);
    schedule_retry(p, now_ms);
    changed();
    return;
  }
  if (!file.empty()) spec.working_dir = fs::path(file).parent_path().string();
  // Behind a prefix a missing program would be the prefix's exit code: report it as a launch
  // failure, as without one.
  if (!options_.argv_prefix.empty()) {
    if (!findable(spec.argv[0])) {
      p.state = "failed";
      p.last_error = "cannot start: program '" + spec.argv[0] + "' not found in PATH";
      spdlog::warn("sensor {} {}", p.ref, p.last_error);
      schedule_retry(p, now_ms);
      changed();
      return;
    }
    spec.argv.insert(spec.argv.begin(), options_.argv_prefix.begin(), options_.argv_prefix.end());
  }

  std::map<std::string, std::string> env = {
      {"PATH", env_or("PATH", "/usr/local/bin:/usr/bin:/bin")},
      {"HOME", env_or("HOME", "/")},
      {"LANG", "C.UTF-8"},
      {"PYTHONUNBUFFERED", "1"},
  };
  const Json config = def.value("config", Json::object());
  if (config.is_object()) {
    for (const auto& [k, v] : config.items()) {
      env["ATTUNE_SENSOR_CONFIG_" + env_key(k)] = v.is_string() ? v.get<std::string>() : v.dump();
    }
  }
  env["ATTUNE_API_URL"] = options_.api_url;
  env["ATTUNE_NOTIFIER_WS_URL"] = options_.notifier_ws_url;
  env["ATTUNE_PACK_REF"] = pack_ref;
  env["ATTUNE_SENSOR_REF"] = p.ref;
  env["ATTUNE_SENSOR_ID"] = std::to_string(def.value("id", int64_t{0}));
  env["ATTUNE_SENSOR_TRIGGERS"] = p.triggers.dump();
  for (const auto& [k, v] : pack_env) env[k] = v;
  if (options_.mint_token) {
    JsonPtr identity = table.get("identity", sensor_identity_login(p.ref));
    std::optional<std::string> token;
    if (identity) token = options_.mint_token(def, (*identity)["id"].get<int64_t>());
    if (token) {
      env["ATTUNE_API_TOKEN"] = *token;
    } else {
      spdlog::warn("sensor {}: no identity '{}', starting without ATTUNE_API_TOKEN", p.ref,
                   sensor_identity_login(p.ref));
    }
  }
  for (const auto& [k, v] : env) spec.env.push_back(k + "=" + v);

  const uint64_t generation = ++p.generation;
  std::shared_ptr<Proc> self = procs_.at(p.ref);
  spec.on_output = [this, self, generation](int stream, std::string_view chunk) {
    on_output(self, generation, stream, chunk);
  };
  auto pid = supervisor_->spawn(std::move(spec), [this, self, generation](runners::ProcessResult r) {
    on_exit(self, generation, r.exit_code.value_or(-1), r.term_signal, r.launch_error);
  });
  if (!pid.ok()) {
    p.state = "failed";
    p.last_error = "cannot start: " + pid.error().message;
    spdlog::warn("sensor {} cannot start: {}", p.ref, pid.error().message);
    schedule_retry(p, now_ms);
    changed();
    return;
  }
  p.pid = *pid;
  p.state = "running";
  p.started_at = now_ms;
  p.partial.clear();
  spdlog::info("sensor {} started (pid {}, {} rule(s))", p.ref, p.pid, p.triggers.size());
  changed();
}

void SensorManager::changed() const {
  if (on_change_) on_change_();
}

void SensorManager::set_on_change(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  on_change_ = std::move(fn);
}

void SensorManager::stop(Proc& p) {
  if (p.pid == 0) return;
  p.state = "stopping";
  supervisor_->cancel(p.pid);
  changed();
}

void SensorManager::schedule_retry(Proc& p, int64_t now_ms) {
  ++p.consecutive_failures;
  const int shift = std::min(p.consecutive_failures - 1, 20);
  const int64_t delay = std::min<int64_t>(options_.backoff_initial.count() << shift,
                                          options_.backoff_max.count());
  p.next_restart_at = now_ms + delay;
  if (mailbox_) {
    const int64_t at = p.next_restart_at;
    mailbox_->post([at](ProcessorContext& ctx) { ctx.request_punctuate(from_ms(at)); });
  }
}

void SensorManager::on_output(const std::shared_ptr<Proc>& p, uint64_t generation, int stream,
                              std::string_view chunk) {
  std::vector<Json> events;
  {
    std::lock_guard lock(mu_);
    if (p->generation != generation) return;
    (stream == 0 ? p->out : p->err).append(chunk);
    changed();
    if (stream != 0) return;
    p->partial.append(chunk);
    size_t start = 0;
    for (size_t nl; (nl = p->partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(p->partial.data() + start, nl - start);
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
      if (line.empty() || line.front() != '{') continue;
      Json j = Json::parse(line, nullptr, false);
      if (j.is_object()) events.push_back(std::move(j));
    }
    p->partial.erase(0, start);
    if (p->partial.size() > kMaxLine) p->partial.clear();  // a runaway line is not an event
  }
  if (!mailbox_) return;
  for (auto& e : events) {
    mailbox_->post([this, ref = p->ref, e = std::move(e)](ProcessorContext& ctx) {
      const std::string rejected = produce(ref, e, ctx);
      std::lock_guard lock(mu_);
      auto it = procs_.find(ref);
      if (it == procs_.end()) return;
      if (rejected.empty()) {
        ++it->second->events_emitted;
      } else {
        ++it->second->events_rejected;
        it->second->err.append("attune: event rejected: " + rejected + "\n");
        spdlog::warn("sensor {}: event rejected: {}", ref, rejected);
      }
    });
  }
}

void SensorManager::on_exit(const std::shared_ptr<Proc>& p, uint64_t generation, int exit_code,
                            int signal, const std::string& error) {
  std::lock_guard lock(mu_);
  if (p->generation != generation) return;
  const int64_t now = options_.clock->now_ms();
  changed();
  p->pid = 0;
  p->last_exit_code = signal == 0 ? std::optional<int>(exit_code) : std::nullopt;
  p->last_signal = signal;
  if (!error.empty()) p->last_error = error;
  if (!p->desired) {
    p->state = "stopped";
    spdlog::info("sensor {} stopped", p->ref);
    return;
  }
  if (p->restart_now) {
    p->restart_now = false;
    p->next_restart_at = now;
    p->state = "backoff";
  } else {
    if (now - p->started_at >= options_.stable_after.count()) p->consecutive_failures = 0;
    p->last_error = signal != 0 ? "exited on signal " + std::to_string(signal)
                                : "exited with code " + std::to_string(exit_code);
    p->state = "backoff";
    ++p->restarts;
    schedule_retry(*p, now);
    spdlog::warn("sensor {} {}; restarting in {} ms", p->ref, p->last_error,
                 p->next_restart_at - now);
    return;
  }
  ++p->restarts;
  if (mailbox_) {
    mailbox_->post([now](ProcessorContext& ctx) { ctx.request_punctuate(from_ms(now)); });
  }
}

std::optional<int64_t> SensorManager::on_punctuate(int64_t now_ms) {
  std::lock_guard lock(mu_);
  std::optional<int64_t> next;
  for (auto& [ref, p] : procs_) {
    if (p->desired && p->pid != 0 && p->state == "running" &&
        now_ms - p->started_at >= options_.token_refresh.count()) {
      spdlog::info("sensor {}: renewing its token (restart)", ref);
      p->restart_now = true;
      stop(*p);
    }
    if (p->desired && p->pid == 0 && p->next_restart_at != 0) {
      if (p->next_restart_at <= now_ms) {
        start(*p, now_ms);
      }
    }
    if (p->desired && p->pid == 0 && p->next_restart_at != 0) {
      next = next ? std::min(*next, p->next_restart_at) : p->next_restart_at;
    }
    if (p->desired && p->pid != 0) {
      const int64_t renew = p->started_at + options_.token_refresh.count();
      next = next ? std::min(*next, renew) : renew;
    }
  }
  return next;
}

void SensorManager::release() {
  std::lock_guard lock(mu_);
  for (auto& [ref, p] : procs_) {
    p->desired = false;
    p->idle_reason = "this process no longer owns the sensor stage";
    p->next_restart_at = 0;
    if (p->pid != 0) stop(*p);
  }
  changed();
}

void SensorManager::stop_all() {
  {
    std::lock_guard lock(mu_);
    for (auto& [ref, p] : procs_) {
      p->desired = false;
      if (p->pid != 0) stop(*p);
    }
  }
  // Give them their grace (SIGINT, then SIGTERM), then the supervisor kills what is left.
  const auto deadline = std::chrono::steady_clock::now() + 2 * options_.stop_grace;
  while (supervisor_->running() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // shutdown only
  }
  supervisor_.reset();
  supervisor_ = std::make_unique<runners::ProcessSupervisor>(*options_.clock, supervisor_options());
}

Json SensorManager::status(const std::string& ref) const {
  std::lock_guard lock(mu_);
  auto it = procs_.find(ref);
  if (it == procs_.end()) return not_started_status();
  return status_of(*it->second);
}

Json SensorManager::status_of(const Proc& p) const {
  Json s = {{"state", p.state},
            {"pid", p.pid != 0 ? Json(p.pid) : Json(nullptr)},
            {"started_at", p.started_at != 0 && p.pid != 0 ? Json(format_rfc3339_ms(p.started_at))
                                                           : Json(nullptr)},
            {"restarts", p.restarts},
            {"consecutive_failures", p.consecutive_failures},
            {"last_exit_code", p.last_exit_code ? Json(*p.last_exit_code) : Json(nullptr)},
            {"last_signal", p.last_signal != 0 ? Json(p.last_signal) : Json(nullptr)},
            {"last_error", p.last_error.empty() ? Json(nullptr) : Json(p.last_error)},
            {"next_restart_at", p.next_restart_at != 0 && p.pid == 0
                                    ? Json(format_rfc3339_ms(p.next_restart_at))
                                    : Json(nullptr)},
            {"events_emitted", p.events_emitted},
            {"events_rejected", p.events_rejected},
            {"rules", p.triggers.size()}};
  if (!p.desired) s["reason"] = p.idle_reason;
  return s;
}

std::vector<SensorSnapshot> SensorManager::snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<SensorSnapshot> out;
  out.reserve(procs_.size());
  for (const auto& [ref, p] : procs_) {
    out.push_back(SensorSnapshot{ref, status_of(*p), p->out.tail(), p->err.tail(), p->out.total(),
                                 p->err.total()});
  }
  return out;
}

std::optional<std::string> SensorManager::log(const std::string& ref, int stream) const {
  std::lock_guard lock(mu_);
  auto it = procs_.find(ref);
  if (it == procs_.end()) return std::nullopt;
  return stream == 0 ? it->second->out.tail() : it->second->err.tail();
}

std::string SensorManager::produce(const std::string& sensor_ref, const Json& line,
                                   ProcessorContext& ctx) {
  const DefinitionsTable& table = *options_.definitions;
  JsonPtr sensor = table.get("sensor", sensor_ref);
  if (!sensor) return "sensor no longer exists";
  const Json types = sensor->value("trigger_types", Json::array());
  std::string trigger_ref;
  if (auto t = line.find("trigger_ref"); t != line.end() && t->is_string()) {
    trigger_ref = t->get<std::string>();
  } else if (auto t2 = line.find("trigger"); t2 != line.end() && (t2->is_string() || t2->is_number())) {
    trigger_ref = t2->is_string() ? t2->get<std::string>() : std::to_string(t2->get<int64_t>());
  } else if (types.is_array() && types.size() == 1 && types[0].is_string()) {
    trigger_ref = types[0].get<std::string>();
  } else {
    return "no trigger_ref (the sensor has several trigger types)";
  }
  JsonPtr trigger = table.resolve("trigger", trigger_ref);
  if (!trigger) return "trigger '" + trigger_ref + "' not found";
  const std::string ref = (*trigger)["ref"];
  bool allowed = false;
  for (const auto& t : types) allowed = allowed || t == ref;
  if (!allowed) return "trigger '" + ref + "' is not one of the sensor's trigger_types";
  if (!trigger->value("enabled", true)) return "Trigger '" + ref + "' is disabled";
  JsonPtr rule;
  if (auto r = line.find("rule_ref"); r != line.end() && r->is_string()) {
    rule = table.resolve("rule", r->get<std::string>());
    if (!rule) return "rule '" + r->get<std::string>() + "' not found";
  }
  const int64_t id = ctx.ids().next();
  const int64_t now_ms = ctx.clock().now_ms();
  const std::string now = format_rfc3339_ms(now_ms);
  Json event = {{"id", id},
                {"trigger", (*trigger)["id"]},
                {"trigger_ref", ref},
                {"config", line.value("config", Json(nullptr))},
                {"payload", line.value("payload", Json(nullptr))},
                {"source", (*sensor)["id"]},
                {"source_ref", sensor_ref},
                {"rule", rule ? (*rule)["id"] : Json(nullptr)},
                {"rule_ref", rule ? (*rule)["ref"] : Json(nullptr)},
                {"created", now},
                {"updated", now},
                {"defs_offset", ctx.log().end_offset({std::string(topics::kDefinitions), 0})}};
  Envelope env{"event.created", id, "event:" + std::to_string(id), now_ms, "sensor",
               std::move(event)};
  ctx.forward(topics::kEvents, ref, env.dump());
  return {};
}

}  // namespace attune::sensor
