#include "topology/core/ids.h"

#include <stdexcept>

namespace attune {

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

IdGenerator::IdGenerator(unsigned node, const Clock& clock) : node_(node & 0xF), clock_(clock) {
  if (node > 15) throw std::invalid_argument("node id must be 0..15");
}

int64_t IdGenerator::next() {
  const int64_t now = clock_.now_ms() - kIdEpochMs;
  std::lock_guard lock(mu_);
  if (now > last_ms_) {
    last_ms_ = now;
    seq_ = 0;
  } else if (++seq_ > 0xFF) {
    ++last_ms_;
    seq_ = 0;
  }
  return (last_ms_ << 12) | (static_cast<int64_t>(node_) << 8) | seq_;
}

std::optional<int64_t> ingress_event_id(IngressSource source, int32_t partition, int64_t offset) {
  if (partition < 0 || partition >= kMaxIngressPartitions) return std::nullopt;
  if (offset < 0 || offset > kMaxIngressOffset) return std::nullopt;
  const int64_t s = source == IngressSource::kEvents ? 1 : 0;
  return kNaturalIdBit | kIngressIdBit | (s << 50) | (int64_t{partition} << 40) | offset;
}

}  // namespace attune
