// Bounded stage stores (issue 13): entries that stop mattering after a while are scheduled for
// deletion by a time-ordered expiry entry next to them in the same store, and the stage deletes
// what is due from its own punctuate(), inside its own transaction — never behind its back.
//
//   <key>                           the entry (any layout the stage chooses; never starting '~')
//   ~exp/<BE64 due ms><key>         ""  — delete <key> once the stage's clock passes `due ms`
//   ~swept                          "1" — every entry written before expiry entries existed
//                                        (an earlier build's data directory) has been given one
//
// A pass reads only the due prefix of ~exp/ (O(entries deleted)), and both keys go in one
// transaction with the stage's other writes and input offsets, so on the embedded log a crash
// never leaves an entry without its expiry (or the reverse); on Kafka both keys travel through the
// store's changelog like any other write. Deleting a key that is already gone is harmless, so an
// entry scheduled twice (the legacy sweep racing a new write) costs nothing more.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "topology/topology.h"

namespace attune::expiry {

inline constexpr std::string_view kPrefix = "~exp/";
inline constexpr std::string_view kSweptKey = "~swept";

std::string expiry_key(int64_t due_ms, std::string_view key);
// True for the keys this module owns (every key starting with '~').
inline bool is_internal_key(std::string_view key) { return !key.empty() && key[0] == '~'; }

// Schedules `key` of `store` for deletion once the stage's clock reaches `due_ms`.
void schedule(ProcessorContext& ctx, state::Store& store, std::string_view key, int64_t due_ms);

struct ExpireResult {
  size_t expired = 0;  // entries deleted
  bool more = false;   // stopped by `budget` with due entries left
};

// Deletes the entries due at `now_ms` (oldest first) and their expiry entries, at most `budget`.
ExpireResult expire_due(ProcessorContext& ctx, state::Store& store, int64_t now_ms,
                        size_t budget);

// When an entry written before expiry entries existed stops mattering: its due time, or nullopt
// to leave it alone (it gets its expiry when it stops mattering through the normal path, e.g. an
// execution that is still running).
using LegacyDue = std::function<std::optional<int64_t>(std::string_view key, std::string_view value)>;

// Gives the entries of an earlier build's store their expiry entries, `budget` entries per call,
// resuming after the last key it visited. Once it has visited every key it writes ~swept and
// never scans again (also after a restart). Returns true while there is more to visit.
class LegacySweep {
 public:
  bool step(ProcessorContext& ctx, state::Store& store, size_t budget, const LegacyDue& due_of);
  bool done() const { return done_; }

 private:
  bool checked_ = false;
  bool done_ = false;
  std::string cursor_;  // next key to visit (inclusive); empty: from the start
};

// The usual pruning schedule of a stage: at most one pass per `interval`, none during the first
// `hold` after the stage instance started (records redelivered after a restart are read first,
// while the entries they need are still there), and a prompt next pass when a pass hit its budget.
struct PruneSchedule {
  std::chrono::milliseconds interval{2000};
  std::chrono::milliseconds hold{30000};
  size_t budget = 4096;  // entries deleted (and legacy entries visited) per pass
};

// One store's pruning by a stage: the legacy sweep, then the due entries, on a PruneSchedule.
// Stage-thread only, like the Processor that owns it.
class Pruner {
 public:
  Pruner(PruneSchedule schedule, LegacyDue legacy_due)
      : schedule_(schedule), legacy_due_(std::move(legacy_due)) {}
  // From Processor::init.
  void start(const ProcessorContext& ctx) { started_ms_ = ctx.clock().now_ms(); }
  // From Processor::punctuate: a pass when one is due; returns when to call again.
  SystemTime run(ProcessorContext& ctx, state::Store& store, SystemTime now);
  uint64_t expired() const { return expired_; }

 private:
  const PruneSchedule schedule_;
  const LegacyDue legacy_due_;
  LegacySweep sweep_;
  int64_t started_ms_ = 0;
  uint64_t expired_ = 0;
};

}  // namespace attune::expiry
