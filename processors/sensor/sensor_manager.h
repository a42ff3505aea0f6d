// SensorManager: runs the custom sensors of packs (API.md §9.3) as long-lived processes.
//
// A sensor runs while it is enabled and at least one enabled rule uses one of its trigger_types;
// it is stopped (SIGINT, SIGTERM, SIGKILL `stop_grace` apart) when none does, and restarted when
// its definition or the trigger params of its rules change (ATTUNE_SENSOR_TRIGGERS is read at
// start). A process that exits while wanted is restarted after an exponential backoff
// (`backoff_initial` doubling up to `backoff_max`; reset once a run lasted `stable_after`); a
// process that cannot be started at all (missing interpreter or file) is reported in its status
// as "failed" with the reason and retried on the same backoff — never at full speed.
//
// Stdout lines that are JSON objects are events ({"trigger_ref"?, "payload"?, ...}, the body of
// POST /api/v1/events); other lines are just log output. The last `log_bytes` of stdout and of
// stderr are kept per sensor for GET /api/v1/sensors/{ref}/logs/{stdout|stderr}.
//
// Threads: reconcile(), on_punctuate() and stop_all() run on the sensor stage's thread; output and
// exit callbacks run on the ProcessSupervisor's thread and hand events and restarts to the stage
// through its Mailbox; status() and log() may be called from any thread (API handlers).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "processors/sensor/sensor_status.h"
#include "topology/definitions_table.h"
#include "topology/topology.h"

namespace attune::runners {
class PackEnvironments;
class ProcessSupervisor;
struct SupervisorOptions;
}

namespace attune::sensor {

struct SensorManagerOptions {
  const DefinitionsTable* definitions = nullptr;  // required
  const Clock* clock = &SystemClock::instance();
  std::string api_url;          // ATTUNE_API_URL (without /api/v1)
  std::string notifier_ws_url;  // ATTUNE_NOTIFIER_WS_URL
  // Mints the ATTUNE_API_TOKEN of a sensor process (a `sensor` JWT for the sensor's identity
  // with `trigger_types`); returns nullopt when it cannot. May be empty (no token).
  std::function<std::optional<std::string>(const Json& sensor, int64_t identity_id)> mint_token;
  size_t log_bytes = 64 * 1024;
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{60000};
  std::chrono::milliseconds stable_after{60000};
  std::chrono::milliseconds stop_grace{2000};
  // Sensor tokens live 24 h: a sensor is restarted with a fresh one after this long.
  std::chrono::milliseconds token_refresh{std::chrono::hours(23)};
  // Prefix of every sensor's argv (e.g. {"/usr/bin/setpriv", "--pdeathsig", "KILL", "--"}), so
  // that a sensor dies with this process even after kill -9 and never runs twice for long
  // once another process has taken the sensors over. Empty: none.
  std::vector<std::string> argv_prefix;
  // Per-pack environments: python sensors of a pack run with its virtualenv's interpreter,
  // node.js sensors with its node_modules on NODE_PATH. A sensor whose environment is not built
  // yet starts the build and retries every `environment_retry` (without counting failures); one
  // whose build failed is "failed" with the build's message, retried on the backoff. Null: the
  // interpreters on PATH.
  std::shared_ptr<runners::PackEnvironments> environments;
  std::chrono::milliseconds environment_retry{1000};
};

// What a SensorStatusPublisher publishes of one sensor.
struct SensorSnapshot {
  std::string ref;
  Json status;
  std::string out, err;              // kept tails
  size_t out_total = 0, err_total = 0;  // bytes ever appended (tells a change)
};

// {"/usr/bin/setpriv", "--pdeathsig", "KILL", "--"} where util-linux's setpriv exists, else {}.
std::vector<std::string> default_argv_prefix();

// The identity whose id sensor tokens carry as `sub` (created with the sensor by the API).
std::string sensor_identity_login(std::string_view sensor_ref);
// Builtin sensors (core.timer_sensor) are the stage itself, not processes.
bool is_builtin_sensor(const Json& sensor);

class SensorManager final : public SensorStatusSource {
 public:
  explicit SensorManager(SensorManagerOptions options);
  ~SensorManager() override;

  // Stage thread.
  void attach(Mailbox& mailbox);
  void reconcile(int64_t now_ms);
  std::optional<int64_t> on_punctuate(int64_t now_ms);  // restarts due; next wake-up wanted
  void stop_all();
  // Stops every sensor without waiting (the supervisor escalates SIGINT, SIGTERM, SIGKILL
  // `stop_grace` apart): this process no longer owns the sensor stage.
  void release();

  // Any thread. Status object of a sensor (state, pid, restarts, last_error, ...).
  Json status(const std::string& ref) const override;
  // The kept tail of stream 0 (stdout) or 1 (stderr); nullopt if the sensor never ran here.
  std::optional<std::string> log(const std::string& ref, int stream) const override;
  // Every sensor known here (any thread).
  std::vector<SensorSnapshot> snapshot() const;
  // Called whenever a status or a log tail changed (the SensorStatusPublisher's wake-up), with
  // this manager's lock held: it must only signal, and must not call back into the manager.
  // Once set_on_change returns, the previous function is not running and will not be called.
  void set_on_change(std::function<void()> fn);

  // Produces the event a stdout line of sensor `sensor_ref` asks for, on the stage thread;
  // returns why it was rejected ("" when produced). Exposed for tests.
  std::string produce(const std::string& sensor_ref, const Json& line, ProcessorContext& ctx);

 private:
  struct Proc;
  void start(Proc& p, int64_t now_ms);      // mu_ held
  void stop(Proc& p);                       // mu_ held
  void schedule_retry(Proc& p, int64_t now_ms);  // mu_ held
  Json status_of(const Proc& p) const;           // mu_ held
  runners::SupervisorOptions supervisor_options() const;
  void changed() const;
  void on_output(const std::shared_ptr<Proc>& p, uint64_t generation, int stream,
                 std::string_view chunk);
  void on_exit(const std::shared_ptr<Proc>& p, uint64_t generation, int exit_code, int signal,
               const std::string& error);

  const SensorManagerOptions options_;
  std::unique_ptr<runners::ProcessSupervisor> supervisor_;
  Mailbox* mailbox_ = nullptr;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Proc>, std::less<>> procs_;
  std::function<void()> on_change_;  // guarded by mu_
};

}  // namespace attune::sensor
