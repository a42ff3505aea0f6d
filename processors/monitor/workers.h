// Worker liveness records on attune.workers (compacted, key = worker name):
//   worker.heartbeat  payload = the Worker object of API.md §7 as last announced
//   worker.stopped    payload = the same object with status "inactive" (clean shutdown)
//   worker.forgotten  payload = {"name"}: a worker inactive for long; it leaves GET /workers
//                     (written by the monitor stage; on a compacted topic, the key's last record)
// A worker process runs a Heartbeat; every API and monitor keeps a WorkersView.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "topology/core/clock.h"
#include "topology/log.h"

namespace attune::monitor {

inline constexpr std::string_view kHeartbeat = "worker.heartbeat";
inline constexpr std::string_view kStopped = "worker.stopped";
inline constexpr std::string_view kForgotten = "worker.forgotten";

// A random suffix (8 characters of [0-9a-z], ~41 bits) naming one process start of a worker.
std::string new_instance_suffix();

// A stable, positive, 53-bit id for a worker name (so GET /workers/{id} survives restarts).
int64_t worker_id(std::string_view name);

struct HeartbeatOptions {
  std::string name;  // the worker name reported in results (required)
  std::chrono::milliseconds interval{1000};
  std::string role = "action";
  const Clock* clock = &SystemClock::instance();
  Json meta = Json::object();  // merged into the announced object's `meta`
};

// Announces the worker at start(), then every `interval`, and `worker.stopped` at stop(). Its
// own thread waits on a condition variable between beats.
class Heartbeat {
 public:
  Heartbeat(Log& log, HeartbeatOptions options);
  ~Heartbeat();
  Status start();  // the first announcement is durable when this returns
  void stop();

 private:
  Status beat(std::string_view type);
  Log& log_;
  const HeartbeatOptions options_;
  const int64_t started_ms_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

// The latest record of every worker, followed on a thread. Status is derived at read time:
// "inactive" after worker.stopped or when the last heartbeat is older than `timeout`.
class WorkersView {
 public:
  WorkersView(Log& log, std::chrono::milliseconds timeout, const Clock& clock);
  ~WorkersView();
  Status start();  // replays the topic first
  void stop();
  // Every worker with its derived status, newest heartbeat first.
  std::vector<Json> list() const;
  std::optional<Json> get(int64_t id) const;
  // Whether the worker `name` that reported an attempt running at `reported_ms` (its record's
  // time) is gone: it stopped after that report, or nothing was heard from it (heartbeat or that
  // report) for longer than the timeout — also when unknown while the view has been up that
  // long. A worker restarted under the same name reports running before its first heartbeat
  // reaches the view: the stop record of its previous run is older than the report, so the
  // attempt is not abandoned for it.
  bool dead(const std::string& name, int64_t reported_ms = 0) const;
  std::chrono::milliseconds timeout() const { return timeout_; }
  // Workers inactive (stopped or silent) for longer than `after`: to be forgotten.
  std::vector<std::string> forgettable(std::chrono::milliseconds after) const;

 private:
  Json with_status(const Json& w, bool stopped, int64_t seen_ms) const;
  struct Entry {
    Json worker;
    bool stopped = false;
    int64_t seen_ms = 0;  // local clock when the last record arrived
  };
  void follow();
  Log& log_;
  const std::chrono::milliseconds timeout_;
  const Clock& clock_;
  int64_t started_ms_ = 0;
  std::unique_ptr<Consumer> consumer_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::map<std::string, Entry> workers_;
};

}  // namespace attune::monitor
