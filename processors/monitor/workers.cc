#include "processors/monitor/workers.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <random>

#include "processors/worker/worker_processor.h"
#include "topology/core/time.h"

namespace attune::monitor {

int64_t worker_id(std::string_view name) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a 64
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  const int64_t id = static_cast<int64_t>(h & ((uint64_t{1} << 53) - 1));
  return id == 0 ? 1 : id;
}

std::string new_instance_suffix() {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::random_device rd;  // getrandom(2) on Linux
  uint64_t bits = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  std::string s;
  for (int i = 0; i < 8; ++i) {
    s.push_back(kDigits[bits % 36]);
    bits /= 36;
  }
  return s;
}

Heartbeat::Heartbeat(Log& log, HeartbeatOptions options)
    : log_(log), options_(std::move(options)), started_ms_(options_.clock->now_ms()) {}

Heartbeat::~Heartbeat() { stop(); }

Status Heartbeat::beat(std::string_view type) {
  const int64_t now = options_.clock->now_ms();
  const std::string host = worker::default_worker_name();
  Json w = {{"id", worker_id(options_.name)},
            {"name", options_.name},
            {"worker_type", "local"},
            {"worker_role", options_.role},
            {"runtime", nullptr},
            {"host", host},
            {"port", nullptr},
            {"status", type == kStopped ? "inactive" : "active"},
            {"capabilities", {{"runners", Json::array({"shell"})}}},
            {"meta", {{"pid", static_cast<int64_t>(::getpid())},
                      {"heartbeat_interval_ms", options_.interval.count()}}},
            {"last_heartbeat", format_rfc3339_ms(now)},
            {"created", format_rfc3339_ms(started_ms_)},
            {"updated", format_rfc3339_ms(now)}};
  if (options_.meta.is_object()) w["meta"].update(options_.meta);
  Envelope e{std::string(type), worker_id(options_.name), options_.name, now, "worker",
             std::move(w)};
  auto pos = log_.produce({OutRecord{std::string(topics::kWorkers), options_.name, e.dump()}});
  if (!pos.ok()) return pos.error();
  return {};
}

Status Heartbeat::start() {
  if (auto st = beat(kHeartbeat); !st.ok()) return st;
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, options_.interval, [&] { return stopping_; })) {
      lock.unlock();
      if (auto st = beat(kHeartbeat); !st.ok()) {
        spdlog::warn("worker {}: heartbeat failed: {}", options_.name, st.error().message);
      }
      lock.lock();
    }
  });
  return {};
}

void Heartbeat::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    if (auto st = beat(kStopped); !st.ok()) {
      spdlog::warn("worker {}: stop announcement failed: {}", options_.name, st.error().message);
    }
  }
}

WorkersView::WorkersView(Log& log, std::chrono::milliseconds timeout, const Clock& clock)
    : log_(log), timeout_(timeout), clock_(clock) {}

WorkersView::~WorkersView() { stop(); }

Status WorkersView::start() {
  started_ms_ = clock_.now_ms();
  auto c = log_.reader({std::string(topics::kWorkers)});
  if (!c.ok()) return c.error();
  consumer_ = std::move(*c);
  thread_ = std::thread([this] { follow(); });
  return {};
}

void WorkersView::stop() {
  stopping_.store(true);
  if (consumer_) consumer_->wakeup();
  if (thread_.joinable()) thread_.join();
}

void WorkersView::follow() {
  while (!stopping_.load()) {
    auto records = consumer_->poll(1024, std::chrono::milliseconds(1000));
    const int64_t now = clock_.now_ms();
    std::lock_guard lock(mu_);
    for (const auto& r : records) {
      Envelope e;
      std::string error;
      if (!Envelope::parse(r.value, e, error) || !e.payload.is_object()) {
        spdlog::warn("workers: skipping malformed record {}@{}: {}", r.key, r.offset, error);
        continue;
      }
      if (e.type != kHeartbeat && e.type != kStopped && e.type != kForgotten) continue;
      if (e.type == kForgotten) {
        workers_.erase(r.key);
        continue;
      }
      auto& entry = workers_[r.key];
      entry.worker = std::move(e.payload);
      entry.stopped = e.type == kStopped;
      entry.seen_ms = std::min(e.ts > 0 ? e.ts : now, now);  // the heartbeat's own time
    }
  }
}

Json WorkersView::with_status(const Json& w, bool stopped, int64_t seen_ms) const {
  Json out = w;
  const int64_t now = clock_.now_ms();
  const bool stale = now - seen_ms > timeout_.count();
  out["status"] = (stopped || stale) ? "inactive" : w.value("status", "active");
  return out;
}

std::vector<Json> WorkersView::list() const {
  std::vector<std::pair<int64_t, Json>> rows;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, e] : workers_) {
      rows.emplace_back(e.seen_ms, with_status(e.worker, e.stopped, e.seen_ms));
    }
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<Json> out;
  for (auto& [t, w] : rows) out.push_back(std::move(w));
  return out;
}

std::optional<Json> WorkersView::get(int64_t id) const {
  std::lock_guard lock(mu_);
  for (const auto& [name, e] : workers_) {
    if (e.worker.value("id", int64_t{0}) == id) return with_status(e.worker, e.stopped, e.seen_ms);
  }
  return std::nullopt;
}

std::vector<std::string> WorkersView::forgettable(std::chrono::milliseconds after) const {
  const int64_t now = clock_.now_ms();
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  for (const auto& [name, e] : workers_) {
    // Silent since seen_ms (or stopped then): inactive for at least now - seen_ms.
    if (now - e.seen_ms > std::max(after.count(), timeout_.count())) out.push_back(name);
  }
  return out;
}

bool WorkersView::dead(const std::string& name, int64_t reported_ms) const {
  const int64_t now = clock_.now_ms();
  std::lock_guard lock(mu_);
  auto it = workers_.find(name);
  if (it == workers_.end()) return now - std::max(started_ms_, reported_ms) > timeout_.count();
  if (it->second.stopped && it->second.seen_ms >= reported_ms) return true;
  return now - std::max(it->second.seen_ms, reported_ms) > timeout_.count();
}

}  // namespace attune::monitor
