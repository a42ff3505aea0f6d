// Cluster-unique 53-bit ids (DESIGN.md §7): ms since 2025-01-01 (41 bits) | node (4 bits) |
// sequence (8 bits). Ordered by time, exact in a JavaScript number.
#pragma once

#include <cstdint>
#include <mutex>

#include "topology/core/clock.h"

namespace attune {

inline constexpr int64_t kIdEpochMs = 1735689600000;  // 2025-01-01T00:00:00Z
inline constexpr int64_t kMaxId = (int64_t{1} << 53) - 1;

class IdGenerator {
 public:
  // node: 0..15. Thread-safe. When more than 256 ids are asked for within one millisecond the
  // generator borrows from the next millisecond, so ids stay unique and increasing.
  IdGenerator(unsigned node, const Clock& clock);
  int64_t next();

  static int64_t timestamp_ms(int64_t id) { return (id >> 12) + kIdEpochMs; }
  static unsigned node_of(int64_t id) { return static_cast<unsigned>((id >> 8) & 0xF); }

 private:
  const unsigned node_;
  const Clock& clock_;
  std::mutex mu_;
  int64_t last_ms_ = 0;
  int64_t seq_ = 0;
};

}  // namespace attune
