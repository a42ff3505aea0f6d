#include "api/cli/serve.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "api/auth/jwt.h"
#include "api/auth/secrets.h"
#include "api/notifier/notifier.h"
#include "api/projections/projections.h"
#include "api/rest/router.h"
#include "api/rest/server.h"
#include "api/service/consistency.h"
#include "api/service/metrics.h"
#include "api/service/service.h"
#include "processors/keystore/cipher.h"
#include "processors/pipeline.h"
#include "runners/runner_set.h"
#include "processors/sensor/sensor_manager.h"
#include "processors/sensor/sensor_processor.h"
#include "processors/sensor/sensor_status.h"
#include "topology/definitions_table.h"
#include "processors/monitor/monitor_processor.h"
#include "processors/monitor/node_claim.h"
#include "processors/monitor/workers.h"
#include "processors/worker/worker_processor.h"
#include "api/service/distributed.h"
#include "topology/embedded_log.h"
#include "topology/kafka_log.h"
#include "topology/runtime.h"

namespace attune::cli {

namespace {

// Records the worker and the projections may have left to apply before the rules stage holds.
constexpr int64_t kAdmissionBacklog = 4096;

int fail(const std::string& message) {
  std::fprintf(stderr, "attune: %s\n", message.c_str());
  spdlog::critical("{}", message);
  return 1;
}

std::string env_or(const char* a, const char* b = nullptr) {
  if (const char* v = std::getenv(a); v && *v) return v;
  if (b) {
    if (const char* v = std::getenv(b); v && *v) return v;
  }
  return {};
}

std::string url_host(const std::string& host) {
  if (host == "0.0.0.0") return "127.0.0.1";
  if (host == "::") return "[::1]";
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

// <directory of this binary>/console: where `bash cmake/dev.sh build` puts the web console.
std::string default_console_dir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("console") : (exe.parent_path() / "console").string();
}

// Whether this change moved an execution into a terminal status.
bool finished_now(const projections::Change& c) {
  const auto status = [](const Json& row) {
    const auto it = row.is_object() ? row.find("status") : row.end();
    return it != row.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  return projections::is_terminal_execution_status(status(c.new_row)) &&
         !projections::is_terminal_execution_status(status(c.old_row));
}

// API.md §17.4 payloads from projection changes. Payloads never carry results or secrets.
std::optional<notifier::Notification> to_notification(const projections::Change& c) {
  notifier::Notification n;
  n.entity_type = c.entity_type;
  n.entity_id = c.id;
  const Json& row = c.new_row;
  auto field = [&](const char* k) { return row.contains(k) ? row[k] : Json(nullptr); };
  n.trigger_ref = row.value("trigger_ref", Json("")).is_string() ? row.value("trigger_ref", "") : "";
  const projections::Entity entity = projections::entity_of(c.entity_type);
  // Inquiries carry their execution's scope: a subscriber sees them iff it may read that.
  n.scope = projections::record_scope(entity, row);
  if (c.entity_type == "inquiry") {
    const Json old_status = c.old_row.is_object() ? c.old_row.value("status", Json(nullptr))
                                                  : Json(nullptr);
    const Json status = row.value("status", Json(nullptr));
    if (c.old_row.is_null()) {
      n.notification_type = "inquiry_created";
    } else if (old_status == status) {
      return std::nullopt;  // a PUT of the prompt, assignment or deadline
    } else if (status == "responded") {
      n.notification_type = "inquiry_responded";
    } else if (status == "timeout") {
      n.notification_type = "inquiry_timeout";
    } else {
      return std::nullopt;  // cancelled: no channel in §17.4
    }
    n.payload = {{"id", c.id},
                 {"execution", field("execution")},
                 {"created_by_execution", field("created_by_execution")},
                 {"workflow_execution", field("workflow_execution")},
                 {"workflow_task_name", field("workflow_task_name")},
                 {"status", status},
                 {"timeout_at", field("timeout_at")},
                 {"responded_at", field("responded_at")},
                 {"created", field("created")},
                 {"updated", field("updated")}};
    return n;
  }
  if (c.entity_type == "execution") {
    const Json old_status = c.old_row.is_object() ? c.old_row.value("status", Json(nullptr))
                                                  : Json(nullptr);
    if (!c.old_row.is_null() && old_status == row.value("status", Json(nullptr))) {
      return std::nullopt;  // no status change
    }
    n.notification_type = c.old_row.is_null() ? "execution_created" : "execution_status_changed";
    n.payload = {{"entity_type", "execution"}, {"entity_id", c.id},
                 {"id", c.id},                 {"action_id", field("action")},
                 {"action_ref", field("action_ref")}, {"status", field("status")},
                 {"old_status", old_status},   {"enforcement", field("enforcement")},
                 {"rule_ref", field("rule_ref")}, {"trigger_ref", field("trigger_ref")},
                 {"parent", field("parent")},  {"started_at", field("started_at")},
                 {"workflow_task", field("workflow_task")}, {"created", field("created")},
                 {"updated", field("updated")}, {"auth_mode", "full"}};
    if (n.payload.dump().size() > 7000) {
      n.payload.erase("workflow_task");
      n.payload["auth_mode"] = "compact";
    }
    return n;
  }
  if (c.entity_type == "event") {
    if (!c.old_row.is_null()) return std::nullopt;
    n.notification_type = "event_created";
    n.payload = {{"id", c.id},
                 {"trigger", field("trigger")},
                 {"trigger_ref", field("trigger_ref")},
                 {"source_ref", field("source_ref")},
                 {"rule", field("rule")},
                 {"rule_ref", field("rule_ref")},
                 {"created", field("created")}};
    return n;
  }
  if (c.entity_type == "enforcement") {
    const Json old_status = c.old_row.is_object() ? c.old_row.value("status", Json(nullptr))
                                                  : Json(nullptr);
    if (!c.old_row.is_null() && old_status == row.value("status", Json(nullptr))) {
      return std::nullopt;
    }
    n.notification_type = c.old_row.is_null() ? "enforcement_created" : "enforcement_status_changed";
    n.payload = {{"id", c.id},          {"rule", field("rule")},
                 {"rule_ref", field("rule_ref")}, {"trigger_ref", field("trigger_ref")},
                 {"event", field("event")}, {"status", field("status")},
                 {"old_status", old_status}, {"created", field("created")}};
    return n;
  }
  return std::nullopt;
}

// API.md §10, §17.4: rule_lifecycle_changed for a rule definition change (before/after null:
// created/deleted).
std::optional<notifier::Notification> rule_notification(const JsonPtr& before, const JsonPtr& after) {
  const Json& row = after ? *after : *before;
  std::string change = "updated";
  if (!before) {
    change = "created";
  } else if (!after) {
    change = "deleted";
  } else if (before->value("enabled", true) != after->value("enabled", true)) {
    change = after->value("enabled", true) ? "enabled" : "disabled";
  }
  notifier::Notification n;
  n.notification_type = "rule_lifecycle_changed";
  n.entity_type = "rule";
  n.entity_id = row.value("id", int64_t{0});
  auto field = [&](const char* k) { return row.contains(k) ? row[k] : Json(nullptr); };
  n.trigger_ref = row.value("trigger_ref", Json("")).is_string() ? row.value("trigger_ref", "") : "";
  n.scope = "p:" + (row.value("pack_ref", Json("")).is_string() ? row.value("pack_ref", "") : "");
  n.payload = {{"id", field("id")},
               {"ref", field("ref")},
               {"trigger_ref", field("trigger_ref")},
               {"action_ref", field("action_ref")},
               {"enabled", after ? after->value("enabled", true) : false},
               {"change", change},
               {"trigger_params", field("trigger_params")}};
  return n;
}

// The execution token of API.md §4.3/§11.4: scoped to one execution (metadata.execution_id),
// expiring with it (exp = timeout + 300 s; the API also refuses it once the execution is
// terminal). `sub` is whoever caused the execution: its executor, else the rule's owner, else the
// pack's owner; without any, no token is given.
std::optional<std::string> mint_execution_token(const auth::JwtCodec& jwt,
                                                const DefinitionsTable& defs, const Clock& clock,
                                                const Json& execution, const Json& action) {
  auto int_of = [](const Json& o, const char* f) -> int64_t {
    auto it = o.find(f);
    return it != o.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
  };
  auto str_of = [](const Json& o, const char* f) -> std::string {
    auto it = o.find(f);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  int64_t sub = int_of(execution, "executor");
  if (sub == 0) {
    if (auto rule = defs.get("rule", str_of(execution, "rule_ref"))) {
      sub = int_of(*rule, "owner_identity");
    }
  }
  const std::string pack_ref = str_of(action, "pack_ref");
  if (sub == 0) {
    if (auto pack = defs.get("pack", pack_ref)) sub = int_of(*pack, "owner_identity");
  }
  if (sub == 0) {
    for (const auto& identity : defs.list("identity")) {
      for (const auto& s : identity->value("permission_set_refs", Json::array())) {
        if (s == "core.admin" && sub == 0) sub = int_of(*identity, "id");
      }
    }
  }
  if (sub == 0 || !defs.get_by_id("identity", sub)) return std::nullopt;
  int64_t timeout = int_of(execution, "timeout_seconds");
  if (timeout <= 0) timeout = int_of(action, "timeout_seconds");
  if (timeout <= 0) timeout = 300;
  const int64_t id = int_of(execution, "id");
  const std::string action_ref = str_of(execution, "action_ref");
  auth::Claims claims;
  claims.sub = std::to_string(sub);
  claims.login = "execution:" + std::to_string(id);
  claims.token_type = std::string(auth::kExecutionToken);
  claims.iat = clock.now_ms() / 1000;
  claims.exp = claims.iat + timeout + 300;
  claims.metadata = {{"execution_id", id},
                     {"action_ref", action_ref},
                     {"permission_set_refs", execution.value("permission_set_refs", Json::array())},
                     {"standard_access_action_refs", Json::array({action_ref})},
                     {"standard_access_pack_refs", Json::array({pack_ref})}};
  return jwt.sign(claims);
}

}  // namespace

// The roles of `attune serve --roles` (README "Running distributed").
const std::vector<std::string> kRoles = {"api", "sensor", "rules", "executor", "worker"};

Result<std::set<std::string>> parse_roles(const std::string& text) {
  std::set<std::string> roles;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    std::string r = text.substr(start, comma - start);
    r.erase(0, r.find_first_not_of(" \t"));
    r.erase(r.find_last_not_of(" \t") + 1);
    if (!r.empty()) {
      if (std::find(kRoles.begin(), kRoles.end(), r) == kRoles.end()) {
        return make_error(Errc::kBadRequest,
                          "--roles: unknown role '" + r + "' (use api,sensor,rules,executor,worker)");
      }
      roles.insert(r);
    }
    start = comma + 1;
  }
  if (roles.empty()) return make_error(Errc::kBadRequest, "--roles: no role given");
  return roles;
}

int run_serve(const ServeConfig& cfg) {
  // stdout carries only the ready line (and a generated admin password); logs go to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("attune"));
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v");
  // Start-up phases, logged once ready (issue 19: what a restart spends its time on).
  std::string startup;
  auto phase_start = std::chrono::steady_clock::now();
  auto phase = [&startup, &phase_start](const char* name) {
    const auto now = std::chrono::steady_clock::now();
    startup += (startup.empty() ? "" : ", ") + std::string(name) + " " +
               std::to_string(
                   std::chrono::duration_cast<std::chrono::milliseconds>(now - phase_start).count()) +
               " ms";
    phase_start = now;
  };
  auto listen = parse_host_port(cfg.listen);
  if (!listen.ok()) return fail("--listen: " + listen.error().message);
  auto ws_listen = parse_host_port(cfg.ws_listen);
  if (!ws_listen.ok()) return fail("--ws-listen: " + ws_listen.error().message);
  if (cfg.max_body_bytes < 1024) return fail("max_body_bytes must be at least 1024");
  auto roles_or = parse_roles(cfg.roles);
  if (!roles_or.ok()) return fail(roles_or.error().message);
  const std::set<std::string> roles = *roles_or;
  auto has = [&roles](const char* r) { return roles.count(r) > 0; };
  const bool distributed = !cfg.broker.empty();
  if (!distributed && roles.size() != kRoles.size()) {
    return fail("--roles needs --broker: on the embedded log one process runs every role");
  }
  if (has("sensor") && !has("api") && cfg.advertised_url.empty()) {
    return fail("--roles " + cfg.roles + " without api needs --api-url (ATTUNE_API_URL): the API "
                "instance (or load balancer) that sensors post their events to");
  }

  const std::string enc_key = env_or("ATTUNE__SECURITY__ENCRYPTION_KEY");
  if (!enc_key.empty() && enc_key.size() < 32) {
    return fail("ATTUNE__SECURITY__ENCRYPTION_KEY must be at least 32 characters");
  }

  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec) return fail("cannot create data directory " + cfg.data_dir + ": " + ec.message());
  const std::string data_dir = std::filesystem::absolute(cfg.data_dir).lexically_normal().string();

  // Signals are handled by sigwait() on this thread only; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // Writes to a closed socket or pipe must be errors, not process death.
  signal(SIGPIPE, SIG_IGN);

  state::DbOptions db_options;
  db_options.sync = cfg.fsync;
  db_options.append_stores = {std::string(EmbeddedLog::kLogStore)};
  auto db = state::Db::open(data_dir + "/db", db_options);
  if (!db.ok()) {
    return fail(db.error().message + " (is another attune serve using " + data_dir + "?)");
  }
  phase("database");
  service::Metrics metrics;
  std::unique_ptr<Log> log;
  if (distributed) {
    KafkaOptions kafka;
    kafka.brokers = cfg.broker;
    for (const auto& kv : cfg.kafka_config) {
      auto prop = parse_kafka_property(kv);
      if (!prop.ok()) return fail(prop.error().message);
      kafka.config.push_back(*prop);
    }
    kafka.topics = default_topics(cfg.partitions);
    kafka.topics.push_back(sensor::sensors_topic());
    // The sensor stage's failover takes its group's session timeout: the lowest a broker allows
    // by default (group.min.session.timeout.ms = 6000); --kafka-config still wins.
    kafka.group_config["sensor"] = {{"session.timeout.ms", "6000"},
                                    {"heartbeat.interval.ms", "500"}};
    kafka.changelog_partitions = cfg.partitions;
    kafka.local_groups = {std::string(projections::kStage)};  // every API keeps full views
    // A worker's in-flight children are its own (a restarted worker reports its leftovers
    // abandoned); its dispatch dedupe (`seen`) has a changelog, restored when the worker is
    // assigned partitions, so an attempt one worker started is never started by the next
    // owner of its partition (after a rebalance the new owner reads from the last committed
    // offset, which may be older than what the previous owner acted on).
    kafka.local_stores = {"worker." + std::string(worker::kInFlightStore)};
    kafka.on_restore = [&metrics](const RestoreProgress& p) {
      metrics.store_restore(p.store, static_cast<double>(p.restored), static_cast<double>(p.total));
      if (!p.done && p.restored > 0) {
        spdlog::info("restoring store {}: {}/{} records", p.store, p.restored, p.total);
      }
    };
    auto k = KafkaLog::open(**db, std::move(kafka));
    if (!k.ok()) return fail("cannot open the Kafka log on " + cfg.broker + ": " + k.error().message);
    log = std::move(*k);
    spdlog::info("distributed mode: Kafka {} roles {}", cfg.broker, cfg.roles);
  } else {
    auto e = EmbeddedLog::open(**db, default_topics(cfg.partitions));
    if (!e.ok()) return fail("cannot open the log: " + e.error().message);
    log = std::move(*e);
  }

  phase("log");
  DefinitionsTable definitions(*log);
  if (auto st = definitions.start(); !st.ok()) return fail("definitions: " + st.error().message);
  phase("definitions");

  std::string jwt_secret = env_or("ATTUNE__SECURITY__JWT_SECRET", "JWT_SECRET");
  if (jwt_secret.empty()) {
    auto s = auth::load_or_create_secret(data_dir + "/jwt-secret", 64);
    if (!s.ok()) return fail("JWT secret: " + s.error().message);
    jwt_secret = *s;
  }
  std::string encryption_secret = enc_key;
  if (encryption_secret.empty()) {
    auto s = auth::load_or_create_secret(data_dir + "/encryption-key", 64);
    if (!s.ok()) return fail("encryption key: " + s.error().message);
    encryption_secret = *s;
  }
  auto cipher = std::make_shared<const keystore::Cipher>(encryption_secret);
  auth::JwtCodec jwt(jwt_secret);
  const Clock& clock = SystemClock::instance();
  IdGenerator ids(static_cast<unsigned>(cfg.node_id), clock);

  // On Kafka, a process that mints ids holds its node id (processors/monitor/node_claim.h):
  // a second live process with the same --node-id refuses to start.
  const std::string instance = monitor::new_instance_suffix();  // this process start
  std::unique_ptr<monitor::NodeClaim> node_claim;
  if (distributed && (has("api") || has("rules") || has("executor") || has("sensor"))) {
    node_claim = std::make_unique<monitor::NodeClaim>(
        *log, monitor::NodeClaimOptions{static_cast<unsigned>(cfg.node_id),
                                        instance,
                                        worker::default_worker_name(),
                                        cfg.roles,
                                        std::chrono::milliseconds(cfg.worker_heartbeat_ms),
                                        std::chrono::milliseconds(cfg.worker_timeout_ms),
                                        &clock});
    if (auto st = node_claim->start(); !st.ok()) return fail(st.error().message);
  }

  Topology topology;
  RuntimeOptions runtime_options;
  runtime_options.ids = &ids;
  runtime_options.clock = &clock;
  runtime_options.on_dead_letter = [&metrics](const std::string& stage, const Record&,
                                              const std::string&) { metrics.dead_letter(stage); };
  Runtime runtime(*log, topology, runtime_options);
  // Consumer lag per stage and topic on both logs (issue 13): offsets and timestamps kept in
  // memory and, on Kafka, the watermarks librdkafka cached from its fetches — no I/O per scrape.
  metrics.set_lag_source([&runtime] {
    std::vector<service::Metrics::StageLag> out;
    for (auto& l : runtime.lag()) {
      out.push_back({std::move(l.stage), std::move(l.topic), l.records, l.seconds});
    }
    return out;
  });

  // Worker liveness (GET /workers; abandoning the work of lost workers). On Kafka every worker
  // process start is its own identity: the name says host and node id (or --worker-name) plus a
  // random instance suffix, so two workers started alike on one host, or a restarted one, never
  // share a name — liveness, and the running attempts the monitor abandons, are per identity.
  const std::string worker_base =
      !cfg.worker_name.empty()
          ? cfg.worker_name
          : (distributed ? worker::default_worker_name() + "-" + std::to_string(cfg.node_id)
                         : worker::default_worker_name());
  const std::string worker_name =
      distributed ? worker_base + "-" + instance : worker_base;
  monitor::WorkersView workers(*log, std::chrono::milliseconds(cfg.worker_timeout_ms), clock);
  if (has("api") || has("executor")) {
    if (auto st = workers.start(); !st.ok()) return fail("workers view: " + st.error().message);
  }

  // Runners and per-pack environments (issue 14), shared by the worker and the pack installer.
  runners::EnvironmentOptions env_options;
  env_options.envs_dir = data_dir + "/envs";
  env_options.pip_index_url = cfg.pip_index_url;
  env_options.pip_find_links = cfg.pip_find_links;
  env_options.pip_extra_args = cfg.pip_extra_args;
  env_options.npm_extra_args = cfg.npm_extra_args;
  auto environments = std::make_shared<runners::PackEnvironments>(env_options);
  runners::RunnerConfig runner_config;
  {
    std::error_code exe_ec;
    runner_config.self_exe = std::filesystem::read_symlink("/proc/self/exe", exe_ec).string();
  }
  runner_config.container_engine = cfg.container_engine;
  runner_config.container_extra_args = cfg.container_extra_args;
  const auto runner_set = runners::make_runner_set(runner_config, environments);

  // The stages of the rules/executor/worker roles, the same with or without the API role.
  auto add_work_stages = [&](std::string api_url) {
    PipelineOptions pipeline;
    pipeline.definitions = &definitions;
    pipeline.api_url = std::move(api_url);
    pipeline.worker_name = worker_name;
    pipeline.worker_max_running = static_cast<size_t>(cfg.worker_max_running);
    pipeline.default_timeout_seconds = cfg.action_timeout_seconds;
    pipeline.cancel_grace = std::chrono::milliseconds(cfg.cancel_grace_ms);
    pipeline.runners = runner_set;
    pipeline.on_execution_terminal = [&metrics](std::string_view status) {
      metrics.execution_finished(status);
    };
    pipeline.on_rule_evaluation_error = [&metrics] { metrics.rule_evaluation_error(); };
    pipeline.clock = &clock;
    // Workers open sealed secrets and inject keys with the shared encryption key, and mint
    // execution tokens with the shared JWT secret (both must match the API processes').
    pipeline.cipher = cipher;
    pipeline.mint_token = [&jwt, &definitions, &clock](const Json& execution, const Json& action) {
      return mint_execution_token(jwt, definitions, clock, execution, action);
    };
    for (const char* r : {"rules", "executor", "worker"}) {
      if (has(r)) pipeline.stages.emplace_back(r);
    }
    // Bounded stores (issue 13): an embedded commit is atomic, so no committed record comes back
    // and a minute is a margin; Kafka redelivers after a crash or a rebalance: an hour.
    pipeline.state_retention = distributed ? std::chrono::milliseconds(std::chrono::hours(1))
                                           : std::chrono::milliseconds(std::chrono::minutes(1));
    // Admission control on one machine (issue 12): once the worker and the projections are far
    // behind, the rules stage stops turning events into executions until they catch up. A flood
    // then waits as events (one record each, durable) rather than as thousands of executions the
    // projections must write and notify five times over while they wait for the worker. On Kafka
    // the other stages' progress is not known here.
    if (!distributed) {
      // Only what the rules stage feeds counts: events the projections have not applied yet do
      // not shrink while rules holds, so they must not hold it.
      pipeline.hold_rules = [&runtime] {
        const std::string api(projections::kStage);
        return runtime.backlog("worker") + runtime.backlog(api, topics::kEnforcements) +
                   runtime.backlog(api, topics::kExecutions) >
               kAdmissionBacklog;
      };
    }
    if (!pipeline.stages.empty()) add_core_stages(topology, pipeline);
    if (has("executor")) monitor::add_monitor_stage(topology, monitor::MonitorOptions{&workers});
  };
  // Worker processes announce themselves and heartbeat (GET /workers); null without the role.
  auto start_heartbeat = [&]() -> Result<std::unique_ptr<monitor::Heartbeat>> {
    if (!has("worker")) return std::unique_ptr<monitor::Heartbeat>();
    auto heartbeat = std::make_unique<monitor::Heartbeat>(
        *log, monitor::HeartbeatOptions{worker_name,
                                        std::chrono::milliseconds(cfg.worker_heartbeat_ms),
                                        "action",
                                        &clock,
                                        Json{{"node_id", cfg.node_id},
                                             {"base_name", worker_base},
                                             {"max_running", cfg.worker_max_running}}});
    if (auto st = heartbeat->start(); !st.ok()) return st.error();
    return heartbeat;
  };
  // Timers and custom sensors (README "Timers and sensors"), with or without the API role. On
  // Kafka the process owning the sensor stage publishes its sensors' status and logs on
  // attune.sensors for every API instance; sensor tokens are minted with the shared JWT secret.
  std::unique_ptr<sensor::SensorManager> sensors;
  std::unique_ptr<sensor::SensorStatusPublisher> sensor_publisher;  // reads `sensors`: dies first
  auto add_sensor_role = [&](const std::string& api_url, const std::string& ws_url) -> Status {
    sensor::SensorManagerOptions sensor_options;
    sensor_options.definitions = &definitions;
    sensor_options.clock = &clock;
    sensor_options.api_url = api_url;
    sensor_options.notifier_ws_url = ws_url;
    sensor_options.environments = environments;
    sensor_options.mint_token = [&jwt, &clock](const Json& s, int64_t identity_id) {
      auth::Claims c;
      c.sub = std::to_string(identity_id);
      c.login = sensor::sensor_identity_login(s.value("ref", ""));
      c.token_type = std::string(auth::kSensorToken);
      c.iat = clock.now_ms() / 1000;
      c.exp = c.iat + 24 * 3600;
      c.metadata = Json{{"sensor_id", s.value("id", Json(nullptr))},
                        {"sensor_ref", s.value("ref", Json(nullptr))}};
      c.extra = Json{{"trigger_types", s.value("trigger_types", Json::array())}};
      return std::optional<std::string>(jwt.sign(c));
    };
    if (distributed) {
      // A sensor dies with its process (kill -9 included): the survivor that takes over starts it.
      sensor_options.argv_prefix = sensor::default_argv_prefix();
      if (sensor_options.argv_prefix.empty()) {
        spdlog::warn("setpriv not found: sensors of a killed process outlive it");
      }
    }
    sensors = std::make_unique<sensor::SensorManager>(sensor_options);
    sensor::SensorStageOptions sensor_stage;
    sensor_stage.definitions = &definitions;
    sensor_stage.sensors = sensors.get();
    if (distributed) {
      sensor_publisher = std::make_unique<sensor::SensorStatusPublisher>(
          *log, *sensors,
          sensor::PublisherOptions{worker::default_worker_name() + "-" +
                                   std::to_string(cfg.node_id) + "-" +
                                   std::to_string(static_cast<int64_t>(::getpid()))});
      if (auto st = sensor_publisher->start(); !st.ok()) return st;
      sensor_stage.publisher = sensor_publisher.get();
    }
    sensor::add_sensor_stage(topology, sensor_stage);
    return {};
  };

  // The common end of both paths, once their own front ends (HTTP, notifier) have stopped.
  auto stop_core = [&](std::unique_ptr<monitor::Heartbeat>& heartbeat) {
    if (heartbeat) heartbeat->stop();
    runtime.stop();
    if (sensor_publisher) sensor_publisher->stop();
    workers.stop();
    definitions.stop();
    if (node_claim) node_claim->stop();
    const bool failed = runtime.failed();
    spdlog::info("stopped{}", failed ? " (a stage had failed)" : "");
    return failed ? 1 : 0;
  };

  if (!has("api")) {
    // A process without the API: only stages (and a ready line for supervisors).
    if (has("sensor")) {
      if (cfg.notifier_url.empty()) {
        spdlog::warn("no --notifier-url: sensors get an empty ATTUNE_NOTIFIER_WS_URL");
      }
      if (auto st = add_sensor_role(cfg.advertised_url, cfg.notifier_url); !st.ok()) {
        return fail("sensor status: " + st.error().message);
      }
    }
    add_work_stages(cfg.advertised_url);
    if (auto st = runtime.start(); !st.ok()) return fail("stages: " + st.error().message);
    auto heartbeat_or = start_heartbeat();
    if (!heartbeat_or.ok()) return fail("heartbeat: " + heartbeat_or.error().message);
    std::unique_ptr<monitor::Heartbeat> heartbeat = std::move(*heartbeat_or);
    std::printf("attune: ready roles=%s\n", cfg.roles.c_str());
    std::fflush(stdout);
    spdlog::info("serving roles {} (worker {})", cfg.roles, worker_name);
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("received signal {}, shutting down", sig);
    return stop_core(heartbeat);
  }

  projections::ProjectionStageOptions projection_options;
  // One projection thread per partition on the embedded log: under a flood the projections and
  // notifications keep up (issue 12: one thread fell ~10 s behind at ~1,000 webhooks/s, where four
  // stayed within ~0.3 s; tests/bench/README.md). On Kafka the API's consumer group decides.
  projection_options.instances = distributed ? 1 : log->partitions(topics::kExecutions);
  // History retention (issue 13): every API process prunes its own projections.
  projection_options.retention.keep = *projections::parse_history_keep(cfg.history_keep);
  projection_options.retention.references_applied = [&runtime] {
    bool known = false;  // nothing is known before every stage has started
    for (const auto& l : runtime.lag()) {
      if (l.stage != projections::kStage || l.topic == topics::kEvents) continue;
      if (l.records > 0) return false;
      known = true;
    }
    return known;
  };
  if (projection_options.retention.keep.enabled()) {
    spdlog::info("history: keeping {} terminal executions", projection_options.retention.keep.describe());
  }
  phase("runners and views");
  auto stage = projections::make_projection_stage(*log, runtime.applied(), projection_options);
  phase("projections");
  if (!stage.ok()) return fail("projections: " + stage.error().message);
  topology.add(std::move(stage->spec));
  std::shared_ptr<projections::Projections> views = stage->projections;

  service::ServiceOptions service_options;
  service_options.allow_self_registration = cfg.allow_self_registration;
  service_options.cipher = cipher;
  service_options.claim_creates = distributed;
  service_options.consistency_tokens = distributed;
  service_options.instance = worker::default_worker_name() + "-" + instance;
  service_options.packs_root =
      cfg.pack_files_dir.empty()
          ? data_dir + "/packs"
          : std::filesystem::absolute(cfg.pack_files_dir).lexically_normal().string();
  service_options.shared_pack_files = !cfg.pack_files_dir.empty();
  for (const auto& dir : cfg.packs_dirs) {
    std::error_code pd_ec;
    service_options.packs_dirs.push_back(
        std::filesystem::weakly_canonical(std::filesystem::absolute(dir), pd_ec).string());
  }
  service_options.pack_max_upload_bytes = cfg.pack_max_upload_bytes;
  service_options.pack_max_unpacked_bytes = cfg.pack_max_unpacked_bytes;
  service_options.environments = environments;
  service_options.public_ws_url = cfg.public_ws_url;
  service_options.console_dir = cfg.console_dir.empty() ? default_console_dir() : cfg.console_dir;
  const std::shared_ptr<std::atomic<int>> notifier_port = service_options.notifier_port;
  service::ApiService api(*log, definitions, *views, jwt, ids, clock, metrics, service_options);
  service::BootstrapOptions bootstrap;
  if (auto admin = env_or("ATTUNE_BOOTSTRAP_ADMIN"); !admin.empty()) bootstrap.admin = admin;
  bootstrap.data_dir = data_dir;
  if (auto st = api.bootstrap(bootstrap); !st.ok()) return fail("bootstrap: " + st.error().message);
  phase("bootstrap");

  rest::Router router;
  api.register_routes(router, [&workers](service::RouteTable& table) {
    service::register_worker_routes(table, workers);
  });
  if (distributed) service::add_ingress_stage(topology, router, metrics, cfg.max_body_bytes);
  rest::ServerOptions http_options;
  // Consistency tokens (api/service/consistency.h): a request carrying one waits until this
  // instance has applied it; on Kafka every response carries this instance's position.
  service::Consistency consistency(*log, definitions, *views);
  http_options.before = [&consistency](const rest::HttpRequest& req)
      -> std::optional<rest::HttpResponse> {
    auto token = req.header(service::kConsistencyHeader);
    if (!token || token->empty()) return std::nullopt;
    auto wanted = service::decode_positions(*token);
    if (!wanted.ok()) return rest::HttpResponse::error(wanted.error());
    auto st = consistency.wait(*wanted, std::chrono::seconds(5));
    if (st.ok()) return std::nullopt;
    auto refused = rest::HttpResponse::error(st.error());
    if (st.error().code == Errc::kUnavailable) refused.headers.emplace_back("Retry-After", "1");
    return refused;
  };
  if (service_options.consistency_tokens) {
    http_options.decorate = [&consistency](rest::HttpResponse& r) {
      service::Positions at = consistency.applied();
      for (auto& [name, value] : r.headers) {
        if (name != service::kConsistencyHeader) continue;
        if (auto written = service::decode_positions(value); written.ok()) {
          service::merge_positions(at, *written);
        }
        value = service::encode_positions(at);
        return;
      }
      r.headers.emplace_back(std::string(service::kConsistencyHeader),
                             service::encode_positions(at));
    };
  }
  http_options.host = listen->host;
  http_options.port = listen->port;
  http_options.threads = static_cast<size_t>(cfg.http_threads);
  http_options.max_body_bytes = cfg.max_body_bytes;
  // Pack archives may be larger than JSON bodies; their multipart envelope needs a little room.
  http_options.large_body_paths["/api/v1/packs/upload"] =
      static_cast<size_t>(cfg.pack_max_upload_bytes) + 64 * 1024;
  http_options.on_response = [&metrics](std::string_view method, int status) {
    metrics.http_request(method, status);
  };
  rest::HttpServer http(router, http_options);
  if (auto st = http.start(); !st.ok()) return fail("REST API: " + st.error().message);
  phase("http");
  const std::string api_url =
      "http://" + url_host(listen->host) + ":" + std::to_string(http.port());

  const std::string advertised_url = cfg.advertised_url.empty() ? api_url : cfg.advertised_url;
  add_work_stages(advertised_url);

  notifier::NotifierOptions ws_options;
  ws_options.host = ws_listen->host;
  ws_options.port = ws_listen->port;
  notifier::Notifier notifier(
      ws_options,
      notifier::make_jwt_authenticator(
          jwt, clock,
          [&definitions](int64_t id) {
            auto identity = definitions.get_by_id("identity", id);
            return identity && !identity->value("frozen", false);
          },
          [&api](int64_t execution_id) { return api.token_execution(execution_id).ok(); }),
      // Delivery-time check (API.md §17.3): only rows the identity may read now.
      [&api](int64_t identity_id, const notifier::Notification& n) {
        auto view = api.context().identity_view(identity_id);
        if (!view) return false;
        if (n.entity_type == "rule") {
          const std::string pack = authz::View::scope_pack(n.scope);
          return view->sees(pack) && view->may("read", authz::Object{"rules", pack});
        }
        const char* resource =
            projections::entity_resource(projections::entity_of(n.entity_type));
        return view->may_read_record(resource, n.scope, n.entity_id);
      },
      clock);
  // With no WebSocket client connected there is nobody to notify: skip building the payloads
  // (a client that connects later could not have received these anyway).
  notifier.on_connections_changed(
      [&metrics](size_t n) { metrics.ws_connections_set(static_cast<double>(n)); });
  views->add_change_hook([&notifier, &definitions](const projections::Change& change) {
    if (notifier.connections() > 0) {
      if (auto n = to_notification(change)) {
        // A workflow's execution (its action holds a workflow_def) also publishes
        // workflow_execution_status_changed (API.md §12.3, §17.4), same payload and scope.
        std::optional<notifier::Notification> wf;
        if (n->entity_type == "execution" && n->payload["action_ref"].is_string()) {
          auto action = definitions.get("action", n->payload["action_ref"].get<std::string>());
          if (action && action->contains("workflow_def") && (*action)["workflow_def"].is_object()) {
            wf = *n;
            wf->entity_type = "workflow_execution";
            wf->notification_type = "workflow_execution_status_changed";
            wf->payload["entity_type"] = "workflow_execution";
          }
        }
        notifier.publish(std::move(*n));
        if (wf) notifier.publish(std::move(*wf));
      }
    }
    // A finished execution's token has expired: close its connections (after the frame above).
    // Not gated on connections(): one that is opening now re-checks the token once it is open,
    // and only this marker or that check is guaranteed to see the change.
    if (change.entity_type == "execution" && finished_now(change)) {
      notifier.expire_execution(change.id);
    }
  });
  definitions.set_change_hook(
      [&notifier](std::string_view kind, const JsonPtr& before, const JsonPtr& after) {
        if (kind != "rule" || notifier.connections() == 0) return;
        if (auto n = rule_notification(before, after)) notifier.publish(std::move(*n));
      });
  // The hook goes before the notifier does, on every way out of here.
  struct UnhookDefinitions {
    DefinitionsTable& defs;
    ~UnhookDefinitions() { defs.set_change_hook({}); }
  } unhook_definitions{definitions};
  if (auto st = notifier.start(); !st.ok()) return fail("notifier: " + st.error().message);
  notifier_port->store(notifier.port());

  if (has("sensor")) {
    const std::string ws_url = !cfg.notifier_url.empty()
                                   ? cfg.notifier_url
                                   : "ws://" + url_host(ws_listen->host) + ":" +
                                         std::to_string(notifier.port()) + "/ws";
    if (auto st = add_sensor_role(advertised_url, ws_url); !st.ok()) {
      return fail("sensor status: " + st.error().message);
    }
  }
  // Sensor status and logs: this process's sensor stage on one machine; on Kafka the sensors run
  // in whichever sensor process owns the stage, so every API instance follows attune.sensors.
  std::unique_ptr<sensor::SensorStatusView> sensor_view;
  if (distributed) {
    sensor_view = std::make_unique<sensor::SensorStatusView>(*log, clock,
                                                             std::chrono::milliseconds(5000));
    if (auto st = sensor_view->start(); !st.ok()) {
      return fail("sensor status: " + st.error().message);
    }
    api.set_sensor_status(sensor_view.get());
  } else if (sensors) {
    api.set_sensor_status(sensors.get());
  }

  phase("notifier and sensors");
  if (auto st = runtime.start(); !st.ok()) return fail("stages: " + st.error().message);
  phase("stages");
  api.start_background();
  auto heartbeat_or = start_heartbeat();
  if (!heartbeat_or.ok()) return fail("heartbeat: " + heartbeat_or.error().message);
  std::unique_ptr<monitor::Heartbeat> heartbeat = std::move(*heartbeat_or);

  std::printf("attune: ready api=%s ws=ws://%s:%u\n", api_url.c_str(),
              url_host(ws_listen->host).c_str(), static_cast<unsigned>(notifier.port()));
  std::fflush(stdout);
  if (cfg.ready_fd >= 0) {  // --detach: the waiting parent may exit now
    const std::string line = "ready api=" + api_url + "\n";
    [[maybe_unused]] const ssize_t n = ::write(cfg.ready_fd, line.data(), line.size());
    ::close(cfg.ready_fd);
  }
  spdlog::info("serving: api={} ws port={} data={}", api_url, notifier.port(), data_dir);
  spdlog::info("start-up: {}", startup);

  // Log retention: every --log-retention-interval (a minute by default), drop records every stage
  // has consumed (keeping a tail).
  std::mutex retention_mu;
  std::condition_variable retention_cv;
  bool stopping = false;
  std::thread retention([&] {
    std::unique_lock lock(retention_mu);
    const std::chrono::seconds interval(cfg.log_retention_interval_s);
    while (!retention_cv.wait_for(lock, interval, [&] { return stopping; })) {
      if (distributed) continue;  // Kafka applies its own retention
      // Superseded definitions (old versions of keys, with their values) leave the log too.
      // So do old heartbeats (one record per worker is all GET /workers needs).
      if (auto* embedded = dynamic_cast<EmbeddedLog*>(log.get())) {
        for (auto topic : {topics::kDefinitions, topics::kWorkers}) {
          auto compacted = embedded->compact({std::string(topic), 0});
          if (!compacted.ok()) {
            spdlog::warn("{} compaction: {}", topic, compacted.error().message);
          }
        }
      }
      auto dropped = runtime.trim_consumed(cfg.log_keep_records);
      if (!dropped.ok()) {
        spdlog::warn("log retention: {}", dropped.error().message);
      } else if (*dropped > 0) {
        metrics.log_trimmed(static_cast<double>(*dropped));
        spdlog::debug("log retention: dropped {} consumed records", *dropped);
      }
    }
  });

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received signal {}, shutting down", sig);
  {
    std::lock_guard lock(retention_mu);
    stopping = true;
  }
  retention_cv.notify_all();
  retention.join();
  http.stop();
  notifier.stop();
  const int code = stop_core(heartbeat);
  if (sensor_view) sensor_view->stop();
  return code;
}

namespace {

// The lines starting "attune:" that serve wrote to `path` from byte `from` on (the ready line,
// a generated administrator password, warnings), for the terminal that ran --detach.
std::vector<std::string> attune_lines(const std::string& path, off_t from, size_t tail_all) {
  std::vector<std::string> all, ours;
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return ours;
  std::fseek(f, static_cast<long>(from), SEEK_SET);
  char* line = nullptr;
  size_t cap = 0;
  ssize_t n;
  while ((n = ::getline(&line, &cap, f)) > 0) {
    std::string text(line, static_cast<size_t>(n));
    while (!text.empty() && text.back() == '\n') text.pop_back();
    if (text.rfind("attune:", 0) == 0) ours.push_back(text);
    all.push_back(std::move(text));
  }
  std::free(line);
  std::fclose(f);
  if (tail_all == 0) return ours;
  if (all.size() > tail_all) all.erase(all.begin(), all.end() - static_cast<long>(tail_all));
  return all;
}

}  // namespace

int run_serve_detached(ServeConfig cfg, int ready_timeout_s) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(cfg.data_dir, ec);
  if (ec) {
    std::fprintf(stderr, "attune: --detach: cannot create %s: %s\n", cfg.data_dir.c_str(),
                 ec.message().c_str());
    return 1;
  }
  const fs::path dir = fs::absolute(cfg.data_dir).lexically_normal();
  const std::string log_path = (dir / "serve.log").string();
  const std::string pid_path = (dir / "serve.pid").string();
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    std::fprintf(stderr, "attune: --detach: cannot open %s: %s\n", log_path.c_str(),
                 std::strerror(errno));
    return 1;
  }
  const off_t start = ::lseek(log_fd, 0, SEEK_END);
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "attune: --detach: pipe: %s\n", std::strerror(errno));
    return 1;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::fprintf(stderr, "attune: --detach: fork: %s\n", std::strerror(errno));
    return 1;
  }
  if (pid == 0) {  // the server: its own session, output to serve.log
    ::close(ready[0]);
    ::setsid();
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    cfg.ready_fd = ready[1];
    std::_Exit(run_serve(cfg));
  }
  ::close(ready[1]);
  ::close(log_fd);
  std::string got;
  bool closed = false;  // the child closed its end of the pipe: it is exiting
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(ready_timeout_s);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{ready[0], POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    char buf[256];
    const ssize_t n = ::read(ready[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      closed = true;
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(ready[0]);
  if (got.rfind("ready", 0) == 0) {
    for (const auto& line : attune_lines(log_path, start, 0)) std::printf("%s\n", line.c_str());
    if (FILE* f = std::fopen(pid_path.c_str(), "w")) {
      std::fprintf(f, "%d\n", static_cast<int>(pid));
      std::fclose(f);
    }
    std::printf("attune: serving in the background (pid %d); log %s; stop it with: kill $(cat %s)\n",
                static_cast<int>(pid), log_path.c_str(), pid_path.c_str());
    return 0;
  }
  int status = 0;
  bool exited = ::waitpid(pid, &status, WNOHANG) == pid;
  // The pipe closes while the child's exit is still under way: give it up to 5 s before telling the
  // user it is "still starting".
  for (int i = 0; !exited && closed && i < 500; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    exited = ::waitpid(pid, &status, WNOHANG) == pid;
  }
  std::fprintf(stderr, "attune: %s; last lines of %s:\n",
               exited || closed ? "serve exited before it was ready"
                      : ("serve is not ready after " + std::to_string(ready_timeout_s) +
                         " s (still starting, pid " + std::to_string(pid) + ")")
                            .c_str(),
               log_path.c_str());
  for (const auto& line : attune_lines(log_path, start, 20)) {
    std::fprintf(stderr, "  %s\n", line.c_str());
  }
  return 1;
}

}  // namespace attune::cli
