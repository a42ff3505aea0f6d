// Injected time (DESIGN.md §7): everything that reads the time takes a Clock, so timers, TTLs,
// timeouts and retries are testable without sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace attune {

using SystemTime = std::chrono::system_clock::time_point;
using Millis = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SystemTime now() const = 0;
  int64_t now_ms() const {
    return std::chrono::duration_cast<Millis>(now().time_since_epoch()).count();
  }
};

class SystemClock final : public Clock {
 public:
  SystemTime now() const override { return std::chrono::system_clock::now(); }
  static const SystemClock& instance();
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1767225600000) : ms_(start_ms) {}  // 2026-01-01
  SystemTime now() const override { return SystemTime(Millis(ms_.load())); }
  void set_ms(int64_t ms) { ms_.store(ms); }
  void advance(Millis d) { ms_.fetch_add(d.count()); }

 private:
  std::atomic<int64_t> ms_;
};

inline SystemTime from_ms(int64_t ms) { return SystemTime(Millis(ms)); }
inline int64_t to_ms(SystemTime t) {
  return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count();
}

}  // namespace attune
