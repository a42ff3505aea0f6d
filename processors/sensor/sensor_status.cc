// Sensor status and logs on attune.sensors: the owner's publisher and every API's view.
#include "processors/sensor/sensor_status.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "processors/sensor/sensor_manager.h"
#include "runners/utf8.h"
#include "topology/core/time.h"

namespace attune::sensor {

namespace {

constexpr std::string_view kProcessPrefix = "process:";
constexpr std::string_view kSensorPrefix = "sensor:";
// A burst of changes (a sensor printing many lines) goes out as one round at most this often.
constexpr std::chrono::milliseconds kDebounce{100};

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace

TopicConfig sensors_topic() { return TopicConfig{std::string(kSensorsTopic), 1, true}; }

Json not_started_status() {
  return Json{{"state", "stopped"}, {"pid", nullptr}, {"restarts", 0},
              {"last_error", nullptr}, {"reason", "not started yet"}};
}

// --- publisher ------------------------------------------------------------------------------

SensorStatusPublisher::SensorStatusPublisher(Log& log, SensorManager& sensors,
                                             PublisherOptions options)
    : log_(log),
      sensors_(sensors),
      options_(std::move(options)),
      started_ms_(options_.clock->now_ms()) {}

SensorStatusPublisher::~SensorStatusPublisher() { stop(); }

Status SensorStatusPublisher::start() {
  if (auto st = round(true); !st.ok()) return st;
  sensors_.set_on_change([this] { notify(); });
  thread_ = std::thread([this] { run(); });
  return {};
}

void SensorStatusPublisher::stop() {
  sensors_.set_on_change(nullptr);
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    owner_ = false;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    if (auto st = round(true); !st.ok()) {
      spdlog::warn("sensor status: last heartbeat failed: {}", st.error().message);
    }
  }
}

void SensorStatusPublisher::set_owner(bool owner) {
  {
    std::lock_guard lock(mu_);
    if (owner_ == owner) return;
    owner_ = owner;
    owner_changed_ = true;
    dirty_ = true;
  }
  cv_.notify_all();
}

void SensorStatusPublisher::notify() {
  {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  cv_.notify_all();
}

void SensorStatusPublisher::run() {
  auto next_beat = std::chrono::steady_clock::now() + options_.interval;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_until(lock, next_beat, [&] { return stopping_ || dirty_; });
    if (stopping_) break;
    const auto now = std::chrono::steady_clock::now();
    const bool beat = now >= next_beat || owner_changed_;
    if (!beat && !dirty_) continue;
    dirty_ = false;
    lock.unlock();
    if (auto st = round(beat); !st.ok()) {
      spdlog::warn("sensor status: publishing failed: {}", st.error().message);
    }
    if (beat) next_beat = std::chrono::steady_clock::now() + options_.interval;
    // Debounce: output arriving line by line is published in rounds, not per line.
    std::this_thread::sleep_for(kDebounce);  // on this publisher's own thread only
    lock.lock();
  }
}

Status SensorStatusPublisher::round(bool heartbeat) {
  bool owner, stopped;
  {
    std::lock_guard lock(mu_);
    owner = owner_;
    stopped = stopping_;
    if (owner_changed_) {
      owner_changed_ = false;
      published_.clear();  // a new owner publishes everything it knows
    }
  }
  const int64_t now = options_.clock->now_ms();
  std::vector<OutRecord> out;
  if (heartbeat) {
    Json p = {{"name", options_.name},
              {"host", host_name()},
              {"pid", static_cast<int64_t>(::getpid())},
              {"owner", owner},
              {"stopped", stopped},
              {"interval_ms", options_.interval.count()},
              {"started", format_rfc3339_ms(started_ms_)}};
    Envelope e{std::string(kSensorProcessRecord), 0, options_.name, now, "sensor", std::move(p)};
    out.push_back(OutRecord{std::string(kSensorsTopic), std::string(kProcessPrefix) + options_.name,
                            e.dump()});
  }
  if (owner) {
    for (auto& s : sensors_.snapshot()) {
      Published& last = published_[s.ref];
      // A change of state goes out at once; counters and log tails (a chatty sensor changes them
      // all the time) at most once per interval.
      Json state = s.status;
      state.erase("events_emitted");
      state.erase("events_rejected");
      std::string status = state.dump();
      const bool status_changed = status != last.status;
      const bool minor_changed = s.out_total != last.out_total || s.err_total != last.err_total ||
                                 s.status.value("events_emitted", Json(0)) != last.emitted ||
                                 s.status.value("events_rejected", Json(0)) != last.rejected;
      const bool minor_due = minor_changed && now - last.logs_at >= options_.interval.count();
      if (!status_changed && !minor_due) continue;
      last.emitted = s.status.value("events_emitted", Json(0));
      last.rejected = s.status.value("events_rejected", Json(0));
      Json payload = {{"ref", s.ref},
                      {"process", options_.name},
                      {"status", std::move(s.status)},
                      {"stdout", runners::sanitize_utf8(s.out)},
                      {"stderr", runners::sanitize_utf8(s.err)}};
      Envelope e{std::string(kSensorStatusRecord), 0, s.ref, now, "sensor", std::move(payload)};
      out.push_back(OutRecord{std::string(kSensorsTopic), std::string(kSensorPrefix) + s.ref,
                              e.dump()});
      last.status = std::move(status);
      last.out_total = s.out_total;
      last.err_total = s.err_total;
      last.logs_at = now;
    }
  }
  if (out.empty()) return {};
  auto pos = log_.produce(std::move(out));
  if (!pos.ok()) {
    published_.clear();  // try everything again next round
    return pos.error();
  }
  return {};
}

// --- view -----------------------------------------------------------------------------------

SensorStatusView::SensorStatusView(Log& log, const Clock& clock, std::chrono::milliseconds timeout)
    : log_(log), clock_(clock), timeout_(timeout) {}

SensorStatusView::~SensorStatusView() { stop(); }

Status SensorStatusView::start() {
  auto c = log_.reader({std::string(kSensorsTopic)});
  if (!c.ok()) return c.error();
  consumer_ = std::move(*c);
  thread_ = std::thread([this] { follow(); });
  return {};
}

void SensorStatusView::stop() {
  stopping_.store(true);
  if (consumer_) consumer_->wakeup();
  if (thread_.joinable()) thread_.join();
}

void SensorStatusView::follow() {
  while (!stopping_.load()) {
    auto records = consumer_->poll(256, std::chrono::milliseconds(1000));
    const int64_t now = clock_.now_ms();
    for (const auto& r : records) apply(r, now);
  }
}

void SensorStatusView::apply(const Record& r, int64_t now_ms) {
  Envelope e;
  std::string error;
  if (!Envelope::parse(r.value, e, error) || !e.payload.is_object()) {
    spdlog::warn("sensor status: skipping malformed record {}@{}: {}", r.key, r.offset, error);
    return;
  }
  const std::string_view key = r.key;
  std::lock_guard lock(mu_);
  if (e.type == kSensorProcessRecord && key.starts_with(kProcessPrefix)) {
    Process& p = processes_[std::string(key.substr(kProcessPrefix.size()))];
    p.info = std::move(e.payload);
    p.seen_ms = std::min(e.ts > 0 ? e.ts : now_ms, now_ms);  // the heartbeat's own time
  } else if (e.type == kSensorStatusRecord && key.starts_with(kSensorPrefix)) {
    Sensor& s = sensors_[std::string(key.substr(kSensorPrefix.size()))];
    s.status = e.payload.value("status", Json::object());
    s.process = e.payload.value("process", "");
    s.out = e.payload.value("stdout", "");
    s.err = e.payload.value("stderr", "");
  }
}

Json SensorStatusView::status(const std::string& ref) const {
  const int64_t now = clock_.now_ms();
  std::lock_guard lock(mu_);
  auto it = sensors_.find(ref);
  if (it == sensors_.end() || !it->second.status.is_object()) return not_started_status();
  const Sensor& s = it->second;
  Json out = s.status;
  auto p = processes_.find(s.process);
  Json process = {{"name", s.process}};
  if (p != processes_.end()) {
    process["host"] = p->second.info.value("host", Json(nullptr));
    process["pid"] = p->second.info.value("pid", Json(nullptr));
    process["last_heartbeat"] = format_rfc3339_ms(p->second.seen_ms);
  }
  out["process"] = std::move(process);
  const std::string state = out.value("state", "");
  if (state == "stopped") return out;
  // Liveness at read time: what a dead or demoted process said last is not the truth any more.
  if (p == processes_.end() || now - p->second.seen_ms > timeout_.count() ||
      p->second.info.value("stopped", false)) {
    out["state"] = "unknown";
    out["pid"] = nullptr;
    out["reason"] = "sensor process '" + s.process + "' is not responding; a surviving sensor " +
                    "process restarts the sensor once it owns the sensor stage";
  } else if (!p->second.info.value("owner", false)) {
    out["state"] = "stopped";
    out["pid"] = nullptr;
    out["reason"] = "sensor process '" + s.process + "' no longer owns the sensor stage";
  }
  return out;
}

std::optional<std::string> SensorStatusView::log(const std::string& ref, int stream) const {
  std::lock_guard lock(mu_);
  auto it = sensors_.find(ref);
  if (it == sensors_.end()) return std::nullopt;
  return stream == 0 ? it->second.out : it->second.err;
}

}  // namespace attune::sensor
