// KeyExpiry: turns TTL deadlines into expiry records on attune.definitions (API.md §14), so an
// expired key disappears from every view (API, rules, workers) by the same log record, and the
// DefinitionsTable drops it from storage. Readers also treat a key past its deadline as absent
// at once (keys.h is_expired), so the record only has to follow promptly.
//
// run_once() is the whole decision (testable with an injected clock). It visits only the keys that
// are due, taken from the DefinitionsTable's deadline index (ordered by `expires_at`), so a pass
// costs O(log n + due) rather than a scan of every key. start() runs it on a thread that sleeps
// until the earliest deadline, waking early on notify() (a key was written) and at least every
// `max_wait` to notice keys written by other API instances (a cheap index lookup). Several
// instances expiring the same key write the same conditional tombstone twice: harmless.
//
// Each expiry is decided and written under the key's write lock, after re-reading the key: within
// one API process an expiry record therefore always names the key's current `rev`, so it is never
// a no-op — which matters for compaction, which keeps only the newest record of a key (a no-op
// conditional tombstone kept as the newest record would hide the update it lost to). Several API
// instances on Kafka do not share that lock: there a TTL deadline racing an update of the same key
// on another instance can still leave such a record (a known limitation).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "processors/keystore/keys.h"
#include "topology/core/clock.h"
#include <memory>
#include <vector>

#include "topology/log.h"

namespace attune::keystore {

// Per-key exclusion for check-then-write sequences that may finish on another thread (an API
// write answered once the definitions table has applied it). Keys hash onto stripes; hold()
// blocks while another holder of the stripe lives and returns a handle whose destruction, on any
// thread, releases it.
class KeyHolds {
 public:
  explicit KeyHolds(size_t stripes = 1024);
  // Handles may outlive this object (a write finishing during shutdown): they share its state.
  std::shared_ptr<void> hold(std::string_view ref);

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<char> held;
  };
  std::shared_ptr<State> state_;
};

class KeyExpiry {
 public:
  // Serialises the expiry of one key with the writers of that key (the API's KeyHolds), so an
  // expiry never lands after an update it did not see. Without it (tests) nothing is held.
  using KeyLock = std::function<std::shared_ptr<void>(std::string_view ref)>;

  KeyExpiry(Log& log, const DefinitionsTable& table, const Clock& clock,
            std::chrono::milliseconds max_wait = std::chrono::milliseconds(1000),
            KeyLock lock = {});
  ~KeyExpiry();

  // Writes an expiry record for every key whose deadline has come; returns the next deadline.
  // Errors are the log's (nothing was written then; the next run retries).
  Result<std::optional<int64_t>> run_once();
  // How many expiry records this instance has written.
  uint64_t expired() const;
  // How many keys the passes have looked at (due per the index; each is re-read under its lock).
  uint64_t visited() const;

  void start();
  void stop();
  // A key with a deadline was written: re-plan the wait.
  void notify();

 private:
  void loop();

  Log& log_;
  const DefinitionsTable& table_;
  const Clock& clock_;
  const std::chrono::milliseconds max_wait_;
  const KeyLock lock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool notified_ = false;
  uint64_t expired_ = 0;
  uint64_t visited_ = 0;
  std::thread thread_;
};

}  // namespace attune::keystore
