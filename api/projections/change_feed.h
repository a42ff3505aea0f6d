// Change hooks of the projections: what changed in a projected row, delivered after commit in
// record order, plus the generation signal that read-your-writes waits block on.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "topology/core/record.h"

namespace attune::projections {

// One committed change of a projected row. `old_row` is null for a new row; rows are the stored
// API objects (full events, not list rows).
struct Change {
  std::string entity_type;  // "event" | "enforcement" | "execution"
  int64_t id = 0;
  Json old_row;
  Json new_row;
};

// Runs on the projection stage's thread after the change is durable and visible to readers.
// Must not block for long (it delays the stage). Exceptions are caught and logged.
using ChangeHook = std::function<void(const Change&)>;

// Thread-safe. Hooks are called in record order per stage instance; with several instances
// (StageSpec::instances > 1) hooks may run concurrently for different partitions.
class ChangeFeed {
 public:
  using Handle = uint64_t;
  Handle add_hook(ChangeHook hook);
  void remove_hook(Handle handle);
  // Calls every hook for each change in order, then advances the generation and wakes waiters.
  void publish(const std::vector<Change>& changes);
  uint64_t generation() const;
  // Blocks until the generation differs from `seen`; false when `deadline` passes first.
  bool wait_past(uint64_t seen, std::chrono::steady_clock::time_point deadline) const;

 private:
  using Hooks = std::vector<std::pair<Handle, ChangeHook>>;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  uint64_t generation_ = 0;
  Handle next_handle_ = 1;
  std::shared_ptr<const Hooks> hooks_ = std::make_shared<const Hooks>();
};

}  // namespace attune::projections
