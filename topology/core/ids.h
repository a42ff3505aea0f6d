// Cluster-unique 53-bit ids (DESIGN.md §7): ms since 2025-01-01 (41 bits) | node (4 bits) |
// sequence (8 bits). Ordered by time, exact in a JavaScript number.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>

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

// Natural ids: derived from what an entity stands for instead of minted, so that processing the
// same input again (a replay after a crash) recreates the same entity and every consumer that
// keys by id ignores the repeat (DESIGN.md §4). They use the upper half of the id range (bit 52
// set), which the IdGenerator reaches only in 2059; bit 51 splits it:
//   bit 51 = 0  timer ticks: scheduled second since 2025 (31 bits) | rule slot (20 bits),
//               see processors/sensor/timer_scheduler.h
//   bit 51 = 1  Kafka-ingress records: source (1 bit) | partition (10 bits) | offset (40 bits)
inline constexpr int64_t kNaturalIdBit = int64_t{1} << 52;
inline constexpr int64_t kIngressIdBit = int64_t{1} << 51;
inline constexpr int32_t kMaxIngressPartitions = 1 << 10;
inline constexpr int64_t kMaxIngressOffset = (int64_t{1} << 40) - 1;

// Which ingress topic a record came from (one bit of its event id).
enum class IngressSource { kWebhooks = 0, kEvents = 1 };

// The event id of the Kafka-ingress record at (source topic, partition, offset) (API.md §18).
// nullopt when the position does not fit (partition ≥ 1024 or offset ≥ 2^40).
std::optional<int64_t> ingress_event_id(IngressSource source, int32_t partition, int64_t offset);

}  // namespace attune
