// Status and logs of custom sensor processes for the API (GET /sensors[/{ref}] `status`,
// GET /sensors/{ref}/logs/{stdout|stderr}), wherever the sensors run.
//
// SensorStatusSource is what the API reads. On one machine the process's own SensorManager is the
// source. On Kafka the sensor stage runs in whichever sensor process owns attune.definitions in
// the "sensor" consumer group, so that process publishes what its SensorManager knows on the
// compacted topic attune.sensors (SensorStatusPublisher) and every API instance follows the topic
// (SensorStatusView) — the pattern of worker heartbeats on attune.workers. Records (envelope
// payloads, key → content):
//
//   process:<name>  sensor.process  {name, host, pid, owner, interval_ms, started}  every interval,
//                                   and at once when ownership changes; `stopped: true` at exit
//   sensor:<ref>    sensor.status   {ref, process, status, stdout, stderr}  from the owner only: at
//                                   once when the state changes, at most once per interval when
//                                   only event counters or log tails changed
//
// The view derives liveness at read time: a status whose process has not been heard from for
// `timeout`, or that no longer owns the sensor stage, is not reported as running.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "topology/core/clock.h"
#include "topology/core/record.h"
#include "topology/log.h"

namespace attune::sensor {

class SensorManager;

inline constexpr std::string_view kSensorsTopic = "attune.sensors";
inline constexpr std::string_view kSensorProcessRecord = "sensor.process";
inline constexpr std::string_view kSensorStatusRecord = "sensor.status";

// The topic the publisher and the view use (compacted, one partition: one order of records).
TopicConfig sensors_topic();

class SensorStatusSource {
 public:
  virtual ~SensorStatusSource() = default;
  // Status object of a sensor (state, pid, restarts, last_error, ...). Any thread.
  virtual Json status(const std::string& ref) const = 0;
  // The kept tail of stream 0 (stdout) or 1 (stderr); nullopt if the sensor never ran.
  virtual std::optional<std::string> log(const std::string& ref, int stream) const = 0;
};

// The status of a sensor nobody has reported on yet.
Json not_started_status();

struct PublisherOptions {
  std::string name;  // this process, unique in the cluster (e.g. <host>-<node id>-<pid>)
  std::chrono::milliseconds interval{1000};
  const Clock* clock = &SystemClock::instance();
};

// Publishes a SensorManager's status and logs while this process owns the sensor stage, and a
// process heartbeat always. Its own thread waits on a condition variable between rounds.
// set_owner() and notify() are thread-safe.
class SensorStatusPublisher {
 public:
  // Registers with `sensors` for change notifications until stop(); `sensors` must outlive it.
  SensorStatusPublisher(Log& log, SensorManager& sensors, PublisherOptions options);
  ~SensorStatusPublisher();
  Status start();  // the first heartbeat is durable when this returns
  void stop();     // a last heartbeat with `stopped: true`
  void set_owner(bool owner);
  void notify();  // something changed: publish soon
  const std::string& name() const { return options_.name; }

 private:
  void run();
  Status round(bool heartbeat);
  Log& log_;
  SensorManager& sensors_;
  const PublisherOptions options_;
  const int64_t started_ms_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool dirty_ = false;
  bool owner_ = false;
  bool owner_changed_ = false;
  // Publishing thread only: what was last published per sensor, and when logs last went out.
  struct Published {
    std::string status;  // without the event counters
    Json emitted, rejected;
    size_t out_total = 0, err_total = 0;
    int64_t logs_at = 0;
  };
  std::map<std::string, Published> published_;
};

// Every API instance's copy of attune.sensors, followed on a thread.
class SensorStatusView final : public SensorStatusSource {
 public:
  SensorStatusView(Log& log, const Clock& clock, std::chrono::milliseconds timeout);
  ~SensorStatusView() override;
  Status start();
  void stop();
  Json status(const std::string& ref) const override;
  std::optional<std::string> log(const std::string& ref, int stream) const override;

  // Applies one record of the topic (exposed for tests; the follower thread's).
  void apply(const Record& record, int64_t now_ms);

 private:
  struct Process {
    Json info;
    int64_t seen_ms = 0;
  };
  struct Sensor {
    Json status;
    std::string process, out, err;
  };
  void follow();
  Log& log_;
  const Clock& clock_;
  const std::chrono::milliseconds timeout_;
  std::unique_ptr<Consumer> consumer_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::map<std::string, Process, std::less<>> processes_;
  std::map<std::string, Sensor, std::less<>> sensors_;
};

}  // namespace attune::sensor
