// The TTL expiry driver of the datastore.
#include "processors/keystore/expiry.h"

#include <spdlog/spdlog.h>

namespace attune::keystore {

KeyHolds::KeyHolds(size_t stripes) : state_(std::make_shared<State>()) {
  state_->held.assign(stripes, 0);
}

std::shared_ptr<void> KeyHolds::hold(std::string_view ref) {
  const size_t stripe = std::hash<std::string_view>{}(ref) % state_->held.size();
  std::unique_lock lock(state_->mu);
  state_->cv.wait(lock, [&] { return state_->held[stripe] == 0; });
  state_->held[stripe] = 1;
  return std::shared_ptr<void>(nullptr, [state = state_, stripe](void*) {
    {
      std::lock_guard release_lock(state->mu);
      state->held[stripe] = 0;
    }
    state->cv.notify_all();
  });
}

KeyExpiry::KeyExpiry(Log& log, const DefinitionsTable& table, const Clock& clock,
                     std::chrono::milliseconds max_wait, KeyLock lock)
    : log_(log), table_(table), clock_(clock), max_wait_(max_wait), lock_(std::move(lock)) {}

KeyExpiry::~KeyExpiry() { stop(); }

Result<std::optional<int64_t>> KeyExpiry::run_once() {
  const int64_t now = clock_.now_ms();
  // Only the keys that are due: the table keeps them ordered by deadline.
  DefinitionsTable::Expiring scan = table_.expiring(kKind, now);
  {
    std::lock_guard lock(mu_);
    visited_ += scan.due.size();
  }
  for (const auto& due : scan.due) {
    const std::string ref = due->value("ref", "");
    std::shared_ptr<void> held;
    if (lock_) held = lock_(ref);
    // Re-read under the lock: the key may have been updated (new deadline) or deleted meanwhile.
    JsonPtr current = table_.get(kKind, ref);
    if (!current || !is_expired(*current, now)) continue;
    auto pos = log_.produce({expiry_record(*current, now, "api")});
    if (!pos.ok()) return pos.error();
    // Applied before the lock is released, so the next writer of this ref sees it gone.
    if (!pos->empty()) table_.wait_applied(pos->back().offset, std::chrono::seconds(5));
    std::lock_guard lock(mu_);
    ++expired_;
  }
  return scan.next_deadline_ms;
}

uint64_t KeyExpiry::expired() const {
  std::lock_guard lock(mu_);
  return expired_;
}

uint64_t KeyExpiry::visited() const {
  std::lock_guard lock(mu_);
  return visited_;
}

void KeyExpiry::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { loop(); });
}

void KeyExpiry::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void KeyExpiry::notify() {
  {
    std::lock_guard lock(mu_);
    notified_ = true;
  }
  cv_.notify_all();
}

void KeyExpiry::loop() {
  for (;;) {
    auto next = run_once();
    if (!next.ok()) spdlog::warn("key expiry: {}", next.error().message);
    std::chrono::milliseconds wait = max_wait_;
    if (next.ok() && next->has_value()) {
      const int64_t until = **next - clock_.now_ms();
      wait = std::min(wait, std::chrono::milliseconds(std::max<int64_t>(until, 0)));
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, wait, [this] { return stopping_ || notified_; });
    if (stopping_) return;
    notified_ = false;
  }
}

}  // namespace attune::keystore
